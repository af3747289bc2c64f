//! One benchmark's runs gathered from records: the input of every renderer.

use std::collections::BTreeMap;

use benchfleet_analysis::Summary;
use benchfleet_model::{NodeKind, RunId, RunRecord};

/// Every run of one benchmark (or the single run of a job) within one invocation, in iteration
/// order. The per-run vectors (`times`, `user`, `system`, `max_rss_bytes`, `exit_codes`) are
/// parallel: index `i` is the `i`-th run, failed runs included.
///
/// Statistics (see [`BenchmarkResult::wall`]) are computed over the **successful** runs only
/// (exit code 0); failed runs stay visible through `exit_codes` and `failures`.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkResult {
    pub name: String,
    pub kind: NodeKind,
    pub command: String,
    pub parameters: BTreeMap<String, String>,
    pub run_id: RunId,
    /// Wall-clock time of each run, seconds.
    pub times: Vec<f64>,
    /// User CPU time of each run, seconds.
    pub user: Vec<f64>,
    /// System CPU time of each run, seconds.
    pub system: Vec<f64>,
    /// Peak resident set size of each run, bytes.
    pub max_rss_bytes: Vec<u64>,
    /// hyperfine's convention: `Some(0)` success, `Some(code)` failure, `None` no exit code
    /// (signal, timeout, could not start).
    pub exit_codes: Vec<Option<i32>>,
    /// Outcome descriptions of the failed runs (`exit 3`, `timed out after 2.000s`, …), in
    /// iteration order.
    pub failures: Vec<String>,
    /// The stderr tail of the last failed run that recorded one.
    pub stderr_tail: Option<String>,
    /// Instructions retired by each run (`hw.instructions`); `None`: not counted.
    pub instructions: Vec<Option<u64>>,
    /// CPU cycles of each run (`hw.cycles`); `None`: not counted.
    pub cycles: Vec<Option<u64>>,
    /// Whether each run ran beside others (`run.concurrent`); `None`: not recorded.
    pub concurrent: Vec<Option<bool>>,
    /// The machine classes its records were measured on (their `machine.class` tag), sorted,
    /// each once; empty when the records do not say (results kept as [`RunPoints`]).
    pub machine_classes: Vec<String>,
    /// Running moments of the successful wall times kept while measuring (Welford), when the
    /// producer had them; [`BenchmarkResult::wall`] takes mean, σ, min and max from here.
    pub running: Option<RunningWall>,
}

/// Mean, σ, min and max of the successful wall times (seconds), accumulated run by run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningWall {
    pub count: u64,
    pub mean: f64,
    /// Sample standard deviation; `None` with fewer than two runs.
    pub stddev: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl BenchmarkResult {
    /// Number of runs, failed ones included.
    pub fn runs(&self) -> usize {
        self.exit_codes.len()
    }

    /// Whether run `i` succeeded.
    pub fn succeeded(&self, i: usize) -> bool {
        self.exit_codes.get(i) == Some(&Some(0))
    }

    /// Number of successful runs.
    pub fn successes(&self) -> usize {
        (0..self.runs()).filter(|&i| self.succeeded(i)).count()
    }

    /// Number of failed runs.
    pub fn failed(&self) -> usize {
        self.runs() - self.successes()
    }

    fn ok_values<T: Copy>(&self, v: &[T]) -> Vec<T> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| self.succeeded(*i))
            .map(|(_, x)| *x)
            .collect()
    }

    /// Wall times (s) of the successful runs, in iteration order.
    pub fn successful_times(&self) -> Vec<f64> {
        self.ok_values(&self.times)
    }

    /// Summary of the wall times of the successful runs; `None` when no run succeeded. Mean, σ,
    /// min and max come from [`BenchmarkResult::running`] when it covers every successful run;
    /// median, percentiles and MAD are exact from `times`.
    pub fn wall(&self) -> Option<Summary> {
        let mut s = Summary::from_samples(&self.successful_times())?;
        if let Some(r) = self.running.filter(|r| r.count == s.count as u64) {
            s.mean = r.mean;
            s.stddev = r.stddev;
            s.min = r.min;
            s.max = r.max;
        }
        Some(s)
    }

    /// An empty result with the identity (name, command, parameters, run) of `first`; add runs
    /// with [`BenchmarkResult::push`].
    pub fn new(first: &RunRecord) -> Self {
        BenchmarkResult::named(
            first.name.clone(),
            first.kind,
            first.command.clone(),
            first.parameters.clone(),
            first.run_id.clone(),
        )
    }

    /// An empty result with this identity; add runs with [`BenchmarkResult::push`] or
    /// [`BenchmarkResult::extend`].
    pub fn named(
        name: String,
        kind: NodeKind,
        command: String,
        parameters: BTreeMap<String, String>,
        run_id: RunId,
    ) -> Self {
        BenchmarkResult {
            name,
            kind,
            command,
            parameters,
            run_id,
            times: Vec::new(),
            user: Vec::new(),
            system: Vec::new(),
            max_rss_bytes: Vec::new(),
            exit_codes: Vec::new(),
            failures: Vec::new(),
            stderr_tail: None,
            instructions: Vec::new(),
            cycles: Vec::new(),
            concurrent: Vec::new(),
            machine_classes: Vec::new(),
            running: None,
        }
    }

    /// Append one run: what every renderer needs of it, a few numbers, not the record.
    pub fn push(&mut self, r: &RunRecord) {
        self.push_point(&RunPoint::of(r));
        keep_failure(r, &mut self.failures, &mut self.stderr_tail);
        if let Some(class) = r.tags.get(RunRecord::TAG_MACHINE_CLASS)
            && let Err(at) = self.machine_classes.binary_search(class)
        {
            self.machine_classes.insert(at, class.clone());
        }
    }

    /// Append the runs kept in `runs`, in their order.
    pub fn extend(&mut self, runs: &RunPoints) {
        for p in &runs.points {
            self.push_point(p);
        }
        self.failures.extend(runs.failures().iter().cloned());
        if let Some(tail) = runs.stderr_tail() {
            self.stderr_tail = Some(tail.to_owned());
        }
    }

    fn push_point(&mut self, p: &RunPoint) {
        self.times.push(p.wall);
        self.user.push(p.user);
        self.system.push(p.system);
        self.max_rss_bytes.push(p.max_rss_bytes);
        self.exit_codes.push(p.exit_code());
        self.instructions.push(p.instructions());
        self.cycles.push(p.cycles());
        self.concurrent.push(p.concurrent());
    }

    /// Runs that ran beside others (`run.concurrent` = true).
    pub fn concurrent_runs(&self) -> usize {
        self.concurrent.iter().filter(|c| **c == Some(true)).count()
    }

    /// Runs without hardware counters (no `hw.instructions`).
    pub fn runs_without_counters(&self) -> usize {
        self.instructions.iter().filter(|c| c.is_none()).count()
    }

    /// Mean instructions per successful run that counted them.
    pub fn mean_instructions(&self) -> Option<f64> {
        mean_counted(&self.ok_values(&self.instructions))
    }

    /// Mean cycles per successful run that counted them.
    pub fn mean_cycles(&self) -> Option<f64> {
        mean_counted(&self.ok_values(&self.cycles))
    }

    /// Mean user CPU time (s) over successful runs.
    pub fn mean_user(&self) -> Option<f64> {
        Summary::from_samples(&self.ok_values(&self.user)).map(|s| s.mean)
    }

    /// Mean system CPU time (s) over successful runs.
    pub fn mean_system(&self) -> Option<f64> {
        Summary::from_samples(&self.ok_values(&self.system)).map(|s| s.mean)
    }

    /// Largest peak RSS (bytes) over successful runs.
    pub fn peak_rss(&self) -> Option<u64> {
        self.ok_values(&self.max_rss_bytes).into_iter().max()
    }

    /// `ok`, or how many runs failed and the distinct reasons (`2 failed: exit 1, timed out …`).
    pub fn status(&self) -> String {
        if self.failures.is_empty() && self.failed() == 0 {
            return "ok".into();
        }
        let mut reasons: Vec<&str> = Vec::new();
        for f in &self.failures {
            if !reasons.contains(&f.as_str()) {
                reasons.push(f);
            }
        }
        format!("{} failed: {}", self.failed(), reasons.join(", "))
    }
}

/// What a report needs of one run: a few numbers (56 bytes), not its record. A runner keeps
/// these for the nodes it has stored, instead of the records themselves, so the uncommon
/// counters are held without `Option`'s tag (read them through [`RunPoint::instructions`] and
/// [`RunPoint::cycles`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunPoint {
    /// Wall-clock time, seconds.
    pub wall: f64,
    /// User CPU time, seconds.
    pub user: f64,
    /// System CPU time, seconds.
    pub system: f64,
    pub max_rss_bytes: u64,
    /// `hw.instructions` and `hw.cycles`, [`NOT_COUNTED`] when absent.
    instructions: u64,
    cycles: u64,
    /// The exit code, [`NO_EXIT_CODE`] when the run had none (killed by a signal).
    exit_code: i32,
    /// `run.concurrent`: 0 false, 1 true, 2 not recorded.
    concurrent: u8,
}

/// A counter that was not read (no value can reach it: it would take centuries at any clock).
const NOT_COUNTED: u64 = u64::MAX;
/// No exit code (exit statuses are 0–255).
const NO_EXIT_CODE: i32 = i32::MIN;

impl RunPoint {
    pub fn of(r: &RunRecord) -> Self {
        RunPoint {
            wall: r.measurement.wall_secs(),
            user: r.measurement.user_secs(),
            system: r.measurement.sys_secs(),
            max_rss_bytes: r.measurement.max_rss_bytes,
            exit_code: r.outcome.exit_code().unwrap_or(NO_EXIT_CODE),
            concurrent: r.concurrent().map_or(2, u8::from),
            instructions: r.instructions().unwrap_or(NOT_COUNTED),
            cycles: r.cycles().unwrap_or(NOT_COUNTED),
        }
    }

    /// As [`BenchmarkResult::exit_codes`].
    pub fn exit_code(&self) -> Option<i32> {
        (self.exit_code != NO_EXIT_CODE).then_some(self.exit_code)
    }

    /// Whether it ran beside others (`run.concurrent`); `None`: not recorded.
    pub fn concurrent(&self) -> Option<bool> {
        (self.concurrent != 2).then_some(self.concurrent == 1)
    }

    /// Instructions retired (`hw.instructions`); `None`: not counted.
    pub fn instructions(&self) -> Option<u64> {
        (self.instructions != NOT_COUNTED).then_some(self.instructions)
    }

    /// CPU cycles (`hw.cycles`); `None`: not counted.
    pub fn cycles(&self) -> Option<u64> {
        (self.cycles != NOT_COUNTED).then_some(self.cycles)
    }
}

/// The runs of one benchmark as [`RunPoint`]s, with the descriptions of the failed ones and the
/// stderr tail of the last failed run that kept one: a [`BenchmarkResult`] without its identity.
/// A runner keeps one per node of a suite of up to 100,000, so what only failures have is boxed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunPoints {
    pub points: Vec<RunPoint>,
    failed: Option<Box<FailedRuns>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct FailedRuns {
    failures: Vec<String>,
    stderr_tail: Option<String>,
}

impl RunPoints {
    /// Room for `runs` runs.
    pub fn with_capacity(runs: usize) -> Self {
        RunPoints {
            points: Vec::with_capacity(runs),
            failed: None,
        }
    }

    /// Append one run.
    pub fn push(&mut self, r: &RunRecord) {
        self.points.push(RunPoint::of(r));
        if !r.outcome.is_success() {
            let f = self.failed.get_or_insert_with(Default::default);
            keep_failure(r, &mut f.failures, &mut f.stderr_tail);
        }
    }

    /// Descriptions of the failed runs, in order.
    pub fn failures(&self) -> &[String] {
        self.failed.as_ref().map_or(&[], |f| &f.failures)
    }

    /// The stderr tail of the last failed run that kept one.
    pub fn stderr_tail(&self) -> Option<&str> {
        self.failed.as_ref().and_then(|f| f.stderr_tail.as_deref())
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// A failed run's description, and its stderr tail as the latest one kept.
fn keep_failure(r: &RunRecord, failures: &mut Vec<String>, stderr_tail: &mut Option<String>) {
    if !r.outcome.is_success() {
        failures.push(r.outcome.describe());
        if r.stderr_tail.is_some() {
            stderr_tail.clone_from(&r.stderr_tail);
        }
    }
}

/// Group records into one [`BenchmarkResult`] per benchmark.
///
/// Groups are keyed by `(run_id, name)` (so records of several invocations never mix) and come
/// out in order of first appearance in `records`; within a group runs are ordered by
/// `iteration` (stable, so duplicates keep their input order). The statistics therefore do not
/// depend on the order records were produced or stored in; only the order of the groups does.
pub fn group_records(records: &[RunRecord]) -> Vec<BenchmarkResult> {
    let mut order: Vec<(&RunId, &str)> = Vec::new();
    let mut groups: BTreeMap<(&RunId, &str), Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        let key = (&r.run_id, r.name.as_str());
        groups
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(r);
    }
    order
        .into_iter()
        .filter_map(|key| groups.remove(&key))
        .map(|mut runs| {
            runs.sort_by_key(|r| r.iteration);
            build(&runs)
        })
        .collect()
}

fn mean_counted(v: &[Option<u64>]) -> Option<f64> {
    let counted: Vec<f64> = v.iter().flatten().map(|n| *n as f64).collect();
    (!counted.is_empty()).then(|| counted.iter().sum::<f64>() / counted.len() as f64)
}

fn build(runs: &[&RunRecord]) -> BenchmarkResult {
    let mut result = BenchmarkResult::new(runs[0]);
    for r in runs {
        result.push(r);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet_model::{Measurement, Outcome, SCHEMA_VERSION, Timestamp};

    fn rec(i: u32, ms: u64, outcome: Outcome, tags: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
            suite: "bench".into(),
            name: "a".into(),
            kind: NodeKind::Benchmark,
            command: "a".into(),
            parameters: Default::default(),
            iteration: i,
            started_at: Timestamp(0),
            measurement: Measurement {
                wall_ns: ms * 1_000_000,
                ..Default::default()
            },
            outcome,
            stderr_tail: Some(format!("tail {i}")),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_run_point_keeps_what_is_absent_as_absent_in_56_bytes() {
        let killed = Outcome::Failed {
            exit_code: None,
            signal: Some(9),
        };
        let failed = Outcome::Failed {
            exit_code: Some(3),
            signal: None,
        };
        let cases = [
            (
                rec(0, 1, Outcome::Success, &[]),
                (Some(0), None, None, None),
            ),
            (
                rec(1, 1, killed, &[("run.concurrent", "true")]),
                (None, Some(true), None, None),
            ),
            (
                rec(
                    2,
                    1,
                    failed,
                    &[("run.concurrent", "false"), ("hw.instructions", "0")],
                ),
                (Some(3), Some(false), Some(0), None),
            ),
            (
                rec(
                    3,
                    1,
                    Outcome::Success,
                    &[("hw.cycles", "18446744073709551614")],
                ),
                (Some(0), None, None, Some(u64::MAX - 1)),
            ),
        ];
        for (r, want) in cases {
            let p = RunPoint::of(&r);
            assert_eq!(
                (p.exit_code(), p.concurrent(), p.instructions(), p.cycles()),
                want,
                "{r:?}"
            );
        }
        // A runner keeps one per job of a suite of up to 100,000 nodes.
        assert_eq!(std::mem::size_of::<RunPoint>(), 56);
    }

    #[test]
    fn runs_keep_counters_and_concurrency_and_running_moments_feed_the_summary() {
        let records = [
            rec(
                0,
                10,
                Outcome::Success,
                &[("hw.instructions", "100"), ("run.concurrent", "true")],
            ),
            rec(
                1,
                30,
                Outcome::Failed {
                    exit_code: Some(3),
                    signal: None,
                },
                &[("run.concurrent", "false")],
            ),
            rec(
                2,
                20,
                Outcome::Success,
                &[("hw.instructions", "300"), ("hw.cycles", "7")],
            ),
        ];
        let mut r = group_records(&records).remove(0);
        assert_eq!(r.instructions, [Some(100), None, Some(300)]);
        assert_eq!(r.cycles, [None, None, Some(7)]);
        assert_eq!(r.concurrent, [Some(true), Some(false), None]);
        assert_eq!((r.concurrent_runs(), r.runs_without_counters()), (1, 1));
        assert_eq!(r.mean_instructions(), Some(200.0));
        assert_eq!(r.mean_cycles(), Some(7.0));
        assert_eq!(r.stderr_tail.as_deref(), Some("tail 1"));
        assert_eq!(r.failures.len(), 1);

        let exact = r.wall().unwrap();
        assert!((exact.mean - 0.015).abs() < 1e-12 && exact.min == 0.010 && exact.max == 0.020);
        r.running = Some(RunningWall {
            count: 2,
            mean: 0.5,
            stddev: Some(0.25),
            min: 0.125,
            max: 0.75,
        });
        let s = r.wall().unwrap();
        assert_eq!(
            (s.mean, s.stddev, s.min, s.max),
            (0.5, Some(0.25), 0.125, 0.75)
        );
        assert_eq!(s.median, exact.median, "the median stays exact");
        // Running moments over a different set of runs are not used.
        r.running = Some(RunningWall {
            count: 3,
            ..r.running.unwrap()
        });
        assert_eq!(r.wall(), Some(exact));
    }
}
