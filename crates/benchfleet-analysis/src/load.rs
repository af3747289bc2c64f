//! Load profiles (throughput benchmarks): which concurrency and rate apply at time `t`, the start
//! schedule of an open-loop rate, and the windowing of completions into per-window and per-step
//! throughput and latency percentiles. Pure logic, no clock and no threads: the executor lives in
//! the facade (`benchfleet::load`).
//!
//! A [`LoadProfile`] is a list of consecutive [`LoadStep`]s, each with a concurrency (the most
//! runs in flight) and optionally a target rate (runs started per second):
//!
//! - `soak`: one step, fixed concurrency (and rate) for the whole duration;
//! - `stress`: `steps` steps of equal length, concurrency ramping linearly from the start
//!   concurrency to the maximum (and the rate from `rate` to `max_rate` when both are given);
//! - `spike`: baseline, burst, recovery: the burst (of `burst_duration`) sits in the middle of the
//!   duration, at the burst concurrency (and burst rate).
//!
//! With a rate the load is open-loop: starts follow [`LoadProfile::tokens`] whatever the
//! completions do. A token whose start could not happen before the next token was due (every slot
//! busy) is a *missed start*, counted per window and per step, never silently shifted.
//!
//! ```
//! use benchfleet_analysis::load::{LoadProfile, StressSpec};
//! use std::time::Duration;
//!
//! let p = LoadProfile::stress(&StressSpec {
//!     start_concurrency: 1,
//!     max_concurrency: 4,
//!     steps: 4,
//!     step_duration: Duration::from_secs(1),
//!     rate: None,
//!     max_rate: None,
//! })
//! .unwrap();
//! let at = |ms| p.step_at(Duration::from_millis(ms)).map(|s| s.concurrency);
//! assert_eq!((at(0), at(1500), at(3999), at(4000)), (Some(1), Some(2), Some(4), None));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stream::BenchStats;
use crate::summary::Summary;

/// Which shape a load has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    Soak,
    Stress,
    Spike,
}

impl ProfileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileKind::Soak => "soak",
            ProfileKind::Stress => "stress",
            ProfileKind::Spike => "spike",
        }
    }
}

impl std::str::FromStr for ProfileKind {
    type Err = LoadError;
    fn from_str(s: &str) -> Result<Self, LoadError> {
        match s {
            "soak" => Ok(ProfileKind::Soak),
            "stress" => Ok(ProfileKind::Stress),
            "spike" => Ok(ProfileKind::Spike),
            _ => Err(LoadError(format!(
                "unknown load profile `{s}`; use soak, stress or spike"
            ))),
        }
    }
}

/// A profile's parameters are unusable; the message says which and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError(msg.into()))
}

/// `soak`: fixed concurrency (and rate) for `duration`.
#[derive(Clone, Debug, PartialEq)]
pub struct SoakSpec {
    pub duration: Duration,
    pub concurrency: u32,
    /// Runs started per second (open loop); `None`: closed loop, a new run as soon as one ends.
    pub rate: Option<f64>,
}

/// `stress`: concurrency (and rate) ramps up in `steps` equal steps.
#[derive(Clone, Debug, PartialEq)]
pub struct StressSpec {
    /// Concurrency of the first step.
    pub start_concurrency: u32,
    /// Concurrency of the last step.
    pub max_concurrency: u32,
    pub steps: u32,
    pub step_duration: Duration,
    /// Rate of the first step (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// Rate of the last step (needs `rate`); `None`: every step at `rate`.
    pub max_rate: Option<f64>,
}

/// `spike`: a burst of `burst_duration` in the middle of `duration`, over a baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeSpec {
    pub duration: Duration,
    pub baseline: u32,
    pub burst: u32,
    pub burst_duration: Duration,
    /// Baseline rate (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// Rate during the burst; `None`: `rate × burst / baseline`.
    pub burst_rate: Option<f64>,
}

/// One step of a profile: from `start` for `duration`, at most `concurrency` runs in flight, and
/// `rate` starts per second when open-loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadStep {
    pub index: usize,
    /// `steady` (soak), `step N` (stress), `baseline` / `burst` / `recovery` (spike).
    pub label: String,
    #[serde(with = "nanos")]
    pub start: Duration,
    #[serde(with = "nanos")]
    pub duration: Duration,
    pub concurrency: u32,
    pub rate: Option<f64>,
}

impl LoadStep {
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }
}

mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

/// A period's latency as load exports have always written it: integer nanoseconds, `p50` for
/// the median, `std_dev` 0 below two runs, no p95 and no MAD (those read back as NaN).
mod latency_wire {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::summary::Summary;

    #[derive(Serialize, Deserialize)]
    struct Wire {
        count: u64,
        mean: f64,
        std_dev: f64,
        min: u64,
        p50: u64,
        p90: u64,
        p99: u64,
        max: u64,
    }

    pub fn serialize<S: Serializer>(s: &Summary, ser: S) -> Result<S::Ok, S::Error> {
        Wire {
            count: s.count as u64,
            mean: s.mean,
            std_dev: s.stddev.unwrap_or(0.0),
            min: s.min as u64,
            p50: s.median as u64,
            p90: s.p90 as u64,
            p99: s.p99 as u64,
            max: s.max as u64,
        }
        .serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Summary, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(Summary {
            count: usize::try_from(w.count).unwrap_or(usize::MAX),
            mean: w.mean,
            stddev: (w.count > 1).then_some(w.std_dev),
            median: w.p50 as f64,
            min: w.min as f64,
            max: w.max as f64,
            p90: w.p90 as f64,
            p95: f64::NAN,
            p99: w.p99 as f64,
            mad: f64::NAN,
        })
    }
}

/// A load profile: consecutive steps from time 0 (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadProfile {
    pub kind: ProfileKind,
    pub steps: Vec<LoadStep>,
}

/// Most starts per second a profile may ask for (a start costs tens of microseconds at best).
pub const MAX_RATE: f64 = 1_000_000.0;
/// Most runs in flight a profile may ask for (the executor runs one thread per slot).
pub const MAX_CONCURRENCY: u32 = 1024;

fn check_concurrency(what: &str, c: u32) -> Result<(), LoadError> {
    if c == 0 {
        return err(format!("{what} must be at least 1"));
    }
    if c > MAX_CONCURRENCY {
        return err(format!(
            "{what} ({c}) is above the limit of {MAX_CONCURRENCY} runs in flight"
        ));
    }
    Ok(())
}

fn check_rate(what: &str, r: Option<f64>) -> Result<(), LoadError> {
    match r {
        Some(r) if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) => err(format!(
            "{what} must be a positive number of runs per second up to {MAX_RATE} (got {r})"
        )),
        _ => Ok(()),
    }
}

fn check_duration(what: &str, d: Duration) -> Result<(), LoadError> {
    if d.is_zero() {
        return err(format!("{what} must be longer than zero, e.g. 10s"));
    }
    Ok(())
}

impl LoadProfile {
    pub fn soak(spec: &SoakSpec) -> Result<LoadProfile, LoadError> {
        check_duration("--duration", spec.duration)?;
        check_concurrency("--concurrency", spec.concurrency)?;
        check_rate("--rate", spec.rate)?;
        Ok(LoadProfile {
            kind: ProfileKind::Soak,
            steps: vec![LoadStep {
                index: 0,
                label: "steady".into(),
                start: Duration::ZERO,
                duration: spec.duration,
                concurrency: spec.concurrency,
                rate: spec.rate,
            }],
        })
    }

    pub fn stress(spec: &StressSpec) -> Result<LoadProfile, LoadError> {
        check_duration("--step-duration", spec.step_duration)?;
        check_concurrency("--concurrency (the first step's)", spec.start_concurrency)?;
        check_concurrency("--max-concurrency", spec.max_concurrency)?;
        check_rate("--rate", spec.rate)?;
        check_rate("--max-rate", spec.max_rate)?;
        if spec.steps == 0 || spec.steps > 10_000 {
            return err(format!(
                "--steps must be between 1 and 10000 (got {})",
                spec.steps
            ));
        }
        if spec.max_concurrency < spec.start_concurrency {
            return err(format!(
                "--max-concurrency ({}) is below the starting --concurrency ({}); a stress profile ramps up",
                spec.max_concurrency, spec.start_concurrency
            ));
        }
        if spec.max_rate.is_some() && spec.rate.is_none() {
            return err("--max-rate needs --rate (the first step's rate)");
        }
        let n = u64::from(spec.steps);
        let (lo, hi) = (
            u64::from(spec.start_concurrency),
            u64::from(spec.max_concurrency),
        );
        let steps = (0..n)
            .map(|i| {
                // Linear ramp, rounded to the nearest integer; one step is the maximum.
                let concurrency = if n == 1 {
                    hi
                } else {
                    lo + ((hi - lo) * i + (n - 1) / 2) / (n - 1)
                };
                let rate = match (spec.rate, spec.max_rate) {
                    (Some(r), Some(m)) if n > 1 => Some(r + (m - r) * i as f64 / (n - 1) as f64),
                    (Some(_), Some(m)) => Some(m),
                    (r, _) => r,
                };
                LoadStep {
                    index: i as usize,
                    label: format!("step {}", i + 1),
                    start: spec.step_duration * i as u32,
                    duration: spec.step_duration,
                    concurrency: concurrency as u32,
                    rate,
                }
            })
            .collect();
        Ok(LoadProfile {
            kind: ProfileKind::Stress,
            steps,
        })
    }

    pub fn spike(spec: &SpikeSpec) -> Result<LoadProfile, LoadError> {
        check_duration("--duration", spec.duration)?;
        check_duration("--burst-duration", spec.burst_duration)?;
        check_concurrency("--baseline", spec.baseline)?;
        check_concurrency("--burst", spec.burst)?;
        check_rate("--rate", spec.rate)?;
        check_rate("--burst-rate", spec.burst_rate)?;
        if spec.burst_duration >= spec.duration {
            return err(format!(
                "--burst-duration ({:?}) must be shorter than --duration ({:?}): the burst sits between a baseline and a recovery",
                spec.burst_duration, spec.duration
            ));
        }
        if spec.burst_rate.is_some() && spec.rate.is_none() {
            return err("--burst-rate needs --rate (the baseline rate)");
        }
        let burst_rate = spec.rate.map(|r| {
            spec.burst_rate
                .unwrap_or(r * f64::from(spec.burst) / f64::from(spec.baseline))
                .min(MAX_RATE)
        });
        let before = (spec.duration - spec.burst_duration) / 2;
        let after = spec.duration - spec.burst_duration - before;
        let parts = [
            ("baseline", before, spec.baseline, spec.rate),
            ("burst", spec.burst_duration, spec.burst, burst_rate),
            ("recovery", after, spec.baseline, spec.rate),
        ];
        let mut start = Duration::ZERO;
        let mut steps = Vec::new();
        for (label, duration, concurrency, rate) in parts {
            if duration.is_zero() {
                continue;
            }
            steps.push(LoadStep {
                index: steps.len(),
                label: label.into(),
                start,
                duration,
                concurrency,
                rate,
            });
            start += duration;
        }
        Ok(LoadProfile {
            kind: ProfileKind::Spike,
            steps,
        })
    }

    /// Total length of the profile.
    pub fn duration(&self) -> Duration {
        self.steps.last().map_or(Duration::ZERO, LoadStep::end)
    }

    /// The step in force at `t` from the start; `None` at or after the end.
    pub fn step_at(&self, t: Duration) -> Option<&LoadStep> {
        let i = self.steps.partition_point(|s| s.end() <= t);
        self.steps.get(i)
    }

    /// The largest concurrency of any step: the executor's pool size.
    pub fn max_concurrency(&self) -> u32 {
        self.steps.iter().map(|s| s.concurrency).max().unwrap_or(0)
    }

    /// Whether starts follow a rate schedule ([`LoadProfile::tokens`]) rather than completions.
    pub fn open_loop(&self) -> bool {
        self.steps.iter().any(|s| s.rate.is_some())
    }

    /// The start schedule of the open-loop steps, in time order (lazy: long runs at high rates
    /// cost no memory). Closed-loop steps yield no tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens {
            steps: &self.steps,
            step: 0,
            k: 0,
        }
    }
}

/// One scheduled start: due `at`, missed if it cannot start before `deadline` (the next token's
/// time, or the end of its step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub step: usize,
    pub at: Duration,
    pub deadline: Duration,
}

/// Iterator of [`Token`]s, from [`LoadProfile::tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    steps: &'a [LoadStep],
    step: usize,
    k: u64,
}

impl Iterator for Tokens<'_> {
    type Item = Token;
    fn next(&mut self) -> Option<Token> {
        loop {
            let s = self.steps.get(self.step)?;
            let Some(rate) = s.rate else {
                self.step += 1;
                self.k = 0;
                continue;
            };
            // Computed from k (not accumulated) so rounding never drifts.
            let offset = |k: u64| Duration::from_secs_f64(k as f64 / rate);
            let at = s.start + offset(self.k);
            if at >= s.end() {
                self.step += 1;
                self.k = 0;
                continue;
            }
            self.k += 1;
            let deadline = (s.start + offset(self.k)).min(s.end());
            return Some(Token {
                step: s.index,
                at,
                deadline,
            });
        }
    }
}

/// One finished run, as offsets from the start of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The step that started it.
    pub step: usize,
    /// When it started (just before the spawn).
    pub start: Duration,
    /// When it ended (reaped).
    pub end: Duration,
    /// Its latency: the measured wall time of the process.
    pub latency_ns: u64,
    pub ok: bool,
}

/// Throughput and latency of one time window or step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub index: usize,
    /// Step label (per step) or the label of the step in force at the window's start.
    pub label: String,
    #[serde(with = "nanos")]
    pub start: Duration,
    #[serde(with = "nanos")]
    pub end: Duration,
    /// Concurrency (and rate) in force at the start of the period.
    pub concurrency: u32,
    pub rate: Option<f64>,
    /// Successful runs.
    pub completed: u64,
    pub failed: u64,
    /// Open-loop starts that could not happen on time (every slot busy).
    pub missed: u64,
    /// Successful runs per second of the period.
    pub throughput: f64,
    /// Latency of the successful runs, nanoseconds (from constant memory: quantiles and MAD
    /// within 0.1 %). Serialized as load exports always had it: see `latency_wire`.
    #[serde(with = "latency_wire")]
    pub latency: Summary,
}

#[derive(Clone, Debug, Default)]
struct Acc {
    latency: BenchStats,
    failed: u64,
    missed: u64,
}

/// Accumulates completions into fixed windows (by end time: what finished when) and into steps
/// (by the step that started the run), in constant memory per period.
#[derive(Clone, Debug)]
pub struct LoadStats {
    profile: LoadProfile,
    window: Duration,
    windows: Vec<Acc>,
    steps: Vec<Acc>,
    total: Acc,
    last_end: Duration,
}

impl LoadStats {
    /// `window` must be positive.
    pub fn new(profile: &LoadProfile, window: Duration) -> Result<LoadStats, LoadError> {
        check_duration("--window", window)?;
        Ok(LoadStats {
            profile: profile.clone(),
            window,
            windows: Vec::new(),
            steps: vec![Acc::default(); profile.steps.len()],
            total: Acc::default(),
            last_end: Duration::ZERO,
        })
    }

    /// Index of the window holding time `t`.
    pub fn window_of(&self, t: Duration) -> usize {
        usize::try_from(t.as_nanos() / self.window.as_nanos()).unwrap_or(usize::MAX)
    }

    fn window_acc(&mut self, t: Duration) -> &mut Acc {
        let i = self.window_of(t).min(1 << 24);
        if self.windows.len() <= i {
            self.windows.resize(i + 1, Acc::default());
        }
        &mut self.windows[i]
    }

    pub fn record(&mut self, c: &Completion) {
        self.last_end = self.last_end.max(c.end);
        let add = |a: &mut Acc| {
            if c.ok {
                a.latency.record(c.latency_ns);
            } else {
                a.failed += 1;
            }
        };
        add(self.window_acc(c.end));
        if let Some(s) = self.steps.get_mut(c.step) {
            add(s);
        }
        add(&mut self.total);
    }

    /// A start of `step` due at `at` was missed.
    pub fn missed(&mut self, step: usize, at: Duration) {
        self.window_acc(at).missed += 1;
        if let Some(s) = self.steps.get_mut(step) {
            s.missed += 1;
        }
        self.total.missed += 1;
    }

    /// When the load ended: the profile's end, or the last completion after it.
    pub fn elapsed(&self) -> Duration {
        self.profile.duration().max(self.last_end)
    }

    fn period(&self, index: usize, start: Duration, end: Duration, acc: &Acc) -> Period {
        let (label, concurrency, rate) = match self.profile.step_at(start) {
            Some(s) => (s.label.clone(), s.concurrency, s.rate),
            None => ("drain".to_owned(), 0, None),
        };
        let latency = acc.latency.summary();
        let secs = (end.saturating_sub(start)).as_secs_f64();
        Period {
            index,
            label,
            start,
            end,
            concurrency,
            rate,
            completed: latency.count as u64,
            failed: acc.failed,
            missed: acc.missed,
            throughput: if secs > 0.0 {
                latency.count as f64 / secs
            } else {
                0.0
            },
            latency,
        }
    }

    /// One period per window from 0 to [`LoadStats::elapsed`]; the last may be shorter (its
    /// throughput is over its own length). Windows after the profile's end hold runs that were
    /// still in flight ("drain").
    pub fn windows(&self) -> Vec<Period> {
        let elapsed = self.elapsed();
        let n = self
            .window_of(elapsed.saturating_sub(Duration::from_nanos(1)))
            .saturating_add(1)
            .max(self.windows.len());
        let empty = Acc::default();
        (0..n)
            .map(|i| {
                let start = self.window * i as u32;
                let end = (start + self.window).min(elapsed.max(start));
                self.period(i, start, end, self.windows.get(i).unwrap_or(&empty))
            })
            .collect()
    }

    /// One period per step (throughput over the step's length; runs belong to the step that
    /// started them).
    pub fn steps(&self) -> Vec<Period> {
        self.profile
            .steps
            .iter()
            .zip(&self.steps)
            .map(|(s, acc)| {
                let mut p = self.period(s.index, s.start, s.end(), acc);
                p.label.clone_from(&s.label);
                p
            })
            .collect()
    }

    /// The whole load as one period (throughput over [`LoadStats::elapsed`]).
    pub fn total(&self) -> Period {
        let mut p = self.period(0, Duration::ZERO, self.elapsed(), &self.total);
        p.label = "total".into();
        p.concurrency = self.profile.max_concurrency();
        p
    }
}

#[cfg(test)]
mod tests;
