//! [`BlobStore`] on PostgreSQL: one `bf_blobs` row per key, bytes in a bytea column.

use std::collections::HashSet;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

use crate::PgStore;

/// Largest blob accepted: PostgreSQL's bytea limit is 1 GiB per value, and a value travels
/// through the protocol in one message; stay well below.
pub const MAX_BLOB: u64 = 512 << 20;

/// `prefix` as a LIKE pattern (`\` escapes `%`, `_` and itself).
fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl PgStore {
    fn too_large(&self, key: &BlobKey, len: usize) -> StoreError {
        StoreError::new(
            ErrorKind::Unsupported,
            &self.name,
            "put",
            format!("blob of {len} bytes exceeds the PostgreSQL store's limit of {MAX_BLOB} bytes; keep large blobs in a file or S3 tier"),
        )
        .with_key(key)
    }
}

#[async_trait]
impl BlobStore for PgStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_put_if_absent: true,
            range_reads: true,
            list: true,
            delete: true,
            batch_put: true,
            max_blob_size: Some(MAX_BLOB),
        }
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        if bytes.len() as u64 > MAX_BLOB {
            return Err(self.too_large(key, bytes.len()));
        }
        let done = self
            .retry("put_if_absent", Some(key.as_str()), || async {
                sqlx::query(
                    "INSERT INTO bf_blobs (key, size, data) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key.as_str())
                .bind(bytes.len() as i64)
                .bind(bytes.as_ref())
                .execute(&self.pool)
                .await
            })
            .await?;
        Ok(if done.rows_affected() == 1 {
            PutOutcome::Created
        } else {
            PutOutcome::AlreadyExists
        })
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let data: Option<Vec<u8>> = self
            .retry("get", Some(key.as_str()), || async {
                sqlx::query_scalar("SELECT data FROM bf_blobs WHERE key = $1")
                    .bind(key.as_str())
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        data.map(Bytes::from)
            .ok_or_else(|| StoreError::not_found(&self.name, "get", key))
    }

    /// One query for all of them.
    async fn get_many(&self, keys: &[BlobKey]) -> Result<Vec<Bytes>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = keys.iter().map(BlobKey::as_str).collect();
        let rows: Vec<(String, Vec<u8>)> = self
            .retry("get_many", None, || async {
                sqlx::query_as("SELECT key, data FROM bf_blobs WHERE key = ANY($1::text[])")
                    .bind(&wanted)
                    .fetch_all(&self.pool)
                    .await
            })
            .await?;
        let found: std::collections::HashMap<String, Bytes> =
            rows.into_iter().map(|(k, d)| (k, Bytes::from(d))).collect();
        keys.iter()
            .map(|k| {
                // A key asked twice gets the same bytes twice.
                found
                    .get(k.as_str())
                    .cloned()
                    .ok_or_else(|| StoreError::not_found(&self.name, "get_many", k))
            })
            .collect()
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        let size: Option<i64> = self
            .retry("head", Some(key.as_str()), || async {
                sqlx::query_scalar("SELECT size FROM bf_blobs WHERE key = $1")
                    .bind(key.as_str())
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        Ok(size.map(|s| BlobMeta {
            key: key.clone(),
            size: s as u64,
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.retry("delete", Some(key.as_str()), || async {
            sqlx::query("DELETE FROM bf_blobs WHERE key = $1")
                .bind(key.as_str())
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(())
    }

    /// One statement, so one transaction, for all of them.
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = keys.iter().map(BlobKey::as_str).collect();
        self.retry("delete_many", None, || async {
            sqlx::query("DELETE FROM bf_blobs WHERE key = ANY($1::text[])")
                .bind(&keys)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        // A NUL byte cannot be sent in a text parameter, and no key contains one.
        if prefix.contains('\0') {
            return Ok(Vec::new());
        }
        let pattern = like_prefix(prefix);
        let rows = self
            .retry("list", Some(prefix), || async {
                sqlx::query("SELECT key, size FROM bf_blobs WHERE key LIKE $1 ORDER BY key")
                    .bind(&pattern)
                    .fetch_all(&self.pool)
                    .await
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: String = r.try_get("key").map_err(|e| {
                StoreError::new(ErrorKind::Decode, &self.name, "list", e.to_string())
            })?;
            let size: i64 = r.try_get("size").map_err(|e| {
                StoreError::new(ErrorKind::Decode, &self.name, "list", e.to_string())
            })?;
            // Rows written by something else with a key we would refuse are not ours to list.
            if let Ok(key) = BlobKey::new(key) {
                out.push(BlobMeta {
                    key,
                    size: size as u64,
                });
            }
        }
        Ok(out)
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        if range.start > range.end {
            return Err(StoreError::new(
                ErrorKind::Other,
                &self.name,
                "get_range",
                format!("reversed range {}..{}", range.start, range.end),
            )
            .with_key(key));
        }
        // substring() counts from 1; with uncompressed out-of-line storage it reads only the
        // TOAST chunks covering the range.
        let start = range.start.min(i64::MAX as u64 - 1) as i64 + 1;
        let len = (range.end - range.start).min(i64::MAX as u64) as i64;
        let row: Option<(i64, Vec<u8>)> = self
            .retry("get_range", Some(key.as_str()), || async {
                sqlx::query_as(
                    "SELECT size, substring(data FROM $2::int8::int4 FOR LEAST($3, 2147483647)::int4)
                     FROM bf_blobs WHERE key = $1",
                )
                .bind(key.as_str())
                .bind(start.min(i64::from(i32::MAX)))
                .bind(len)
                .fetch_optional(&self.pool)
                .await
            })
            .await?;
        let Some((size, data)) = row else {
            return Err(StoreError::not_found(&self.name, "get_range", key));
        };
        if range.start > size as u64 {
            return Err(StoreError::new(
                ErrorKind::Other,
                &self.name,
                "get_range",
                format!(
                    "range {}..{} outside blob of {size} bytes",
                    range.start, range.end
                ),
            )
            .with_key(key));
        }
        Ok(Bytes::from(data))
    }

    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((k, b)) = items.iter().find(|(_, b)| b.len() as u64 > MAX_BLOB) {
            return Err(self.too_large(k, b.len()));
        }
        // The first occurrence of a key in the batch is the one written.
        let mut first = HashSet::with_capacity(items.len());
        let mut keys = Vec::new();
        let mut sizes = Vec::new();
        let mut datas: Vec<&[u8]> = Vec::new();
        let mut is_first = Vec::with_capacity(items.len());
        for (k, b) in &items {
            let f = first.insert(k.as_str());
            is_first.push(f);
            if f {
                keys.push(k.as_str());
                sizes.push(b.len() as i64);
                datas.push(b.as_ref());
            }
        }
        let created: Vec<String> = self
            .retry("put_many", None, || async {
                sqlx::query_scalar(
                    "INSERT INTO bf_blobs (key, size, data)
                     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[])
                     ON CONFLICT (key) DO NOTHING
                     RETURNING key",
                )
                .bind(&keys)
                .bind(&sizes)
                .bind(&datas)
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        let created: HashSet<&str> = created.iter().map(String::as_str).collect();
        Ok(items
            .iter()
            .zip(is_first)
            .map(|((k, _), f)| {
                if f && created.contains(k.as_str()) {
                    PutOutcome::Created
                } else {
                    PutOutcome::AlreadyExists
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        for (prefix, want) in [
            ("", "%"),
            ("a/b", "a/b%"),
            ("a_b", "a\\_b%"),
            ("50%", "50\\%%"),
            ("x\\y", "x\\\\y%"),
        ] {
            assert_eq!(like_prefix(prefix), want, "{prefix}");
        }
    }
}
