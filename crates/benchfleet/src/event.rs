//! The one closed event enum of a stored run (suites and the nodes and load profiles inside
//! them, `bench` and `load`), its typed warnings, and the one user-facing cancellation type.
//!
//! Progress displays and Prometheus (the `prom` module) only consume these events; the drivers
//! (`runner`, `bench`, `load`) produce them. A `bench` run's nodes are its commands (in command
//! order), a `load` run has one node, the load.
//!
//! **Architecture invariant:** a lower module: it imports no driver and no consumer.

use std::time::Duration;

use benchfleet_model::{NodeKind, RunId, RunRecord};
use benchfleet_sched::NodeState;

use crate::exec::{SHELL_SHORT_MEAN, TAG_MEMORY_LIMIT};

/// The one cancellation type users hold (Ctrl-C, a server stopping a run). It is the
/// scheduler's token; measuring code that needs a synchronous kill flag converts it at the edge
/// with [`kill_on_cancel`].
pub use benchfleet_sched::CancelToken;

/// Fire `kill` (running processes get `grace`, then are killed) once `cancel` is cancelled.
/// The returned task ends then; abort it when the work is over.
pub fn kill_on_cancel(
    cancel: &CancelToken,
    kill: &benchfleet_metrics::Kill,
    grace: Duration,
) -> tokio::task::JoinHandle<()> {
    let (cancel, kill) = (cancel.clone(), kill.clone());
    tokio::spawn(async move {
        cancel.cancelled().await;
        kill.kill(grace);
    })
}

/// What happens while a run goes on, in order, for progress displays, metrics and library users.
#[derive(Clone, Debug, PartialEq)]
pub enum RunnerEvent {
    /// The run was registered in the catalog.
    Started { run_id: RunId, nodes: usize },
    NodeStarted {
        node: usize,
        name: String,
        kind: NodeKind,
    },
    /// A measured process run is about to start (warmups and hooks are not reported); its
    /// `Measured` follows when it ends. The runs of a load node overlap.
    RunStarted { node: usize, iteration: u32 },
    /// One measured run finished (warmups are not reported). `planned` is 0 for a load node,
    /// whose number of runs is not known in advance.
    Measured {
        node: usize,
        iteration: u32,
        planned: u32,
        wall: Duration,
        ok: bool,
    },
    /// A node finished and its records are durable in storage. `runs`: its records, those
    /// already announced by [`RunnerEvent::Stored`] included.
    NodeFinished {
        node: usize,
        name: String,
        state: NodeState,
        runs: usize,
        failure: Option<String>,
    },
    /// Not run because a node it needs failed.
    NodeSkipped {
        node: usize,
        name: String,
        because: String,
    },
    /// Not run, and not a failure: a program in its `requires` is missing, or it needs a node
    /// for which one is (`reason` says which). Sent right after `Started`; the node is not
    /// scheduled, so no other event names it (and `Started::nodes` does not count it).
    NodeUnavailable { name: String, reason: String },
    /// `records` more records of a node are durable in storage while it still measures (`bench`
    /// and loads store in batches as they go). Its `NodeFinished` counts them again in `runs`.
    Stored { node: usize, records: usize },
    /// An open-loop start of a load (of its profile's `step`) found every slot busy until its
    /// deadline and did not happen.
    MissedStart { node: usize, step: usize },
    /// Cancellation was requested: nothing new starts.
    Cancelling,
    /// Something that makes measurements less trustworthy, or made differently than one might
    /// assume. `node` when it concerns one node. Typed: a display words it
    /// ([`Warning`]'s `Display` is the library's fallback wording, in suite-file terms).
    Warning {
        node: Option<usize>,
        warning: Warning,
    },
    /// A benchmark node's successful wall times contain statistical outliers (Tukey fences and
    /// modified z-score, as `bench` classifies them). They stay in the statistics.
    Outliers {
        node: usize,
        name: String,
        /// Successful runs classified.
        runs: usize,
        /// Beyond the outer Tukey fences (3 IQR).
        severe: usize,
        /// Between the inner (1.5 IQR) and outer fences.
        mild: usize,
        /// With |modified z-score| above [`benchfleet_analysis::MODIFIED_Z_THRESHOLD`].
        z_outliers: usize,
    },
    /// Fleet worker: it claimed node `node` of a submitted run (`attempt` counts from 1).
    FleetClaimed {
        run_id: RunId,
        node: usize,
        name: String,
        attempt: u32,
    },
    /// Fleet worker: a claimed node ended; its completion stored `records` records, or was
    /// `refused` (the claim had been taken back: nothing stored).
    FleetCompleted {
        run_id: RunId,
        node: usize,
        name: String,
        state: NodeState,
        records: usize,
        refused: Option<String>,
    },
    /// Fleet worker (`--jobs auto`): its concurrency changed.
    FleetConcurrency {
        from: usize,
        to: usize,
        reason: ScaleReason,
    },
    /// Fleet worker: the queue as `fleet status` sees it (every few seconds), for exporters.
    FleetQueue {
        status: benchfleet_store::FleetStatus,
    },
    /// Fleet: a submitted run ended.
    FleetRunEnded {
        run_id: RunId,
        status: benchfleet_model::RunStatus,
    },
}

/// Why a `--jobs auto` worker changed its concurrency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleReason {
    /// CPU under 80% busy (`cpu_busy`, a fraction) while ready work waits.
    WorkWaiting { cpu_busy: f64 },
    /// Memory over 85% used (`used`, a fraction).
    MemoryPressure { used: f64 },
    /// Nothing ran for a while.
    Idle,
}

impl std::fmt::Display for ScaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScaleReason::WorkWaiting { cpu_busy } => {
                write!(f, "CPU {:.0}% busy and ready work waits", cpu_busy * 100.0)
            }
            ScaleReason::MemoryPressure { used } => {
                write!(f, "memory {:.0}% used", used * 100.0)
            }
            ScaleReason::Idle => f.write_str("idle"),
        }
    }
}

/// A warning about how a suite is measured, with its data (the CLI words it).
#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// More jobs may run at once than the machine has physical cores.
    MoreJobsThanCores { jobs: usize, physical: usize },
    /// More jobs may run at once than there are CPUs to pin them to.
    JobsShareCpus { jobs: usize, cpus: usize },
    /// Memory limits are enforced with `RLIMIT_AS`, not a cgroup.
    MemoryLimitByRlimit,
    /// A shell-mode node's mean time is below [`SHELL_SHORT_MEAN`], so the
    /// subtracted spawn cost dominates.
    ShortWithShell { name: String, shell_wall_ns: u64 },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::MoreJobsThanCores { jobs, physical } => write!(
                f,
                "up to {jobs} jobs run at once but this machine has {physical} physical cores; concurrent runs disturb each other (each record's `{}` tag says whether it ran alone), compare them with care or run at most {physical} jobs at once",
                RunRecord::TAG_CONCURRENT
            ),
            Warning::JobsShareCpus { jobs, cpus } => write!(
                f,
                "up to {jobs} jobs run at once on {cpus} CPUs; jobs running at once share CPUs"
            ),
            Warning::MemoryLimitByRlimit => write!(
                f,
                "memory limits of jobs are enforced with RLIMIT_AS (address space, which counts mappings, not only resident memory): no cgroup v2 with the memory controller is delegated to benchfleet here; a program that reserves much address space may fail below its `memory` (records say `{}=rlimit`)",
                TAG_MEMORY_LIMIT
            ),
            Warning::ShortWithShell {
                name,
                shell_wall_ns,
            } => write!(
                f,
                "`{name}` took less than {} ms on average; the shell's spawn time ({:.2} ms) was subtracted, which cannot be calibrated much more precisely than that. Remove `shell` from the node (commands are then run directly) for accurate numbers",
                SHELL_SHORT_MEAN.as_millis(),
                *shell_wall_ns as f64 / 1e6
            ),
        }
    }
}

impl RunnerEvent {
    /// The warning line a display prints for this event, if it is a warning (the library's
    /// fallback wording).
    pub fn warning(&self) -> Option<String> {
        match self {
            RunnerEvent::Warning { warning, .. } => Some(format!("warning: {warning}")),
            RunnerEvent::Outliers {
                name,
                runs,
                severe,
                mild,
                z_outliers,
                ..
            } => Some(format!(
                "warning: `{name}`: statistical outliers in {runs} runs ({severe} severe, {mild} mild by Tukey fences; {z_outliers} with |modified z| > {}). They are kept in the statistics; a quiet machine, more `warmup` or more runs help",
                benchfleet_analysis::MODIFIED_Z_THRESHOLD
            )),
            _ => None,
        }
    }
}
