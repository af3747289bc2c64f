//! The single writer thread: drains queued jobs and applies them in one write transaction.

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use benchfleet_model::RunInfo;
use benchfleet_store::{BlobKey, PutOutcome, RecordEntry, Result};

use crate::{
    BLOBS, INLINE_READ_MAX, LARGE_BLOBS, LARGE_SIZES, RECORD_DIGESTS, RECORDS, RECORDS_BY_NAME,
    RECORDS_BY_RUN, RECORDS_BY_SUITE, RUNS, RUNS_BY_SUITE, RecKey, RedbOptions, map_err,
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
    InsertRecords(Vec<(RecordEntry, Vec<u8>)>),
    /// New JSON for existing record rows (tier and location changed), found by digest.
    MoveRecords(Vec<(RecordEntry, Vec<u8>)>),
    /// Several works applied in order in the same transaction: all or none of them.
    All(Vec<Work>),
}

impl Work {
    fn bytes(&self) -> usize {
        match self {
            Work::Put(items) => items.iter().map(|(_, b)| b.len()).sum(),
            Work::InsertRecords(items) | Work::MoveRecords(items) => {
                items.iter().map(|(_, j)| j.len()).sum()
            }
            Work::PutRun { json, .. } => json.len(),
            Work::Delete(_) | Work::DeleteMany(_) => 0,
            Work::All(works) => works.iter().map(Work::bytes).sum(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Done {
    Put(Vec<PutOutcome>),
    Unit,
}

#[derive(Debug)]
pub(crate) struct Job {
    pub work: Work,
    pub reply: oneshot::Sender<Result<Done>>,
}

/// The writer loop; returns when every sender is gone and the queue is empty.
pub(crate) fn run(
    db: &Database,
    name: &str,
    options: RedbOptions,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.work.bytes();
        batch.push(first);
        while batch.len() < options.max_batch_jobs && bytes < options.max_batch_bytes {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.work.bytes();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit(db, name, options, &mut batch);
    }
}

/// Apply `batch` in one transaction and answer every job. If the transaction fails and there
/// was more than one job, retry each alone so one bad job cannot fail its neighbours.
fn commit(db: &Database, name: &str, options: RedbOptions, batch: &mut Vec<Job>) {
    match apply(db, options, batch.iter().map(|j| &j.work)) {
        Ok(results) => {
            for (job, done) in batch.drain(..).zip(results) {
                let _ = job.reply.send(Ok(done));
            }
        }
        Err(_) if batch.len() > 1 => {
            for job in batch.drain(..) {
                let res = apply(db, options, std::iter::once(&job.work))
                    .map(|mut v| v.pop().unwrap_or(Done::Unit))
                    .map_err(|e| map_err(name, "write", e));
                let _ = job.reply.send(res);
            }
        }
        Err(e) => {
            let err = map_err(name, "write", e);
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(clone_err(&err)));
            }
        }
    }
}

fn clone_err(e: &benchfleet_store::StoreError) -> benchfleet_store::StoreError {
    let mut c =
        benchfleet_store::StoreError::new(e.kind, e.backend.clone(), e.op, e.message.clone());
    c.key = e.key.clone();
    c
}

fn apply<'a>(
    db: &Database,
    options: RedbOptions,
    works: impl Iterator<Item = &'a Work>,
) -> Result<Vec<Done>, redb::Error> {
    let mut txn = db.begin_write()?;
    if !options.fsync {
        txn.set_durability(Durability::None)?;
    }
    let mut out = Vec::new();
    for w in works {
        out.push(apply_one(&txn, w)?);
    }
    txn.commit()?;
    Ok(out)
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

fn apply_one(txn: &WriteTransaction, work: &Work) -> Result<Done, redb::Error> {
    match work {
        Work::All(works) => {
            for w in works {
                apply_one(txn, w)?;
            }
            Ok(Done::Unit)
        }
        Work::Put(items) => Ok(Done::Put(put_blobs(txn, items)?)),
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
            let mut records = txn.open_table(RECORDS)?;
            let mut digests = txn.open_table(RECORD_DIGESTS)?;
            let mut by_run = txn.open_table(RECORDS_BY_RUN)?;
            let mut by_suite = txn.open_table(RECORDS_BY_SUITE)?;
            let mut by_name = txn.open_table(RECORDS_BY_NAME)?;
            for (e, json) in entries {
                let d = *e.digest.as_bytes();
                if digests.get(d)?.is_some() {
                    continue; // idempotent: the first insert of a digest wins
                }
                let (t, run, name, it) = (
                    e.started_at.0,
                    e.run_id.as_str(),
                    e.name.as_str(),
                    e.iteration,
                );
                let pk: RecKey = (t, run, name, it, d);
                records.insert(pk, json.as_slice())?;
                digests.insert(d, pk)?;
                by_run.insert((run, t, run, name, it, d), ())?;
                by_suite.insert((e.suite.as_str(), t, run, name, it, d), ())?;
                by_name.insert((name, t, run, name, it, d), ())?;
            }
            Ok(Done::Unit)
        }
        Work::MoveRecords(entries) => {
            // Only the row's value changes (tier, location); keys and indexes stay. Presence was
            // checked before queueing and rows are never deleted.
            let mut records = txn.open_table(RECORDS)?;
            let digests = txn.open_table(RECORD_DIGESTS)?;
            for (e, json) in entries {
                let pk = digests.get(*e.digest.as_bytes())?.map(|v| {
                    let (t, run, name, it, d) = v.value();
                    (t, run.to_owned(), name.to_owned(), it, d)
                });
                if let Some((t, run, name, it, d)) = pk {
                    records.insert((t, run.as_str(), name.as_str(), it, d), json.as_slice())?;
                }
            }
            Ok(Done::Unit)
        }
    }
}
