//! The runner's own counters and gauges in the Prometheus/OpenMetrics text exposition: runs
//! started/finished/failed, nodes per state, queue depth, running jobs, records stored, missed
//! starts of load profiles, and the machine's CPU utilisation and memory.
//!
//! [`RunnerMetrics`] is fed only by the event stream of suite runs, `bench` and `load`
//! ([`RunnerMetrics::apply`] on each [`RunnerEvent`]; [`tee`] does it for a channel and forwards
//! the events to the progress display). [`start`] exposes it in a file rewritten atomically
//! every interval and at the end; `GET /metrics` on a loopback address (anything else is
//! refused, [`loopback_addr`]) is served by axum in `benchfleet-serve` (`metrics::listen`, the
//! only crate that speaks HTTP), attached to the [`Exposition`] with
//! [`Exposition::attach_server`]. Encoding is `prometheus-client`'s (OpenMetrics text, which
//! Prometheus scrapes; in the classic format the `# EOF` line is a comment).
//!
//! ```
//! use benchfleet::prom::RunnerMetrics;
//! use benchfleet::event::RunnerEvent;
//!
//! let m = RunnerMetrics::new();
//! m.apply(&RunnerEvent::Started { run_id: "01J00000000000000000000000".parse().unwrap(), nodes: 3 });
//! let text = m.encode();
//! assert!(text.contains("benchfleet_queue_depth 3"));
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use benchfleet_sched::NodeState;

use crate::event::RunnerEvent;

/// Node states exported as the `state` label of `benchfleet_nodes`.
pub const NODE_STATES: [&str; 6] = ["queued", "running", "done", "failed", "cached", "skipped"];

type StateLabel = [(&'static str, &'static str); 1];

/// Counters and gauges of one runner process. Cheap to update from any thread.
#[derive(Debug)]
pub struct RunnerMetrics {
    registry: Registry,
    runs_started: Counter,
    runs_finished: Counter,
    runs_failed: Counter,
    suite_runs_started: Counter,
    suite_runs_finished: Counter,
    nodes: Family<StateLabel, Gauge>,
    queue_depth: Gauge,
    running_jobs: Gauge,
    records_stored: Counter,
    missed_starts: Counter,
    cpu_busy: Gauge<f64, AtomicU64>,
    own_busy: Gauge<f64, AtomicU64>,
    mem_used: Gauge,
    load1: Gauge<f64, AtomicU64>,
    /// Fleet queue per pool (and state), from the queue's status (see `set_fleet`).
    fleet_queue: Family<Vec<(String, String)>, Gauge>,
    fleet_oldest_ready: Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>,
    fleet_workers: Family<Vec<(String, String)>, Gauge>,
    /// A fleet worker's concurrency and its completed nodes by state.
    fleet_concurrency: Gauge,
    fleet_completed: Family<StateLabel, Counter>,
    /// Node index → state label, for the per-state gauges.
    state: Mutex<NodeBook>,
}

#[derive(Debug, Default)]
struct NodeBook {
    total: usize,
    of: BTreeMap<usize, &'static str>,
    /// Measured runs started and not yet ended, per node.
    in_flight: BTreeMap<usize, u32>,
    /// Records announced by `Stored` per node until its `NodeFinished` (which counts them too).
    stored: BTreeMap<usize, usize>,
    /// Runs (`Started`) whose event stream has not ended.
    open: usize,
}

impl NodeBook {
    /// Running nodes, each counted as its measured runs in flight, at least 1: a suite's nodes,
    /// the runs of a load, the commands of a `bench` being measured.
    fn running_jobs(&self) -> i64 {
        let n: u64 = self
            .of
            .iter()
            .filter(|(_, s)| **s == "running")
            .map(|(node, _)| u64::from(self.in_flight.get(node).copied().unwrap_or(0).max(1)))
            .sum();
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    fn count(&self, label: &str) -> i64 {
        let known = self.of.values().filter(|s| **s == label).count();
        let n = if label == "queued" {
            self.total.saturating_sub(self.of.len()) + known
        } else {
            known
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

impl Default for RunnerMetrics {
    fn default() -> Self {
        RunnerMetrics::new()
    }
}

impl RunnerMetrics {
    pub fn new() -> RunnerMetrics {
        let mut registry = Registry::with_prefix("benchfleet");
        let m = RunnerMetrics {
            runs_started: Counter::default(),
            runs_finished: Counter::default(),
            runs_failed: Counter::default(),
            suite_runs_started: Counter::default(),
            suite_runs_finished: Counter::default(),
            nodes: Family::default(),
            queue_depth: Gauge::default(),
            running_jobs: Gauge::default(),
            records_stored: Counter::default(),
            missed_starts: Counter::default(),
            cpu_busy: Gauge::default(),
            own_busy: Gauge::default(),
            mem_used: Gauge::default(),
            load1: Gauge::default(),
            fleet_queue: Family::default(),
            fleet_oldest_ready: Family::default(),
            fleet_workers: Family::default(),
            fleet_concurrency: Gauge::default(),
            fleet_completed: Family::default(),
            state: Mutex::new(NodeBook::default()),
            registry: Registry::default(),
        };
        registry.register(
            "runs_started",
            "Measured process runs started (warmups and hooks excluded)",
            m.runs_started.clone(),
        );
        registry.register(
            "runs_finished",
            "Measured process runs finished, failed ones included",
            m.runs_finished.clone(),
        );
        registry.register(
            "runs_failed",
            "Measured process runs that failed (exit code, signal, timeout)",
            m.runs_failed.clone(),
        );
        registry.register(
            "suite_runs_started",
            "Suite, bench or load runs started by this process",
            m.suite_runs_started.clone(),
        );
        registry.register(
            "suite_runs_finished",
            "Suite, bench or load runs finished by this process",
            m.suite_runs_finished.clone(),
        );
        registry.register(
            "nodes",
            "Nodes of the running suite per state (queued, running, done, failed, cached, skipped)",
            m.nodes.clone(),
        );
        registry.register("queue_depth", "Nodes waiting to run", m.queue_depth.clone());
        registry.register(
            "running_jobs",
            "Jobs running now: suite nodes or bench commands, a load node counting its runs in flight",
            m.running_jobs.clone(),
        );
        registry.register(
            "records_stored",
            "Run records durable in storage",
            m.records_stored.clone(),
        );
        registry.register(
            "missed_starts",
            "Open-loop load starts that could not happen on time (every slot busy)",
            m.missed_starts.clone(),
        );
        registry.register(
            "cpu_utilisation",
            "Mean busy fraction of all cores over the last interval (0..1)",
            m.cpu_busy.clone(),
        );
        registry.register(
            "own_cpu_cores",
            "CPUs' worth of time used by benchfleet and the runs it reaped over the last interval",
            m.own_busy.clone(),
        );
        registry.register(
            "memory_used_bytes",
            "MemTotal - MemAvailable",
            m.mem_used.clone(),
        );
        registry.register("load1", "1-minute load average", m.load1.clone());
        registry.register(
            "fleet_queue_nodes",
            "Fleet queue: nodes of running runs per pool and state (ready, running, waiting)",
            m.fleet_queue.clone(),
        );
        registry.register(
            "fleet_oldest_ready_seconds",
            "Fleet queue: age of the oldest ready node per pool",
            m.fleet_oldest_ready.clone(),
        );
        registry.register(
            "fleet_live_workers",
            "Fleet: live workers serving each pool",
            m.fleet_workers.clone(),
        );
        registry.register(
            "fleet_worker_concurrency",
            "This fleet worker's concurrency (nodes it runs at once)",
            m.fleet_concurrency.clone(),
        );
        registry.register(
            "fleet_worker_completed",
            "Nodes this fleet worker completed, by state (succeeded, failed, cancelled, refused)",
            m.fleet_completed.clone(),
        );
        for s in NODE_STATES {
            m.nodes.get_or_create(&[("state", s)]).set(0);
        }
        RunnerMetrics { registry, ..m }
    }

    /// Update from one runner event.
    pub fn apply(&self, event: &RunnerEvent) {
        match event {
            RunnerEvent::Started { nodes, .. } => {
                self.suite_runs_started.inc();
                self.book(|b| {
                    *b = NodeBook {
                        total: *nodes,
                        open: b.open + 1,
                        ..NodeBook::default()
                    };
                });
            }
            RunnerEvent::NodeStarted { node, .. } => self.book(|b| {
                b.of.insert(*node, "running");
            }),
            RunnerEvent::RunStarted { node, .. } => {
                self.runs_started.inc();
                self.book(|b| *b.in_flight.entry(*node).or_default() += 1);
            }
            RunnerEvent::Measured { node, ok, .. } => {
                self.runs_finished.inc();
                if !ok {
                    self.runs_failed.inc();
                }
                self.book(|b| {
                    if let Some(n) = b.in_flight.get_mut(node) {
                        *n = n.saturating_sub(1);
                    }
                });
            }
            RunnerEvent::Stored { node, records } => {
                self.records_stored.inc_by(*records as u64);
                self.book(|b| *b.stored.entry(*node).or_default() += records);
            }
            RunnerEvent::NodeFinished {
                node, state, runs, ..
            } => {
                let label = match state {
                    NodeState::Cached => "cached",
                    NodeState::Succeeded => "done",
                    NodeState::Skipped => "skipped",
                    NodeState::Pending | NodeState::Cancelled => "queued",
                    NodeState::Failed | NodeState::TimedOut => "failed",
                };
                let mut announced = 0;
                self.book(|b| {
                    announced = b.stored.remove(node).unwrap_or(0);
                    b.in_flight.remove(node);
                    b.of.insert(*node, label);
                });
                if *state != NodeState::Cached {
                    self.records_stored
                        .inc_by(runs.saturating_sub(announced) as u64);
                }
            }
            RunnerEvent::NodeSkipped { node, .. } => self.book(|b| {
                b.of.insert(*node, "skipped");
            }),
            RunnerEvent::MissedStart { .. } => {
                self.missed_starts.inc();
            }
            RunnerEvent::FleetCompleted { state, refused, .. } => {
                let label = match (refused, state) {
                    (Some(_), _) => "refused",
                    (None, NodeState::Succeeded | NodeState::Cached) => "succeeded",
                    (None, NodeState::Cancelled) => "cancelled",
                    (None, _) => "failed",
                };
                self.fleet_completed
                    .get_or_create(&[("state", label)])
                    .inc();
            }
            RunnerEvent::FleetConcurrency { to, .. } => {
                self.fleet_concurrency
                    .set(i64::try_from(*to).unwrap_or(i64::MAX));
            }
            RunnerEvent::FleetQueue { status } => self.set_fleet(status),
            RunnerEvent::FleetClaimed { .. } | RunnerEvent::FleetRunEnded { .. } => {}
            // Not scheduled, so not among `Started::nodes` either.
            RunnerEvent::NodeUnavailable { .. }
            | RunnerEvent::Cancelling
            | RunnerEvent::Warning { .. }
            | RunnerEvent::Outliers { .. } => {}
        }
    }

    fn book(&self, f: impl FnOnce(&mut NodeBook)) {
        let Ok(mut b) = self.state.lock() else {
            return;
        };
        f(&mut b);
        for s in NODE_STATES {
            self.nodes.get_or_create(&[("state", s)]).set(b.count(s));
        }
        self.queue_depth.set(b.count("queued"));
        self.running_jobs.set(b.running_jobs());
    }

    /// The machine over the last interval (from [`benchfleet_metrics::CpuMeter`]).
    pub fn set_system(&self, s: &benchfleet_metrics::Sample) {
        if !s.cores.is_empty() {
            let busy =
                s.cores.iter().map(|c| f64::from(c.busy)).sum::<f64>() / s.cores.len() as f64;
            self.cpu_busy.set(busy);
        }
        self.own_busy.set(s.own_busy_cores);
        self.mem_used
            .set(i64::try_from(s.mem_used_bytes).unwrap_or(i64::MAX));
        self.load1.set(s.load1);
    }

    /// The fleet's queue as `fleet status` sees it: per pool, nodes ready, running and waiting,
    /// the oldest ready node's age and the live workers (what an autoscaler sizes workers by).
    pub fn set_fleet(&self, status: &benchfleet_store::FleetStatus) {
        for p in &status.pools {
            let gauge = |state: &str| {
                self.fleet_queue.get_or_create(&vec![
                    ("pool".to_owned(), p.pool.clone()),
                    ("state".to_owned(), state.to_owned()),
                ])
            };
            gauge("ready").set(i64::try_from(p.ready).unwrap_or(i64::MAX));
            gauge("running").set(i64::try_from(p.running).unwrap_or(i64::MAX));
            gauge("waiting").set(i64::try_from(p.waiting).unwrap_or(i64::MAX));
            let pool = vec![("pool".to_owned(), p.pool.clone())];
            self.fleet_oldest_ready
                .get_or_create(&pool)
                .set(p.oldest_ready_secs.unwrap_or(0.0));
            self.fleet_workers
                .get_or_create(&pool)
                .set(i64::try_from(p.workers).unwrap_or(i64::MAX));
        }
    }

    /// A fleet worker's starting concurrency.
    pub fn set_fleet_concurrency(&self, jobs: usize) {
        self.fleet_concurrency
            .set(i64::try_from(jobs).unwrap_or(i64::MAX));
    }

    /// The event stream of a run ended: it counts as finished if it had started (a run that
    /// failed before its `Started` counts neither way).
    pub fn suite_finished(&self) {
        let mut was_open = false;
        self.book(|b| {
            was_open = b.open > 0;
            b.open = b.open.saturating_sub(1);
        });
        if was_open {
            self.suite_runs_finished.inc();
        }
    }

    /// The exposition text (OpenMetrics, ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Update `metrics` from every event of `events` and forward it to `forward` (e.g. the progress
/// display). Ends when `events` closes; the forward channel then closes too.
pub fn tee(
    mut events: UnboundedReceiver<RunnerEvent>,
    metrics: Arc<RunnerMetrics>,
    forward: UnboundedSender<RunnerEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            metrics.apply(&e);
            let _ = forward.send(e);
        }
        metrics.suite_finished();
    })
}

/// Why the exposition could not be set up or written.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error(
        "--metrics-listen {addr}: only loopback addresses are allowed (127.0.0.1:PORT or [::1]:PORT); the runner's metrics are not meant to be exposed to the network"
    )]
    NotLoopback { addr: String },
    #[error("--metrics-listen {addr}: not an address; write e.g. 127.0.0.1:9464 ({reason})")]
    BadAddress { addr: String, reason: String },
    #[error("--metrics-listen {addr}: cannot listen: {source}; is the port in use?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--metrics-file {path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Parse a listen address and refuse anything but loopback.
pub fn loopback_addr(addr: &str) -> Result<SocketAddr, PromError> {
    let parsed: SocketAddr =
        addr.trim()
            .parse()
            .map_err(|e: std::net::AddrParseError| PromError::BadAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
    if !parsed.ip().is_loopback() {
        return Err(PromError::NotLoopback {
            addr: addr.to_owned(),
        });
    }
    Ok(parsed)
}

/// Write `text` to `path` atomically (a temporary file beside it, then rename).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), PromError> {
    let err = |source| PromError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// Where and how often to expose (the HTTP side is attached with
/// [`Exposition::attach_server`]).
#[derive(Clone, Debug)]
pub struct PromOptions {
    pub file: Option<PathBuf>,
    /// File rewrite and system reading interval.
    pub interval: Duration,
}

impl Default for PromOptions {
    fn default() -> Self {
        PromOptions {
            file: None,
            interval: Duration::from_secs(1),
        }
    }
}

/// A running exposition; [`Exposition::finish`] writes the file a last time and stops serving.
#[derive(Debug)]
pub struct Exposition {
    metrics: Arc<RunnerMetrics>,
    file: Option<PathBuf>,
    local_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Shared with the interval task, so `finish` can take the last reading.
    meter: Arc<Mutex<Option<benchfleet_metrics::CpuMeter>>>,
}

impl Exposition {
    /// The bound address of the attached server (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// A server of this exposition's metrics, bound on `addr` and running as `task`: stopped by
    /// [`finish`](Exposition::finish) with the rest.
    pub fn attach_server(&mut self, addr: SocketAddr, task: tokio::task::JoinHandle<()>) {
        self.local_addr = Some(addr);
        self.tasks.push(task);
    }

    pub fn metrics(&self) -> &Arc<RunnerMetrics> {
        &self.metrics
    }

    /// Take a last system reading, rewrite the file, stop serving.
    pub async fn finish(self) -> Result<(), PromError> {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        // The machine since the last interval's reading (or since `start`).
        if let Some(s) = self
            .meter
            .lock()
            .ok()
            .and_then(|mut m| m.as_mut().and_then(benchfleet_metrics::CpuMeter::read))
        {
            self.metrics.set_system(&s);
        }
        if let Some(path) = &self.file {
            write_atomic(path, &self.metrics.encode())?;
        }
        Ok(())
    }
}

/// Start exposing `metrics`: write the file once now, then every interval, and read the
/// machine's CPU and memory every interval.
pub async fn start(
    metrics: Arc<RunnerMetrics>,
    opts: &PromOptions,
) -> Result<Exposition, PromError> {
    let mut tasks = Vec::new();
    if let Some(path) = &opts.file {
        write_atomic(path, &metrics.encode())?;
    }
    let interval = opts.interval.max(Duration::from_millis(10));
    let (m, file) = (metrics.clone(), opts.file.clone());
    let meter = Arc::new(Mutex::new(benchfleet_metrics::CpuMeter::new().ok()));
    let task_meter = meter.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let reading = task_meter
                .lock()
                .ok()
                .and_then(|mut m| m.as_mut().and_then(benchfleet_metrics::CpuMeter::read));
            if let Some(s) = reading {
                m.set_system(&s);
            }
            if let Some(path) = &file
                && let Err(e) = write_atomic(path, &m.encode())
            {
                tracing::warn!("{e}");
            }
        }
    }));
    Ok(Exposition {
        metrics,
        file: opts.file.clone(),
        local_addr: None,
        tasks,
        meter,
    })
}

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Parse an exposition into `(series with labels, value)`, checking every line: comments are
/// `# HELP`, `# TYPE`, `# UNIT` or `# EOF`, samples are `name{labels} value`. For tests and for
/// anyone checking a metrics file.
pub fn parse_exposition(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut out = BTreeMap::new();
    let mut eof = false;
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if eof {
            return Err(at("content after # EOF"));
        }
        if let Some(rest) = line.strip_prefix('#') {
            let word = rest.split_whitespace().next().unwrap_or("");
            match word {
                "HELP" | "TYPE" | "UNIT" => {}
                "EOF" => eof = true,
                _ => return Err(at("unknown comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(at("bad metric name"));
        }
        if name_end < series.len() && !series.ends_with('}') {
            return Err(at("unclosed labels"));
        }
        let v: f64 = value.parse().map_err(|_| at("value is not a number"))?;
        if out.insert(series.to_owned(), v).is_some() {
            return Err(at("duplicate series"));
        }
    }
    if !eof {
        return Err("no # EOF line at the end".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
