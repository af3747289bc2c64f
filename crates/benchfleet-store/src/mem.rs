//! In-memory [`BlobStore`] and [`Catalog`]: reference implementations for tests, examples and
//! benchmarks of the logic built on the traits (tiering, migration, caching). Nothing is durable.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_model::{Digest, RunId, RunInfo};

use crate::alerts::{Alert, AlertCatalog, AlertFilter, TriageUpdate, alert_order};
use crate::{
    BlobKey, BlobMeta, BlobStore, Capability, Catalog, ErrorKind, PutOutcome, RecordEntry,
    RecordQuery, Result, RunFilter, StoreError,
};

/// Blobs in a `BTreeMap` behind a mutex.
#[derive(Debug, Default)]
pub struct MemBlobStore {
    blobs: Mutex<BTreeMap<BlobKey, Bytes>>,
}

impl MemBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace a stored blob's bytes in place (tests: simulate bit rot).
    pub fn overwrite(&self, key: &BlobKey, bytes: Bytes) -> bool {
        let mut blobs = lock(&self.blobs);
        match blobs.get_mut(key) {
            Some(b) => {
                *b = bytes;
                true
            }
            None => false,
        }
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<BlobKey> {
        lock(&self.blobs).keys().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl BlobStore for MemBlobStore {
    fn name(&self) -> &str {
        "mem"
    }

    fn capability(&self) -> Capability {
        Capability::FULL
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        let mut blobs = lock(&self.blobs);
        if blobs.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        blobs.insert(key.clone(), bytes);
        Ok(PutOutcome::Created)
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        lock(&self.blobs)
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::not_found("mem", "get", key))
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        Ok(lock(&self.blobs).get(key).map(|b| BlobMeta {
            key: key.clone(),
            size: b.len() as u64,
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        lock(&self.blobs).remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        Ok(lock(&self.blobs)
            .iter()
            .filter(|(k, _)| k.has_prefix(prefix))
            .map(|(k, b)| BlobMeta {
                key: k.clone(),
                size: b.len() as u64,
            })
            .collect())
    }
}

/// Runs and record entries in memory. Record entries are keyed by digest.
#[derive(Debug, Default)]
pub struct MemCatalog {
    inner: Mutex<MemCatalogInner>,
}

#[derive(Debug, Default)]
struct MemCatalogInner {
    runs: BTreeMap<RunId, RunInfo>,
    records: BTreeMap<Digest, RecordEntry>,
    alerts: BTreeMap<String, Alert>,
}

impl MemCatalog {
    pub fn new() -> Self {
        Self::default()
    }
}

fn record_order(a: &RecordEntry, b: &RecordEntry) -> std::cmp::Ordering {
    (a.started_at, &a.run_id, &a.name, a.iteration, a.digest).cmp(&(
        b.started_at,
        &b.run_id,
        &b.name,
        b.iteration,
        b.digest,
    ))
}

#[async_trait]
impl Catalog for MemCatalog {
    fn name(&self) -> &str {
        "mem"
    }

    async fn put_run(&self, run: &RunInfo) -> Result<()> {
        lock(&self.inner)
            .runs
            .insert(run.run_id.clone(), run.clone());
        Ok(())
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunInfo>> {
        Ok(lock(&self.inner).runs.get(id).cloned())
    }

    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        let inner = lock(&self.inner);
        Ok(inner
            .runs
            .values()
            .rev()
            .filter(|r| filter.matches(r))
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn insert_records(&self, entries: &[RecordEntry]) -> Result<()> {
        let mut inner = lock(&self.inner);
        for e in entries {
            inner.records.entry(e.digest).or_insert_with(|| e.clone());
        }
        Ok(())
    }

    async fn query_records(&self, query: &RecordQuery) -> Result<Vec<RecordEntry>> {
        let inner = lock(&self.inner);
        let mut out: Vec<RecordEntry> = inner
            .records
            .values()
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        out.sort_by(record_order);
        out.truncate(query.limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        let mut inner = lock(&self.inner);
        if let Some(missing) = entries
            .iter()
            .find(|e| !inner.records.contains_key(&e.digest))
        {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                "mem",
                "move_records",
                "no catalog entry with this digest; nothing was moved",
            )
            .with_key(missing.digest));
        }
        for e in entries {
            if let Some(row) = inner.records.get_mut(&e.digest) {
                row.tier = e.tier;
                row.location.clone_from(&e.location);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AlertCatalog for MemCatalog {
    async fn put_alerts(&self, alerts: &[Alert]) -> Result<usize> {
        let mut inner = lock(&self.inner);
        let mut new = 0;
        for a in alerts {
            if !inner.alerts.contains_key(&a.id) {
                inner.alerts.insert(a.id.clone(), a.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn get_alert(&self, id: &str) -> Result<Option<Alert>> {
        Ok(lock(&self.inner).alerts.get(id).cloned())
    }

    async fn find_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let inner = lock(&self.inner);
        let mut out: Vec<Alert> = inner
            .alerts
            .values()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect();
        out.sort_by(alert_order);
        out.truncate(filter.limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn triage_alerts(&self, ids: &[String], update: &TriageUpdate) -> Result<Vec<Alert>> {
        let mut inner = lock(&self.inner);
        if let Some(missing) = ids.iter().find(|id| !inner.alerts.contains_key(*id)) {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                "mem",
                "triage_alerts",
                "no alert with this id; nothing was changed",
            )
            .with_key(missing));
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let a = inner.alerts.get_mut(id)?;
                a.triage(update);
                Some(a.clone())
            })
            .collect())
    }
}
