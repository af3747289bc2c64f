//! The fleet: `submit` puts a suite's DAG in the queue ([`benchfleet_store::Queue`], in
//! PostgreSQL), and workers on any number of machines claim its ready nodes and run each through
//! the runner's own measuring path ([`crate::runner::NodeRunner`]): the same hooks, shell-cost
//! subtraction, placement and records as `run`. A node's records go into the catalog with its
//! fenced completion, so each is stored once even when a worker dies mid-node (the node then
//! runs again elsewhere: a command may run more than once after a crash).
//!
//! **Outputs between nodes.** Each run has its own output directory on each worker
//! (`<work_dir>/<run id>/out/<node>`). A node that others need ships its output directory, when
//! not empty, to the hot tier's blob store as a zstd-compressed tar (`fleet/<run>/<node>.tar.zst`)
//! before it completes. A worker about to run a node unpacks the outputs of the nodes it needs
//! that it did not produce itself; those it produced are already in place (affinity: a completed
//! node's children prefer the worker that completed it, see the queue's claim order).
//!
//! A consumer above the `runner` driver, like `commits`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use benchfleet_model::{NodeKind, RunId};
use benchfleet_sched::{NodeId, NodeState, Readiness};
use benchfleet_store::{
    BlobKey, Capacity, Claim, Completion, ErrorKind, Finish, LeaseTimes, NodeEnd, Queue,
    QueuedNode, Storage, Submission, WorkerInfo,
};

use crate::event::{CancelToken, RunnerEvent};
use crate::runner::{NodeRunner, RunOptions};
use crate::suite::Suite;
use crate::{Error, host};

/// The pool of nodes submitted without `--pool`, and of workers started without one.
pub const DEFAULT_POOL: &str = "default";

/// How to submit a suite.
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    pub tags: BTreeMap<String, String>,
    pub keep_going: bool,
    /// The pool its nodes go to.
    pub pool: String,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            tags: BTreeMap::new(),
            keep_going: true,
            pool: DEFAULT_POOL.into(),
        }
    }
}

/// The queue's view of `suite` (read from `text`): one row per node, ranked by critical path
/// (as the local scheduler orders ready nodes), and the run row. Cycles are refused here.
pub fn submission(suite: &Suite, text: &str, opts: &SubmitOptions) -> Result<Submission, Error> {
    let dag = crate::runner::suite_dag(suite)?;
    let ready = Readiness::new(&dag).map_err(|e| Error::Schedule(e.to_string()))?;
    let n = suite.nodes.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(ready.priority(NodeId::from_index(i))), i));
    let mut rank = vec![0u32; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as u32;
    }
    let nodes = suite
        .nodes
        .iter()
        .zip(rank)
        .map(|(node, rank)| QueuedNode {
            name: node.name.clone(),
            pool: opts.pool.clone(),
            benchmark: node.kind == NodeKind::Benchmark,
            cpus: node.resources.cpus(),
            memory_bytes: node.resources.memory_bytes,
            needs: node.needs.iter().map(|&d| d as u32).collect(),
            rank,
            max_attempts: node.settings().retries + 1,
        })
        .collect();
    let mut tags = opts.tags.clone();
    tags.insert("fleet".into(), "true".into());
    let run = crate::session::new_run(
        host::new_run_id(),
        &suite.name,
        &suite.source.display().to_string(),
        tags,
    );
    Ok(Submission {
        run,
        suite_text: text.to_owned(),
        source: suite.source.display().to_string(),
        keep_going: opts.keep_going,
        nodes,
    })
}

/// How many nodes a worker runs at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    Fixed(usize),
    /// Between 1 and the cores: up while CPU is under 80% and work waits, down under memory
    /// pressure (over 85%) or when idle.
    Auto,
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Unique per worker process ([`worker_id`]).
    pub id: String,
    pub jobs: Jobs,
    pub pools: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Exit once nothing of its pools is ready, claimed or waiting.
    pub until_idle: bool,
    /// Where each run's node outputs live (`<work_dir>/<run id>/out`).
    pub work_dir: PathBuf,
    /// The working directory (relative `inputs`, `cwd`).
    pub base_dir: PathBuf,
    pub times: LeaseTimes,
    pub heartbeat: Duration,
    /// Longest wait for work between claims when no notification comes.
    pub poll: Duration,
    /// Drain (SIGTERM): claim nothing more, finish and store the running nodes, exit.
    pub drain: CancelToken,
    /// Stop (a second signal): also cancel the running nodes (their processes get `grace`).
    pub stop: CancelToken,
    pub grace: Duration,
    pub stderr_tail_bytes: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: worker_id(),
            jobs: Jobs::Fixed(1),
            pools: vec![DEFAULT_POOL.into()],
            labels: BTreeMap::new(),
            until_idle: false,
            work_dir: PathBuf::from(".benchfleet/fleet"),
            base_dir: PathBuf::from("."),
            times: LeaseTimes::default(),
            heartbeat: Duration::from_millis(250),
            poll: Duration::from_millis(500),
            drain: CancelToken::default(),
            stop: CancelToken::default(),
            grace: Duration::from_secs(2),
            stderr_tail_bytes: 4096,
        }
    }
}

/// What a worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    pub worker: String,
    pub claimed: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Completions the queue refused (the claim had been taken back).
    pub refused: usize,
}

/// This worker's identity: host, pid and a random suffix.
pub fn worker_id() -> String {
    let host = host::host_info().hostname;
    let suffix = host::new_run_id().to_string();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &suffix[suffix.len() - 6..]
    )
}

/// A run this worker has nodes of.
struct RunCtx {
    suite: Suite,
    runner: NodeRunner,
    cancel: CancelToken,
    /// Per node: whether another node uses its outputs (they are shipped).
    needed: Vec<bool>,
    /// Per node: the nodes it needs whose outputs it uses (fetched when not on this worker).
    inputs: Vec<Vec<usize>>,
}

struct Worker {
    queue: Arc<dyn Queue>,
    storage: Storage,
    info: WorkerInfo,
    opts: WorkerOptions,
    events: UnboundedSender<RunnerEvent>,
    runs: tokio::sync::Mutex<HashMap<RunId, Arc<RunCtx>>>,
    /// Runs whose nodes the queue says to stop.
    cancelled: Mutex<Vec<RunId>>,
    running: AtomicUsize,
    /// A running node ended: the claim loop may fill its slot.
    slot_freed: Notify,
    /// Finished claims handed to the completer and not yet completed in the queue.
    completing: AtomicUsize,
    finished: UnboundedSender<Finished>,
    /// Exclusive nodes (benchmarks) take it for writing: they run alone on the worker.
    alone: tokio::sync::RwLock<()>,
    /// Exclusive nodes claimed and not finished: claim nothing meanwhile.
    exclusive: AtomicUsize,
    report: Mutex<WorkerReport>,
    concurrency: AtomicUsize,
    /// CPUs and memory held by the claims running now.
    held: Mutex<(f64, u64)>,
}

/// Run a worker until it drains, is stopped, or (`until_idle`) finds nothing to do.
pub async fn run_worker(
    queue: Arc<dyn Queue>,
    storage: Storage,
    opts: WorkerOptions,
    events: UnboundedSender<RunnerEvent>,
) -> Result<WorkerReport, Error> {
    let cores = host::available_cores();
    let start_jobs = match opts.jobs {
        Jobs::Fixed(n) => n.max(1),
        Jobs::Auto => 1,
    };
    let info = WorkerInfo {
        id: opts.id.clone(),
        host: host::host_info().hostname,
        machine_class: crate::machine::class().to_owned(),
        pools: opts.pools.clone(),
        labels: opts.labels.clone(),
        jobs: match opts.jobs {
            Jobs::Fixed(n) => n as u32,
            Jobs::Auto => cores as u32,
        },
        cpus: cores as f64,
        memory_bytes: host::host_info().memory_bytes,
    };
    queue.register(&info).await?;
    let (finished_tx, finished_rx) = tokio::sync::mpsc::unbounded_channel();
    let w = Arc::new(Worker {
        queue,
        storage,
        report: Mutex::new(WorkerReport {
            worker: info.id.clone(),
            ..WorkerReport::default()
        }),
        info,
        opts,
        events,
        runs: tokio::sync::Mutex::new(HashMap::new()),
        cancelled: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        slot_freed: Notify::new(),
        completing: AtomicUsize::new(0),
        finished: finished_tx,
        alone: tokio::sync::RwLock::new(()),
        exclusive: AtomicUsize::new(0),
        concurrency: AtomicUsize::new(start_jobs),
        held: Mutex::new((0.0, 0)),
    });
    let beat = tokio::spawn(heartbeat_loop(w.clone()));
    let completions = tokio::spawn(completer(w.clone(), finished_rx));
    let auto = matches!(w.opts.jobs, Jobs::Auto).then(|| tokio::spawn(autoscale(w.clone(), cores)));
    let result = claim_loop(&w).await;
    // Drained: wait for what runs and its completions, then leave the queue.
    let mut waited = 0;
    while w.running.load(Ordering::SeqCst) + w.completing.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        if waited % 500 == 0 {
            tracing::info!(
                "waiting for {} running node(s) to finish",
                w.running.load(Ordering::SeqCst)
            );
        }
    }
    beat.abort();
    completions.abort();
    if let Some(a) = auto {
        a.abort();
    }
    let left = w.queue.deregister(&w.info.id).await;
    result?;
    left?;
    let report = w.report.lock().expect("report lock").clone();
    Ok(report)
}

async fn claim_loop(w: &Arc<Worker>) -> Result<(), Error> {
    loop {
        if w.opts.drain.is_cancelled() || w.opts.stop.is_cancelled() {
            return Ok(());
        }
        let running = w.running.load(Ordering::SeqCst);
        let free = w.concurrency.load(Ordering::SeqCst).saturating_sub(running);
        let mut claimed = Vec::new();
        if free > 0 && w.exclusive.load(Ordering::SeqCst) == 0 {
            let (cpus, mem) = *w.held.lock().expect("held lock");
            let capacity = Capacity {
                slots: free,
                cpus: (w.info.cpus - cpus).max(0.0),
                memory_bytes: w.info.memory_bytes.saturating_sub(mem),
            };
            claimed = w.queue.claim(&w.info, capacity).await?;
        }
        for claim in &claimed {
            w.running.fetch_add(1, Ordering::SeqCst);
            {
                let mut held = w.held.lock().expect("held lock");
                held.0 += claim.cpus;
                held.1 += claim.memory_bytes;
            }
            w.report.lock().expect("report lock").claimed += 1;
            let w2 = w.clone();
            let claim = claim.clone();
            tokio::spawn(async move {
                run_claim(&w2, claim.clone()).await;
                {
                    let mut held = w2.held.lock().expect("held lock");
                    held.0 = (held.0 - claim.cpus).max(0.0);
                    held.1 = held.1.saturating_sub(claim.memory_bytes);
                }
                w2.running.fetch_sub(1, Ordering::SeqCst);
                w2.slot_freed.notify_one();
            });
        }
        if !claimed.is_empty() {
            // Let exclusive nodes see whether they must wait before claiming more.
            tokio::task::yield_now().await;
            continue;
        }
        // Idle, with nothing of ours left to complete: leave once the queue has nothing either
        // (nothing ready, claimed or waiting: no other worker's node can make work appear).
        if w.opts.until_idle
            && w.running.load(Ordering::SeqCst) == 0
            && w.completing.load(Ordering::SeqCst) == 0
            && !w.queue.has_work(&w.opts.pools).await?
        {
            return Ok(());
        }
        tokio::select! {
            () = w.queue.wait_for_work(w.opts.poll) => {}
            () = w.opts.drain.cancelled() => {}
            () = w.slot_freed.notified(), if running > 0 => {}
        }
    }
}

async fn heartbeat_loop(w: Arc<Worker>) {
    let mut last_maintain = Instant::now();
    let mut last_status: Option<Instant> = None;
    loop {
        if last_status.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            last_status = Some(Instant::now());
            if let Ok(status) = w.queue.status(w.opts.times).await {
                let _ = w.events.send(RunnerEvent::FleetQueue { status });
            }
        }
        tokio::time::sleep(w.opts.heartbeat).await;
        let draining = w.opts.drain.is_cancelled();
        match w.queue.heartbeat(&w.info.id, draining).await {
            Ok(stop) => {
                for claim in stop {
                    let runs = w.runs.lock().await;
                    if let Some(ctx) = runs.get(&claim.run_id) {
                        ctx.cancel.cancel();
                    }
                    w.cancelled
                        .lock()
                        .expect("cancelled lock")
                        .push(claim.run_id);
                }
            }
            Err(e) => tracing::warn!("heartbeat failed: {e}"),
        }
        if last_maintain.elapsed() >= Duration::from_millis(500) {
            last_maintain = Instant::now();
            match w.queue.maintain(w.opts.times).await {
                Ok(ended) => {
                    for (run_id, status) in ended {
                        let _ = w.events.send(RunnerEvent::FleetRunEnded { run_id, status });
                    }
                }
                Err(e) => tracing::warn!("queue maintenance failed: {e}"),
            }
        }
    }
}

/// `--jobs auto`: one step at a time, every two seconds.
async fn autoscale(w: Arc<Worker>, cores: usize) {
    let Ok(mut meter) = benchfleet_metrics::CpuMeter::new() else {
        return;
    };
    let mut idle_ticks = 0u32;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(s) = meter.read() else { continue };
        let busy = if s.cores.is_empty() {
            0.0
        } else {
            s.cores.iter().map(|c| f64::from(c.busy)).sum::<f64>() / s.cores.len() as f64
        };
        let mem = if s.mem_total_bytes == 0 {
            0.0
        } else {
            s.mem_used_bytes as f64 / s.mem_total_bytes as f64
        };
        let now = w.concurrency.load(Ordering::SeqCst);
        let running = w.running.load(Ordering::SeqCst);
        idle_ticks = if running == 0 { idle_ticks + 1 } else { 0 };
        let waiting = running >= now && w.queue.has_work(&w.opts.pools).await.unwrap_or(false);
        let (to, reason) = if mem > 0.85 && now > 1 {
            (
                now - 1,
                crate::event::ScaleReason::MemoryPressure { used: mem },
            )
        } else if idle_ticks >= 3 && now > 1 {
            (now - 1, crate::event::ScaleReason::Idle)
        } else if busy < 0.8 && waiting && now < cores {
            (
                now + 1,
                crate::event::ScaleReason::WorkWaiting { cpu_busy: busy },
            )
        } else {
            continue;
        };
        w.concurrency.store(to, Ordering::SeqCst);
        tracing::info!("concurrency {now} -> {to}: {reason}");
        let _ = w.events.send(RunnerEvent::FleetConcurrency {
            from: now,
            to,
            reason,
        });
    }
}

/// The run's context on this worker, prepared on first use.
async fn run_ctx(w: &Worker, run_id: &RunId) -> Result<Arc<RunCtx>, String> {
    let mut runs = w.runs.lock().await;
    if let Some(ctx) = runs.get(run_id) {
        return Ok(ctx.clone());
    }
    let queued = w
        .queue
        .suite(run_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {run_id} is not in the queue"))?;
    let out_root = w.opts.work_dir.join(run_id.as_str()).join("out");
    let suite = crate::suite::load_text(&queued.suite_text, Path::new(&queued.source), &out_root)
        .map_err(|e| e.to_string())?;
    let cancel = CancelToken::default();
    if w.cancelled.lock().expect("cancelled lock").contains(run_id) {
        cancel.cancel();
    }
    let opts = RunOptions {
        jobs: match w.opts.jobs {
            Jobs::Fixed(n) => n,
            Jobs::Auto => host::available_cores(),
        },
        keep_going: queued.keep_going,
        stderr_tail_bytes: w.opts.stderr_tail_bytes,
        tags: queued.run.tags.clone(),
        cancel: cancel.clone(),
        grace: w.opts.grace,
        sample_interval: None,
        // A cached result would complete the node with another run's records (none of this
        // run's): fleet runs measure every node.
        use_cache: false,
        resume: None,
        budget: None,
        base_dir: w.opts.base_dir.clone(),
    };
    let runner = NodeRunner::prepare(
        &suite,
        &w.storage,
        run_id.clone(),
        &opts,
        w.events.clone(),
        Arc::new(crate::exec::Real),
    )
    .await
    .map_err(|e| e.to_string())?;
    let inputs = output_uses(&suite);
    let mut needed = vec![false; suite.nodes.len()];
    for &d in inputs.iter().flatten() {
        needed[d] = true;
    }
    let ctx = Arc::new(RunCtx {
        suite,
        runner,
        cancel,
        needed,
        inputs,
    });
    runs.insert(run_id.clone(), ctx.clone());
    Ok(ctx)
}

async fn run_claim(w: &Arc<Worker>, claim: Claim) {
    let index = claim.node as usize;
    // A claim this worker cannot even start fails at once, with why.
    let cannot = |claim, message| {
        let end = NodeEnd::Failed { message };
        finish_claim(w, Finished::without_runs(claim, end));
    };
    let ctx = match run_ctx(w, &claim.run_id).await {
        Ok(ctx) => ctx,
        Err(message) => {
            let message = format!("worker {} could not load the suite: {message}", w.info.id);
            return cannot(claim, message);
        }
    };
    let Some(node) = ctx.suite.nodes.get(index).cloned() else {
        return cannot(claim, format!("the suite has no node #{index}"));
    };
    let _ = w.events.send(RunnerEvent::FleetClaimed {
        run_id: claim.run_id.clone(),
        node: index,
        name: node.name.clone(),
        attempt: claim.attempt,
    });
    // Benchmarks run alone on the worker, as locally.
    let exclusive = node.exclusive;
    if exclusive {
        w.exclusive.fetch_add(1, Ordering::SeqCst);
    }
    let guard = if exclusive {
        Guard::Write(w.alone.write().await)
    } else {
        Guard::Read(w.alone.read().await)
    };
    let inputs = fetch_inputs(&w.storage, &claim.run_id, &ctx.suite, &ctx.inputs[index]).await;
    let fetched = *inputs.as_ref().unwrap_or(&0);
    let (end, records) = match inputs {
        Err(message) => (NodeEnd::Failed { message }, Vec::new()),
        Ok(_) => {
            let run = ctx.runner.run_node(index, claim.attempt).await;
            let end = match run.state {
                NodeState::Succeeded | NodeState::Cached => NodeEnd::Succeeded,
                NodeState::Cancelled | NodeState::Skipped => NodeEnd::Cancelled,
                NodeState::Failed | NodeState::TimedOut | NodeState::Pending => NodeEnd::Failed {
                    message: run
                        .failure
                        .unwrap_or_else(|| format!("ended {:?}", run.state)),
                },
            };
            (end, run.records)
        }
    };
    drop(guard);
    if exclusive {
        w.exclusive.fetch_sub(1, Ordering::SeqCst);
    }
    // Outputs travel before the completion that lets dependents start.
    let mut end = end;
    if end == NodeEnd::Succeeded && ctx.needed[index] {
        let dir = ctx.suite.node_out_dir(&node);
        if let Err(e) = ship_outputs(&w.storage, &claim.run_id, &node.name, &dir).await {
            end = NodeEnd::Failed {
                message: format!(
                    "its outputs in `{}` could not be shipped: {e}",
                    dir.display()
                ),
            };
        }
    }
    finish_claim(
        w,
        Finished {
            claim,
            name: node.name.clone(),
            end,
            records,
            inputs_fetched: fetched,
        },
    );
}

enum Guard<'a> {
    Read(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'a, ()>),
    Write(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// A claim its worker is done with, on its way to the queue.
struct Finished {
    claim: Claim,
    name: String,
    end: NodeEnd,
    records: Vec<benchfleet_model::RunRecord>,
    inputs_fetched: usize,
}

impl Finished {
    fn without_runs(claim: Claim, end: NodeEnd) -> Finished {
        Finished {
            claim,
            name: String::new(),
            end,
            records: Vec::new(),
            inputs_fetched: 0,
        }
    }
}

/// Most completions one queue transaction carries.
const COMPLETION_GROUP: usize = 64;

/// Give a finished claim to the completer; its slot is free from now on.
fn finish_claim(w: &Worker, f: Finished) {
    w.completing.fetch_add(1, Ordering::SeqCst);
    if w.finished.send(f).is_err() {
        // The completer only ends with the worker.
        w.completing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Group commit: what finished while the previous group was being stored goes in the next (at
/// most [`COMPLETION_GROUP`]), one write of their records' bytes and one queue transaction. A
/// lone completion leaves at once, so nothing waits for company.
async fn completer(w: Arc<Worker>, mut rx: UnboundedReceiver<Finished>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < COMPLETION_GROUP {
            match rx.try_recv() {
                Ok(f) => group.push(f),
                Err(_) => break,
            }
        }
        let n = group.len();
        complete_group(&w, group).await;
        w.completing.fetch_sub(n, Ordering::SeqCst);
    }
}

/// Store the group's records' bytes, then complete its claims with their entries (retrying
/// while storage or the queue is unreachable, so nothing measured is dropped by a passing
/// outage).
async fn complete_group(w: &Worker, mut group: Vec<Finished>) {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let counts: Vec<usize> = group.iter().map(|f| f.records.len()).collect();
    let records: Vec<benchfleet_model::RunRecord> = group
        .iter_mut()
        .flat_map(|f| std::mem::take(&mut f.records))
        .collect();
    let mut entries = loop {
        match w.storage.put_record_blobs(&records).await {
            Ok(e) => break e,
            Err(e) if started.elapsed() < Duration::from_secs(300) => {
                tracing::warn!(
                    "storing the records of {} node(s) failed, retrying: {e}",
                    group.len()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                for (f, &count) in group.iter_mut().zip(&counts) {
                    if count > 0 {
                        f.end = NodeEnd::Failed {
                            message: format!("its records could not be stored: {e}"),
                        };
                    }
                }
                break Vec::new();
            }
        }
    };
    drop(records);
    // Each claim's own entries, in order.
    let mut per_claim: Vec<Vec<benchfleet_store::RecordEntry>> = Vec::with_capacity(group.len());
    for &count in &counts {
        let rest = entries.split_off(count.min(entries.len()));
        per_claim.push(std::mem::replace(&mut entries, rest));
    }
    let answers = loop {
        let items: Vec<Finish<'_>> = group
            .iter()
            .zip(&per_claim)
            .map(|(f, e)| Finish {
                claim: &f.claim,
                end: &f.end,
                records: e,
            })
            .collect();
        match w.queue.complete_many(&w.info.id, &items).await {
            Ok(a) => break a,
            Err(e) if started.elapsed() < Duration::from_secs(300) => {
                tracing::warn!("completing {} node(s) failed, retrying: {e}", group.len());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                let reason = format!("the queue could not be reached: {e}");
                break group
                    .iter()
                    .map(|_| Completion::Refused {
                        reason: reason.clone(),
                    })
                    .collect();
            }
        }
    };
    for ((f, entries), completion) in group.into_iter().zip(per_claim).zip(answers) {
        report_completion(w, f, entries.len(), completion).await;
    }
}

/// Count a completion in the worker's report and tell the event stream.
async fn report_completion(w: &Worker, f: Finished, records: usize, completion: Completion) {
    let state = match &f.end {
        NodeEnd::Succeeded => NodeState::Succeeded,
        NodeEnd::Failed { .. } => NodeState::Failed,
        NodeEnd::Cancelled => NodeState::Cancelled,
    };
    let refused = match &completion {
        Completion::Refused { reason } => Some(reason.clone()),
        Completion::Accepted { .. } => None,
    };
    {
        let mut r = w.report.lock().expect("report lock");
        match (&refused, state) {
            (Some(_), _) => r.refused += 1,
            (None, NodeState::Succeeded) => r.succeeded += 1,
            (None, NodeState::Cancelled) => r.cancelled += 1,
            (None, _) => r.failed += 1,
        }
    }
    let _ = w.events.send(RunnerEvent::FleetCompleted {
        run_id: f.claim.run_id.clone(),
        node: f.claim.node as usize,
        name: f.name,
        state,
        records,
        refused,
        inputs_fetched: f.inputs_fetched,
    });
    if let Completion::Accepted {
        run_finished: Some(status),
    } = completion
    {
        w.runs.lock().await.remove(&f.claim.run_id);
        let _ = w.events.send(RunnerEvent::FleetRunEnded {
            run_id: f.claim.run_id,
            status,
        });
    }
}

/// Where a node's shipped outputs live in the hot tier.
pub fn outputs_key(run: &RunId, node: &str) -> Result<BlobKey, Error> {
    Ok(BlobKey::new(format!(
        "fleet/{run}/{}.tar.zst",
        crate::suite::sanitize(node)
    ))?)
}

/// Pack `dir` (when it holds anything) and put it in the hot tier under [`outputs_key`].
async fn ship_outputs(storage: &Storage, run: &RunId, node: &str, dir: &Path) -> Result<(), Error> {
    let has_files = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if !has_files {
        return Ok(());
    }
    let dir = dir.to_owned();
    let bytes = tokio::task::spawn_blocking(move || pack(&dir))
        .await
        .map_err(|e| Error::Internal(format!("packing outputs: {e}")))??;
    let key = outputs_key(run, node)?;
    // A re-run after a lost worker replaces what an earlier attempt shipped.
    match storage.blobs.delete(&key).await {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    storage
        .blobs
        .put_if_absent(&key, bytes::Bytes::from(bytes))
        .await?;
    Ok(())
}

fn pack(dir: &Path) -> Result<Vec<u8>, Error> {
    let io = |e: std::io::Error| Error::Io {
        what: "cannot pack the outputs in",
        path: dir.to_owned(),
        source: e,
    };
    let enc = zstd::Encoder::new(Vec::new(), 3).map_err(io)?;
    let mut tar = tar::Builder::new(enc);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir).map_err(io)?;
    tar.into_inner().map_err(io)?.finish().map_err(io)
}

/// Per node, the nodes it needs whose outputs it uses: their `{out.NAME}` directories appear in
/// its command, hooks, environment or working directory. Other `needs` only order the nodes,
/// and nothing travels for them.
fn output_uses(suite: &Suite) -> Vec<Vec<usize>> {
    suite
        .nodes
        .iter()
        .map(|n| {
            let mut text = String::new();
            let mut add = |s: &str| {
                text.push_str(s);
                text.push('\n');
            };
            add(&n.program);
            n.args.iter().for_each(|a| add(a));
            n.settings().env.values().for_each(|v| add(v));
            if let Some(c) = &n.settings().cwd {
                add(&c.to_string_lossy());
            }
            for (_, c) in n.hooks().iter() {
                add(&c.program);
                c.args.iter().for_each(|a| add(a));
            }
            n.needs
                .iter()
                .copied()
                .filter(|&d| {
                    mentions(
                        &text,
                        &suite.node_out_dir(&suite.nodes[d]).to_string_lossy(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Whether `text` names directory `dir` itself (not a sibling that merely starts with its name:
/// `out/gen` is not mentioned by `out/gen-2/x`).
fn mentions(text: &str, dir: &str) -> bool {
    text.match_indices(dir).any(|(i, _)| {
        text[i + dir.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    })
}

/// Unpack the outputs of the nodes in `deps` that this worker did not produce (or fetched
/// before); how many it fetched.
async fn fetch_inputs(
    storage: &Storage,
    run: &RunId,
    suite: &Suite,
    deps: &[usize],
) -> Result<usize, String> {
    let mut fetched = 0;
    for &dep in deps {
        let need = &suite.nodes[dep];
        let dir = suite.node_out_dir(need);
        if dir.exists() {
            continue;
        }
        let key = outputs_key(run, &need.name).map_err(|e| e.to_string())?;
        match storage.blobs.get(&key).await {
            Ok(bytes) => {
                let d = dir.clone();
                tokio::task::spawn_blocking(move || unpack(&bytes, &d))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| {
                        format!(
                            "cannot unpack the outputs of `{}` into `{}`: {e}",
                            need.name,
                            dir.display()
                        )
                    })?;
                fetched += 1;
            }
            // It produced nothing.
            Err(e) if e.kind == ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!("cannot create output directory `{}`: {e}", dir.display())
                })?;
            }
            Err(e) => {
                return Err(format!(
                    "cannot fetch the outputs of `{}` it needs: {e}",
                    need.name
                ));
            }
        }
    }
    Ok(fetched)
}

fn unpack(bytes: &[u8], dir: &Path) -> std::io::Result<()> {
    // Into a sibling first, then renamed: a crash never leaves a half-unpacked directory that
    // would pass for complete.
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = tempdir_in(parent)?;
    let dec = zstd::Decoder::new(bytes)?;
    let mut archive = tar::Archive::new(dec);
    archive.set_overwrite(true);
    archive.unpack(&tmp)?;
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        // Another node of this worker unpacked it meanwhile.
        Err(_) if dir.exists() => std::fs::remove_dir_all(&tmp),
        Err(e) => Err(e),
    }
}

fn tempdir_in(parent: &Path) -> std::io::Result<PathBuf> {
    let name = format!(".unpack-{}-{}", std::process::id(), host::new_run_id());
    let p = parent.join(name);
    std::fs::create_dir(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outputs_a_node_uses_travel() {
        let text = r#"
[suite]
name = "uses"

[[job]]
name = "gen"
command = "touch {out}/x"

[[job]]
name = "gen-2"
command = "touch {out}/y"

[[job]]
name = "after"
needs = ["gen"]
command = "true"

[[job]]
name = "reader"
needs = ["gen", "gen-2"]
command = "cat {out.gen-2}/y"

[[job]]
name = "hooked"
needs = ["gen"]
command = "true"
setup = "test -f {out.gen}/x"
"#;
        let suite =
            crate::suite::load_text(text, Path::new("uses.toml"), Path::new("/o")).expect("suite");
        let uses = output_uses(&suite);
        let names = |v: &[usize]| {
            v.iter()
                .map(|&i| suite.nodes[i].name.clone())
                .collect::<Vec<_>>()
        };
        let by_name = |n: &str| {
            let i = suite.nodes.iter().position(|x| x.name == n).expect("node");
            names(&uses[i])
        };
        assert!(by_name("after").is_empty(), "ordering only");
        assert_eq!(by_name("reader"), ["gen-2"]);
        assert_eq!(by_name("hooked"), ["gen"]);
        let sub = submission(&suite, text, &SubmitOptions::default()).expect("submission");
        assert_eq!(sub.nodes.len(), 5);
        let rank = |n: &str| sub.nodes.iter().find(|x| x.name == n).expect("node").rank;
        assert!(rank("gen") < rank("reader"), "critical path first");
    }
}
