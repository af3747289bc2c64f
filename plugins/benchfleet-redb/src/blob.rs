//! [`BlobStore`] over the `blobs` / `blob_sizes` tables.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

use crate::writer::{Done, Work};
use crate::{BLOBS, Error, LARGE_BLOBS, LARGE_SIZES, MAX_BLOB_SIZE, RedbStore};

impl RedbStore {
    pub(crate) fn check_size(&self, key: &BlobKey, len: usize) -> Result<()> {
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
            Done::Unit | Done::Compacted { .. } => Err(StoreError::new(
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
        // Small blobs (records are ~1 KiB) are read right here; large ones on the blocking pool.
        let small = self
            .read_now("get", |txn| {
                if let Some(v) = txn.open_table(BLOBS)?.get(key.as_str())? {
                    return Ok(Some(Some(Bytes::copy_from_slice(v.value()))));
                }
                let large = txn.open_table(LARGE_SIZES)?.get(key.as_str())?.is_some();
                Ok(if large { None } else { Some(None) })
            })
            .map_err(|e| e.with_key(key))?;
        let found = match small {
            Some(found) => found,
            None => {
                let k = key.clone();
                self.read("get", move |txn| {
                    let t = txn.open_table(LARGE_BLOBS)?;
                    Ok(t.get(k.as_str())?
                        .map(|v| Bytes::copy_from_slice(v.value())))
                })
                .await
                .map_err(|e| e.with_key(key))?
            }
        };
        found.ok_or_else(|| StoreError::not_found(self.name.clone(), "get", key))
    }

    /// One read snapshot for all of them: in place on a multi-thread runtime
    /// (`block_in_place`, no hand-off and no copy of the keys), on the blocking pool otherwise.
    async fn get_many(&self, keys: &[BlobKey]) -> Result<Vec<Bytes>> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if keys.len() <= 1 {
            return match keys.first() {
                Some(k) => Ok(vec![self.get(k).await?]),
                None => Ok(Vec::new()),
            };
        }
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    self.read_now("get_many", |txn| read_all(txn, &self.name, keys))
                })
            }
            _ => {
                let (owned, name) = (keys.to_vec(), self.name.clone());
                self.read("get_many", move |txn| read_all(txn, &name, &owned))
                    .await
            }
        }
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let k = key.clone();
        let r = range.clone();
        let found = self
            .read("get_range", move |txn| {
                for table in [BLOBS, LARGE_BLOBS] {
                    let t = txn.open_table(table)?;
                    let Some(v) = t.get(k.as_str())? else {
                        continue;
                    };
                    let all = v.value();
                    let len = all.len() as u64;
                    if r.start > len || r.start > r.end {
                        return Ok(Some(Err(len)));
                    }
                    let slice = &all[r.start as usize..r.end.min(len) as usize];
                    return Ok(Some(Ok(Bytes::copy_from_slice(slice))));
                }
                Ok(None)
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
        let size = self
            .read_now("head", |txn| {
                if let Some(v) = txn.open_table(BLOBS)?.get(key.as_str())? {
                    return Ok(Some(v.value().len() as u64));
                }
                Ok(txn
                    .open_table(LARGE_SIZES)?
                    .get(key.as_str())?
                    .map(|v| v.value()))
            })
            .map_err(|e| e.with_key(key))?;
        Ok(size.map(|size| BlobMeta {
            key: key.clone(),
            size,
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.write("delete", Work::Delete(key.clone()))
            .await
            .map_err(|e| e.with_key(key))?;
        Ok(())
    }

    /// One write transaction (one durable commit) for all of them.
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.write("delete_many", Work::DeleteMany(keys)).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let prefix = prefix.to_owned();
        self.read("list", move |txn| {
            let mut out = Vec::new();
            let mut push = |k: &str, size: u64| {
                // Keys were validated on the way in; one that no longer validates is skipped.
                if let Ok(key) = BlobKey::new(k) {
                    out.push(BlobMeta { key, size });
                }
            };
            for item in txn.open_table(BLOBS)?.range(prefix.as_str()..)? {
                let (k, v) = item?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                push(k.value(), v.value().len() as u64);
            }
            for item in txn.open_table(LARGE_SIZES)?.range(prefix.as_str()..)? {
                let (k, v) = item?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                push(k.value(), v.value());
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

/// Every key's bytes from one snapshot, in order; a missing key is `NotFound` naming it.
fn read_all(
    txn: &redb::ReadTransaction,
    name: &str,
    keys: &[BlobKey],
) -> std::result::Result<Vec<Bytes>, Error> {
    let small = txn.open_table(BLOBS)?;
    let mut large = None;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = small.get(k.as_str())? {
            out.push(Bytes::copy_from_slice(v.value()));
            continue;
        }
        let large = match &mut large {
            Some(t) => t,
            None => large.insert(txn.open_table(LARGE_BLOBS)?),
        };
        match large.get(k.as_str())? {
            Some(v) => out.push(Bytes::copy_from_slice(v.value())),
            None => {
                return Err(Error::Store(StoreError::not_found(name, "get_many", k)));
            }
        }
    }
    Ok(out)
}
