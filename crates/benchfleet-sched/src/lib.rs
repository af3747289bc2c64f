//! A generic async DAG scheduler: dependencies, bounded concurrency, resource-aware admission,
//! retries with backoff, timeouts, fail-fast or keep-going, cancellation, and a closed stream of
//! [`Event`]s.
//!
//! **Architecture invariant:** this crate knows nothing about benchmarks, processes or storage.
//! It depends on no workspace crate: only `tokio`, `futures-util` and `thiserror`. A node is any [`Task`]; how
//! a node is executed is the caller's closure, which returns a future of a [`TaskOutcome`].
//!
//! Semantics of [`run`]:
//! - a node starts only after all its dependencies [`NodeState::Succeeded`] or were
//!   [`NodeState::Cached`]; the ready queue is ordered by critical path (heaviest remaining path by
//!   [`Task::estimate`], 1 per node without estimates), ties by declaration order;
//! - at most [`Options::concurrency`] attempts run at once, and the sum of their
//!   [`Task::resources`] stays within [`Options::budget`] (a node that does not fit is passed over
//!   for a smaller one behind it); a node larger than the whole budget is
//!   [`SchedError::TooLarge`] before anything runs, a cycle is [`SchedError::Cycle`];
//! - a [`Task::exclusive`] node runs alone: at the head of the ready queue it waits for the
//!   running attempts to end (nothing behind it is admitted meanwhile), and nothing is admitted
//!   while it runs;
//! - a failed or timed-out node's dependents become [`NodeState::Skipped`] (not failed), with
//!   [`Event::Skipped`] naming the failed node; with `keep_going = false` the first failure stops
//!   admission, running attempts finish, unstarted nodes become [`NodeState::Cancelled`];
//! - cancelling [`Options::cancel`] stops admission the same way (one [`Event::Cancelled`]); running
//!   attempts see [`TaskCtx::cancel`] and are awaited;
//! - a retryable failure or a timeout is attempted again per [`Task::retry`] after an exponential
//!   backoff with jitter; [`RunSummary::attempts`] records the attempts; a panic in a task is a
//!   non-retryable failure.
//!
//! Execution model: `exec` is called on the scheduler's task and the returned future is polled
//! once right there. An attempt that is ready at its first poll (a cache hit, an in-process no-op)
//! completes at once. Any other goes on where [`Options::placement`] says: by default
//! ([`Placement::Local`]) it is polled by the scheduler's own task, so a completion costs no
//! cross-thread wake-up; with [`Placement::Spawned`] it is `tokio::spawn`ed and runs in parallel
//! on the runtime's workers. Either way keep `poll` short: put blocking or CPU-heavy work behind
//! `spawn_blocking`. Dropping the future returned by [`run`] drops (aborts) the running attempts.
//!
//! [`Readiness`] is the synchronous core (in-degree counters + priority queue) for callers who
//! drive their own loop; [`Plan`] analyses a DAG without running it; [`Resources`] has the named
//! profiles and the host budget.
//!
//! ```
//! use benchfleet_sched::{Dag, Event, Options, Task, TaskOutcome, run};
//!
//! struct Echo(&'static str);
//! impl Task for Echo {}
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut dag = Dag::new();
//! let build = dag.add_node(Echo("build"));
//! let test = dag.add_node(Echo("test"));
//! dag.add_dependency(test, build);
//!
//! let mut started = Vec::new();
//! let summary = run(
//!     &dag,
//!     &Options { concurrency: 2, ..Options::default() },
//!     |_ctx, task| {
//!         let name = task.0;
//!         async move { if name.is_empty() { TaskOutcome::failed("no name") } else { TaskOutcome::Succeeded } }
//!     },
//!     |event| if let Event::Started { node, .. } = event { started.push(*node) },
//! )
//! .await
//! .unwrap();
//! assert!(summary.all_succeeded());
//! assert_eq!(started, [build, test]);
//! # });
//! ```

mod cancel;
mod dag;
mod inflight;
mod plan;
mod ready;
mod resources;
mod run;
mod task;

pub use cancel::CancelToken;
pub use dag::{CycleError, Dag, NodeId};
pub use inflight::Placement;
pub use plan::Plan;
pub use ready::Readiness;
pub use resources::{
    DEFAULT_RESERVE_CPU, DEFAULT_RESERVE_MEM, PROFILES, ResourceError, Resources, fits_replicas,
    parse_meminfo_total, replicas_per_profile,
};
pub use run::{Counts, Event, NodeState, Options, RunSummary, SchedError, StopReason, run};
pub use task::{RetryPolicy, Task, TaskCtx, TaskOutcome};
