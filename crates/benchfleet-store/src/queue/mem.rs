//! [`MemQueue`]: the queue's rules over a mutex, for unit tests of the worker loop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

use benchfleet_model::{RunId, RunStatus};

use super::{
    Capacity, Claim, Completion, FleetStatus, LeaseTimes, NodeEnd, PoolStatus, Queue, QueueState,
    QueuedSuite, RunProgress, Submission, WorkerInfo, WorkerStatus,
};
use crate::{Catalog, RecordEntry, Result};

/// An in-memory [`Queue`] whose accepted records go into `catalog`.
#[derive(Debug)]
pub struct MemQueue {
    catalog: Arc<dyn Catalog>,
    state: Mutex<State>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    runs: BTreeMap<RunId, Run>,
    workers: BTreeMap<String, Worker>,
}

#[derive(Debug)]
struct Run {
    sub: Submission,
    state: &'static str,
    class: Option<String>,
    nodes: Vec<Node>,
    children: Vec<Vec<u32>>,
}

#[derive(Debug)]
struct Node {
    state: QueueState,
    pending: usize,
    attempt: u32,
    worker: Option<String>,
    since: Instant,
    message: Option<String>,
}

#[derive(Debug)]
struct Worker {
    info: WorkerInfo,
    heartbeat: Instant,
    /// Its connection (liveness lock) is held.
    connected: bool,
    draining: bool,
    gone: bool,
    /// Presumed dead by maintenance (cleared by a heartbeat).
    lost: bool,
}

impl MemQueue {
    pub fn new(catalog: Arc<dyn Catalog>) -> MemQueue {
        MemQueue {
            catalog,
            state: Mutex::new(State::default()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Tests: the worker's connection drops (as SIGKILL drops a PostgreSQL session).
    pub fn disconnect(&self, worker: &str) {
        if let Some(w) = self.lock().workers.get_mut(worker) {
            w.connected = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Run {
    fn finish_if_done(&mut self) -> Option<RunStatus> {
        if self.state != "running" || self.nodes.iter().any(|n| !n.state.is_final()) {
            return None;
        }
        let bad = self
            .nodes
            .iter()
            .any(|n| !matches!(n.state, QueueState::Succeeded));
        self.state = if bad { "failed" } else { "succeeded" };
        Some(if bad {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        })
    }

    /// Skip every waiting descendant of `node`.
    fn skip_below(&mut self, node: u32) {
        let name = self.sub.nodes[node as usize].name.clone();
        let mut stack = self.children[node as usize].clone();
        while let Some(c) = stack.pop() {
            let n = &mut self.nodes[c as usize];
            if matches!(n.state, QueueState::Waiting | QueueState::Ready) {
                n.state = QueueState::Skipped;
                n.message = Some(format!("needs `{name}`, which failed"));
                stack.extend(self.children[c as usize].iter().copied());
            }
        }
    }

    fn release(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        n.state = QueueState::Ready;
        n.worker = None;
        n.since = Instant::now();
    }
}

#[async_trait]
impl Queue for MemQueue {
    fn name(&self) -> &str {
        "mem"
    }

    async fn submit(&self, sub: &Submission) -> Result<()> {
        self.catalog.put_run(&sub.run).await?;
        let mut children = vec![Vec::new(); sub.nodes.len()];
        for (i, n) in sub.nodes.iter().enumerate() {
            for &d in &n.needs {
                children[d as usize].push(i as u32);
            }
        }
        let nodes = sub
            .nodes
            .iter()
            .map(|n| Node {
                state: if n.needs.is_empty() {
                    QueueState::Ready
                } else {
                    QueueState::Waiting
                },
                pending: n.needs.len(),
                attempt: 0,
                worker: None,
                since: Instant::now(),
                message: None,
            })
            .collect();
        self.lock().runs.insert(
            sub.run.run_id.clone(),
            Run {
                sub: sub.clone(),
                state: "running",
                class: None,
                nodes,
                children,
            },
        );
        self.changed.notify_waiters();
        Ok(())
    }

    async fn register(&self, worker: &WorkerInfo) -> Result<()> {
        self.lock().workers.insert(
            worker.id.clone(),
            Worker {
                info: worker.clone(),
                heartbeat: Instant::now(),
                connected: true,
                draining: false,
                gone: false,
                lost: false,
            },
        );
        Ok(())
    }

    async fn heartbeat(&self, worker: &str, draining: bool) -> Result<Vec<Claim>> {
        let mut st = self.lock();
        if let Some(w) = st.workers.get_mut(worker) {
            w.heartbeat = Instant::now();
            w.draining = draining;
            w.lost = false;
        }
        let mut stop = Vec::new();
        for (id, run) in &st.runs {
            for (i, n) in run.nodes.iter().enumerate() {
                if n.worker.as_deref() == Some(worker)
                    && run.state == "cancelled"
                    && n.state == QueueState::Running
                {
                    stop.push(Claim {
                        run_id: id.clone(),
                        node: i as u32,
                        attempt: n.attempt,
                        cpus: run.sub.nodes[i].cpus,
                        memory_bytes: run.sub.nodes[i].memory_bytes,
                    });
                }
            }
        }
        Ok(stop)
    }

    async fn deregister(&self, worker: &str) -> Result<()> {
        let mut st = self.lock();
        if let Some(w) = st.workers.get_mut(worker) {
            w.gone = true;
            w.connected = false;
        }
        for run in st.runs.values_mut() {
            for i in 0..run.nodes.len() {
                if run.nodes[i].worker.as_deref() == Some(worker)
                    && run.nodes[i].state == QueueState::Running
                {
                    run.release(i as u32);
                }
            }
        }
        Ok(())
    }

    async fn claim(&self, worker: &WorkerInfo, cap: Capacity) -> Result<Vec<Claim>> {
        let mut st = self.lock();
        let mut candidates = Vec::new();
        for (id, run) in &st.runs {
            if run.state != "running" {
                continue;
            }
            for (i, n) in run.nodes.iter().enumerate() {
                let q = &run.sub.nodes[i];
                let class_ok = !q.benchmark
                    || run
                        .class
                        .as_ref()
                        .is_none_or(|c| *c == worker.machine_class);
                if n.state == QueueState::Ready && worker.pools.contains(&q.pool) && class_ok {
                    candidates.push((q.rank, id.clone(), i as u32));
                }
            }
        }
        candidates.sort();
        let (mut cpus, mut mem) = (cap.cpus, cap.memory_bytes);
        let mut claims = Vec::new();
        for (_, id, i) in candidates {
            if claims.len() >= cap.slots {
                break;
            }
            let run = st.runs.get_mut(&id).expect("candidate run");
            let q = &run.sub.nodes[i as usize];
            if q.cpus > cpus || q.memory_bytes > mem {
                continue;
            }
            if q.benchmark {
                match &run.class {
                    Some(c) if *c != worker.machine_class => continue,
                    Some(_) => {}
                    None => run.class = Some(worker.machine_class.clone()),
                }
            }
            let (qc, qm) = (q.cpus, q.memory_bytes);
            cpus -= qc;
            mem -= qm;
            let n = &mut run.nodes[i as usize];
            n.state = QueueState::Running;
            n.attempt += 1;
            n.worker = Some(worker.id.clone());
            n.since = Instant::now();
            claims.push(Claim {
                run_id: id,
                node: i,
                attempt: n.attempt,
                cpus: qc,
                memory_bytes: qm,
            });
        }
        Ok(claims)
    }

    async fn complete(
        &self,
        worker: &str,
        claim: &Claim,
        end: NodeEnd,
        records: &[RecordEntry],
    ) -> Result<Completion> {
        {
            let st = self.lock();
            let fenced = st.runs.get(&claim.run_id).and_then(|r| {
                let n = r.nodes.get(claim.node as usize)?;
                (n.state == QueueState::Running
                    && n.attempt == claim.attempt
                    && n.worker.as_deref() == Some(worker))
                .then_some(())
            });
            if fenced.is_none() {
                return Ok(Completion::Refused {
                    reason: "the claim was taken back (lease lapsed or run cancelled)".into(),
                });
            }
        }
        // Between the check and the update only this worker may change the node (it holds the
        // claim), so inserting outside the lock keeps the rule.
        self.catalog.insert_records(records).await?;
        let finished = {
            let mut st = self.lock();
            let run = st.runs.get_mut(&claim.run_id).expect("fenced run");
            let i = claim.node as usize;
            match end {
                NodeEnd::Succeeded => {
                    run.nodes[i].state = QueueState::Succeeded;
                    for c in run.children[i].clone() {
                        let n = &mut run.nodes[c as usize];
                        n.pending -= 1;
                        if n.pending == 0 && n.state == QueueState::Waiting {
                            n.state = QueueState::Ready;
                            n.since = Instant::now();
                        }
                    }
                }
                NodeEnd::Failed { message } => {
                    if claim.attempt < run.sub.nodes[i].max_attempts {
                        run.release(claim.node);
                        run.nodes[i].message = Some(message);
                    } else {
                        run.nodes[i].state = QueueState::Failed;
                        run.nodes[i].message = Some(message);
                        run.skip_below(claim.node);
                        if !run.sub.keep_going {
                            for n in &mut run.nodes {
                                if matches!(n.state, QueueState::Waiting | QueueState::Ready) {
                                    n.state = QueueState::Skipped;
                                    n.message = Some("an earlier node failed (fail-fast)".into());
                                }
                            }
                        }
                    }
                }
                NodeEnd::Cancelled => run.nodes[i].state = QueueState::Cancelled,
            }
            run.nodes[i].worker = None;
            run.finish_if_done()
        };
        self.changed.notify_waiters();
        if let Some(status) = finished {
            self.finish_run(&claim.run_id, status).await?;
        }
        Ok(Completion::Accepted {
            run_finished: finished,
        })
    }

    async fn suite(&self, run: &RunId) -> Result<Option<QueuedSuite>> {
        Ok(self.lock().runs.get(run).map(|r| QueuedSuite {
            run: r.sub.run.clone(),
            suite_text: r.sub.suite_text.clone(),
            source: r.sub.source.clone(),
            keep_going: r.sub.keep_going,
        }))
    }

    async fn maintain(&self, times: LeaseTimes) -> Result<Vec<(RunId, RunStatus)>> {
        let mut ended = Vec::new();
        {
            let mut st = self.lock();
            let mut dead: Vec<String> = Vec::new();
            for w in st.workers.values_mut() {
                let age = w.heartbeat.elapsed();
                if !w.gone && (age > times.lease || (!w.connected && age > times.dead_after)) {
                    w.lost = true;
                    dead.push(w.info.id.clone());
                }
            }
            for (id, run) in st.runs.iter_mut() {
                for i in 0..run.nodes.len() {
                    let n = &run.nodes[i];
                    if n.state == QueueState::Running
                        && n.worker.as_ref().is_some_and(|w| dead.contains(w))
                    {
                        if run.state == "cancelled" {
                            run.nodes[i].state = QueueState::Cancelled;
                        } else {
                            run.release(i as u32);
                        }
                    }
                }
                if let Some(s) = run.finish_if_done() {
                    ended.push((id.clone(), s));
                }
            }
        }
        for (id, s) in &ended {
            self.finish_run(id, *s).await?;
        }
        Ok(ended)
    }

    async fn has_work(&self, pools: &[String]) -> Result<bool> {
        let st = self.lock();
        Ok(st.runs.values().any(|r| {
            r.state == "running"
                && r.nodes
                    .iter()
                    .zip(&r.sub.nodes)
                    .any(|(n, q)| !n.state.is_final() && pools.contains(&q.pool))
        }))
    }

    async fn cancel(&self, run: &RunId) -> Result<bool> {
        let status = {
            let mut st = self.lock();
            let Some(r) = st.runs.get_mut(run) else {
                return Ok(false);
            };
            if r.state != "running" {
                return Ok(false);
            }
            r.state = "cancelled";
            for n in &mut r.nodes {
                if matches!(n.state, QueueState::Waiting | QueueState::Ready) {
                    n.state = QueueState::Cancelled;
                }
            }
            RunStatus::Interrupted
        };
        self.finish_run(run, status).await?;
        Ok(true)
    }

    async fn progress(&self, run: &RunId) -> Result<Option<RunProgress>> {
        Ok(self.lock().runs.get(run).map(progress_of))
    }

    async fn status(&self, times: LeaseTimes) -> Result<FleetStatus> {
        let st = self.lock();
        let mut pools: BTreeMap<String, PoolStatus> = BTreeMap::new();
        for run in st.runs.values().filter(|r| r.state == "running") {
            for (n, q) in run.nodes.iter().zip(&run.sub.nodes) {
                let p = pools.entry(q.pool.clone()).or_insert_with(|| PoolStatus {
                    pool: q.pool.clone(),
                    ..PoolStatus::default()
                });
                match n.state {
                    QueueState::Ready => {
                        p.ready += 1;
                        let age = n.since.elapsed().as_secs_f64();
                        p.oldest_ready_secs = Some(p.oldest_ready_secs.map_or(age, |a| a.max(age)));
                    }
                    QueueState::Running => p.running += 1,
                    QueueState::Waiting => p.waiting += 1,
                    _ => {}
                }
            }
        }
        let workers: Vec<WorkerStatus> = st
            .workers
            .values()
            .map(|w| {
                let age = w.heartbeat.elapsed();
                let running = st
                    .runs
                    .values()
                    .flat_map(|r| &r.nodes)
                    .filter(|n| {
                        n.state == QueueState::Running && n.worker.as_ref() == Some(&w.info.id)
                    })
                    .count() as u64;
                WorkerStatus {
                    info: w.info.clone(),
                    state: worker_state(w.gone, w.lost, w.draining, age > times.lease).into(),
                    running,
                    heartbeat_age_secs: age.as_secs_f64(),
                }
            })
            .collect();
        for w in workers.iter().filter(|w| w.state == "live") {
            for pool in &w.info.pools {
                pools
                    .entry(pool.clone())
                    .or_insert_with(|| PoolStatus {
                        pool: pool.clone(),
                        ..PoolStatus::default()
                    })
                    .workers += 1;
            }
        }
        Ok(FleetStatus {
            workers,
            pools: pools.into_values().collect(),
            runs: st
                .runs
                .values()
                .filter(|r| r.state == "running")
                .map(progress_of)
                .collect(),
        })
    }

    async fn wait_for_work(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.changed.notified()).await;
    }
}

impl MemQueue {
    async fn finish_run(&self, run: &RunId, status: RunStatus) -> Result<()> {
        let class = self.lock().runs.get(run).and_then(|r| r.class.clone());
        if let Some(mut info) = self.catalog.get_run(run).await? {
            if let Some(class) = class {
                info.tags.insert(
                    benchfleet_model::RunRecord::TAG_MACHINE_CLASS.to_owned(),
                    class,
                );
            }
            info.status = status;
            info.finished_at = Some(benchfleet_model::Timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i64),
            ));
            self.catalog.put_run(&info).await?;
        }
        Ok(())
    }
}

/// The state `fleet status` shows for a worker: `gone` (exited), `lost` (presumed dead: its
/// connection dropped or its lease lapsed, and its claims were taken back), `silent` (no
/// heartbeat for longer than the lease), `draining` or `live`.
pub fn worker_state(gone: bool, lost: bool, draining: bool, silent: bool) -> &'static str {
    if gone {
        "gone"
    } else if lost {
        "lost"
    } else if silent {
        "silent"
    } else if draining {
        "draining"
    } else {
        "live"
    }
}

fn progress_of(r: &Run) -> RunProgress {
    let mut p = RunProgress {
        run_id: r.sub.run.run_id.to_string(),
        suite: r.sub.run.suite.clone(),
        state: r.state.into(),
        machine_class: r.class.clone(),
        nodes: r.nodes.len() as u64,
        ..RunProgress::default()
    };
    for (n, q) in r.nodes.iter().zip(&r.sub.nodes) {
        *match n.state {
            QueueState::Waiting => &mut p.waiting,
            QueueState::Ready => &mut p.ready,
            QueueState::Running => &mut p.running,
            QueueState::Succeeded => &mut p.succeeded,
            QueueState::Failed => &mut p.failed,
            QueueState::Skipped => &mut p.skipped,
            QueueState::Cancelled => &mut p.cancelled,
        } += 1;
        if matches!(n.state, QueueState::Failed | QueueState::Skipped) && p.failures.len() < 20 {
            p.failures
                .push((q.name.clone(), n.message.clone().unwrap_or_default()));
        }
    }
    p
}
