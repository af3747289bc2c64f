//! Throughput benchmarks (`benchfleet load`): run one command repeatedly under a load profile
//! ([`benchfleet_metrics::load`]: soak, stress, spike) and report throughput and latency
//! percentiles per time window and per step. Every run is stored as a record, like `bench`.
//!
//! The executor is a pool of worker threads (one per slot of the largest step) fed by one
//! dispatcher. Closed loop (no rate): the dispatcher starts a run whenever fewer than the step's
//! concurrency are in flight. Open loop (a rate): the dispatcher follows the profile's token
//! schedule and never waits for completions beyond a token's own slot; a token that finds every
//! slot busy until the next token is due is a *missed start*, counted, not shifted. Completions
//! stream to the async side, which accumulates the windows and stores records in batches, so a
//! long soak costs constant memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use benchfleet_metrics::load::{Completion, LoadProfile, LoadStats, Period};
use benchfleet_metrics::{Kill, ProcessResult, ProcessSpec, Sampler, SystemSeries};
use benchfleet_model::{RunInfo, RunRecord, Timestamp};
use benchfleet_store::{Storage, StoreError};

use crate::bench::{self, BenchCommand, BenchError};
use crate::host;

/// `RunInfo::source` and suite name of load runs.
pub const LOAD_SOURCE: &str = "load";
/// Record and run tag: the profile (`soak`, `stress`, `spike`).
pub const TAG_PROFILE: &str = "load.profile";
/// Record tag: index of the step that started the run.
pub const TAG_STEP: &str = "load.step";
/// Record tag: label of that step (`steady`, `step 2`, `burst` …).
pub const TAG_STEP_LABEL: &str = "load.step_label";
/// Record tag: index of the window in which the run ended.
pub const TAG_WINDOW: &str = "load.window";
/// Record tag: the step's concurrency.
pub const TAG_CONCURRENCY: &str = "load.concurrency";
/// Record tag: runs in flight when this one started (itself included).
pub const TAG_IN_FLIGHT: &str = "load.in_flight";
/// Record tag: the step's target rate (open loop only).
pub const TAG_RATE: &str = "load.rate";
/// Record tag: how late the start was against its schedule, nanoseconds (open loop only).
pub const TAG_LAG: &str = "load.lag_ns";
/// Run tag: window length, nanoseconds.
pub const TAG_WINDOW_NS: &str = "load.window_ns";
/// Run tag: open-loop starts that were missed.
pub const TAG_MISSED: &str = "load.missed";
/// Records are written in batches of this many.
pub const STORE_BATCH: usize = 1024;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// The command line (split into words, or run through `shell`).
    pub command: String,
    /// Name in results (default: the command).
    pub name: Option<String>,
    /// Run as `SHELL -c COMMAND` (no spawn-cost subtraction: latency includes the shell).
    pub shell: Option<String>,
    pub profile: LoadProfile,
    /// Length of the reporting windows.
    pub window: Duration,
    /// Kill a run (its process group) after this long; it counts as failed.
    pub timeout: Option<Duration>,
    /// Failed runs do not fail the run (exit code 0); they are always counted and stored.
    pub ignore_failure: bool,
    pub stderr_tail: usize,
    pub sample_interval: Option<Duration>,
    pub tags: BTreeMap<String, String>,
    /// Stops the load (Ctrl-C); running processes get `grace`, then are killed.
    pub kill: Kill,
    pub grace: Duration,
    /// Runner metrics to update (runs started/finished/failed, running jobs, records stored).
    pub metrics: Option<Arc<crate::prom::RunnerMetrics>>,
}

impl LoadSettings {
    /// Defaults: direct execution, 1 s windows, no timeout, sampling every 250 ms.
    pub fn new(command: impl Into<String>, profile: LoadProfile) -> Self {
        LoadSettings {
            command: command.into(),
            name: None,
            shell: None,
            profile,
            window: Duration::from_secs(1),
            timeout: None,
            ignore_failure: false,
            stderr_tail: benchfleet_metrics::DEFAULT_STDERR_TAIL,
            sample_interval: Some(Duration::from_millis(250)),
            tags: BTreeMap::new(),
            kill: Kill::new(),
            grace: Duration::from_secs(2),
            metrics: None,
        }
    }
}

/// The result of [`run_load`].
#[derive(Clone, Debug)]
pub struct LoadOutcome {
    pub run: RunInfo,
    pub name: String,
    /// Records stored (one per run, failed ones included).
    pub records: usize,
    pub windows: Vec<Period>,
    pub steps: Vec<Period>,
    pub total: Period,
    pub series: Option<SystemSeries>,
    pub warnings: Vec<String>,
}

/// What the executor reports, in completion order.
#[derive(Debug)]
pub enum LoadEvent {
    /// A run started (`in_flight` includes it).
    Started { in_flight: u32 },
    /// A run ended.
    Done(Box<Done>),
    /// An open-loop start of `step` due at `at` found every slot busy until its deadline.
    Missed { step: usize, at: Duration },
}

/// One finished run.
#[derive(Debug)]
pub struct Done {
    /// Sequence number of the start (0-based, in start order).
    pub seq: u64,
    pub step: usize,
    /// When it was due (open loop) or dispatched (closed loop), from the start of the load.
    pub intended: Duration,
    pub start: Duration,
    pub end: Duration,
    pub started_at: Timestamp,
    pub in_flight: u32,
    pub result: ProcessResult,
}

struct Slots {
    in_flight: u32,
}

struct Job {
    seq: u64,
    step: usize,
    intended: Duration,
    /// Runs in flight when it was dispatched, itself included.
    in_flight: u32,
}

/// How long a waiting dispatcher sleeps at most before looking at the kill flag again.
const KILL_POLL: Duration = Duration::from_millis(20);

/// Run `spec` under `profile` (blocking) and report every start, completion and missed start to
/// `events` (from several threads). Returns when the profile is over (or `kill` fired) and every
/// run in flight has ended.
pub fn execute(
    profile: &LoadProfile,
    spec: &ProcessSpec,
    kill: &Kill,
    events: &(dyn Fn(LoadEvent) + Sync),
) {
    let pool = profile.max_concurrency().max(1) as usize;
    let slots = Mutex::new(Slots { in_flight: 0 });
    let freed = Condvar::new();
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Mutex::new(rx);
    let t0 = Instant::now();
    let since = |t: Instant| t.saturating_duration_since(t0);

    std::thread::scope(|scope| {
        for _ in 0..pool {
            let (rx, slots, freed) = (&rx, &slots, &freed);
            let worker = std::thread::Builder::new().stack_size(256 * 1024);
            let spawned = worker.spawn_scoped(scope, move || {
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => break,
                    };
                    let Ok(job) = job else { break };
                    let started_at = host::now();
                    let start = since(Instant::now());
                    let result = benchfleet_metrics::run_cancellable(spec, kill);
                    let end = since(Instant::now());
                    if let Ok(mut s) = slots.lock() {
                        s.in_flight = s.in_flight.saturating_sub(1);
                    }
                    freed.notify_all();
                    events(LoadEvent::Done(Box::new(Done {
                        seq: job.seq,
                        step: job.step,
                        intended: job.intended,
                        start,
                        end,
                        started_at,
                        in_flight: job.in_flight,
                        result,
                    })));
                }
            });
            if spawned.is_err() {
                // Fewer workers than slots: the load runs with what could be started.
                break;
            }
        }

        let mut seq = 0u64;
        // Take one of `concurrency` slots before `deadline`; the runs then in flight.
        let take = |concurrency: u32, deadline: Instant| -> Option<u32> {
            let mut s = slots.lock().ok()?;
            loop {
                if kill.is_killed() {
                    return None;
                }
                if s.in_flight < concurrency {
                    s.in_flight += 1;
                    events(LoadEvent::Started {
                        in_flight: s.in_flight,
                    });
                    return Some(s.in_flight);
                }
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                s = freed
                    .wait_timeout(s, (deadline - now).min(KILL_POLL))
                    .ok()?
                    .0;
            }
        };
        if profile.open_loop() {
            for token in profile.tokens() {
                if kill.is_killed() {
                    break;
                }
                let due = t0 + token.at;
                while let Some(left) = due.checked_duration_since(Instant::now()) {
                    if kill.is_killed() {
                        break;
                    }
                    std::thread::sleep(left.min(KILL_POLL));
                }
                let concurrency = profile.steps[token.step].concurrency;
                if let Some(in_flight) = take(concurrency, t0 + token.deadline) {
                    let job = Job {
                        seq,
                        step: token.step,
                        intended: token.at,
                        in_flight,
                    };
                    seq += 1;
                    if tx.send(job).is_err() {
                        break;
                    }
                } else if !kill.is_killed() {
                    events(LoadEvent::Missed {
                        step: token.step,
                        at: token.at,
                    });
                }
            }
        } else {
            loop {
                if kill.is_killed() {
                    break;
                }
                let now = since(Instant::now());
                let Some(step) = profile.step_at(now) else {
                    break;
                };
                if let Some(in_flight) = take(step.concurrency, t0 + step.end()) {
                    let job = Job {
                        seq,
                        step: step.index,
                        intended: since(Instant::now()),
                        in_flight,
                    };
                    seq += 1;
                    if tx.send(job).is_err() {
                        break;
                    }
                }
            }
        }
        drop(tx); // workers finish what is in flight, then stop
    });
}

/// Why a load could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadRunError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Profile(#[from] benchfleet_metrics::load::LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the load executor failed: {0}; this is a bug, please report it")]
    Internal(String),
}

impl LoadRunError {
    /// Whether the user can fix this by changing flags (exit code 2).
    pub fn is_user_input(&self) -> bool {
        match self {
            LoadRunError::Bench(b) => b.is_user_input(),
            LoadRunError::Profile(_) => true,
            _ => false,
        }
    }
}

/// Run the load and store one record per run (in batches of [`STORE_BATCH`]) plus a
/// [`RunInfo`] with source `load`.
pub async fn run_load(
    settings: &LoadSettings,
    storage: &Storage,
) -> Result<LoadOutcome, LoadRunError> {
    let shell = settings
        .shell
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "none");
    let mut spec = bench::command_spec(&settings.command, shell)?;
    spec.timeout = settings.timeout;
    spec.stderr_tail = settings.stderr_tail;
    let mut stats = LoadStats::new(&settings.profile, settings.window)?;
    let command = BenchCommand {
        name: settings
            .name
            .clone()
            .unwrap_or_else(|| settings.command.clone()),
        command: settings.command.clone(),
        parameters: BTreeMap::new(),
        prepare: None,
        conclude: None,
        setup: None,
        cleanup: None,
        reference: false,
    };

    let profile = &settings.profile;
    let mut tags = settings.tags.clone();
    tags.insert(TAG_PROFILE.into(), profile.kind.as_str().into());
    tags.insert(TAG_WINDOW_NS.into(), settings.window.as_nanos().to_string());
    if let Some(sh) = shell {
        tags.insert(bench::TAG_SHELL.into(), sh.into());
    }
    let mut run = bench::new_run(host::new_run_id(), LOAD_SOURCE, tags);
    storage.catalog.put_run(&run).await?;
    let metrics = settings.metrics.clone();
    if let Some(m) = &metrics {
        m.run_started(profile.steps.len());
    }

    let mut warnings = Vec::new();
    let sampler = match settings.sample_interval {
        Some(i) => match Sampler::start(i) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!("warning: system sampling is off: {e}"));
                None
            }
        },
        None => None,
    };

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LoadEvent>();
    let exec = {
        let profile = profile.clone();
        let kill = settings.kill.clone();
        let metrics = metrics.clone();
        tokio::task::spawn_blocking(move || {
            let send = move |e: LoadEvent| {
                if let Some(m) = &metrics {
                    match &e {
                        LoadEvent::Started { in_flight } => m.job_started(*in_flight),
                        LoadEvent::Done(d) => m.job_finished(d.result.outcome.is_success()),
                        LoadEvent::Missed { .. } => m.missed_start(),
                    }
                }
                let _ = tx.send(e);
            };
            execute(&profile, &spec, &kill, &send);
        })
    };

    let mut batch: Vec<RunRecord> = Vec::with_capacity(STORE_BATCH);
    let mut stored = 0usize;
    let mut store_error = None;
    while let Some(event) = rx.recv().await {
        let done = match event {
            LoadEvent::Missed { step, at } => {
                stats.missed(step, at);
                continue;
            }
            LoadEvent::Started { .. } => continue,
            LoadEvent::Done(d) => d,
        };
        if settings.kill.is_killed() && !done.result.outcome.is_success() {
            continue; // stopped by Ctrl-C: not a measurement of the command
        }
        let ok = done.result.outcome.is_success();
        stats.record(&Completion {
            step: done.step,
            start: done.start,
            end: done.end,
            latency_ns: done.result.measurement.wall_ns,
            ok,
        });
        let step = &profile.steps[done.step];
        let mut rtags = settings.tags.clone();
        rtags.insert(TAG_PROFILE.into(), profile.kind.as_str().into());
        rtags.insert(TAG_STEP.into(), done.step.to_string());
        rtags.insert(TAG_STEP_LABEL.into(), step.label.clone());
        rtags.insert(TAG_WINDOW.into(), stats.window_of(done.end).to_string());
        rtags.insert(TAG_CONCURRENCY.into(), step.concurrency.to_string());
        rtags.insert(TAG_IN_FLIGHT.into(), done.in_flight.to_string());
        rtags.insert(
            RunRecord::TAG_CONCURRENT.into(),
            (done.in_flight > 1).to_string(),
        );
        if let Some(rate) = step.rate {
            rtags.insert(TAG_RATE.into(), format!("{rate}"));
            rtags.insert(
                TAG_LAG.into(),
                done.start
                    .saturating_sub(done.intended)
                    .as_nanos()
                    .to_string(),
            );
        }
        batch.push(bench::record_of(
            &run,
            &command,
            u32::try_from(done.seq).unwrap_or(u32::MAX),
            done.started_at,
            done.result.measurement,
            done.result.outcome,
            done.result.stderr_tail,
            rtags,
        ));
        if batch.len() >= STORE_BATCH && store_error.is_none() {
            match storage.write_records(&batch).await {
                Ok(_) => {
                    stored += batch.len();
                    if let Some(m) = &metrics {
                        m.records_stored(batch.len());
                    }
                }
                Err(e) => {
                    // Stop the load: measuring on without storing would lose the results.
                    settings.kill.kill(settings.grace);
                    store_error = Some(e);
                }
            }
            batch.clear();
        }
    }
    exec.await
        .map_err(|e| LoadRunError::Internal(e.to_string()))?;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    if !batch.is_empty() {
        storage.write_records(&batch).await?;
        stored += batch.len();
        if let Some(m) = &metrics {
            m.records_stored(batch.len());
        }
    }
    let series = sampler.map(Sampler::stop);
    if let Some(s) = &series {
        if let Err(e) = bench::store_series(storage, s, &mut run.tags).await {
            warnings.push(format!("warning: could not store the system samples: {e}"));
        }
        warnings.extend(bench::describe_series(s));
    }

    let total = stats.total();
    run.tags.insert(TAG_MISSED.into(), total.missed.to_string());
    if total.missed > 0 {
        let scheduled = total.missed + total.completed + total.failed;
        warnings.push(format!(
            "warning: the system could not keep up: {} of {scheduled} scheduled starts were missed (every one of the step's slots was busy until the next start was due); raise --concurrency or lower --rate",
            total.missed
        ));
    }
    if total.failed > 0 {
        warnings.push(format!(
            "warning: {} of {} runs failed; they are stored and counted, latency percentiles use the successful runs",
            total.failed,
            total.failed + total.completed
        ));
    }
    let killed = settings.kill.is_killed();
    run.finished_at = Some(host::now());
    run.status = crate::runner::final_status(killed, total.failed > 0 && !settings.ignore_failure);
    storage.catalog.put_run(&run).await?;
    crate::runner::release_lease(storage).await;
    if let Some(m) = &metrics {
        m.run_finished(total.failed == 0 || settings.ignore_failure);
    }
    Ok(LoadOutcome {
        run,
        name: command.name,
        records: stored,
        windows: stats.windows(),
        steps: stats.steps(),
        total,
        series,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet_metrics::load::{SoakSpec, StressSpec};

    fn collect(profile: &LoadProfile, spec: &ProcessSpec) -> Vec<LoadEvent> {
        let out = Mutex::new(Vec::new());
        execute(profile, spec, &Kill::new(), &|e| {
            out.lock().unwrap().push(e);
        });
        out.into_inner().unwrap()
    }

    #[test]
    fn closed_loop_never_exceeds_the_steps_concurrency() {
        let profile = LoadProfile::stress(&StressSpec {
            start_concurrency: 1,
            max_concurrency: 3,
            steps: 2,
            step_duration: Duration::from_millis(150),
            rate: None,
            max_rate: None,
        })
        .unwrap();
        let events = collect(&profile, &ProcessSpec::new("sleep", ["0.01"]));
        let mut seqs = Vec::new();
        for e in &events {
            match e {
                LoadEvent::Done(d) => {
                    let allowed = profile.steps[d.step].concurrency;
                    assert!(d.in_flight >= 1 && d.in_flight <= allowed, "{d:?}");
                    assert!(d.result.outcome.is_success(), "{d:?}");
                    assert!(d.start <= d.end);
                    seqs.push(d.seq);
                }
                LoadEvent::Started { in_flight } => assert!(*in_flight <= 3),
                LoadEvent::Missed { .. } => panic!("closed loop never misses: {e:?}"),
            }
        }
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LoadEvent::Done(d) if d.step == 1))
        );
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "every start ends once"
        );
    }

    #[test]
    fn open_loop_counts_starts_it_could_not_make_as_missed() {
        // One slot, 50 starts per second, each run 100 ms: most tokens find the slot busy.
        let profile = LoadProfile::soak(&SoakSpec {
            duration: Duration::from_millis(300),
            concurrency: 1,
            rate: Some(50.0),
        })
        .unwrap();
        let events = collect(&profile, &ProcessSpec::new("sleep", ["0.1"]));
        let done = events
            .iter()
            .filter(|e| matches!(e, LoadEvent::Done(_)))
            .count();
        let missed = events
            .iter()
            .filter(|e| matches!(e, LoadEvent::Missed { .. }))
            .count();
        assert_eq!(
            done + missed,
            profile.tokens().count(),
            "every token is started or missed"
        );
        assert!(missed > 0, "{events:?}");
        assert!(done >= 1);
    }
}
