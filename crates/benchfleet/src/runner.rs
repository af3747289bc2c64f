//! Running an expanded suite: schedule the DAG, measure every run, store every record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use benchfleet_metrics::{Kill, MemoryLimitVia, ProcessSpec};
use benchfleet_model::{Measurement, NodeKind, RunId, RunInfo, RunRecord, RunStatus, Timestamp};
use benchfleet_report::{BenchmarkResult, RunPoints};
use benchfleet_sched::{
    CancelToken, Dag, Event, NodeId, NodeState, Resources, RetryPolicy, Task, TaskCtx, TaskOutcome,
};
use benchfleet_store::Storage;

use crate::cache::NodeProgress;
use crate::cpus::Overlap;
use crate::exec::{Executor, Hook, Invocation, Phase, RecordOwner};
use crate::session::Session;
use crate::suite::{Node, Suite};
use crate::{Error, host};

pub use crate::event::{RunnerEvent, Warning};
pub use crate::exec::{
    SHELL_COST_SAMPLES, SHELL_SHORT_MEAN, TAG_CPUS, TAG_MEMORY_LIMIT, TAG_SHELL, TAG_SHELL_OVERHEAD,
};
pub use crate::session::final_status;

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Maximum concurrent nodes; 0 = available cores.
    pub jobs: usize,
    /// Keep running independent nodes after a failure.
    pub keep_going: bool,
    /// Trailing stderr bytes kept from failed runs.
    pub stderr_tail_bytes: usize,
    /// Labels stored with the run and each record.
    pub tags: BTreeMap<String, String>,
    /// Cancel to stop admitting work (Ctrl-C); running processes get `grace` then are killed.
    pub cancel: CancelToken,
    pub grace: Duration,
    /// Sample the system (CPU, memory, disk, load) at this interval while the suite runs and
    /// store the series with the run (`None`: off). Default 250 ms.
    pub sample_interval: Option<Duration>,
    /// Reuse cached results of unchanged nodes (a node's own `cache = false` still opts out).
    pub use_cache: bool,
    /// Continue this earlier run (same run id): nodes that already finished in it are not run
    /// again.
    pub resume: Option<RunInfo>,
    /// Resource budget for admission (`None`: only the `jobs` bound applies).
    pub budget: Option<Resources>,
    /// Directory against which relative `inputs` are resolved (the working directory).
    pub base_dir: std::path::PathBuf,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 0,
            keep_going: true,
            stderr_tail_bytes: 4096,
            tags: BTreeMap::new(),
            cancel: CancelToken::default(),
            grace: Duration::from_secs(2),
            sample_interval: Some(Duration::from_millis(250)),
            use_cache: true,
            resume: None,
            budget: None,
            base_dir: std::path::PathBuf::from("."),
        }
    }
}

/// The result of a whole run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub run: RunInfo,
    /// What reports need of every node measured in this run (its runs stored before a resume
    /// included), in catalog order (first run's start, then name): a few numbers per run, not
    /// the records, which are in storage. Load nodes are not here (they may store millions of
    /// runs: read them back with [`crate::load_records`]); their summary is in `loads`.
    pub results: Vec<NodeResult>,
    /// Throughput and latency per step and window of each node with a `load` table that ran, in
    /// finishing order.
    pub loads: Vec<crate::loadgen::NodeLoadOutcome>,
    /// Final state of each node that was scheduled, in suite order (the node shared, not its
    /// name copied). Nodes in `unavailable` are not here.
    pub states: Vec<(Arc<Node>, NodeState)>,
    /// Nodes not run because a program in their `requires` is missing, or because they need
    /// such a node, with the reason, in suite order. They do not make the run fail.
    pub unavailable: Vec<(Arc<Node>, String)>,
    /// Why each failed or timed-out node failed (node name, message), in finishing order.
    pub failures: Vec<(String, String)>,
    /// System samples taken while the suite ran (stored with the run, see
    /// [`crate::session::store_series`]); `None` when sampling was off or unavailable.
    pub series: Option<benchfleet_metrics::SystemSeries>,
    /// Nodes whose stored results were reused (cache hits, or finished in the run being resumed),
    /// in catalog order.
    pub reused: Vec<NodeResult>,
}

/// One node's runs in a suite run, as reports need them.
#[derive(Clone, Debug)]
pub struct NodeResult {
    pub node: Arc<Node>,
    /// The run that stored them when it is not this one (a cache hit).
    pub from_run: Option<RunId>,
    /// When its first run started.
    pub started_at: Timestamp,
    pub runs: RunPoints,
}

impl NodeResult {
    /// From a node's stored records (at least one, in iteration order).
    fn of(node: Arc<Node>, records: &[RunRecord], this_run: &RunId) -> Option<NodeResult> {
        let first = records.first()?;
        let mut runs = RunPoints::with_capacity(records.len());
        for r in records {
            runs.push(r);
        }
        Some(NodeResult {
            node,
            from_run: (first.run_id != *this_run).then(|| first.run_id.clone()),
            started_at: first.started_at,
            runs,
        })
    }
}

impl RunOutcome {
    pub fn failed_nodes(&self) -> usize {
        self.states
            .iter()
            .filter(|(_, s)| matches!(s, NodeState::Failed | NodeState::TimedOut))
            .count()
    }
    pub fn skipped_nodes(&self) -> usize {
        self.states
            .iter()
            .filter(|(_, s)| matches!(s, NodeState::Skipped))
            .count()
    }
    /// Records of this run behind [`RunOutcome::results`].
    pub fn records(&self) -> usize {
        self.results.iter().map(|r| r.runs.len()).sum()
    }
    /// The report of one node's runs (built when asked for: a caller rendering 100,000 of them
    /// holds one at a time).
    pub fn benchmark_result(&self, r: &NodeResult) -> BenchmarkResult {
        let mut b = BenchmarkResult::named(
            r.node.name.clone(),
            r.node.kind,
            r.node.command_line(),
            r.node.parameters.clone(),
            r.from_run
                .clone()
                .unwrap_or_else(|| self.run.run_id.clone()),
        );
        b.extend(&r.runs);
        // Measured here (or reused from a cache keyed by this machine's class).
        if !b.times.is_empty() {
            b.machine_classes = vec![crate::machine::class().to_owned()];
        }
        b
    }
}

/// Catalog order: first run's start, then name (unique, so an unstable sort is deterministic, and
/// it needs no scratch copy of 100,000 results).
fn sort_results(results: &mut [NodeResult]) {
    results
        .sort_unstable_by(|a, b| (a.started_at, &a.node.name).cmp(&(b.started_at, &b.node.name)));
}

/// Per node: whether its records are durable (or it stored none), or could not be stored. One
/// lock and one notifier for the whole suite, a byte per node: a channel per node cost hundreds of
/// bytes each, and only the few nodes running at a time ever wait.
struct Durable {
    state: Mutex<DurableState>,
    changed: tokio::sync::Notify,
}

struct DurableState {
    /// Per node: 0 pending, 1 durable, 2 failed (its reason in `failed`).
    done: Vec<u8>,
    failed: BTreeMap<usize, String>,
}

impl Durable {
    fn new(nodes: usize) -> Durable {
        Durable {
            state: Mutex::new(DurableState {
                done: vec![0; nodes],
                failed: BTreeMap::new(),
            }),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn set(&self, node: usize, stored: Result<(), String>) {
        {
            let mut state = self.state.lock().expect("durable lock");
            state.done[node] = match stored {
                Ok(()) => 1,
                Err(e) => {
                    state.failed.insert(node, e);
                    2
                }
            };
        }
        self.changed.notify_waiters();
    }

    /// Mark `node` pending again (before it runs).
    fn reset(&self, node: usize) {
        let mut state = self.state.lock().expect("durable lock");
        state.done[node] = 0;
        state.failed.remove(&node);
    }

    /// Wait until `node`'s records are durable, or could not be stored.
    async fn wait(&self, node: usize) -> Result<(), String> {
        loop {
            // Registered before the check, so a `set` in between still wakes it.
            let changed = self.changed.notified();
            {
                let state = self.state.lock().expect("durable lock");
                match state.done[node] {
                    0 => {}
                    1 => return Ok(()),
                    _ => return Err(state.failed.get(&node).cloned().unwrap_or_default()),
                }
            }
            changed.await;
        }
    }

    /// Why records could not be stored, node by node.
    fn failures(&self) -> Vec<String> {
        let state = self.state.lock().expect("durable lock");
        state.failed.values().cloned().collect()
    }
}

/// Where a run's measured records go (see [`Shared::sink`]).
enum Sink {
    Store(benchfleet_store::BatchWriter),
    /// Per node index, until [`NodeRunner::run_node`] takes them.
    Collect(Mutex<BTreeMap<usize, Vec<RunRecord>>>),
}

/// State shared by every node's future.
struct Shared {
    /// Where measured records go: committed in batches (one blob batch and one catalog
    /// transaction each), so a node's concurrency slot is free as soon as its process is
    /// measured; or handed back to the fleet worker, which stores them with the node's
    /// completion.
    sink: Sink,
    /// Per node: whether its records are durable. Dependents wait for their inputs' records
    /// before they start.
    durable: Durable,
    /// Background commits still in flight (finished ones are dropped as nodes end); the run
    /// waits for all of them before it ends.
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The suite's nodes by index (for messages).
    nodes: Vec<Arc<Node>>,
    run_id: RunId,
    suite: String,
    tags: BTreeMap<String, String>,
    storage: Storage,
    stderr_tail: usize,
    grace: Duration,
    /// The run's one kill flag: cancelling the run (Ctrl-C) signals every process it has running.
    /// One for the run, not one (and a watching task) per node.
    kill: Kill,
    events: UnboundedSender<RunnerEvent>,
    results: Mutex<Vec<NodeResult>>,
    /// Nodes whose results were reused (cache hits), for display.
    reused: Mutex<Vec<NodeResult>>,
    /// Summaries of the load nodes that ran.
    loads: Mutex<Vec<crate::loadgen::NodeLoadOutcome>>,
    /// Cache key of each node, by index.
    keys: Vec<benchfleet_model::Digest>,
    /// The suite's output directory (each node's `{out}` is under it).
    out_dir: std::path::PathBuf,
    use_cache: bool,
    /// How far each node got in the run being resumed, by index; empty for a new run (every
    /// node [`NodeProgress::NotRun`]).
    finished: Vec<crate::cache::NodeProgress>,
    /// Processes of this run in flight, to tag each measured run alone or concurrent.
    overlap: Overlap,
    /// CPUs handed out to the jobs running at once (`None`: at most one job at a time, no
    /// pinning).
    cpu_pool: Option<CpuPool>,
    /// Spawn cost of each shell used by a node (or why it could not be measured).
    shell_costs: BTreeMap<String, Result<Measurement, String>>,
    /// Runs every process of the run.
    executor: Arc<dyn Executor>,
}

/// The CPUs this process may use, handed out to running jobs: each takes its declared `cpus`
/// (rounded up) or, without a declaration, an even share of the CPUs between the jobs that may
/// run at once; always the least used CPUs, so jobs get CPUs of their own while there are enough
/// and share the least busy ones otherwise.
#[derive(Debug)]
struct CpuPool {
    cpus: Vec<usize>,
    /// Jobs holding each CPU of `cpus`.
    users: Mutex<Vec<u32>>,
    /// CPUs of a job that declares none.
    share: usize,
}

impl CpuPool {
    fn new(cpus: Vec<usize>, width: usize) -> CpuPool {
        let share = (cpus.len() / width.max(1)).max(1);
        CpuPool {
            users: Mutex::new(vec![0; cpus.len()]),
            cpus,
            share,
        }
    }

    /// CPUs for a job needing `cpus` (0: undeclared), held until the guard is dropped.
    fn take(&self, cpus: f64) -> CpuSet<'_> {
        let want = if cpus > 0.0 {
            (cpus.ceil() as usize).max(1)
        } else {
            self.share
        }
        .min(self.cpus.len());
        let mut users = self.users.lock().expect("cpu pool lock");
        let mut order: Vec<usize> = (0..self.cpus.len()).collect();
        // Least used first, then in CPU order (stable sort).
        order.sort_by_key(|&i| users[i]);
        let mut idx: Vec<usize> = order.into_iter().take(want).collect();
        idx.sort_unstable();
        for &i in &idx {
            users[i] += 1;
        }
        CpuSet { pool: self, idx }
    }
}

/// CPUs held by a running job, given back on drop.
struct CpuSet<'a> {
    pool: &'a CpuPool,
    /// Indexes into the pool's CPUs.
    idx: Vec<usize>,
}

impl CpuSet<'_> {
    fn cpus(&self) -> Vec<usize> {
        self.idx.iter().map(|&i| self.pool.cpus[i]).collect()
    }
}

impl Drop for CpuSet<'_> {
    fn drop(&mut self) {
        if let Ok(mut users) = self.pool.users.lock() {
            for &i in &self.idx {
                users[i] = users[i].saturating_sub(1);
            }
        }
    }
}

/// How many jobs may run at once, the CPU sets to pin them to, and warnings about it.
/// How many nodes run at once (`opts.jobs`, 0: the cores) and their CPUs, the plan's warnings
/// sent as events.
fn placement(
    suite: &Suite,
    opts: &RunOptions,
    events: &UnboundedSender<RunnerEvent>,
) -> (usize, Option<CpuPool>) {
    let concurrency = if opts.jobs == 0 {
        host::available_cores()
    } else {
        opts.jobs
    };
    let (cpu_pool, warnings) = plan_isolation(suite, concurrency);
    for warning in warnings {
        let _ = events.send(RunnerEvent::Warning {
            node: None,
            warning,
        });
    }
    (concurrency, cpu_pool)
}

fn plan_isolation(suite: &Suite, concurrency: usize) -> (Option<CpuPool>, Vec<Warning>) {
    let width = concurrency.min(suite.nodes.len());
    if width <= 1 {
        return (None, Vec::new());
    }
    let mut warnings = Vec::new();
    let allowed = benchfleet_metrics::allowed_cpus();
    let physical = crate::cpus::physical_cores().unwrap_or(allowed.len());
    if width > physical {
        warnings.push(Warning::MoreJobsThanCores {
            jobs: width,
            physical,
        });
    }
    if !allowed.is_empty() && width > allowed.len() {
        warnings.push(Warning::JobsShareCpus {
            jobs: width,
            cpus: allowed.len(),
        });
    }
    if suite.nodes.iter().any(|n| n.resources.memory_bytes > 0)
        && benchfleet_metrics::memory_limit_method() == MemoryLimitVia::RlimitAs
    {
        warnings.push(Warning::MemoryLimitByRlimit);
    }
    let pool = (!allowed.is_empty()).then(|| CpuPool::new(allowed, width));
    (pool, warnings)
}

/// Measure the spawn cost of every shell a non-load node runs through (blocking: before
/// anything else runs, so that nothing disturbs it).
fn shell_costs(ex: &dyn Executor, suite: &Suite) -> BTreeMap<String, Result<Measurement, String>> {
    let shells: std::collections::BTreeSet<&str> = suite
        .nodes
        .iter()
        .filter(|n| n.load.is_none())
        .filter_map(|n| n.settings().shell.as_deref())
        .collect();
    crate::exec::shell_costs(ex, shells)
}

/// Outlier counts `(runs, severe, mild, z)` of one node's successful wall times, when they
/// deserve a warning (the rule `bench` warns by: [`benchfleet_analysis::outliers_to_warn`]).
fn outliers_of(records: &[RunRecord]) -> Option<(usize, usize, usize, usize)> {
    let times: Vec<f64> = records
        .iter()
        .filter(|r| r.outcome.is_success())
        .map(|r| r.measurement.wall_secs())
        .collect();
    benchfleet_analysis::outliers_to_warn(&times).map(|w| (w.samples, w.severe, w.mild, w.z))
}

/// Build the scheduler's DAG, refusing cycles with the names that form them and nodes larger
/// than this host.
pub fn build_dag(suite: &Suite) -> Result<Dag<NodeTaskHandle>, Error> {
    // Admission needs every node to fit the host at all; say which one does not, by name.
    if let Ok(host) = Resources::host()
        && let Some(n) = suite.nodes.iter().find(|n| !n.resources.fits_in(host))
    {
        return Err(Error::Schedule(format!(
            "{} `{}` needs {} but this host has {}; lower its `resources`/`cpus`/`memory`",
            n.kind.as_str(),
            n.name,
            n.resources,
            host
        )));
    }
    suite_dag(suite)
}

/// The suite's DAG, refusing cycles with the names that form them (whatever the host).
pub fn suite_dag(suite: &Suite) -> Result<Dag<NodeTaskHandle>, Error> {
    let mut dag = Dag::with_capacity(suite.nodes.len());
    for node in &suite.nodes {
        dag.add_node(NodeTaskHandle(Arc::clone(node)));
    }
    for (i, node) in suite.nodes.iter().enumerate() {
        for &dep in &node.needs {
            dag.add_dependency(NodeId::from_index(i), NodeId::from_index(dep));
        }
    }
    dag.check_acyclic().map_err(|c| Error::Cycle {
        path: suite.source.display().to_string(),
        cycle: c
            .cycle
            .iter()
            .map(|id| suite.nodes[id.index()].name.clone())
            .collect(),
    })?;
    Ok(dag)
}

/// A scheduled node (opaque outside the runner).
#[derive(Debug)]
pub struct NodeTaskHandle(Arc<Node>);

impl Task for NodeTaskHandle {
    fn resources(&self) -> Resources {
        self.0.resources
    }
    /// Benchmarks are measured alone by default: nothing else of the suite runs beside them.
    fn exclusive(&self) -> bool {
        self.0.exclusive
    }
    fn retry(&self) -> RetryPolicy {
        if self.0.settings().retries == 0 {
            RetryPolicy::none()
        } else {
            RetryPolicy::attempts(self.0.settings().retries + 1)
                .with_backoff(Duration::from_millis(200), Duration::from_secs(10))
                .with_jitter(0.2)
        }
    }
}

/// Run `suite`, storing every measured run in `storage` as soon as its node finishes.
///
/// Failures of commands are not errors: they are recorded, their dependents are skipped, and
/// the outcome says so. Errors are for problems before anything runs (cycles, a node too large
/// for the budget: then no run is registered) and storage.
pub async fn run_suite(
    suite: &Suite,
    storage: &Storage,
    opts: &RunOptions,
    events: UnboundedSender<RunnerEvent>,
) -> Result<RunOutcome, Error> {
    run_suite_with(suite, storage, opts, events, Arc::new(crate::exec::Real)).await
}

/// [`run_suite`] with the processes run by `executor` (a mock in tests).
pub async fn run_suite_with(
    suite: &Suite,
    storage: &Storage,
    opts: &RunOptions,
    events: UnboundedSender<RunnerEvent>,
    executor: Arc<dyn Executor>,
) -> Result<RunOutcome, Error> {
    // Nodes whose required programs are missing (and what needs them) are left out of the
    // schedule and reported skipped, with the reason.
    let (
        available,
        crate::suite::Unavailable {
            nodes: unavailable,
            missing,
        },
    ) = suite.unavailable(&opts.base_dir);
    let suite = available.as_ref().unwrap_or(suite);
    let dag = build_dag(suite)?;
    admit(suite, opts.budget)?;
    let keys = crate::cache::node_keys(suite, &opts.base_dir)?;
    let (run, finished) = match &opts.resume {
        Some(earlier) => {
            let finished = crate::cache::finished_nodes(storage, earlier, suite, &keys).await?;
            let mut run = earlier.clone();
            run.status = RunStatus::Running;
            run.finished_at = None;
            run.tags.extend(opts.tags.clone());
            (run, finished)
        }
        None => {
            let run = crate::session::new_run(
                host::new_run_id(),
                &suite.name,
                &suite.source.display().to_string(),
                opts.tags.clone(),
            );
            (run, Vec::new())
        }
    };
    // Shell spawn costs are measured before anything runs beside them.
    let costs = {
        let (suite, ex) = (suite.clone(), executor.clone());
        tokio::task::spawn_blocking(move || shell_costs(&*ex, &suite))
            .await
            .map_err(|e| Error::Internal(format!("measuring the shell's spawn cost failed: {e}")))?
    };
    let mut run = run;
    if !unavailable.is_empty() {
        run.tags.insert(
            TAG_REQUIRES_MISSING.to_owned(),
            missing.into_iter().collect::<Vec<_>>().join(","),
        );
        run.tags.insert(
            TAG_REQUIRES_SKIPPED.to_owned(),
            unavailable.len().to_string(),
        );
    }
    let run_id = run.run_id.clone();
    let mut session = Session::begin(storage, run).await?;
    if opts.cancel.is_cancelled() {
        session.set_interrupted();
    }
    let _ = events.send(RunnerEvent::Started {
        run_id: run_id.clone(),
        nodes: suite.nodes.len(),
    });
    for (node, reason) in &unavailable {
        let _ = events.send(RunnerEvent::NodeUnavailable {
            name: node.name.clone(),
            reason: reason.clone(),
        });
    }
    let (concurrency, cpu_pool) = placement(suite, opts, &events);

    // The one cancellation the user holds, as the kill flag every measuring thread watches.
    let kill = Kill::new();
    let watch = crate::event::kill_on_cancel(&opts.cancel, &kill, opts.grace);
    // The batching task ends by itself when `shared` (the last writer handle) is dropped.
    let (writer, _writer_task) =
        benchfleet_store::BatchWriter::spawn(storage.clone(), group_commit());
    let shared = Arc::new(Shared {
        sink: Sink::Store(writer),
        durable: Durable::new(suite.nodes.len()),
        pending: Mutex::new(Vec::new()),
        nodes: suite.nodes.clone(),
        run_id,
        suite: suite.name.clone(),
        tags: opts.tags.clone(),
        storage: storage.clone(),
        stderr_tail: opts.stderr_tail_bytes,
        grace: opts.grace,
        kill: kill.clone(),
        events: events.clone(),
        results: Mutex::new(Vec::with_capacity(suite.nodes.len())),
        reused: Mutex::new(Vec::new()),
        loads: Mutex::new(Vec::new()),
        keys,
        out_dir: suite.out_dir.clone(),
        use_cache: opts.use_cache,
        finished,
        overlap: Overlap::default(),
        cpu_pool,
        shell_costs: costs,
        executor,
    });
    let sched_opts = benchfleet_sched::Options {
        concurrency,
        keep_going: opts.keep_going,
        budget: opts.budget,
        cancel: opts.cancel.clone(),
        // Nodes wait on processes (on the blocking pool) and storage: polling them on the
        // scheduler's task saves a cross-thread wake-up per node.
        placement: benchfleet_sched::Placement::Local,
    };
    let exec = |ctx: TaskCtx, task: &NodeTaskHandle| {
        let node = task.0.clone();
        let shared = shared.clone();
        async move { measure_node(ctx, node, shared).await }
    };
    let names = &suite.nodes;
    let on_event = |e: &Event| match e {
        Event::Skipped { node, because } => {
            let _ = events.send(RunnerEvent::NodeSkipped {
                node: node.index(),
                name: names[node.index()].name.clone(),
                because: names[because.index()].name.clone(),
            });
        }
        Event::Cancelled => {
            let _ = events.send(RunnerEvent::Cancelling);
        }
        _ => {}
    };
    session.sample(opts.sample_interval);
    let summary = benchfleet_sched::run(&dag, &sched_opts, exec, on_event).await;
    watch.abort();
    // Everything measured is committed before the run's final status is written.
    let pending = std::mem::take(&mut *shared.pending.lock().expect("pending lock"));
    for p in pending {
        let _ = p.await;
    }
    let store_failures = shared.durable.failures();
    for f in &store_failures {
        tracing::error!("{f}");
    }
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let status = crate::session::final_status(opts.cancel.is_cancelled(), true);
            session.finish(status).await?;
            return Err(Error::Schedule(e.to_string()));
        }
    };

    let states: Vec<(Arc<Node>, NodeState)> = suite
        .nodes
        .iter()
        .zip(&summary.states)
        .map(|(n, s)| (n.clone(), *s))
        .collect();
    let any_failed = !store_failures.is_empty()
        || states
            .iter()
            .any(|(_, s)| !matches!(s, NodeState::Succeeded | NodeState::Cached));
    let done = session
        .finish(final_status(opts.cancel.is_cancelled(), any_failed))
        .await?;
    for w in &done.warnings {
        tracing::warn!("{w}");
    }

    let mut results = std::mem::take(&mut *shared.results.lock().expect("results lock"));
    sort_results(&mut results);
    let mut reused = std::mem::take(&mut *shared.reused.lock().expect("reused lock"));
    sort_results(&mut reused);
    let failures = summary
        .messages
        .iter()
        .map(|(id, m)| (suite.nodes[id.index()].name.clone(), m.clone()))
        .collect();
    let loads = std::mem::take(&mut *shared.loads.lock().expect("loads lock"));
    Ok(RunOutcome {
        run: done.run,
        results,
        loads,
        reused,
        states,
        unavailable,
        failures,
        series: done.series,
    })
}

/// The nodes of one suite run executed one at a time by the caller (the fleet worker): the same
/// measuring path as [`run_suite`] (hooks, shell cost, placement, warmups, the runs its policy
/// asks for, events), with each node's records handed back instead of stored, so that the caller
/// stores them with the node's completion. The run's row and status belong to the caller.
pub struct NodeRunner {
    shared: Arc<Shared>,
    cancel: CancelToken,
    watch: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for NodeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRunner")
            .field("run_id", &self.shared.run_id)
            .field("nodes", &self.shared.nodes.len())
            .finish_non_exhaustive()
    }
}

/// One node executed by a [`NodeRunner`].
#[derive(Debug)]
pub struct NodeRun {
    pub state: NodeState,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Its measured runs, to store (none for a cache hit or a load node, which stores its own).
    pub records: Vec<RunRecord>,
}

impl NodeRunner {
    /// Prepare to run nodes of `suite` in the existing run `run_id`: cache keys, shell spawn
    /// costs (measured now, before anything runs), CPU placement for `opts.jobs` nodes at once.
    /// `opts.cancel` stops every node of this run.
    pub async fn prepare(
        suite: &Suite,
        storage: &Storage,
        run_id: RunId,
        opts: &RunOptions,
        events: UnboundedSender<RunnerEvent>,
        executor: Arc<dyn Executor>,
    ) -> Result<NodeRunner, Error> {
        let keys = crate::cache::node_keys(suite, &opts.base_dir)?;
        let costs = {
            let (suite, ex) = (suite.clone(), executor.clone());
            tokio::task::spawn_blocking(move || shell_costs(&*ex, &suite))
                .await
                .map_err(|e| {
                    Error::Internal(format!("measuring the shell's spawn cost failed: {e}"))
                })?
        };
        let (_, cpu_pool) = placement(suite, opts, &events);
        let kill = Kill::new();
        let watch = crate::event::kill_on_cancel(&opts.cancel, &kill, opts.grace);
        let durable = Durable::new(suite.nodes.len());
        // The nodes a claimed node needs are complete (the queue says so): durable.
        durable.state.lock().expect("durable lock").done.fill(1);
        let shared = Arc::new(Shared {
            sink: Sink::Collect(Mutex::new(BTreeMap::new())),
            durable,
            pending: Mutex::new(Vec::new()),
            nodes: suite.nodes.clone(),
            run_id,
            suite: suite.name.clone(),
            tags: opts.tags.clone(),
            storage: storage.clone(),
            stderr_tail: opts.stderr_tail_bytes,
            grace: opts.grace,
            kill,
            events,
            results: Mutex::new(Vec::new()),
            reused: Mutex::new(Vec::new()),
            loads: Mutex::new(Vec::new()),
            keys,
            out_dir: suite.out_dir.clone(),
            use_cache: opts.use_cache,
            finished: Vec::new(),
            overlap: Overlap::default(),
            cpu_pool,
            shell_costs: costs,
            executor,
        });
        Ok(NodeRunner {
            shared,
            cancel: opts.cancel.clone(),
            watch,
        })
    }

    /// Run node `index` (attempt `attempt`, counted from 1) to its end.
    pub async fn run_node(&self, index: usize, attempt: u32) -> NodeRun {
        let shared = &self.shared;
        let Some(node) = shared.nodes.get(index).cloned() else {
            return NodeRun {
                state: NodeState::Failed,
                failure: Some(format!(
                    "node #{index} is not in this suite of {} nodes",
                    shared.nodes.len()
                )),
                records: Vec::new(),
            };
        };
        shared.durable.reset(index);
        let ctx = TaskCtx {
            node: NodeId::from_index(index),
            attempt: attempt.max(1),
            cancel: self.cancel.clone(),
        };
        let (mut state, outcome) = execute_node(ctx, node, shared.clone()).await;
        let stored = shared.durable.wait(index).await;
        let records = match &shared.sink {
            Sink::Collect(held) => held
                .lock()
                .expect("collected lock")
                .remove(&index)
                .unwrap_or_default(),
            Sink::Store(_) => Vec::new(),
        };
        // The worker reports on nodes, not on the run: nothing else is kept per node.
        shared.results.lock().expect("results lock").clear();
        shared.reused.lock().expect("reused lock").clear();
        let mut failure = match outcome {
            TaskOutcome::Failed { message, .. } => Some(message),
            _ => None,
        };
        if let Err(e) = stored {
            state = NodeState::Failed;
            failure.get_or_insert(e);
        }
        NodeRun {
            state,
            failure,
            records,
        }
    }
}

impl Drop for NodeRunner {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// Run tag: the programs named in `requires` that were not found (comma-separated).
pub const TAG_REQUIRES_MISSING: &str = "requires.missing";
/// Run tag: how many nodes were skipped because a required program was missing.
pub const TAG_REQUIRES_SKIPPED: &str = "requires.skipped";

/// Refuse a suite with a node larger than the whole budget (the host minus its reserve) before
/// anything is registered or run.
fn admit(suite: &Suite, budget: Option<Resources>) -> Result<(), Error> {
    let Some(budget) = budget else { return Ok(()) };
    match suite.nodes.iter().find(|n| !n.resources.fits_in(budget)) {
        Some(n) => Err(Error::Schedule(format!(
            "`{}` needs {} but the budget is {budget} (host minus the reserve in `run.reserve_cpu` / `run.reserve_memory`); lower its resources or the reserve",
            n.name, n.resources
        ))),
        None => Ok(()),
    }
}

/// Group commit: no waiting for more records. Whatever queued while the previous commit was
/// running goes into the next one, so commits batch under load and add no latency when idle.
fn group_commit() -> benchfleet_store::BatchPolicy {
    benchfleet_store::BatchPolicy {
        max_delay: Duration::ZERO,
        ..Default::default()
    }
}

/// Where a node's measuring loop starts. Fresh nodes: nothing stored, count unknown, iteration 0.
#[derive(Debug, Default)]
struct ResumePoint {
    /// Runs stored in the run being resumed, read back for the node's result and statistics.
    earlier: Vec<RunRecord>,
    /// How many measured runs are stored already (they count towards `planned`).
    done: u32,
    /// The planned number of runs, when already chosen (from the stored first run).
    planned: Option<u32>,
    /// The iteration number of the next measured run.
    next_iteration: u32,
}

async fn resume_point(progress: NodeProgress, node: &Node, shared: &Shared) -> ResumePoint {
    let NodeProgress::Partial {
        runs,
        next_iteration,
        planned,
    } = progress
    else {
        return ResumePoint::default();
    };
    let earlier = crate::cache::records_of(&shared.storage, &shared.run_id, &node.name)
        .await
        .unwrap_or_default();
    ResumePoint {
        earlier,
        done: runs,
        planned: Some(planned),
        next_iteration,
    }
}

async fn measure_node(ctx: TaskCtx, node: Arc<Node>, shared: Arc<Shared>) -> TaskOutcome {
    execute_node(ctx, node, shared).await.1
}

/// Run one node (unless cached or finished before a resume) and commit its records in the
/// background: its final state and what the scheduler is told.
async fn execute_node(
    ctx: TaskCtx,
    node: Arc<Node>,
    shared: Arc<Shared>,
) -> (NodeState, TaskOutcome) {
    let index = ctx.node.index();
    let _ = shared.events.send(RunnerEvent::NodeStarted {
        node: index,
        name: node.name.clone(),
        kind: node.kind,
    });
    let finish = |state: NodeState, runs: usize, failure: Option<String>| {
        let _ = shared.events.send(RunnerEvent::NodeFinished {
            node: index,
            name: node.name.clone(),
            state,
            runs,
            failure: failure.clone(),
        });
        let outcome = match failure {
            None => TaskOutcome::Succeeded,
            // Retried only when the node asks for retries (its RetryPolicy).
            Some(message) => TaskOutcome::Failed {
                message,
                retryable: true,
            },
        };
        (state, outcome)
    };

    // Already finished in the run being resumed, or an unchanged node with a stored result.
    // A node measured part-way in the run being resumed is completed in it, never replaced by
    // a cached result from elsewhere.
    let out_dir = crate::suite::node_out_dir(&shared.out_dir, &node.name);
    let progress = shared.finished.get(index).copied().unwrap_or_default();
    let reused = if progress == NodeProgress::Finished {
        crate::cache::records_of(&shared.storage, &shared.run_id, &node.name).await
    } else if shared.use_cache && node.cache && progress == NodeProgress::NotRun {
        crate::cache::lookup(&shared.storage, &shared.keys[index], &node, &out_dir).await
    } else {
        None
    };
    if let Some(records) = reused {
        let _ = shared.events.send(RunnerEvent::NodeFinished {
            node: index,
            name: node.name.clone(),
            state: NodeState::Cached,
            runs: records.len(),
            failure: None,
        });
        let result = NodeResult::of(node.clone(), &records, &shared.run_id);
        shared.reused.lock().expect("reused lock").extend(result);
        shared.durable.set(index, Ok(()));
        return (NodeState::Cached, TaskOutcome::Cached);
    }

    // A node starts only once the records of the nodes it needs are durable, so a crash can never
    // leave a result stored without the results it was built on.
    for &dep in &node.needs {
        if let Err(e) = shared.durable.wait(dep).await {
            let msg = format!(
                "the results of `{}` it needs could not be stored: {e}",
                dep_name(&shared, dep)
            );
            shared.durable.set(index, Ok(()));
            return finish(NodeState::Failed, 0, Some(msg));
        }
    }
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        let msg = format!(
            "cannot create output directory `{}`: {e}",
            out_dir.display()
        );
        return finish(NodeState::Failed, 0, Some(msg));
    }
    // Isolation while other jobs may run: pinned to this job's CPUs, limited to its memory. An
    // exclusive node runs alone, so it gets the whole machine, as at `-j 1`.
    let slot = shared
        .cpu_pool
        .as_ref()
        .filter(|_| !node.exclusive)
        .map(|p| p.take(node.resources.cpus()));
    let mut iso_tags = BTreeMap::new();
    let mut spec = ProcessSpec::new(node.program.clone(), node.args.clone());
    if let Some(slot) = &slot {
        spec.cpus = Some(slot.cpus());
        let list: Vec<String> = slot.cpus().iter().map(usize::to_string).collect();
        iso_tags.insert(TAG_CPUS.to_owned(), list.join(","));
        if node.resources.memory_bytes > 0 {
            spec.memory_limit = Some(node.resources.memory_bytes);
        }
    }
    // Shell mode: the shell's spawn cost is subtracted from every measured run.
    let overhead = match (&node.settings().shell, &node.load) {
        (Some(sh), None) => match shared.shell_costs.get(sh) {
            Some(Ok(cost)) => {
                iso_tags.insert(TAG_SHELL.to_owned(), sh.clone());
                iso_tags.insert(TAG_SHELL_OVERHEAD.to_owned(), cost.wall_ns.to_string());
                Some(*cost)
            }
            Some(Err(e)) => return finish(NodeState::Failed, 0, Some(e.clone())),
            None => None,
        },
        _ => None,
    };
    spec.env = node
        .settings()
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    spec.env
        .push(("BENCHFLEET_OUT".into(), out_dir.display().to_string()));
    spec.env
        .push(("BENCHFLEET_RUN_ID".into(), shared.run_id.to_string()));
    spec.cwd = node.settings().cwd.clone();
    spec.timeout = node.settings().timeout;
    spec.stderr_tail = shared.stderr_tail;
    let inv = Arc::new(invocation(&node, spec, overhead));
    let kill = shared.kill.clone();
    // Hooks run on the blocking pool; a node without one skips the hand-off (two thread wake-ups
    // per node, a few percent of a 10,000-node DAG of short jobs).
    let setup = match inv.setup {
        Some(_) => {
            blocking({
                let (inv, ex, kill) = (inv.clone(), shared.executor.clone(), kill.clone());
                move || inv.run_setup(&*ex, &kill)
            })
            .await
        }
        None => Ok(()),
    };
    let setup_ok = setup.is_ok();
    let mut failure = setup.err();
    for _ in 0..node.policy.warmup {
        if failure.is_some() || ctx.cancel.is_cancelled() {
            break;
        }
        match run_once(&inv, &kill, &shared, None).await {
            Err(e) => {
                failure = Some(e);
                break;
            }
            Ok(once) => {
                if !once.result.outcome.is_success() && !ctx.cancel.is_cancelled() {
                    failure = Some(crate::exec::describe_failure("warmup run", &once.result));
                    break;
                }
                failure = once.concluded.err();
            }
        }
    }

    let mut tags = shared.tags.clone();
    if ctx.attempt > 1 {
        tags.insert("attempt".into(), ctx.attempt.to_string());
    }
    tags.extend(iso_tags);
    let mut records = Vec::new();
    // Resuming a node interrupted part-way: its stored runs count, only the missing ones are
    // measured (after warming up again), numbered on.
    let ResumePoint {
        earlier,
        done,
        mut planned,
        next_iteration: mut iteration,
    } = resume_point(progress, &node, &shared).await;
    // A load node runs its profile instead of the loop below; its records are already stored.
    let mut load_runs = 0usize;
    if let Some(plan) = &node.load
        && failure.is_none()
        && !ctx.cancel.is_cancelled()
    {
        // The runs of a load overlap each other by design; the load overlaps other jobs as one.
        let mut tags = tags.clone();
        tags.insert(RunRecord::TAG_CONCURRENT.into(), "true".into());
        if inv.spec.memory_limit.is_some() {
            tags.insert(
                TAG_MEMORY_LIMIT.into(),
                benchfleet_metrics::memory_limit_method().as_str().into(),
            );
        }
        let token = shared.overlap.start();
        (load_runs, failure) =
            measure_load(&node, plan, &inv.spec, index, &tags, &ctx, &shared).await;
        shared.overlap.end(token);
    }
    let owner = RecordOwner {
        run_id: shared.run_id.clone(),
        suite: shared.suite.clone(),
        name: node.name.clone(),
        kind: node.kind,
        command: node.command_line(),
        parameters: node.parameters.clone(),
    };
    while node.load.is_none() && failure.is_none() && !ctx.cancel.is_cancelled() {
        let once = match run_once(&inv, &kill, &shared, Some((index, iteration))).await {
            Ok(once) => once,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if ctx.cancel.is_cancelled() && !once.result.outcome.is_success() {
            // Killed by cancellation: not a measurement of the command.
            break;
        }
        let r = once.result;
        let mut run_tags = tags.clone();
        run_tags.insert(
            RunRecord::TAG_CONCURRENT.into(),
            once.concurrent.to_string(),
        );
        if let Some(via) = r.memory_limit {
            run_tags.insert(TAG_MEMORY_LIMIT.into(), via.as_str().into());
        }
        let ok = r.outcome.is_success();
        let wall = Duration::from_nanos(r.measurement.wall_ns);
        let total = *planned.get_or_insert_with(|| node.policy.run_count(wall));
        if !ok {
            failure = Some(crate::exec::describe_failure("run", &r));
        }
        records.push(crate::exec::record_of(
            &owner,
            iteration,
            once.started_at,
            r,
            run_tags,
        ));
        let _ = shared.events.send(RunnerEvent::Measured {
            node: index,
            iteration,
            planned: total,
            wall,
            ok,
        });
        iteration += 1;
        if failure.is_none()
            && let Err(e) = once.concluded
        {
            failure = Some(e);
        }
        if done as usize + records.len() >= total as usize {
            break;
        }
    }
    // Cleanup runs whenever setup did, even after a failed run (like hyperfine's --cleanup).
    if setup_ok && inv.cleanup.is_some() {
        let cleaned = blocking({
            let (inv, ex, kill) = (inv.clone(), shared.executor.clone(), kill.clone());
            move || inv.run_cleanup(&*ex, &kill)
        })
        .await;
        if failure.is_none() {
            failure = cleaned.err();
        }
    }
    drop(slot);
    // The node's runs stored before the resume belong to its result too.
    let earlier_runs = earlier.len();
    records.splice(0..0, earlier);
    let earlier_uncounted = done as usize - earlier_runs.min(done as usize);
    if node.kind == NodeKind::Benchmark
        && let Some((runs, severe, mild, z_outliers)) = outliers_of(&records)
    {
        let _ = shared.events.send(RunnerEvent::Outliers {
            node: index,
            name: node.name.clone(),
            runs,
            severe,
            mild,
            z_outliers,
        });
    }
    if let Some(o) = &inv.overhead {
        let ok: Vec<u64> = records
            .iter()
            .filter(|r| r.outcome.is_success())
            .map(|r| r.measurement.wall_ns)
            .collect();
        if !ok.is_empty()
            && u128::from(ok.iter().sum::<u64>()) < SHELL_SHORT_MEAN.as_nanos() * ok.len() as u128
        {
            let _ = shared.events.send(RunnerEvent::Warning {
                node: Some(index),
                warning: Warning::ShortWithShell {
                    name: node.name.clone(),
                    shell_wall_ns: o.wall_ns,
                },
            });
        }
    }
    let runs = records.len() + earlier_uncounted + load_runs;
    // An interrupted load is not a complete result.
    let interrupted_load = node.load.is_some() && ctx.cancel.is_cancelled();
    let result = NodeResult::of(node.clone(), &records, &shared.run_id);
    shared.results.lock().expect("results lock").extend(result);
    // Runs stored before the resume are in storage already: only the new ones are written.
    records.drain(..earlier_runs);
    // Commit in the background; the slot is free now, dependents wait on `durable`.
    let complete = failure.is_none() && !interrupted_load && (runs as u32) >= planned.unwrap_or(1);
    let commit = {
        let shared = shared.clone();
        let node = node.clone();
        async move {
            let stored = match &shared.sink {
                _ if records.is_empty() => Ok(()),
                Sink::Store(writer) => writer.write(records).await.map(|_| ()).map_err(|e| {
                    format!(
                        "`{}`: measured {runs} runs but could not store them: {e}",
                        node.name
                    )
                }),
                Sink::Collect(held) => {
                    held.lock().expect("collected lock").insert(index, records);
                    Ok(())
                }
            };
            // A fleet node's cache entry waits for its completion to be accepted.
            if stored.is_ok() && complete && node.cache && matches!(shared.sink, Sink::Store(_)) {
                let entry = crate::cache::CacheEntry {
                    run_id: shared.run_id.clone(),
                    name: node.name.clone(),
                    records: runs,
                };
                if let Err(e) =
                    crate::cache::remember(&shared.storage, &shared.keys[index], &entry).await
                {
                    tracing::warn!("could not record the cache entry of `{}`: {e}", node.name);
                }
            }
            shared.durable.set(index, stored);
        }
    };
    let handle = tokio::spawn(commit);
    let mut pending = shared.pending.lock().expect("pending lock");
    // Only commits still in flight are kept: a finished task's handle would keep its task
    // allocation alive until the run ends, one per node (memory growing with the DAG). Their
    // outcome is in `durable`.
    pending.retain(|h| !h.is_finished());
    pending.push(handle);
    drop(pending);
    match failure {
        Some(f) => finish(NodeState::Failed, runs, Some(f)),
        None if interrupted_load
            || ctx.cancel.is_cancelled() && (runs as u32) < planned.unwrap_or(1) =>
        {
            finish(NodeState::Cancelled, runs, None)
        }
        None => finish(NodeState::Succeeded, runs, None),
    }
}

/// A node with a `load` table: the load engine ([`crate::loadgen::run_node`]) stores its records
/// in this run as they complete, with the `load.*` tags. Returns the records stored and the
/// node's failure, if any.
async fn measure_load(
    node: &Node,
    plan: &crate::loadgen::LoadPlan,
    spec: &ProcessSpec,
    index: usize,
    tags: &BTreeMap<String, String>,
    ctx: &TaskCtx,
    shared: &Shared,
) -> (usize, Option<String>) {
    use crate::loadgen as load;
    let job = load::LoadJob {
        plan: plan.clone(),
        spec: spec.clone(),
        owner: RecordOwner {
            kind: NodeKind::Benchmark,
            run_id: shared.run_id.clone(),
            suite: shared.suite.clone(),
            name: node.name.clone(),
            command: node.command_line(),
            parameters: node.parameters.clone(),
        },
        tags: tags.clone(),
        kill: Kill::new(),
        grace: shared.grace,
        events: load::NodeEvents {
            node: index,
            events: shared.events.clone(),
        },
    };
    match load::run_node(&job, &shared.storage, &ctx.cancel).await {
        Ok(report) => {
            let failure = report.first_failure.as_ref().map(|f| {
                let t = &report.total;
                format!(
                    "{} of {} runs failed; the first: {f}",
                    t.failed,
                    t.failed + t.completed
                )
            });
            let runs = report.records;
            shared
                .loads
                .lock()
                .expect("loads lock")
                .push(load::NodeLoadOutcome {
                    name: node.name.clone(),
                    profile: plan.profile.clone(),
                    report,
                });
            (runs, failure)
        }
        Err(e) => (0, Some(format!("the load could not run: {e}"))),
    }
}

fn dep_name(shared: &Shared, dep: usize) -> String {
    shared
        .nodes
        .get(dep)
        .map_or_else(|| format!("#{dep}"), |n| n.name.clone())
}

/// A node's invocation: its spec, its hooks (sharing its environment, directory, timeout and
/// placement), the shell cost to subtract.
fn invocation(node: &Node, spec: ProcessSpec, overhead: Option<Measurement>) -> Invocation {
    let hook = |field: &str, c: &Option<Box<crate::suite::Command>>| {
        c.as_deref().map(|c| {
            let mut s = spec.clone();
            s.program = c.program.clone();
            s.args = c.args.clone();
            Hook {
                what: format!("`{field}` command"),
                spec: s,
            }
        })
    };
    let h = node.hooks();
    Invocation {
        setup: hook("setup", &h.setup),
        prepare: hook("prepare", &h.prepare),
        conclude: hook("conclude", &h.conclude),
        cleanup: hook("cleanup", &h.cleanup),
        overhead,
        spec,
    }
}

/// `f` on the blocking pool; a failed thread is the node's failure.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("measurement thread failed: {e}")))
}

/// One run of `inv` (prepare, the process, conclude) on the blocking pool. A measured run
/// (`measured`: node and iteration) is announced with [`RunnerEvent::RunStarted`]; warmups are
/// not.
async fn run_once(
    inv: &Arc<Invocation>,
    kill: &Kill,
    shared: &Arc<Shared>,
    measured: Option<(usize, u32)>,
) -> Result<crate::exec::Once, String> {
    let (inv, kill, shared) = (inv.clone(), kill.clone(), shared.clone());
    blocking(move || {
        let events = shared.events.clone();
        let mut on = |phase: Phase| {
            if let (Phase::Started { .. }, Some((node, iteration))) = (phase, measured) {
                let _ = events.send(RunnerEvent::RunStarted { node, iteration });
            }
        };
        inv.once(
            &*shared.executor,
            &inv.spec,
            None,
            &kill,
            &shared.overlap,
            &mut on,
        )
    })
    .await
}

#[cfg(test)]
mod tests;
