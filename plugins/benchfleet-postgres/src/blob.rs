//! [`BlobStore`] on PostgreSQL: hot records packed per write batch (`hot.rs`), every other key
//! one `bf_blobs` row, bytes in a bytea column.

use std::collections::HashSet;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

use crate::PgStore;
use crate::hot;

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
    /// A range that starts past the end of its blob.
    fn outside(&self, key: &BlobKey, range: &Range<u64>, size: u64) -> StoreError {
        StoreError::new(
            ErrorKind::Other,
            &self.name,
            "get_range",
            format!(
                "range {}..{} outside blob of {size} bytes",
                range.start, range.end
            ),
        )
        .with_key(key)
    }

    pub(crate) fn check_blob_sizes(&self, items: &[(BlobKey, Bytes)]) -> Result<()> {
        match items.iter().find(|(_, b)| b.len() as u64 > MAX_BLOB) {
            Some((k, b)) => Err(self.too_large(k, b.len())),
            None => Ok(()),
        }
    }

    /// Put `items` in the transaction of `conn`: hot records into a pack, the rest as rows.
    /// The first occurrence of a key in the batch is the one written.
    pub(crate) async fn put_blobs_in(
        &self,
        conn: &mut sqlx::PgConnection,
        items: &[(BlobKey, Bytes)],
    ) -> sqlx::Result<Vec<PutOutcome>> {
        let mut out = vec![PutOutcome::AlreadyExists; items.len()];
        let (mut packed, mut packed_at, mut rows_at) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (k, b)) in items.iter().enumerate() {
            match hot::packed_key(k) {
                Some(pk) => {
                    packed.push((pk, b.as_ref()));
                    packed_at.push(i);
                }
                None => rows_at.push(i),
            }
        }
        if !packed.is_empty() {
            // Hot records of stores written before packs are rows; they stay where they are.
            let keys: Vec<&str> = packed_at.iter().map(|&i| items[i].0.as_str()).collect();
            let legacy: Vec<String> =
                sqlx::query_scalar("SELECT key FROM bf_blobs WHERE key = ANY($1::text[])")
                    .bind(&keys)
                    .fetch_all(&mut *conn)
                    .await?;
            let legacy: HashSet<(i64, benchfleet_model::Digest)> = legacy
                .iter()
                .filter_map(|k| BlobKey::new(k.as_str()).ok())
                .filter_map(|k| hot::packed_key(&k))
                .collect();
            let created = hot::put(conn, &packed, &legacy).await?;
            for (&i, c) in packed_at.iter().zip(created) {
                if c {
                    out[i] = PutOutcome::Created;
                }
            }
        }
        if !rows_at.is_empty() {
            let mut first = HashSet::with_capacity(rows_at.len());
            let (mut keys, mut sizes, mut datas) = (Vec::new(), Vec::new(), Vec::<&[u8]>::new());
            let mut is_first = Vec::with_capacity(rows_at.len());
            for &i in &rows_at {
                let (k, b) = &items[i];
                let f = first.insert(k.as_str());
                is_first.push(f);
                if f {
                    keys.push(k.as_str());
                    sizes.push(b.len() as i64);
                    datas.push(b.as_ref());
                }
            }
            let created: Vec<String> = sqlx::query_scalar(
                "INSERT INTO bf_blobs (key, size, data)
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[])
                 ON CONFLICT (key) DO NOTHING
                 RETURNING key",
            )
            .bind(&keys)
            .bind(&sizes)
            .bind(&datas)
            .fetch_all(&mut *conn)
            .await?;
            let created: HashSet<&str> = created.iter().map(String::as_str).collect();
            for (&i, f) in rows_at.iter().zip(is_first) {
                if f && created.contains(items[i].0.as_str()) {
                    out[i] = PutOutcome::Created;
                }
            }
        }
        Ok(out)
    }

    /// Delete `keys` (absent ones are skipped) in the transaction of `conn`.
    pub(crate) async fn delete_blobs_in(
        &self,
        conn: &mut sqlx::PgConnection,
        keys: &[BlobKey],
    ) -> sqlx::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let packed: Vec<(i64, benchfleet_model::Digest)> =
            keys.iter().filter_map(hot::packed_key).collect();
        hot::delete(conn, &packed).await?;
        let all: Vec<&str> = keys.iter().map(BlobKey::as_str).collect();
        sqlx::query("DELETE FROM bf_blobs WHERE key = ANY($1::text[])")
            .bind(&all)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Where a packed hot record is: (pack id, offset, length). For tests and diagnosis.
    #[doc(hidden)]
    pub async fn hot_slot(&self, key: &BlobKey) -> Result<Option<(i64, u32, u32)>> {
        Ok(self
            .slot_of("hot_slot", key)
            .await?
            .map(|s| (s.pack, s.offset, s.len)))
    }

    async fn slot_of(&self, op: &'static str, key: &BlobKey) -> Result<Option<hot::Slot>> {
        let Some(pk) = hot::packed_key(key) else {
            return Ok(None);
        };
        let found = self
            .retry(op, Some(key.as_str()), || async {
                hot::locate(&self.pool, &[pk]).await
            })
            .await?;
        Ok(found.get(&pk).copied())
    }

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
        let mut out = self.put_many(vec![(key.clone(), bytes)]).await?;
        Ok(out.pop().unwrap_or(PutOutcome::AlreadyExists))
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        if let Some(slot) = self.slot_of("get", key).await? {
            let mut got = self
                .retry("get", Some(key.as_str()), || async {
                    hot::read_slots(&self.pool, &[slot]).await
                })
                .await?;
            if let Some(Some(b)) = got.pop() {
                return Ok(Bytes::from(b));
            }
        }
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

    /// Packed records in two queries (where, then the bytes), the rest in one.
    async fn get_many(&self, keys: &[BlobKey]) -> Result<Vec<Bytes>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let packed: Vec<(i64, benchfleet_model::Digest)> =
            keys.iter().filter_map(hot::packed_key).collect();
        let mut found: std::collections::HashMap<&str, Bytes> = std::collections::HashMap::new();
        if !packed.is_empty() {
            let got = self
                .retry("get_many", None, || async {
                    let slots = hot::locate(&self.pool, &packed).await?;
                    let (mut ks, mut ss) = (Vec::new(), Vec::new());
                    for k in keys {
                        if let Some(s) = hot::packed_key(k).and_then(|pk| slots.get(&pk)) {
                            ks.push(k.as_str());
                            ss.push(*s);
                        }
                    }
                    let bytes = hot::read_slots(&self.pool, &ss).await?;
                    Ok(ks.into_iter().zip(bytes).collect::<Vec<_>>())
                })
                .await?;
            for (k, b) in got {
                if let Some(b) = b {
                    found.insert(k, Bytes::from(b));
                }
            }
        }
        let wanted: Vec<&str> = keys
            .iter()
            .map(BlobKey::as_str)
            .filter(|k| !found.contains_key(k))
            .collect();
        if !wanted.is_empty() {
            let rows: Vec<(String, Vec<u8>)> = self
                .retry("get_many", None, || async {
                    sqlx::query_as("SELECT key, data FROM bf_blobs WHERE key = ANY($1::text[])")
                        .bind(&wanted)
                        .fetch_all(&self.pool)
                        .await
                })
                .await?;
            for (k, d) in rows {
                if let Some(key) = keys.iter().find(|x| x.as_str() == k) {
                    found.insert(key.as_str(), Bytes::from(d));
                }
            }
        }
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
        if let Some(slot) = self.slot_of("head", key).await? {
            return Ok(Some(BlobMeta {
                key: key.clone(),
                size: u64::from(slot.len),
            }));
        }
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
        self.delete_many(vec![key.clone()]).await
    }

    /// One transaction for all of them.
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.retry("delete_many", None, || async {
            let mut tx = self.pool.begin().await?;
            self.delete_blobs_in(&mut tx, &keys).await?;
            tx.commit().await
        })
        .await
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
        // Packed hot records, when the prefix may name some.
        let ns = format!("{}/", benchfleet_store::codec::HOT_NS);
        if ns.starts_with(prefix) || prefix.starts_with(&ns) {
            let packed = self
                .retry("list", Some(prefix), || async {
                    hot::list(&self.pool).await
                })
                .await?;
            out.extend(
                packed
                    .into_iter()
                    .filter(|(k, _)| k.as_str().starts_with(prefix))
                    .map(|(key, size)| BlobMeta { key, size }),
            );
        }
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
        out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        out.dedup_by(|a, b| a.key == b.key);
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
        if let Some(slot) = self.slot_of("get_range", key).await? {
            let size = u64::from(slot.len);
            if range.start > size {
                return Err(self.outside(key, &range, size));
            }
            let end = range.end.min(size);
            let part = hot::Slot {
                pack: slot.pack,
                offset: slot.offset + range.start as u32,
                len: (end - range.start) as u32,
            };
            let mut got = self
                .retry("get_range", Some(key.as_str()), || async {
                    hot::read_slots(&self.pool, &[part]).await
                })
                .await?;
            return match got.pop() {
                Some(Some(b)) => Ok(Bytes::from(b)),
                _ => Err(StoreError::not_found(&self.name, "get_range", key)),
            };
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
            return Err(self.outside(key, &range, size as u64));
        }
        Ok(Bytes::from(data))
    }

    /// One transaction: hot records in one new pack, the rest in one statement.
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.check_blob_sizes(&items)?;
        self.retry("put_many", None, || async {
            let mut tx = self.pool.begin().await?;
            let out = self.put_blobs_in(&mut tx, &items).await?;
            tx.commit().await?;
            Ok(out)
        })
        .await
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
