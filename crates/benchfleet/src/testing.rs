//! Test doubles shared by the facade's unit tests: in-memory storage, and storage whose record
//! writes fail (a full disk, a lost connection) while its catalog works.

use std::sync::Arc;

use async_trait::async_trait;
use benchfleet_model::RunInfo;
use benchfleet_store::mem::{MemBlobStore, MemCatalog};
use benchfleet_store::{BlobKey, BlobMeta, BlobStore, Capability, PutOutcome};
use benchfleet_store::{ErrorKind, RunFilter, Storage, StoreError};

/// A blob store whose puts of records fail; everything else is [`MemBlobStore`].
#[derive(Debug, Default)]
pub(crate) struct FailingRecords(MemBlobStore);

fn injected(key: &BlobKey) -> StoreError {
    StoreError::new(
        ErrorKind::Other,
        "failing",
        "put",
        format!("injected failure for {key}"),
    )
}

fn is_record(key: &BlobKey) -> bool {
    key.as_str().starts_with(benchfleet_store::RECORDS_NS)
}

#[async_trait]
impl BlobStore for FailingRecords {
    fn name(&self) -> &str {
        "failing"
    }
    fn capability(&self) -> Capability {
        self.0.capability()
    }
    async fn put_if_absent(
        &self,
        key: &BlobKey,
        bytes: bytes::Bytes,
    ) -> Result<PutOutcome, StoreError> {
        if is_record(key) {
            return Err(injected(key));
        }
        self.0.put_if_absent(key, bytes).await
    }
    async fn put_many(
        &self,
        items: Vec<(BlobKey, bytes::Bytes)>,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        if let Some((k, _)) = items.iter().find(|(k, _)| is_record(k)) {
            return Err(injected(k));
        }
        self.0.put_many(items).await
    }
    async fn get(&self, key: &BlobKey) -> Result<bytes::Bytes, StoreError> {
        self.0.get(key).await
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, StoreError> {
        self.0.head(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, StoreError> {
        self.0.list(prefix).await
    }
}

/// Storage in memory.
pub(crate) fn mem_storage() -> Storage {
    Storage::new(Arc::new(MemCatalog::new()), Arc::new(MemBlobStore::new()))
}

/// Storage whose record writes fail.
pub(crate) fn failing_storage() -> Storage {
    Storage::new(
        Arc::new(MemCatalog::new()),
        Arc::new(FailingRecords::default()),
    )
}

/// Every run in the catalog with its status.
pub(crate) async fn runs(storage: &Storage) -> Vec<RunInfo> {
    storage
        .catalog
        .find_runs(&RunFilter::default())
        .await
        .unwrap()
}
