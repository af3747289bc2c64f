//! The single writer thread: drains queued jobs and applies them in one write transaction.

use bytes::Bytes;
use redb::{Durability, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use benchfleet_model::RunInfo;
use benchfleet_store::{BlobKey, PutOutcome, RecordEntry, Result, StoreError};

use crate::chunks::{Runs, WriteError};
use crate::share::Slot;
use crate::{
    BLOBS, INLINE_READ_MAX, LARGE_BLOBS, LARGE_SIZES, RUNS, RUNS_BY_SUITE, RedbOptions, map_err,
};

/// One write, as queued by an async caller. JSON is encoded by the caller, off this thread.
#[derive(Debug)]
pub(crate) enum Work {
    Put(Vec<(BlobKey, Bytes)>),
    Delete(BlobKey),
    DeleteMany(Vec<BlobKey>),
    PutRun {
        id: String,
        suite: String,
        json: Vec<u8>,
    },
    InsertRecords(Vec<RecordEntry>),
    /// Existing entries (found by digest) replaced by these: tier and location changed.
    MoveRecords(Vec<RecordEntry>),
    /// Alerts stored unless their id is (answered with `Done::Put`).
    PutAlerts(Vec<benchfleet_store::Alert>),
    /// A triage decision applied to every alert of `ids`, or to none.
    TriageAlerts {
        ids: Vec<String>,
        update: benchfleet_store::TriageUpdate,
    },
    /// Several works applied in order in the same transaction: all or none of them.
    All(Vec<Work>),
    /// Give free pages back to the file system if that pays off (not a transaction: it runs
    /// alone, between them).
    Compact,
}

impl Work {
    fn bytes(&self) -> usize {
        match self {
            Work::Put(items) => items.iter().map(|(_, b)| b.len()).sum(),
            Work::InsertRecords(items) | Work::MoveRecords(items) => items.len() * 128,
            Work::PutRun { json, .. } => json.len(),
            Work::PutAlerts(items) => items.len() * 512,
            Work::Delete(_) | Work::DeleteMany(_) | Work::Compact | Work::TriageAlerts { .. } => 0,
            Work::All(works) => works.iter().map(Work::bytes).sum(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Done {
    Put(Vec<PutOutcome>),
    Unit,
    /// File bytes before and after a compaction (equal when it did not pay off).
    Compacted {
        before: u64,
        after: u64,
    },
}

#[derive(Debug)]
pub(crate) struct Job {
    pub work: Work,
    pub reply: oneshot::Sender<Result<Done>>,
}

/// The writer loop; returns when every sender is gone and the queue is empty.
pub(crate) fn run(
    db: &Slot,
    path: &std::path::Path,
    name: &str,
    options: RedbOptions,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut runs = Runs::default();
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        if matches!(first.work, Work::Compact) {
            let _ = first.reply.send(compact(db, path, name));
            continue;
        }
        let mut bytes = first.work.bytes();
        batch.push(first);
        let mut compact_job = None;
        while batch.len() < options.max_batch_jobs && bytes < options.max_batch_bytes {
            match rx.try_recv() {
                Ok(job) if matches!(job.work, Work::Compact) => {
                    compact_job = Some(job);
                    break;
                }
                Ok(job) => {
                    bytes += job.work.bytes();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit(db, name, options, &mut runs, &mut batch);
        if let Some(job) = compact_job {
            let _ = job.reply.send(compact(db, path, name));
        }
    }
}

/// A write error in store terms.
fn store_err(name: &str, e: WriteError) -> StoreError {
    match e {
        WriteError::Db(e) => map_err(name, "write", e),
        WriteError::Store(mut e) => {
            e.backend = name.to_owned();
            e
        }
    }
}

/// Apply `batch` in one transaction and answer every job. If the transaction fails and there
/// was more than one job, retry each alone so one bad job cannot fail its neighbours.
fn commit(db: &Slot, name: &str, options: RedbOptions, runs: &mut Runs, batch: &mut Vec<Job>) {
    match apply(db, options, runs, batch.iter().map(|j| &j.work)) {
        Ok(results) => {
            for (job, done) in batch.drain(..).zip(results) {
                let _ = job.reply.send(Ok(done));
            }
        }
        Err(_) if batch.len() > 1 => {
            for job in batch.drain(..) {
                let res = apply(db, options, runs, std::iter::once(&job.work))
                    .map(|mut v| v.pop().unwrap_or(Done::Unit))
                    .map_err(|e| store_err(name, e));
                let _ = job.reply.send(res);
            }
        }
        Err(e) => {
            let err = store_err(name, e);
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(clone_err(&err)));
            }
        }
    }
}

/// Compact the database when at least a quarter of the file (and 1 MiB) is free pages.
/// A reader holding a snapshot makes redb refuse; then this waits a little and tries again,
/// and leaves the file as it is if the readers do not go away.
fn compact(db: &Slot, path: &std::path::Path, name: &str) -> Result<Done> {
    let file_len = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let before = file_len();
    let used = (|| -> Result<u64, redb::Error> {
        let db = db.get().map_err(crate::redb_err)?;
        let txn = db.begin_write()?;
        let stats = txn.stats()?;
        let used = stats.allocated_pages() * stats.page_size() as u64;
        txn.abort()?;
        Ok(used)
    })()
    .map_err(|e| map_err(name, "compact", e))?;
    let free = before.saturating_sub(used);
    if free < (1 << 20) || free * 4 < before {
        return Ok(Done::Compacted {
            before,
            after: before,
        });
    }
    for attempt in 0..50 {
        let mut guard = db.get_mut()?;
        let res = (|| {
            let db = guard.as_mut().expect("get_mut opens the database");
            while db.compact()? {}
            Ok::<_, redb::CompactionError>(())
        })();
        drop(guard);
        match res {
            Ok(()) => break,
            Err(redb::CompactionError::TransactionInProgress) if attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(redb::CompactionError::TransactionInProgress) => break,
            Err(e) => return Err(map_err(name, "compact", e)),
        }
    }
    Ok(Done::Compacted {
        before,
        after: file_len(),
    })
}

fn clone_err(e: &benchfleet_store::StoreError) -> benchfleet_store::StoreError {
    let mut c =
        benchfleet_store::StoreError::new(e.kind, e.backend.clone(), e.op, e.message.clone());
    c.key = e.key.clone();
    c
}

fn apply<'a>(
    db: &Slot,
    options: RedbOptions,
    runs: &mut Runs,
    works: impl Iterator<Item = &'a Work>,
) -> Result<Vec<Done>, WriteError> {
    let res = (|| {
        // Held until the commit: the database is not handed over with a transaction open.
        let db = db.get().map_err(WriteError::Store)?;
        let mut txn = db.begin_write()?;
        if !options.fsync {
            txn.set_durability(Durability::None)?;
        }
        let mut out = Vec::new();
        for w in works {
            out.push(apply_one(&txn, runs, w)?);
        }
        txn.commit()?;
        Ok(out)
    })();
    if res.is_err() {
        // The transaction did not commit: what `runs` learnt from it is not true.
        runs.clear();
    }
    res
}

/// Remove blobs (small and large) under `keys`; absent keys are skipped.
fn delete_blobs(txn: &WriteTransaction, keys: &[BlobKey]) -> Result<(), redb::Error> {
    let mut blobs = txn.open_table(BLOBS)?;
    let mut large = txn.open_table(LARGE_BLOBS)?;
    let mut sizes = txn.open_table(LARGE_SIZES)?;
    for k in keys {
        // A key is either a small blob or a large one (put_blobs checks both), so a small one
        // found here has nothing in the large tables.
        if blobs.remove(k.as_str())?.is_none() {
            large.remove(k.as_str())?;
            sizes.remove(k.as_str())?;
        }
    }
    Ok(())
}

/// Write blobs under keys that are absent (small and large blobs share one key space).
pub(crate) fn put_blobs(
    txn: &WriteTransaction,
    items: &[(BlobKey, Bytes)],
) -> Result<Vec<PutOutcome>, redb::Error> {
    let mut blobs = txn.open_table(BLOBS)?;
    let mut sizes = txn.open_table(LARGE_SIZES)?;
    let mut large = None;
    let mut out = Vec::with_capacity(items.len());
    for (k, b) in items {
        let k = k.as_str();
        if blobs.get(k)?.is_some() || sizes.get(k)?.is_some() {
            out.push(PutOutcome::AlreadyExists);
            continue;
        }
        if b.len() as u64 <= INLINE_READ_MAX {
            blobs.insert(k, b.as_ref())?;
        } else {
            let large = match &mut large {
                Some(t) => t,
                None => large.insert(txn.open_table(LARGE_BLOBS)?),
            };
            large.insert(k, b.as_ref())?;
            sizes.insert(k, b.len() as u64)?;
        }
        out.push(PutOutcome::Created);
    }
    Ok(out)
}

fn apply_one(txn: &WriteTransaction, runs: &mut Runs, work: &Work) -> Result<Done, WriteError> {
    match work {
        Work::All(works) => {
            for w in works {
                apply_one(txn, runs, w)?;
            }
            Ok(Done::Unit)
        }
        Work::Compact => Ok(Done::Unit),
        Work::Put(items) => Ok(Done::Put(put_blobs(txn, items)?)),
        Work::PutAlerts(alerts) => put_alerts(txn, alerts),
        Work::TriageAlerts { ids, update } => triage_alerts(txn, ids, update),
        Work::Delete(k) => {
            delete_blobs(txn, std::slice::from_ref(k))?;
            Ok(Done::Unit)
        }
        Work::DeleteMany(keys) => {
            delete_blobs(txn, keys)?;
            Ok(Done::Unit)
        }
        Work::PutRun { id, suite, json } => {
            let mut runs = txn.open_table(RUNS)?;
            let old_suite = runs
                .insert(id.as_str(), json.as_slice())?
                .and_then(|old| serde_json::from_slice::<RunInfo>(old.value()).ok())
                .map(|r| r.suite);
            let mut by_suite = txn.open_table(RUNS_BY_SUITE)?;
            if let Some(old) = old_suite.filter(|s| s != suite) {
                by_suite.remove((old.as_str(), id.as_str()))?;
            }
            by_suite.insert((suite.as_str(), id.as_str()), ())?;
            Ok(Done::Unit)
        }
        Work::InsertRecords(entries) => {
            runs.insert(txn, entries)?;
            Ok(Done::Unit)
        }
        Work::MoveRecords(entries) => {
            runs.relocate(txn, entries)?;
            Ok(Done::Unit)
        }
    }
}

fn encode_alert(a: &benchfleet_store::Alert) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec(a).map_err(|e| {
        WriteError::Store(
            StoreError::new(
                benchfleet_store::ErrorKind::Other,
                "redb",
                "encode",
                e.to_string(),
            )
            .with_key(&a.id),
        )
    })
}

/// The writer's part of [`Work::PutAlerts`]: insert the absent ones.
fn put_alerts(
    txn: &WriteTransaction,
    alerts: &[benchfleet_store::Alert],
) -> Result<Done, WriteError> {
    let mut table = txn.open_table(crate::ALERTS)?;
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        if table.get(a.id.as_str())?.is_some() {
            out.push(PutOutcome::AlreadyExists);
            continue;
        }
        table.insert(a.id.as_str(), encode_alert(a)?.as_slice())?;
        out.push(PutOutcome::Created);
    }
    Ok(Done::Put(out))
}

/// The writer's part of [`Work::TriageAlerts`]: all of `ids` or none.
fn triage_alerts(
    txn: &WriteTransaction,
    ids: &[String],
    update: &benchfleet_store::TriageUpdate,
) -> Result<Done, WriteError> {
    let mut table = txn.open_table(crate::ALERTS)?;
    for id in ids {
        let mut a: benchfleet_store::Alert = {
            let Some(v) = table.get(id.as_str())? else {
                return Err(WriteError::Store(
                    StoreError::new(
                        benchfleet_store::ErrorKind::NotFound,
                        "redb",
                        "triage_alerts",
                        "no alert with this id; nothing was changed",
                    )
                    .with_key(id),
                ));
            };
            serde_json::from_slice(v.value()).map_err(|e| {
                WriteError::Store(
                    StoreError::new(
                        benchfleet_store::ErrorKind::Decode,
                        "redb",
                        "triage_alerts",
                        format!("stored alert cannot be decoded ({e})"),
                    )
                    .with_key(id),
                )
            })?
        };
        a.triage(update);
        table.insert(id.as_str(), encode_alert(&a)?.as_slice())?;
    }
    Ok(Done::Unit)
}
