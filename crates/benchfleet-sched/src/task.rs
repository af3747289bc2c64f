//! What the scheduler needs to know about a task, and what an execution reports back.

use std::time::Duration;

use crate::{CancelToken, NodeId, Resources};

/// A node's payload. Every method has a default, so `impl Task for MyJob {}` is a complete
/// implementation (no resources beyond a concurrency slot, no retry, no timeout, no estimate).
pub trait Task: Send + Sync + 'static {
    /// What the task holds while it runs; admission waits until the budget has room.
    /// The default (0 CPU, 0 bytes) needs only a concurrency slot.
    fn resources(&self) -> Resources {
        Resources::default()
    }

    /// How often and how patiently to retry a retryable failure or a timeout.
    fn retry(&self) -> RetryPolicy {
        RetryPolicy::none()
    }

    /// Per-attempt time limit. On expiry the scheduler drops the attempt's future (which is how
    /// resources it owns, e.g. a child process with `kill_on_drop`, are released) and the attempt
    /// counts as [`crate::NodeState::TimedOut`].
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Expected duration, used to order the ready queue by critical path and by [`crate::Plan`].
    fn estimate(&self) -> Option<Duration> {
        None
    }

    /// Whether the task must run alone: it starts only when no other attempt runs, and nothing
    /// starts while it runs. When it reaches the head of the ready queue, admission waits for
    /// the running attempts to end (nothing behind it starts meanwhile, so it is never starved).
    /// Default `false`.
    fn exclusive(&self) -> bool {
        false
    }
}

/// Given to the executor for each attempt.
#[derive(Clone, Debug)]
pub struct TaskCtx {
    /// The node being executed.
    pub node: NodeId,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// Cancelled when the run is cancelled: a long task should watch it and wind down.
    pub cancel: CancelToken,
}

/// What one attempt of a task reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Ran and succeeded; dependents may start.
    Succeeded,
    /// Did not need to run (a result was already available); dependents may start.
    Cached,
    /// Failed. A `retryable` failure is attempted again while the node's [`RetryPolicy`] allows.
    Failed {
        /// Why, for reports; available in [`crate::RunSummary::message`].
        message: String,
        /// Whether another attempt could succeed (e.g. a flaky network), as opposed to a
        /// deterministic failure.
        retryable: bool,
    },
}

impl TaskOutcome {
    /// A failure that retrying cannot fix.
    pub fn failed(message: impl Into<String>) -> Self {
        TaskOutcome::Failed {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that another attempt might not hit.
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskOutcome::Failed {
            message: message.into(),
            retryable: true,
        }
    }
}

/// Retry policy: up to `max_attempts` attempts in total; before attempt `k + 1` the scheduler
/// waits `min(max_backoff, base_backoff * 2^(k-1))`, reduced by a random fraction of at most
/// `jitter` (0 = exact exponential backoff, 1 = "full jitter", anywhere in `[0, delay]`).
/// The waiting node holds no concurrency slot and no resources.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, first one included. 0 and 1 both mean "no retry".
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_backoff: Duration,
    /// Upper bound of any delay.
    pub max_backoff: Duration,
    /// Fraction in `[0, 1]` of the delay that may be randomly removed (clamped into that range).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

impl RetryPolicy {
    /// A single attempt.
    pub const fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            jitter: 0.5,
        }
    }

    /// Up to `max_attempts` attempts, 100 ms base backoff, 30 s cap, 50% jitter.
    pub const fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            ..Self::none()
        }
    }

    /// Sets the base and maximum backoff.
    pub const fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max;
        self
    }

    /// Sets the jitter fraction.
    pub const fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay before attempt `failed_attempt + 1` without jitter.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let exp = failed_attempt.saturating_sub(1).min(63);
        let factor = 1u64 << exp;
        let nanos = (self.base_backoff.as_nanos()).saturating_mul(u128::from(factor));
        let capped = nanos.min(self.max_backoff.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// The delay with jitter applied, `unit` being a uniform random number in `[0, 1)`.
    pub fn jittered(&self, failed_attempt: u32, unit: f64) -> Duration {
        let d = self.backoff(failed_attempt);
        let j = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let keep = (1.0 - j * unit.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        d.mul_f64(keep)
    }
}
