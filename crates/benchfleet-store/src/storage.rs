use std::sync::Arc;

use bytes::Bytes;

use benchfleet_model::{RunId, RunRecord};

use crate::{
    BlobStore, Catalog, ErrorKind, RecordEntry, RecordQuery, Result, StoreError, Tier, content,
};

/// Namespace of hot, uncompressed records in the blob store.
pub const RECORDS_NS: &str = "records";

/// A catalog and a blob store, composed: what the runner writes results into and reads them from.
#[derive(Clone, Debug)]
pub struct Storage {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Arc<dyn BlobStore>,
}

impl Storage {
    pub fn new(catalog: Arc<dyn Catalog>, blobs: Arc<dyn BlobStore>) -> Self {
        Storage { catalog, blobs }
    }

    /// Store a batch of records in the hot tier: bytes first (one batch), then their catalog
    /// entries (one transaction). A crash between the two leaves only unreferenced blobs, which
    /// are harmless and collected by `tier gc`; nothing is ever referenced before it is durable.
    pub async fn write_records(&self, records: &[RunRecord]) -> Result<Vec<RecordEntry>> {
        let mut items = Vec::with_capacity(records.len());
        let mut entries = Vec::with_capacity(records.len());
        for r in records {
            let bytes = r.canonical_bytes();
            let digest = benchfleet_model::Digest::of(&bytes);
            let key = content::key_for(RECORDS_NS, &digest);
            entries.push(RecordEntry {
                digest,
                run_id: r.run_id.clone(),
                suite: r.suite.clone(),
                name: r.name.clone(),
                kind: r.kind,
                iteration: r.iteration,
                started_at: r.started_at,
                measurement: r.measurement,
                outcome: r.outcome.clone(),
                size: bytes.len() as u64,
                tier: Tier::Hot,
                location: key.to_string(),
            });
            items.push((key, Bytes::from(bytes)));
        }
        self.blobs.put_many(items).await?;
        self.catalog.insert_records(&entries).await?;
        Ok(entries)
    }

    /// Read one record back, verified against its digest.
    pub async fn read_record(&self, entry: &RecordEntry) -> Result<RunRecord> {
        let bytes = match entry.tier {
            Tier::Hot => content::get(&*self.blobs, RECORDS_NS, &entry.digest).await?,
            other => {
                return Err(StoreError::new(
                    ErrorKind::Unsupported,
                    self.blobs.name(),
                    "read record",
                    format!("record is in the {other} tier, which this storage has not configured"),
                )
                .with_key(entry.digest));
            }
        };
        RunRecord::from_canonical_bytes(&bytes).map_err(|e| {
            StoreError::new(
                ErrorKind::Decode,
                self.blobs.name(),
                "decode record",
                e.to_string(),
            )
            .with_key(entry.digest)
        })
    }

    /// Every record of a run, in catalog order.
    pub async fn read_run(&self, id: &RunId) -> Result<Vec<RunRecord>> {
        let entries = self.catalog.query_records(&RecordQuery::run(id)).await?;
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            out.push(self.read_record(e).await?);
        }
        Ok(out)
    }
}
