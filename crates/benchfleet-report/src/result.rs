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

    /// Summary of the wall times of the successful runs; `None` when no run succeeded.
    pub fn wall(&self) -> Option<Summary> {
        Summary::from_samples(&self.successful_times())
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

fn build(runs: &[&RunRecord]) -> BenchmarkResult {
    let first = runs[0];
    let m = |f: fn(&RunRecord) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
    BenchmarkResult {
        name: first.name.clone(),
        kind: first.kind,
        command: first.command.clone(),
        parameters: first.parameters.clone(),
        run_id: first.run_id.clone(),
        times: m(|r| r.measurement.wall_secs()),
        user: m(|r| r.measurement.user_secs()),
        system: m(|r| r.measurement.sys_secs()),
        max_rss_bytes: runs.iter().map(|r| r.measurement.max_rss_bytes).collect(),
        exit_codes: runs.iter().map(|r| r.outcome.exit_code()).collect(),
        failures: runs
            .iter()
            .filter(|r| !r.outcome.is_success())
            .map(|r| r.outcome.describe())
            .collect(),
        stderr_tail: runs
            .iter()
            .rev()
            .filter(|r| !r.outcome.is_success())
            .find_map(|r| r.stderr_tail.clone()),
    }
}
