//! [`BlobStore`] over the `blobs` / `blob_sizes` tables.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

use crate::writer::{Done, Work};
use crate::{BLOB_SIZES, BLOBS, MAX_BLOB_SIZE, RedbStore};

impl RedbStore {
    fn check_size(&self, key: &BlobKey, len: usize) -> Result<()> {
        if len as u64 > MAX_BLOB_SIZE {
            return Err(StoreError::new(
                ErrorKind::Unsupported,
                self.name.clone(),
                "put",
                format!("blob of {len} bytes exceeds redb's limit of {MAX_BLOB_SIZE} bytes; store it on a file backend"),
            )
            .with_key(key));
        }
        Ok(())
    }

    async fn put_work(
        &self,
        op: &'static str,
        items: Vec<(BlobKey, Bytes)>,
    ) -> Result<Vec<PutOutcome>> {
        for (k, b) in &items {
            self.check_size(k, b.len())?;
        }
        match self.write(op, Work::Put(items)).await? {
            Done::Put(v) => Ok(v),
            Done::Unit => Err(StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                op,
                "writer answered a put with no outcome",
            )),
        }
    }
}

#[async_trait]
impl BlobStore for RedbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_put_if_absent: true,
            range_reads: false,
            list: true,
            delete: true,
            batch_put: true,
            max_blob_size: Some(MAX_BLOB_SIZE),
        }
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        let mut v = self
            .put_work("put_if_absent", vec![(key.clone(), bytes)])
            .await
            .map_err(|e| e.with_key(key))?;
        v.pop().ok_or_else(|| {
            StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                "put_if_absent",
                "no outcome",
            )
        })
    }

    /// All of `items` in one transaction (possibly shared with other concurrent writes).
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.put_work("put_many", items).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let k = key.clone();
        let found = self
            .read("get", move |txn| {
                let t = txn.open_table(BLOBS)?;
                Ok(t.get(k.as_str())?
                    .map(|v| Bytes::copy_from_slice(v.value())))
            })
            .await
            .map_err(|e| e.with_key(key))?;
        found.ok_or_else(|| StoreError::not_found(self.name.clone(), "get", key))
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let k = key.clone();
        let r = range.clone();
        let found = self
            .read("get_range", move |txn| {
                let t = txn.open_table(BLOBS)?;
                let Some(v) = t.get(k.as_str())? else {
                    return Ok(None);
                };
                let all = v.value();
                let len = all.len() as u64;
                if r.start > len || r.start > r.end {
                    return Ok(Some(Err(len)));
                }
                Ok(Some(Ok(Bytes::copy_from_slice(
                    &all[r.start as usize..r.end.min(len) as usize],
                ))))
            })
            .await
            .map_err(|e| e.with_key(key))?;
        match found {
            None => Err(StoreError::not_found(self.name.clone(), "get_range", key)),
            Some(Ok(b)) => Ok(b),
            Some(Err(len)) => Err(StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                "get_range",
                format!(
                    "range {}..{} outside blob of {len} bytes",
                    range.start, range.end
                ),
            )
            .with_key(key)),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        let k = key.clone();
        self.read("head", move |txn| {
            let t = txn.open_table(BLOB_SIZES)?;
            let size = t.get(k.as_str())?.map(|v| v.value());
            Ok(size.map(|size| BlobMeta { key: k, size }))
        })
        .await
        .map_err(|e| e.with_key(key))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.write("delete", Work::Delete(key.clone()))
            .await
            .map_err(|e| e.with_key(key))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let prefix = prefix.to_owned();
        self.read("list", move |txn| {
            let t = txn.open_table(BLOB_SIZES)?;
            let mut out = Vec::new();
            for item in t.range(prefix.as_str()..)? {
                let (k, v) = item?;
                let k = k.value();
                if !k.starts_with(prefix.as_str()) {
                    break;
                }
                // Keys were validated on the way in; a stored key that no longer validates is skipped.
                if let Ok(key) = BlobKey::new(k) {
                    out.push(BlobMeta {
                        key,
                        size: v.value(),
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}
