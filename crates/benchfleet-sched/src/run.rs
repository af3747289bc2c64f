//! The runner loop: admits ready nodes within the concurrency bound and resource budget, spawns
//! their attempts on the tokio runtime, and turns completions into events and new ready nodes.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::inflight::{InFlight, Placement};
use crate::{
    CancelToken, CycleError, Dag, NodeId, Readiness, Resources, Task, TaskCtx, TaskOutcome,
};

/// How to run a DAG. `Default`: one slot per available core, keep going after failures, no
/// resource budget, a fresh cancel token.
#[derive(Clone, Debug)]
pub struct Options {
    /// Maximum number of attempts running at once (`-j`). Must be at least 1.
    pub concurrency: usize,
    /// `true`: after a failure, run everything that does not depend on it. `false` (fail-fast):
    /// the first final failure stops admission; running tasks finish, unstarted ones become
    /// [`NodeState::Cancelled`].
    pub keep_going: bool,
    /// Admission keeps the sum of running tasks' [`Task::resources`] within this; `None` = unlimited.
    pub budget: Option<Resources>,
    /// Cancelling it stops admission; running tasks see it in [`TaskCtx::cancel`] and are awaited.
    pub cancel: CancelToken,
    /// Where attempts are polled after their first poll (default [`Placement::Local`]).
    pub placement: Placement,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_going: true,
            budget: None,
            cancel: CancelToken::new(),
            placement: Placement::default(),
        }
    }
}

/// Where a node ended up. `Pending` only appears for nodes that have not finished yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeState {
    /// Not finished (never seen in a returned [`RunSummary`]).
    Pending,
    /// Ran and succeeded.
    Succeeded,
    /// Reported [`TaskOutcome::Cached`].
    Cached,
    /// Its last attempt failed (or panicked).
    Failed,
    /// Its last attempt exceeded [`Task::timeout`].
    TimedOut,
    /// Not run because a dependency failed or timed out.
    Skipped,
    /// Not run because admission stopped (cancel token or fail-fast).
    Cancelled,
}

impl NodeState {
    /// Succeeded or Cached: dependents may run.
    pub fn is_success(self) -> bool {
        matches!(self, NodeState::Succeeded | NodeState::Cached)
    }

    /// Failed or TimedOut.
    pub fn is_failure(self) -> bool {
        matches!(self, NodeState::Failed | NodeState::TimedOut)
    }

    /// Lower-case name, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Pending => "pending",
            NodeState::Succeeded => "succeeded",
            NodeState::Cached => "cached",
            NodeState::Failed => "failed",
            NodeState::TimedOut => "timed-out",
            NodeState::Skipped => "skipped",
            NodeState::Cancelled => "cancelled",
        }
    }
}

/// What happens during a run, in order. A closed set: match it exhaustively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An attempt of `node` was admitted (1-based `attempt`).
    Started {
        /// The node.
        node: NodeId,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// `node` reached its final state (emitted once per node that started).
    Finished {
        /// The node.
        node: NodeId,
        /// Succeeded, Cached, Failed or TimedOut.
        outcome: NodeState,
    },
    /// An attempt of `node` failed retryably or timed out; attempt number `attempt` (the next one)
    /// becomes ready after `delay`. No `Finished` is emitted for the failed attempt.
    Retrying {
        /// The node.
        node: NodeId,
        /// The attempt that will run next (2 for the first retry).
        attempt: u32,
        /// Backoff before it becomes ready.
        delay: Duration,
    },
    /// `node` will not run because `because` (a dependency, direct or not) failed or timed out.
    Skipped {
        /// The node not run.
        node: NodeId,
        /// The failed node.
        because: NodeId,
    },
    /// Admission stopped (cancel token, or the first failure with `keep_going = false`) while
    /// nodes remained. Emitted at most once; unstarted nodes end [`NodeState::Cancelled`].
    Cancelled,
}

/// Why admission stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The cancel token was cancelled.
    Cancelled,
    /// `keep_going = false` and this node failed or timed out.
    FailFast {
        /// The first failed node.
        failed: NodeId,
    },
}

/// The outcome of [`run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Final state of every node, by [`NodeId::index`].
    pub states: Vec<NodeState>,
    /// Attempts started per node, by index (0 for nodes never started).
    pub attempts: Vec<u32>,
    /// The final failure message of each Failed / TimedOut node, in finishing order.
    pub messages: Vec<(NodeId, String)>,
    /// Set if admission stopped early.
    pub stopped: Option<StopReason>,
}

/// Number of nodes per final state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Succeeded nodes.
    pub succeeded: usize,
    /// Cached nodes.
    pub cached: usize,
    /// Failed nodes.
    pub failed: usize,
    /// Timed-out nodes.
    pub timed_out: usize,
    /// Skipped nodes.
    pub skipped: usize,
    /// Cancelled nodes.
    pub cancelled: usize,
    /// Pending nodes (0 after a completed run).
    pub pending: usize,
}

impl RunSummary {
    /// Counts of every state.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.states {
            match s {
                NodeState::Pending => c.pending += 1,
                NodeState::Succeeded => c.succeeded += 1,
                NodeState::Cached => c.cached += 1,
                NodeState::Failed => c.failed += 1,
                NodeState::TimedOut => c.timed_out += 1,
                NodeState::Skipped => c.skipped += 1,
                NodeState::Cancelled => c.cancelled += 1,
            }
        }
        c
    }

    /// Number of nodes in `state`.
    pub fn count(&self, state: NodeState) -> usize {
        self.states.iter().filter(|&&s| s == state).count()
    }

    /// True if every node Succeeded or was Cached.
    pub fn all_succeeded(&self) -> bool {
        self.states.iter().all(|s| s.is_success())
    }

    /// The state of `id`.
    pub fn state(&self, id: NodeId) -> NodeState {
        self.states[id.index()]
    }

    /// The final failure message of `id`, if it failed or timed out.
    pub fn message(&self, id: NodeId) -> Option<&str> {
        self.messages
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, m)| m.as_str())
    }
}

/// Why a run could not start or could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedError {
    /// The graph has a cycle; nothing ran.
    #[error(transparent)]
    Cycle(#[from] CycleError),
    /// A node needs more than the whole budget, so it could never be admitted; nothing ran.
    #[error(
        "node {node} needs {needs} but the whole budget is {budget}; lower the task's resources or raise the budget"
    )]
    TooLarge {
        /// The node.
        node: NodeId,
        /// Its [`Task::resources`].
        needs: Resources,
        /// [`Options::budget`].
        budget: Resources,
    },
    /// `Options::concurrency` was 0, so nothing could ever run.
    #[error("concurrency is 0: at least one task must be allowed to run (use 1 or more)")]
    ZeroConcurrency,
    /// `run` was called outside a tokio runtime.
    #[error(
        "benchfleet_sched::run must be awaited inside a tokio runtime (with the time driver enabled)"
    )]
    NoRuntime,
}

/// How one attempt ended.
enum Attempt {
    Done(TaskOutcome),
    TimedOut(Duration),
    Panicked(String),
}

/// What a spawned attempt returns: the node index, the resources it held, how it ended.
type Report = (u32, Resources, Attempt);

/// Runs every node of `dag` through `exec`, dependencies first, and reports each step to
/// `on_event`. See the crate docs for the semantics. Must be awaited inside a tokio runtime with
/// the time driver enabled if tasks have timeouts or retries; each attempt is `tokio::spawn`ed, so
/// attempts run in parallel on a multi-threaded runtime. Dropping the returned future aborts the
/// running attempts.
pub async fn run<T, F, Fut>(
    dag: &Dag<T>,
    options: &Options,
    exec: F,
    on_event: impl FnMut(&Event),
) -> Result<RunSummary, SchedError>
where
    T: Task,
    F: FnMut(TaskCtx, &T) -> Fut,
    Fut: Future<Output = TaskOutcome> + Send + 'static,
{
    if options.concurrency == 0 {
        return Err(SchedError::ZeroConcurrency);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(SchedError::NoRuntime);
    }
    let ready = Readiness::new(dag)?;
    if let Some(budget) = options.budget {
        for node in dag.node_ids() {
            let needs = dag.task(node).resources();
            if !needs.fits_in(budget) {
                return Err(SchedError::TooLarge {
                    node,
                    needs,
                    budget,
                });
            }
        }
    }
    let mut r = Runner {
        dag,
        options,
        exec,
        on_event,
        ready,
        states: vec![NodeState::Pending; dag.len()],
        attempts: vec![0; dag.len()],
        messages: Vec::new(),
        stopped: None,
        finished: 0,
        running: InFlight::new(options.placement),
        used: Resources::ZERO,
        exclusive_running: false,
        deferred: Vec::new(),
        delayed: Vec::new(),
        stack: Vec::new(),
        rng: seed(dag),
    };
    r.drive().await;
    for s in &mut r.states {
        if *s == NodeState::Pending {
            *s = NodeState::Cancelled;
        }
    }
    Ok(RunSummary {
        states: r.states,
        attempts: r.attempts,
        messages: r.messages,
        stopped: r.stopped,
    })
}

/// A node between a failed attempt and its retry (waiting out its backoff, or queued).
struct Delayed {
    due: Instant,
    node: NodeId,
    /// Pushed into the ready queue (backoff over).
    queued: bool,
    /// How its last attempt ended, in case admission stops before the retry.
    state: NodeState,
    message: String,
}

/// All the run's mutable state. Its methods are the loop's steps; nothing here is shared with
/// the spawned attempts, which only send back a [`Report`].
struct Runner<'a, T, F, E> {
    dag: &'a Dag<T>,
    options: &'a Options,
    exec: F,
    on_event: E,
    ready: Readiness,
    states: Vec<NodeState>,
    attempts: Vec<u32>,
    messages: Vec<(NodeId, String)>,
    stopped: Option<StopReason>,
    /// Nodes in a final state.
    finished: usize,
    running: InFlight<Report>,
    used: Resources,
    /// An attempt of a [`Task::exclusive`] node is running: nothing else is admitted.
    exclusive_running: bool,
    /// Scratch: ready nodes popped but not fitting the budget now.
    deferred: Vec<NodeId>,
    /// Nodes between a failed attempt and the next one (few: a linear scan is fine).
    delayed: Vec<Delayed>,
    /// Scratch for skip propagation.
    stack: Vec<NodeId>,
    rng: u64,
}

/// Attempts completing at their first poll before the loop yields to the runtime.
const INLINE_BUDGET: u32 = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Admitted {
    /// Admitted all it could.
    Done,
    /// Stopped early to yield (the ready queue may not be empty).
    Yield,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Started {
    Inline,
    Pending,
}

/// What woke the loop.
enum Wake {
    Done(Report),
    Cancelled,
    RetryDue,
}

impl<T, F, Fut, E> Runner<'_, T, F, E>
where
    T: Task,
    F: FnMut(TaskCtx, &T) -> Fut,
    Fut: Future<Output = TaskOutcome> + Send + 'static,
    E: FnMut(&Event),
{
    async fn drive(&mut self) {
        let token = self.options.cancel.clone();
        let mut cancelled = pin!(token.cancelled());
        loop {
            if self.stopped.is_none() && token.is_cancelled() {
                self.stop(StopReason::Cancelled);
            }
            if self.admit() == Admitted::Yield {
                // Many attempts completed inline in a row: let other tasks of the runtime run.
                tokio::task::yield_now().await;
                continue;
            }
            let waiting_retry = self.stopped.is_none() && self.delayed.iter().any(|d| !d.queued);
            if self.running.is_empty() && !waiting_retry {
                // Nothing running and nothing admissible: an empty ready queue (every node that
                // fits did start: with nothing running the whole budget is free), or stopped.
                return;
            }
            let next_due = if waiting_retry {
                self.delayed
                    .iter()
                    .filter(|d| !d.queued)
                    .map(|d| d.due)
                    .min()
            } else {
                None
            };
            let wake = tokio::select! {
                biased;
                done = self.running.next(), if !self.running.is_empty() => Wake::Done(done),
                () = &mut cancelled, if self.stopped.is_none() => Wake::Cancelled,
                () = async {
                    match next_due {
                        Some(due) => tokio::time::sleep_until(due).await,
                        None => std::future::pending().await,
                    }
                }, if next_due.is_some() => Wake::RetryDue,
            };
            match wake {
                Wake::Done(done) => {
                    self.on_report(done);
                    while let Some(done) = self.running.try_next() {
                        self.on_report(done);
                    }
                }
                Wake::Cancelled => self.stop(StopReason::Cancelled),
                Wake::RetryDue => self.release_due_retries(),
            }
        }
    }

    fn emit(&mut self, event: Event) {
        (self.on_event)(&event);
    }

    /// Starts ready nodes while a slot is free and the budget has room. Nodes that do not fit are
    /// passed over (a smaller one behind them may start) and stay queued in order.
    fn admit(&mut self) -> Admitted {
        let mut result = Admitted::Done;
        let mut inline_left = INLINE_BUDGET;
        while self.running.len() < self.options.concurrency {
            if self.stopped.is_some() {
                break;
            }
            if self.options.cancel.is_cancelled() {
                self.stop(StopReason::Cancelled);
                break;
            }
            if inline_left == 0 {
                result = Admitted::Yield;
                break;
            }
            if self.exclusive_running {
                break;
            }
            let Some(node) = self.ready.pop() else { break };
            // An exclusive node waits at the head of the queue until the running attempts end.
            let exclusive = self.dag.task(node).exclusive();
            if exclusive && !self.running.is_empty() {
                self.deferred.push(node);
                break;
            }
            let needs = match self.options.budget {
                None => Resources::ZERO,
                Some(budget) => {
                    let needs = self.dag.task(node).resources();
                    if !self.used.saturating_add(needs).fits_in(budget) {
                        self.deferred.push(node);
                        continue;
                    }
                    needs
                }
            };
            self.exclusive_running = exclusive;
            if self.start(node, needs) == Started::Inline {
                inline_left -= 1;
            }
        }
        for node in self.deferred.drain(..) {
            self.ready.push(node);
        }
        result
    }

    /// Starts one attempt. Its first poll happens here, inline: an attempt that is ready at once
    /// (a cache hit, an in-process no-op) completes right away; otherwise it joins the running set
    /// and is polled again where [`Options::placement`] says, with a real waker.
    fn start(&mut self, node: NodeId, needs: Resources) -> Started {
        let i = node.index();
        self.attempts[i] += 1;
        let attempt = self.attempts[i];
        if attempt > 1 {
            self.delayed.retain(|d| d.node != node);
        }
        self.used = self.used.saturating_add(needs);
        self.emit(Event::Started { node, attempt });
        let task = self.dag.task(node);
        let timeout = task.timeout();
        let ctx = TaskCtx {
            node,
            attempt,
            cancel: self.options.cancel.clone(),
        };
        let fut = (self.exec)(ctx, task);
        let idx = node.raw();
        let mut attempt = Box::pin(async move { (idx, needs, run_attempt(fut, timeout).await) });
        match attempt
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(report) => {
                self.on_report(report);
                Started::Inline
            }
            Poll::Pending => {
                self.running.push(attempt);
                Started::Pending
            }
        }
    }

    fn on_report(&mut self, (idx, held, attempt): Report) {
        self.used = self.used.saturating_sub(held);
        let node = NodeId::from_index(idx as usize);
        if self.exclusive_running && self.dag.task(node).exclusive() {
            self.exclusive_running = false;
        }
        match attempt {
            Attempt::Done(TaskOutcome::Succeeded) => self.finish(node, NodeState::Succeeded, None),
            Attempt::Done(TaskOutcome::Cached) => self.finish(node, NodeState::Cached, None),
            Attempt::Done(TaskOutcome::Failed { message, retryable }) => {
                self.failed(node, NodeState::Failed, message, retryable)
            }
            Attempt::TimedOut(limit) => {
                let message = format!("timed out after {limit:?}");
                self.failed(node, NodeState::TimedOut, message, true)
            }
            Attempt::Panicked(msg) => self.failed(
                node,
                NodeState::Failed,
                format!("task panicked: {msg}"),
                false,
            ),
        }
    }

    /// A failed attempt: retry after a backoff if allowed, else final.
    fn failed(&mut self, node: NodeId, state: NodeState, message: String, retryable: bool) {
        let attempt = self.attempts[node.index()];
        let policy = self.dag.task(node).retry();
        if retryable && self.stopped.is_none() && attempt < policy.max_attempts {
            let delay = policy.jittered(attempt, next_unit(&mut self.rng));
            self.emit(Event::Retrying {
                node,
                attempt: attempt + 1,
                delay,
            });
            let queued = delay.is_zero();
            if queued {
                self.ready.push(node);
            }
            let due = Instant::now() + delay;
            self.delayed.push(Delayed {
                due,
                node,
                queued,
                state,
                message,
            });
        } else {
            self.finish(node, state, Some(message));
        }
    }

    fn finish(&mut self, node: NodeId, state: NodeState, message: Option<String>) {
        self.states[node.index()] = state;
        self.finished += 1;
        self.emit(Event::Finished {
            node,
            outcome: state,
        });
        if state.is_success() {
            self.ready.complete(self.dag, node);
            return;
        }
        if let Some(m) = message {
            self.messages.push((node, m));
        }
        self.skip_dependents(node);
        if !self.options.keep_going {
            self.stop(StopReason::FailFast { failed: node });
        }
    }

    /// Marks every not-yet-finished node downstream of `failed` Skipped.
    fn skip_dependents(&mut self, failed: NodeId) {
        self.stack.push(failed);
        while let Some(v) = self.stack.pop() {
            for &d in self.dag.dependents(v) {
                if self.states[d.index()] == NodeState::Pending {
                    self.states[d.index()] = NodeState::Skipped;
                    self.finished += 1;
                    self.stack.push(d);
                    self.emit(Event::Skipped {
                        node: d,
                        because: failed,
                    });
                }
            }
        }
    }

    fn stop(&mut self, reason: StopReason) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(reason);
        if self.finished < self.dag.len() {
            self.emit(Event::Cancelled);
        }
        // Nodes waiting to retry will not get another attempt: their last failure is final (if
        // one is still in the ready queue it is never admitted now).
        for d in std::mem::take(&mut self.delayed) {
            self.finish(d.node, d.state, Some(d.message));
        }
    }

    fn release_due_retries(&mut self) {
        let now = Instant::now();
        for d in &mut self.delayed {
            if !d.queued && d.due <= now {
                d.queued = true;
                self.ready.push(d.node);
            }
        }
    }
}

/// Runs one attempt: catches a panic, applies the timeout by dropping the future.
async fn run_attempt<Fut>(fut: Fut, timeout: Option<Duration>) -> Attempt
where
    Fut: Future<Output = TaskOutcome>,
{
    let guarded = catch_panic(fut);
    match timeout {
        None => guarded.await,
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(a) => a,
            Err(_) => Attempt::TimedOut(limit),
        },
    }
}

async fn catch_panic<Fut: Future<Output = TaskOutcome>>(fut: Fut) -> Attempt {
    let mut fut = pin!(fut);
    std::future::poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(o)) => Poll::Ready(Attempt::Done(o)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                Poll::Ready(Attempt::Panicked(msg))
            }
        },
    )
    .await
}

/// A per-run seed for backoff jitter.
fn seed<T>(dag: &Dag<T>) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (dag as *const Dag<T> as usize as u64).rotate_left(32)
}

/// splitmix64 step mapped to `[0, 1)`.
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
