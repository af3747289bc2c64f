//! Batched writes: many small `write` calls become one blob batch and one catalog transaction.
//!
//! A background task collects records until the batch reaches `max_records` or `max_bytes`, or
//! `max_delay` has passed since its first record, then writes them with
//! [`Storage::write_records`] (one `put_many`, one `insert_records`). Each caller's future
//! resolves once its records are durable.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use benchfleet_model::RunRecord;

use crate::{ErrorKind, RecordEntry, Result, Storage, StoreError};

/// When a batch is flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_records: usize,
    pub max_bytes: usize,
    pub max_delay: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_records: 512,
            max_bytes: 4 * 1024 * 1024,
            max_delay: Duration::from_millis(20),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<RecordEntry>>>;

/// Handle to the batching task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub struct BatchWriter {
    tx: mpsc::Sender<(Vec<RunRecord>, Reply)>,
}

/// Counts of what the task wrote, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub batches: u64,
    pub records: u64,
}

impl BatchWriter {
    /// Start the batching task on the current tokio runtime.
    pub fn spawn(
        storage: Storage,
        policy: BatchPolicy,
    ) -> (Self, tokio::task::JoinHandle<BatchStats>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(storage, policy, rx));
        (BatchWriter { tx }, task)
    }

    /// Store `records` (hot tier); resolves when the batch holding them is durable.
    pub async fn write(&self, records: Vec<RunRecord>) -> Result<Vec<RecordEntry>> {
        let (reply, rx) = oneshot::channel();
        let gone = || {
            StoreError::new(
                ErrorKind::Other,
                "batch writer",
                "write",
                "the batching task has stopped",
            )
        };
        self.tx.send((records, reply)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(
    storage: Storage,
    policy: BatchPolicy,
    mut rx: mpsc::Receiver<(Vec<RunRecord>, Reply)>,
) -> BatchStats {
    let mut stats = BatchStats::default();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + policy.max_delay;
        let mut bytes = approx_bytes(&first.0);
        let mut count = first.0.len();
        let mut pending = vec![first];
        while count < policy.max_records && bytes < policy.max_bytes {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => {
                    count += next.0.len();
                    bytes += approx_bytes(&next.0);
                    pending.push(next);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let all: Vec<RunRecord> = pending
            .iter()
            .flat_map(|(r, _)| r.iter().cloned())
            .collect();
        let result = storage.write_records(&all).await;
        stats.batches += 1;
        stats.records += all.len() as u64;
        match result {
            Ok(entries) => {
                let mut it = entries.into_iter();
                for (records, reply) in pending {
                    let mine: Vec<RecordEntry> = it.by_ref().take(records.len()).collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                for (_, reply) in pending {
                    let copy = StoreError::new(e.kind, e.backend.clone(), e.op, e.message.clone());
                    let copy = match &e.key {
                        Some(k) => copy.with_key(k),
                        None => copy,
                    };
                    let _ = reply.send(Err(copy));
                }
            }
        }
    }
    stats
}

/// Records are ~1 KB of JSON; the estimate only decides when to flush.
fn approx_bytes(records: &[RunRecord]) -> usize {
    records
        .iter()
        .map(|r| 512 + r.command.len() + r.stderr_tail.as_ref().map_or(0, String::len))
        .sum()
}
