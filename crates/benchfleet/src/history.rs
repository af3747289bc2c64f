//! One benchmark's history across stored runs: one value per run (the mean of that run's
//! successful runs for a metric), and the change points of that series.
//!
//! Built from the catalog's record samples only ([`Catalog::query_samples`]: run, start time,
//! measurement, outcome), never from raw records, so it stays cheap with long histories.
//!
//! [`Catalog::query_samples`]: benchfleet_store::Catalog::query_samples

use std::collections::HashMap;
use std::str::FromStr;

use serde::Serialize;

use benchfleet_analysis::{AnalysisError, ChangePoint, ChangePointConfig, change_points};
use benchfleet_model::{Measurement, RunId, RunInfo, Timestamp};
use benchfleet_report::{HistoryRow, HistorySeries, Quantity};
use benchfleet_store::{RecordQuery, Storage};

use crate::Error;

/// A measured quantity of every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Wall-clock time (s).
    Wall,
    /// User CPU time (s).
    User,
    /// System CPU time (s).
    Sys,
    /// User + system CPU time (s).
    Cpu,
    /// Peak resident set size (bytes).
    Rss,
    MinorFaults,
    MajorFaults,
    VoluntaryCs,
    InvoluntaryCs,
    BlockIn,
    BlockOut,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Wall,
        Metric::User,
        Metric::Sys,
        Metric::Cpu,
        Metric::Rss,
        Metric::MinorFaults,
        Metric::MajorFaults,
        Metric::VoluntaryCs,
        Metric::InvoluntaryCs,
        Metric::BlockIn,
        Metric::BlockOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Wall => "wall",
            Metric::User => "user",
            Metric::Sys => "sys",
            Metric::Cpu => "cpu",
            Metric::Rss => "rss",
            Metric::MinorFaults => "minor-faults",
            Metric::MajorFaults => "major-faults",
            Metric::VoluntaryCs => "voluntary-cs",
            Metric::InvoluntaryCs => "involuntary-cs",
            Metric::BlockIn => "block-in",
            Metric::BlockOut => "block-out",
        }
    }

    /// What the values count: seconds, bytes or events.
    pub fn quantity(self) -> Quantity {
        match self {
            Metric::Wall | Metric::User | Metric::Sys | Metric::Cpu => Quantity::Seconds,
            Metric::Rss => Quantity::Bytes,
            _ => Quantity::Count,
        }
    }

    /// Unit of [`Metric::value`] for machine-readable output: `s`, `bytes` or `count`.
    pub fn unit(self) -> &'static str {
        match self.quantity() {
            Quantity::Seconds => "s",
            Quantity::Bytes => "bytes",
            Quantity::Count => "count",
        }
    }

    /// This metric of one run, in seconds, bytes or a count.
    pub fn value(self, m: &Measurement) -> f64 {
        match self {
            Metric::Wall => m.wall_secs(),
            Metric::User => m.user_secs(),
            Metric::Sys => m.sys_secs(),
            Metric::Cpu => m.user_secs() + m.sys_secs(),
            Metric::Rss => m.max_rss_bytes as f64,
            Metric::MinorFaults => m.minor_faults as f64,
            Metric::MajorFaults => m.major_faults as f64,
            Metric::VoluntaryCs => m.voluntary_context_switches as f64,
            Metric::InvoluntaryCs => m.involuntary_context_switches as f64,
            Metric::BlockIn => m.block_in as f64,
            Metric::BlockOut => m.block_out as f64,
        }
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match s.as_str() {
            "time" | "wall-time" => "wall",
            "system" => "sys",
            "max-rss" | "memory" => "rss",
            other => other,
        };
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == alias)
            .ok_or_else(|| {
                format!(
                    "unknown metric `{s}`; expected one of {}",
                    Metric::ALL.map(Metric::as_str).join(", ")
                )
            })
    }
}

/// One run's value in a benchmark's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub run_id: RunId,
    /// When the run's first record of this benchmark started.
    pub time: Timestamp,
    /// Mean of the metric over the run's successful runs of the benchmark.
    pub value: f64,
    /// Number of successful runs averaged.
    pub runs: usize,
    /// Sample standard deviation of those runs (`None` with fewer than two).
    pub stddev: Option<f64>,
    /// The commit the run measured (its `git.commit` tag), in a history ordered by commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The machine class the run was measured on (its `machine.class` tag); `None` for runs
    /// stored before classes existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_class: Option<String>,
}

/// Which history to read.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryQuery {
    /// Benchmark name (after matrix expansion).
    pub name: String,
    /// Only runs of this suite.
    pub suite: Option<String>,
    pub metric: Metric,
    /// Only runs whose records started before this (exclusive).
    pub until: Option<Timestamp>,
    /// Keep only the newest this many points.
    pub limit: Option<usize>,
    /// Only runs measured on this machine class.
    pub machine_class: Option<String>,
}

impl HistoryQuery {
    pub fn new(name: impl Into<String>, metric: Metric) -> Self {
        HistoryQuery {
            name: name.into(),
            suite: None,
            metric,
            until: None,
            limit: None,
            machine_class: None,
        }
    }
}

/// The series of one benchmark: one point per stored run that has at least one successful run
/// of it, oldest first. Runs where every run of the benchmark failed are left out (they have no
/// value to plot).
pub async fn benchmark_history(
    storage: &Storage,
    q: &HistoryQuery,
) -> Result<Vec<HistoryPoint>, Error> {
    let runs = runs_of(storage, q).await?;
    benchmark_history_among(storage, q, &runs).await
}

/// The run rows a history's points take their tags from (the query's suite, or all).
pub async fn runs_of(storage: &Storage, q: &HistoryQuery) -> Result<Vec<RunInfo>, Error> {
    Ok(storage
        .catalog
        .find_runs(&benchfleet_store::RunFilter {
            suite: q.suite.clone(),
            ..Default::default()
        })
        .await?)
}

/// [`benchmark_history`] with the run rows (from [`runs_of`], or every run: only the points' runs
/// are looked up) already read, for callers that need them too or keep them.
pub async fn benchmark_history_among(
    storage: &Storage,
    q: &HistoryQuery,
    runs: &[RunInfo],
) -> Result<Vec<HistoryPoint>, Error> {
    let samples = storage
        .catalog
        .query_samples(&RecordQuery {
            name: Some(q.name.clone()),
            suite: q.suite.clone(),
            until: q.until,
            ..Default::default()
        })
        .await?;
    // Samples come ordered by (started_at, run_id, …): a run's position is its first sample.
    // A run's samples are usually adjacent, so the map is consulted once per run, not per
    // sample.
    struct Group<'a> {
        run: &'a RunId,
        time: Timestamp,
        values: Vec<f64>,
        class: Option<&'a String>,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut last: Option<usize> = None;
    for e in &samples {
        let g = match last {
            Some(g) if groups[g].run == &e.run_id => g,
            _ => *index.entry(e.run_id.as_str()).or_insert_with(|| {
                groups.push(Group {
                    run: &e.run_id,
                    time: e.started_at,
                    values: Vec::new(),
                    class: None,
                });
                groups.len() - 1
            }),
        };
        last = Some(g);
        let slot = &mut groups[g];
        slot.time = slot.time.min(e.started_at);
        if e.success {
            let v = q.metric.value(&e.measurement);
            if v.is_finite() {
                slot.values.push(v);
            }
        }
    }
    // The machine class of each run that has samples (only those runs are looked up).
    for r in runs {
        if let Some(&g) = index.get(r.run_id.as_str()) {
            groups[g].class = r.tags.get(crate::machine::TAG_CLASS);
        }
    }
    let mut points: Vec<HistoryPoint> = groups
        .into_iter()
        .filter_map(|g| {
            let machine_class = g.class.cloned();
            let values = g.values;
            let value = values.iter().sum::<f64>() / values.len() as f64;
            (!values.is_empty() && (q.machine_class.is_none() || q.machine_class == machine_class))
                .then(|| HistoryPoint {
                    run_id: g.run.clone(),
                    time: g.time,
                    value,
                    runs: values.len(),
                    stddev: benchfleet_analysis::sample_variance(&values, value).map(f64::sqrt),
                    commit: None,
                    machine_class,
                })
        })
        .collect();
    points.sort_by(|a, b| (a.time, &a.run_id).cmp(&(b.time, &b.run_id)));
    if let Some(limit) = q.limit
        && points.len() > limit
    {
        points.drain(..points.len() - limit);
    }
    Ok(points)
}

/// The history ordered by commit (first-parent order) instead of time: only runs tagged with
/// `git.commit`, ordered by their position on the first-parent line (`git.depth`, recorded by
/// `run --commits` and `bisect`; for other runs looked up in `repo` when given), then by time.
/// Returns the points (each with its `commit`) and how many runs were left out because their
/// commit or its position is unknown. `q.limit` keeps the newest points in this order.
pub async fn benchmark_history_by_commit(
    storage: &Storage,
    q: &HistoryQuery,
    repo: Option<&crate::git::Repo>,
) -> Result<(Vec<HistoryPoint>, usize), Error> {
    let runs = runs_of(storage, q).await?;
    benchmark_history_by_commit_among(storage, q, repo, &runs).await
}

/// [`benchmark_history_by_commit`] with the run rows (from [`runs_of`], or every run) already
/// read.
pub async fn benchmark_history_by_commit_among(
    storage: &Storage,
    q: &HistoryQuery,
    repo: Option<&crate::git::Repo>,
    runs: &[RunInfo],
) -> Result<(Vec<HistoryPoint>, usize), Error> {
    use crate::commits::{TAG_COMMIT, TAG_DEPTH};
    let all = HistoryQuery {
        limit: None,
        ..q.clone()
    };
    let points = benchmark_history_among(storage, &all, runs).await?;
    let tags: HashMap<&RunId, &std::collections::BTreeMap<String, String>> =
        runs.iter().map(|r| (&r.run_id, &r.tags)).collect();
    let mut looked_up: HashMap<String, Option<u64>> = HashMap::new();
    let mut keyed = Vec::with_capacity(points.len());
    let mut left_out = 0;
    for mut p in points {
        let Some(t) = tags.get(&p.run_id) else {
            left_out += 1;
            continue;
        };
        let Some(sha) = t.get(TAG_COMMIT).cloned() else {
            left_out += 1;
            continue;
        };
        let depth = match t.get(TAG_DEPTH).and_then(|d| d.parse::<u64>().ok()) {
            Some(d) => Some(d),
            None => *looked_up
                .entry(sha.clone())
                .or_insert_with(|| repo.and_then(|r| r.commit_info(&sha).ok()).map(|c| c.depth)),
        };
        let Some(depth) = depth else {
            left_out += 1;
            continue;
        };
        p.commit = Some(sha);
        keyed.push((depth, p));
    }
    keyed.sort_by(|(da, a), (db, b)| (da, a.time, &a.run_id).cmp(&(db, b.time, &b.run_id)));
    let mut points: Vec<HistoryPoint> = keyed.into_iter().map(|(_, p)| p).collect();
    if let Some(limit) = q.limit
        && points.len() > limit
    {
        points.drain(..points.len() - limit);
    }
    Ok((points, left_out))
}

/// The machine classes of a history's points, with how many points each, most first: more than
/// one means change points between them could be the machines'.
pub fn classes_of(points: &[HistoryPoint]) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in points {
        *counts
            .entry(p.machine_class.as_deref().unwrap_or("unknown"))
            .or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().map(|(c, n)| (c.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Change points of a history (indexes into `points`), with the default detector settings unless
/// `cfg` is given. Series shorter than two minimal segments have none.
pub fn detect_changes(
    points: &[HistoryPoint],
    cfg: Option<&ChangePointConfig>,
) -> Result<Vec<ChangePoint>, AnalysisError> {
    let series: Vec<f64> = points.iter().map(|p| p.value).collect();
    change_points(&series, &cfg.copied().unwrap_or_default())
}

/// A history ready for the HTML report: values in a readable unit (ms, MiB, …).
pub fn html_series(
    name: &str,
    metric: Metric,
    points: &[HistoryPoint],
    changes: &[ChangePoint],
) -> HistorySeries {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let typical = {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (unit, scale) = match metric.quantity() {
        Quantity::Seconds => {
            let (u, s) = benchfleet_report::units::time_unit(typical);
            (u.to_owned(), s)
        }
        Quantity::Bytes => ("MiB".to_owned(), 1.0 / (1024.0 * 1024.0)),
        Quantity::Count => ("count".to_owned(), 1.0),
    };
    let scaled = |x: f64| x * scale;
    HistorySeries {
        name: format!("{name} ({})", metric.as_str()),
        unit,
        values: values.iter().map(|v| scaled(*v)).collect(),
        changes: changes
            .iter()
            .map(|c| ChangePoint {
                before_mean: scaled(c.before_mean),
                after_mean: scaled(c.after_mean),
                ..*c
            })
            .collect(),
    }
}

/// Rows for [`benchfleet_report::history_table`].
pub fn table_rows(points: &[HistoryPoint]) -> Vec<HistoryRow> {
    points
        .iter()
        .map(|p| HistoryRow {
            run_id: p.run_id.to_string(),
            time: p.time,
            value: p.value,
            runs: p.runs,
            commit: p.commit.clone(),
        })
        .collect()
}

/// Stable machine-readable history: `{"schema_version", "benchmark", "suite", "metric", "unit",
/// "points": [{"index", "run_id", "time", "time_ns", "value", "runs", "commit"}], "changes":
/// [{"index", "run_id", "time", "time_ns", "commit", "before_mean", "after_mean", "percent",
/// "p_value"}]}`; `changes` only when given. Values are in [`Metric::unit`]. `commit` is the
/// point's commit in a history ordered by commit (for a change: the first commit after it),
/// `null` otherwise.
pub fn history_json(
    q: &HistoryQuery,
    points: &[HistoryPoint],
    changes: Option<&[ChangePoint]>,
) -> serde_json::Value {
    use serde_json::json;
    let time = |t: Timestamp| benchfleet_report::format_timestamp(t);
    let mut v = json!({
        "schema_version": benchfleet_report::JSON_SCHEMA_VERSION,
        "benchmark": q.name,
        "suite": q.suite,
        "metric": q.metric.as_str(),
        "unit": q.metric.unit(),
        "points": points.iter().enumerate().map(|(i, p)| json!({
            "index": i,
            "run_id": p.run_id.as_str(),
            "time": time(p.time),
            "time_ns": p.time.unix_nanos(),
            "value": p.value,
            "runs": p.runs,
            "commit": p.commit,
            "machine_class": p.machine_class,
        })).collect::<Vec<_>>(),
    });
    if let Some(cs) = changes {
        v["changes"] = changes_json(points, cs);
    }
    v
}

/// The `changes` of [`history_json`]: `[{"index", "run_id", "time", "time_ns", "commit",
/// "before_mean", "after_mean", "percent", "p_value"}]`.
pub fn changes_json(points: &[HistoryPoint], changes: &[ChangePoint]) -> serde_json::Value {
    use serde_json::json;
    let time = |t: Timestamp| benchfleet_report::format_timestamp(t);
    changes
        .iter()
        .map(|c| {
            let p = points.get(c.index);
            json!({
                "index": c.index,
                "run_id": p.map(|p| p.run_id.as_str()),
                "time": p.map(|p| time(p.time)),
                "time_ns": p.map(|p| p.time.unix_nanos()),
                "commit": p.and_then(|p| p.commit.as_deref()),
                "before_mean": c.before_mean,
                "after_mean": c.after_mean,
                "percent": c.percent,
                "p_value": c.p_value,
            })
        })
        .collect()
}
