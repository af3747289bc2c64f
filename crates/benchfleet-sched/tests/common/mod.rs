//! A scriptable task for the scheduler tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use benchfleet_sched::{Resources, RetryPolicy, Task, TaskCtx, TaskOutcome};

/// What one attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Succeed,
    Cache,
    Fail,
    FailRetryable,
    /// Never completes (for timeouts and cancellation).
    Hang,
    Panic,
    /// Waits for the cancel token, then succeeds.
    WaitCancel,
    /// Yields to the runtime a few times (so the first poll is Pending), then succeeds.
    Yield,
}

/// A task following a script: attempt k does `script[k-1]` (the last step repeats).
#[derive(Clone, Debug)]
pub struct Job {
    pub script: Vec<Step>,
    pub res: Resources,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub estimate: Option<Duration>,
}

impl Default for Job {
    fn default() -> Self {
        Job {
            script: vec![Step::Succeed],
            res: Resources::ZERO,
            retry: RetryPolicy::none(),
            timeout: None,
            estimate: None,
        }
    }
}

impl Job {
    pub fn steps(script: &[Step]) -> Self {
        Job {
            script: script.to_vec(),
            ..Job::default()
        }
    }

    pub fn step(&self, attempt: u32) -> Step {
        let i = (attempt as usize - 1).min(self.script.len() - 1);
        self.script[i]
    }
}

impl Task for Job {
    fn resources(&self) -> Resources {
        self.res
    }
    fn retry(&self) -> RetryPolicy {
        self.retry
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn estimate(&self) -> Option<Duration> {
        self.estimate
    }
}

/// Sets its flag when dropped: proves a future was dropped.
pub struct DropFlag(pub Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs one attempt of `job` as scripted. Does not yield first: a Succeed/Cache/Fail step is
/// ready at its first poll.
pub async fn perform(ctx: TaskCtx, step: Step, dropped: Option<Arc<AtomicBool>>) -> TaskOutcome {
    let _guard = dropped.map(DropFlag);
    match step {
        Step::Succeed => TaskOutcome::Succeeded,
        Step::Cache => TaskOutcome::Cached,
        Step::Fail => TaskOutcome::failed(format!("node {} failed", ctx.node)),
        Step::FailRetryable => TaskOutcome::retryable(format!("node {} flaked", ctx.node)),
        Step::Hang => std::future::pending().await,
        Step::Panic => panic!("boom in {}", ctx.node),
        Step::Yield => {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            TaskOutcome::Succeeded
        }
        Step::WaitCancel => {
            ctx.cancel.cancelled().await;
            TaskOutcome::Succeeded
        }
    }
}

pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

pub fn threaded_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
