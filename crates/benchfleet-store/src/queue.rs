//! The fleet's work queue: a submitted suite's DAG, claimed node by node by workers on many
//! machines, with leases, attempts and fenced completion.
//!
//! The trait names no backend, like [`Catalog`](crate::Catalog). PostgreSQL implements it in the
//! postgres plugin (readiness resolved in the database, `FOR UPDATE SKIP LOCKED` claims, lease
//! expiry judged by the database clock); [`MemQueue`] is the reference implementation that unit
//! tests of the worker loop run against. The rules every implementation keeps:
//!
//! - A node is `waiting` until every node it needs has succeeded, then `ready`. Completing a node
//!   makes its children ready in the same transaction; a failure (after its retries) skips its
//!   dependents, transitively.
//! - A claim takes ready nodes of the worker's pools that fit its free capacity, highest priority
//!   first, and counts an attempt. A run's benchmark nodes are measured on one machine class: the
//!   first claimer pins the class, workers of other classes leave them.
//! - Completion is fenced by attempt: a completion from a worker whose claim was taken back
//!   (lease expired, worker presumed dead) is [`Completion::Refused`], and the records it brings
//!   are not inserted. Records of an accepted completion go into the catalog in the same
//!   transaction, so each node's records are stored exactly once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use benchfleet_model::{RunId, RunInfo, RunStatus};

use crate::{RecordEntry, Result};

/// A suite submitted to the fleet: its run row, its text (workers need no copy of the file) and
/// its DAG as the queue needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The catalog's run row (status `running`), inserted with the queue rows.
    pub run: RunInfo,
    /// The suite file's content and the path it was read from (for messages).
    pub suite_text: String,
    pub source: String,
    /// Keep running independent nodes after a failure (`false`: a failure cancels the rest).
    pub keep_going: bool,
    /// Nodes in suite order (a node's index is its position).
    pub nodes: Vec<QueuedNode>,
}

/// One node of a submitted DAG.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedNode {
    pub name: String,
    /// Which workers may run it (`worker --pool`).
    pub pool: String,
    /// Benchmarks are measured on the run's pinned machine class; jobs run anywhere.
    pub benchmark: bool,
    /// Declared resources (0: undeclared).
    pub cpus: f64,
    pub memory_bytes: u64,
    /// Indexes of the nodes it needs.
    pub needs: Vec<u32>,
    /// Claim order within the run, 0 first (critical path first). Across runs the node of
    /// lowest rank goes first, so several runs share the fleet.
    pub rank: u32,
    /// Attempts the node's retry policy allows for a failed command (1: no retry).
    pub max_attempts: u32,
}

/// A worker as registered with the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique per worker process (host, pid and a random suffix).
    pub id: String,
    pub host: String,
    pub machine_class: String,
    pub pools: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Its maximum concurrency.
    pub jobs: u32,
    /// The CPUs and memory it offers to nodes that declare resources.
    pub cpus: f64,
    pub memory_bytes: u64,
}

impl WorkerInfo {
    /// Whether a node declaring `cpus` and `memory_bytes` could ever run on this worker.
    pub fn fits(&self, cpus: f64, memory_bytes: u64) -> bool {
        cpus <= self.cpus && memory_bytes <= self.memory_bytes
    }
}

/// What a worker can take on now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    /// Free slots (nodes it may start now).
    pub slots: usize,
    /// Free CPUs and memory for nodes that declare resources.
    pub cpus: f64,
    pub memory_bytes: u64,
}

/// A node claimed by a worker. `attempt` fences its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub run_id: RunId,
    pub node: u32,
    pub attempt: u32,
    /// The resources it declares (held from the worker's capacity while it runs).
    pub cpus: f64,
    pub memory_bytes: u64,
}

/// How a claimed node ended on the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEnd {
    Succeeded,
    /// Its command failed: retried while the node's attempts allow, then its dependents skip.
    Failed {
        message: String,
    },
    /// Stopped by cancellation (`fleet cancel`) or a draining worker's grace running out.
    Cancelled,
}

/// One claimed node's end, as [`Queue::complete_many`] takes it.
#[derive(Clone, Copy, Debug)]
pub struct Finish<'a> {
    pub claim: &'a Claim,
    pub end: &'a NodeEnd,
    /// Its records' catalog entries (their bytes are already in the hot tier).
    pub records: &'a [RecordEntry],
}

/// The queue's answer to a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Stored. `run_finished`: this completion ended the run, with that status.
    Accepted { run_finished: Option<RunStatus> },
    /// The claim was taken back (lease expired, run cancelled): nothing was stored.
    Refused { reason: String },
}

/// State of a node in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Waiting,
    Ready,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Waiting => "waiting",
            QueueState::Ready => "ready",
            QueueState::Running => "running",
            QueueState::Succeeded => "succeeded",
            QueueState::Failed => "failed",
            QueueState::Skipped => "skipped",
            QueueState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<QueueState> {
        [
            QueueState::Waiting,
            QueueState::Ready,
            QueueState::Running,
            QueueState::Succeeded,
            QueueState::Failed,
            QueueState::Skipped,
            QueueState::Cancelled,
        ]
        .into_iter()
        .find(|q| q.as_str() == s)
    }

    /// Whether the node will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            QueueState::Waiting | QueueState::Ready | QueueState::Running
        )
    }
}

/// A submitted suite, as a worker needs it to run its nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedSuite {
    pub run: RunInfo,
    pub suite_text: String,
    pub source: String,
    pub keep_going: bool,
}

/// Progress of one submitted run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    pub run_id: String,
    pub suite: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// The machine class its benchmarks are pinned to, once the first was claimed.
    pub machine_class: Option<String>,
    pub nodes: u64,
    pub waiting: u64,
    pub ready: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub cancelled: u64,
    /// Why nodes failed or were skipped: (node name, message), at most 20.
    pub failures: Vec<(String, String)>,
}

impl RunProgress {
    pub fn is_finished(&self) -> bool {
        self.state != "running"
    }
}

/// A worker as `fleet status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    #[serde(flatten)]
    pub info: WorkerInfo,
    /// `live`, `draining`, `silent` (no heartbeat for longer than the lease) or `gone` (exited).
    pub state: String,
    pub running: u64,
    /// Seconds since its last heartbeat, by the queue's clock.
    pub heartbeat_age_secs: f64,
}

/// The queue of one pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub pool: String,
    pub ready: u64,
    pub running: u64,
    pub waiting: u64,
    /// Age of the oldest ready node, seconds.
    pub oldest_ready_secs: Option<f64>,
    /// Live workers serving the pool.
    pub workers: u64,
}

/// `fleet status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub workers: Vec<WorkerStatus>,
    pub pools: Vec<PoolStatus>,
    pub runs: Vec<RunProgress>,
}

/// Timing rules of leases, shared by every implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimes {
    /// A claim lapses when its worker has not heartbeaten for this long (a lost host).
    pub lease: Duration,
    /// A worker whose connection (and so its session lock) is gone and whose heartbeat is older
    /// than this is dead: its claims are taken back at once (SIGKILL, crash).
    pub dead_after: Duration,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        LeaseTimes {
            lease: Duration::from_secs(30),
            dead_after: Duration::from_millis(1000),
        }
    }
}

/// The fleet's queue. See the module documentation for the rules.
#[async_trait]
pub trait Queue: Send + Sync + fmt::Debug + 'static {
    /// Backend name for messages.
    fn name(&self) -> &str;

    /// Put a submitted suite in the queue (and its run row in the catalog): all or nothing.
    async fn submit(&self, submission: &Submission) -> Result<()>;

    /// Register a worker (or re-register after a reconnect) and take its liveness lock.
    async fn register(&self, worker: &WorkerInfo) -> Result<()>;

    /// Say the worker lives and extend its claims' leases. Returns the claims of it that must
    /// stop (their run was cancelled).
    async fn heartbeat(&self, worker: &str, draining: bool) -> Result<Vec<Claim>>;

    /// The worker exits: unregister it (its unfinished claims go back to ready).
    async fn deregister(&self, worker: &str) -> Result<()>;

    /// Claim ready nodes that fit `capacity`, in priority order.
    async fn claim(&self, worker: &WorkerInfo, capacity: Capacity) -> Result<Vec<Claim>>;

    /// Finish a claimed node, with its records' catalog entries (their bytes are already in the
    /// hot tier). Refused, and nothing stored, when the claim was taken back.
    async fn complete(
        &self,
        worker: &str,
        claim: &Claim,
        end: NodeEnd,
        records: &[RecordEntry],
    ) -> Result<Completion>;

    /// Finish several claimed nodes of this worker at once (a worker's group commit): each is
    /// fenced and decided exactly as [`complete`](Queue::complete) decides it, answered in the
    /// order given. Where the backend has transactions, all of them commit in one. A run ended
    /// by the batch is reported once, on the last of its accepted nodes.
    async fn complete_many(&self, worker: &str, items: &[Finish<'_>]) -> Result<Vec<Completion>> {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            out.push(
                self.complete(worker, f.claim, f.end.clone(), f.records)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The suite of a submitted run; `None` if unknown.
    async fn suite(&self, run: &RunId) -> Result<Option<QueuedSuite>>;

    /// Take back the claims of dead workers and lapsed leases, and end runs with nothing left
    /// to do. Returns the runs this call ended.
    async fn maintain(&self, times: LeaseTimes) -> Result<Vec<(RunId, RunStatus)>>;

    /// Whether anything of these pools is ready, claimed or waiting.
    async fn has_work(&self, pools: &[String]) -> Result<bool>;

    /// Stop a submitted run: nothing new starts, running claims are told at their next
    /// heartbeat, and the run ends `cancelled` (stored as interrupted). `false`: unknown run or
    /// already finished.
    async fn cancel(&self, run: &RunId) -> Result<bool>;

    /// One run's progress; `None` if it was never submitted.
    async fn progress(&self, run: &RunId) -> Result<Option<RunProgress>>;

    /// Workers, pools and runs in progress. Workers silent for longer than `times.lease` are
    /// shown `silent`.
    async fn status(&self, times: LeaseTimes) -> Result<FleetStatus>;

    /// Wait until work may have become ready (a notification), at most `timeout`.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}

mod mem;
pub use mem::{MemQueue, worker_state};
