//! The load engine of throughput benchmarks (the `load` driver, and suite nodes with a `load`
//! table in the `runner` driver): run one command repeatedly under a load profile ([`benchfleet_analysis::load`]: soak, stress, spike) and
//! report throughput and latency percentiles per time window and per step. Every run is stored as
//! a record, like `bench`.
//!
//! [`plan`] turns the parameters (a [`LoadSpec`]: the `load` command's flags, or a suite node's
//! `load` table, the same keys) into a profile; [`drive`] runs it and stores the records of any
//! run, under any name: `load::run_load` wraps it in a run of its own (the `load` command), the
//! suite runner calls it for a node inside the suite's run ([`run_node`]).
//!
//! **Architecture invariant:** a lower module under the drivers: it imports none of them.
//!
//! The executor is a pool of worker threads (one per slot of the largest step) fed by one
//! dispatcher. Closed loop (no rate): the dispatcher starts a run whenever fewer than the step's
//! concurrency are in flight. Open loop (a rate): the dispatcher follows the profile's token
//! schedule and never waits for completions beyond a token's own slot; a token that finds every
//! slot busy until the next token is due is a *missed start*, counted, not shifted. Completions
//! stream to the async side, which accumulates the windows and stores records in batches, so a
//! long soak costs constant memory.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use benchfleet_analysis::load::{
    Completion, LoadError, LoadProfile, LoadStats, Period, ProfileKind, SoakSpec, SpikeSpec,
    StressSpec,
};
use benchfleet_metrics::{Kill, ProcessResult, ProcessSpec};
use benchfleet_model::{LoadSpec, RunRecord, Timestamp};
use benchfleet_sched::CancelToken;
use benchfleet_store::{Storage, StoreError};
use tokio::sync::mpsc::UnboundedSender;

use crate::event::RunnerEvent;
use crate::exec::{CommandError, RecordOwner, describe_failure, record_of};
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

/// What the executor reports, in completion order.
#[derive(Debug)]
pub enum LoadEvent {
    /// Run number `seq` (0-based, in start order) is about to start; `in_flight` includes it.
    Started { seq: u64, in_flight: u32 },
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
        // Take one of `concurrency` slots before `deadline` for run `seq`; the runs then in flight.
        let take = |concurrency: u32, deadline: Instant, seq: u64| -> Option<u32> {
            let mut s = slots.lock().ok()?;
            loop {
                if kill.is_killed() {
                    return None;
                }
                if s.in_flight < concurrency {
                    s.in_flight += 1;
                    events(LoadEvent::Started {
                        seq,
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
                if let Some(in_flight) = take(concurrency, t0 + token.deadline, seq) {
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
                if let Some(in_flight) = take(step.concurrency, t0 + step.end(), seq) {
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
    Command(#[from] CommandError),
    #[error(transparent)]
    Profile(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the load executor failed: {0}; this is a bug, please report it")]
    Internal(String),
}

impl LoadRunError {
    /// Whether the user can fix this by changing flags (exit code 2).
    pub fn is_user_input(&self) -> bool {
        matches!(self, LoadRunError::Command(_) | LoadRunError::Profile(_))
    }
}

/// The keys of a suite node's `load` table ([`LoadSpec`]), in the order they are checked. Each
/// is also a flag of `benchfleet load`: `max_concurrency` is `--max-concurrency`.
pub const LOAD_KEYS: [&str; 13] = [
    "profile",
    "duration",
    "concurrency",
    "rate",
    "steps",
    "step_duration",
    "max_concurrency",
    "max_rate",
    "baseline",
    "burst",
    "burst_duration",
    "burst_rate",
    "window",
];

/// The keys a profile takes; any other is an error rather than silently ignored.
fn keys_of(kind: ProfileKind) -> &'static [&'static str] {
    match kind {
        ProfileKind::Soak => &["profile", "duration", "concurrency", "rate", "window"],
        ProfileKind::Stress => &[
            "profile",
            "duration",
            "concurrency",
            "rate",
            "steps",
            "step_duration",
            "max_concurrency",
            "max_rate",
            "window",
        ],
        ProfileKind::Spike => &[
            "profile",
            "duration",
            "concurrency",
            "rate",
            "baseline",
            "burst",
            "burst_duration",
            "burst_rate",
            "window",
        ],
    }
}

/// The keys of `spec` that are set, in [`LOAD_KEYS`] order.
fn given_keys(spec: &LoadSpec) -> Vec<&'static str> {
    let d = |v: &Option<benchfleet_model::DurationSpec>| v.is_some();
    let set = [
        spec.profile.is_some(),
        d(&spec.duration),
        spec.concurrency.is_some(),
        spec.rate.is_some(),
        spec.steps.is_some(),
        d(&spec.step_duration),
        spec.max_concurrency.is_some(),
        spec.max_rate.is_some(),
        spec.baseline.is_some(),
        spec.burst.is_some(),
        d(&spec.burst_duration),
        spec.burst_rate.is_some(),
        d(&spec.window),
    ];
    LOAD_KEYS
        .iter()
        .zip(set)
        .filter_map(|(k, on)| on.then_some(*k))
        .collect()
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// What to do when the parameters leave a duration out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingDuration {
    /// The `load` command's defaults: 10 s for soak and spike, steps of 2 s for stress.
    Default,
    /// An error: a suite file says how long its load runs.
    Refuse,
}

/// Length of the reporting windows when the parameters do not say.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// Most reporting windows a load may be cut into (each is a row of the report).
pub const MAX_WINDOWS: u128 = 100_000;

/// A load's resolved shape: the profile and the length of its reporting windows.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPlan {
    pub profile: LoadProfile,
    pub window: Duration,
}

/// Resolve load parameters into a plan, with the `load` command's defaults: profile `soak`,
/// concurrency 1, 5 stress steps ramping to `concurrency × steps`, a spike's baseline at
/// `concurrency`, its burst at 4 × baseline for a fifth of the duration, 1 s windows.
///
/// Errors name the parameters as the `load` command's flags (`--max-concurrency`);
/// [`in_table_terms`] rewrites them for a suite's `load` table. A key the profile does not take,
/// and parameters that contradict each other, are errors.
pub fn plan(spec: &LoadSpec, missing: MissingDuration) -> Result<LoadPlan, LoadError> {
    let kind: ProfileKind = spec
        .profile
        .as_deref()
        .unwrap_or("soak")
        .parse()
        .map_err(|e: LoadError| LoadError(format!("--profile: {e}")))?;
    let takes = keys_of(kind);
    if let Some(k) = given_keys(spec).into_iter().find(|k| !takes.contains(k)) {
        let list: Vec<String> = takes.iter().map(|k| flag(k)).collect();
        return Err(LoadError(format!(
            "{} does not apply to a {} profile, which takes {}",
            flag(k),
            kind.as_str(),
            list.join(", ")
        )));
    }
    let missing_duration = |key: &str, default: Duration| match missing {
        MissingDuration::Default => Ok(default),
        MissingDuration::Refuse => Err(LoadError(format!(
            "{key} is missing: say how long the load runs, e.g. 30s"
        ))),
    };
    let d = |v: Option<benchfleet_model::DurationSpec>| v.map(|d| d.0);
    let profile = match kind {
        ProfileKind::Soak => LoadProfile::soak(&SoakSpec {
            duration: match d(spec.duration) {
                Some(t) => t,
                None => missing_duration("--duration", Duration::from_secs(10))?,
            },
            concurrency: spec.concurrency.unwrap_or(1),
            rate: spec.rate,
        })?,
        ProfileKind::Stress => {
            let steps = spec.steps.unwrap_or(5);
            let step_duration = match (d(spec.step_duration), d(spec.duration)) {
                (Some(step), Some(total)) if step.checked_mul(steps) != Some(total) => {
                    return Err(LoadError(format!(
                        "--step-duration ({step:?}) × --steps ({steps}) is not --duration ({total:?}); give one of --duration and --step-duration"
                    )));
                }
                (Some(step), _) => step,
                (None, Some(total)) => total / steps.max(1),
                (None, None) => {
                    missing_duration("--step-duration (or --duration)", Duration::from_secs(2))?
                }
            };
            let concurrency = spec.concurrency.unwrap_or(1);
            LoadProfile::stress(&StressSpec {
                start_concurrency: concurrency,
                max_concurrency: spec
                    .max_concurrency
                    .unwrap_or(concurrency.saturating_mul(steps.max(1))),
                steps,
                step_duration,
                rate: spec.rate,
                max_rate: spec.max_rate,
            })?
        }
        ProfileKind::Spike => {
            let duration = match d(spec.duration) {
                Some(t) => t,
                None => missing_duration("--duration", Duration::from_secs(10))?,
            };
            let baseline = match (spec.baseline, spec.concurrency) {
                (Some(b), Some(c)) if b != c => {
                    return Err(LoadError(format!(
                        "--baseline ({b}) and --concurrency ({c}) both set the concurrency outside the burst; give one of them"
                    )));
                }
                (b, c) => b.or(c).unwrap_or(1),
            };
            LoadProfile::spike(&SpikeSpec {
                duration,
                baseline,
                burst: spec.burst.unwrap_or(baseline.saturating_mul(4)),
                burst_duration: d(spec.burst_duration).unwrap_or(duration / 5),
                rate: spec.rate,
                burst_rate: spec.burst_rate,
            })?
        }
    };
    let window = d(spec.window).unwrap_or(DEFAULT_WINDOW);
    LoadStats::new(&profile, window)?; // checks the window
    let windows = profile.duration().as_nanos() / window.as_nanos().max(1);
    if windows > MAX_WINDOWS {
        return Err(LoadError(format!(
            "--window ({window:?}) cuts the {:?} load into {windows} windows; the most is {MAX_WINDOWS}: use a longer window",
            profile.duration()
        )));
    }
    Ok(LoadPlan { profile, window })
}

/// A message of [`plan`] or [`LoadReport::warnings`], which name the `load` command's flags, in
/// the terms of a suite node's `load` table: `--max-concurrency` becomes `` `load.max_concurrency` ``.
/// Anything that is not one of [`LOAD_KEYS`] is left as it is.
pub fn in_table_terms(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    let mut rest = message;
    while let Some(i) = rest.find("--") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(after.len());
        let word = after[..end].trim_end_matches('-');
        let key = word.replace('-', "_");
        if !word.is_empty() && LOAD_KEYS.contains(&key.as_str()) {
            out.push_str(&format!("`load.{key}`"));
            rest = &after[word.len()..];
        } else {
            out.push_str("--");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A load's events as runner events of its node: [`RunnerEvent::RunStarted`] right before each
/// run, [`RunnerEvent::Measured`] when it ends (with `planned` 0: a load's number of runs is not
/// known in advance), [`RunnerEvent::MissedStart`] for an open-loop start that could not happen
/// and [`RunnerEvent::Stored`] for each batch of records made durable. The node's
/// `NodeStarted`/`NodeFinished` are its driver's (the suite runner, or `load`).
#[derive(Clone, Debug)]
pub struct NodeEvents {
    pub node: usize,
    pub events: UnboundedSender<RunnerEvent>,
}

impl NodeEvents {
    /// A start, completion or missed start (called from the executor's threads).
    pub fn event(&self, event: &LoadEvent) {
        let iteration = |seq: u64| u32::try_from(seq).unwrap_or(u32::MAX);
        let e = match event {
            LoadEvent::Started { seq, .. } => RunnerEvent::RunStarted {
                node: self.node,
                iteration: iteration(*seq),
            },
            LoadEvent::Done(d) => RunnerEvent::Measured {
                node: self.node,
                iteration: iteration(d.seq),
                planned: 0,
                wall: Duration::from_nanos(d.result.measurement.wall_ns),
                ok: d.result.outcome.is_success(),
            },
            LoadEvent::Missed { step, .. } => RunnerEvent::MissedStart {
                node: self.node,
                step: *step,
            },
        };
        let _ = self.events.send(e);
    }

    /// `records` more records are durable.
    pub fn stored(&self, records: usize) {
        let _ = self.events.send(RunnerEvent::Stored {
            node: self.node,
            records,
        });
    }
}

/// One load to run with [`drive`].
pub struct LoadJob {
    pub plan: LoadPlan,
    /// The process to run, with its timeout and stderr tail.
    pub spec: ProcessSpec,
    pub owner: RecordOwner,
    /// Tags of every record; the `load.*` tags are added.
    pub tags: BTreeMap<String, String>,
    /// Stops the load: running processes get `grace`, then are killed. [`drive`] fires it itself
    /// when records cannot be stored.
    pub kill: Kill,
    pub grace: Duration,
    /// Where the load's runs, missed starts and stored batches are told.
    pub events: NodeEvents,
}

impl std::fmt::Debug for LoadJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadJob")
            .field("plan", &self.plan)
            .field("spec", &self.spec)
            .field("owner", &self.owner)
            .field("tags", &self.tags)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// What a load measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Records stored (one per run, failed ones included).
    pub records: usize,
    pub windows: Vec<Period>,
    pub steps: Vec<Period>,
    pub total: Period,
    /// The first failed run: its outcome and the last line of its stderr.
    pub first_failure: Option<String>,
    /// Missed starts and failed runs, naming the `load` command's flags ([`in_table_terms`]).
    pub warnings: Vec<String>,
}

/// A suite node's load, in the run's outcome.
#[derive(Clone, Debug)]
pub struct NodeLoadOutcome {
    /// The node's name.
    pub name: String,
    pub profile: LoadProfile,
    pub report: LoadReport,
}

/// Run `job`: start processes as the profile says, window the completions, and store one record
/// per run (in batches of [`STORE_BATCH`], so a long soak costs constant memory) with the
/// `load.*` tags. Returns when the profile is over (or the load was killed) and every run in flight
/// has ended and been stored.
pub async fn drive(job: &LoadJob, storage: &Storage) -> Result<LoadReport, LoadRunError> {
    let profile = &job.plan.profile;
    let mut stats = LoadStats::new(profile, job.plan.window)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LoadEvent>();
    let exec = {
        let profile = profile.clone();
        let spec = job.spec.clone();
        let kill = job.kill.clone();
        let events = job.events.clone();
        tokio::task::spawn_blocking(move || {
            let send = move |e: LoadEvent| {
                events.event(&e);
                let _ = tx.send(e);
            };
            execute(&profile, &spec, &kill, &send);
        })
    };

    let mut batch: Vec<RunRecord> = Vec::with_capacity(STORE_BATCH);
    let mut stored = 0usize;
    let mut store_error = None;
    let mut first_failure = None;
    while let Some(event) = rx.recv().await {
        let done = match event {
            LoadEvent::Missed { step, at } => {
                stats.missed(step, at);
                continue;
            }
            LoadEvent::Started { .. } => continue,
            LoadEvent::Done(d) => d,
        };
        if job.kill.is_killed() && !done.result.outcome.is_success() {
            continue; // stopped (Ctrl-C, cancellation): not a measurement of the command
        }
        let ok = done.result.outcome.is_success();
        if !ok && first_failure.is_none() {
            first_failure = Some(describe_failure("", &done.result));
        }
        stats.record(&Completion {
            step: done.step,
            start: done.start,
            end: done.end,
            latency_ns: done.result.measurement.wall_ns,
            ok,
        });
        let step = &profile.steps[done.step];
        let mut rtags = job.tags.clone();
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
        let Done {
            seq,
            started_at,
            result,
            ..
        } = *done;
        batch.push(record_of(
            &job.owner,
            u32::try_from(seq).unwrap_or(u32::MAX),
            started_at,
            result,
            rtags,
        ));
        if batch.len() >= STORE_BATCH && store_error.is_none() {
            match storage.write_records(&batch).await {
                Ok(_) => {
                    stored += batch.len();
                    job.events.stored(batch.len());
                }
                Err(e) => {
                    // Stop the load: measuring on without storing would lose the results.
                    job.kill.kill(job.grace);
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
        job.events.stored(batch.len());
    }

    let total = stats.total();
    let mut warnings = Vec::new();
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
    Ok(LoadReport {
        records: stored,
        windows: stats.windows(),
        steps: stats.steps(),
        total,
        first_failure,
        warnings,
    })
}

/// Run a suite node's load inside the suite's run ([`drive`]); cancelling `cancel` stops it
/// (running processes get `job.grace`, then are killed).
pub async fn run_node(
    job: &LoadJob,
    storage: &Storage,
    cancel: &CancelToken,
) -> Result<LoadReport, LoadRunError> {
    let stop = crate::event::kill_on_cancel(cancel, &job.kill, job.grace);
    let report = drive(job, storage).await;
    stop.abort();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet_analysis::load::{SoakSpec, StressSpec};

    fn collect(profile: &LoadProfile, spec: &ProcessSpec) -> Vec<LoadEvent> {
        let out = Mutex::new(Vec::new());
        execute(profile, spec, &Kill::new(), &|e| {
            out.lock().unwrap().push(e);
        });
        out.into_inner().unwrap()
    }

    /// The keys [`plan`] knows are exactly the fields of a `load` table.
    #[test]
    fn load_keys_are_the_fields_of_a_load_table() {
        let all = serde_json::to_value(LoadSpec::default()).unwrap();
        let mut fields: Vec<&str> = all
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = LOAD_KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn plans_take_the_load_commands_defaults_only_when_asked() {
        let spec = LoadSpec::default();
        let p = plan(&spec, MissingDuration::Default).unwrap();
        assert_eq!(
            (p.profile.kind, p.profile.duration(), p.window),
            (ProfileKind::Soak, Duration::from_secs(10), DEFAULT_WINDOW)
        );
        let e = plan(&spec, MissingDuration::Refuse).unwrap_err();
        assert!(e.0.starts_with("--duration is missing"), "{e}");
        let stress = LoadSpec {
            profile: Some("stress".into()),
            ..LoadSpec::default()
        };
        let p = plan(&stress, MissingDuration::Default).unwrap();
        let conc: Vec<u32> = p.profile.steps.iter().map(|s| s.concurrency).collect();
        assert_eq!(conc, [1, 2, 3, 4, 5]);
        assert_eq!(p.profile.duration(), Duration::from_secs(10));
    }

    #[test]
    fn flags_become_table_keys_and_nothing_else_changes() {
        for (flag_text, table_text) in [
            (
                "--max-concurrency (2) is below the starting --concurrency (4)",
                "`load.max_concurrency` (2) is below the starting `load.concurrency` (4)",
            ),
            (
                "--step-duration (or --duration) is missing",
                "`load.step_duration` (or `load.duration`) is missing",
            ),
            (
                "--burst-rate needs --rate",
                "`load.burst_rate` needs `load.rate`",
            ),
            (
                "use --no-cache or -- or --x-y",
                "use --no-cache or -- or --x-y",
            ),
            ("raise --concurrency.", "raise `load.concurrency`."),
            ("", ""),
        ] {
            assert_eq!(in_table_terms(flag_text), table_text);
        }
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
                LoadEvent::Started { in_flight, .. } => assert!(*in_flight <= 3),
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
