//! Comparing two sets of results named on the command line: stored runs (id, unique prefix,
//! `latest`), tags recorded with a run (`git.commit=abc123`: the newest run with that tag), or
//! exported JSON files (hyperfine `--export-json`, benchfleet's JSON export).
//!
//! A side may be several invocations, named with commas (`a1.json,a2.json,a3.json`, or run ids):
//! with two or more a side, the verdict tests the per-invocation means (multi-invocation mode).
//! With one stored run a side, the band comes from the benchmark's history: the means of its
//! recent runs on the same machine class (OS, architecture, CPU count), the two compared runs
//! excluded (issue 21).

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use benchfleet_analysis::{HistoryBand, LevelsConfig};
use benchfleet_model::{RunId, RunInfo};
use benchfleet_report::{BenchmarkResult, ComparisonSet, compare_invocations, group_records};
use benchfleet_store::{RunFilter, Storage};

use crate::import::{self, ImportError};
use crate::{Error, find_run, load_records};

/// Where one side of a comparison came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A stored run, named by id, prefix, `latest` or a tag.
    Run(RunInfo),
    /// An exported JSON file.
    File(PathBuf),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    /// What the user typed.
    pub spec: String,
    pub origin: Origin,
    pub results: Vec<BenchmarkResult>,
}

impl Side {
    /// A short description: `run 01J… (suite, 2026-11-23T10:00:00Z)` or `file x.json`.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Run(r) => format!(
                "run {} (suite `{}`, {})",
                r.run_id,
                r.suite,
                benchfleet_report::format_timestamp(r.started_at)
            ),
            Origin::File(p) => format!("file {}", p.display()),
        }
    }
}

impl Side {
    /// The side in machine-readable output: `{"spec", "run_id", "suite", "started_at", "tags"}`
    /// for a stored run, `{"spec", "file"}` for a file.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.origin {
            Origin::Run(r) => serde_json::json!({
                "spec": self.spec, "run_id": r.run_id.as_str(), "suite": r.suite,
                "started_at": benchfleet_report::format_timestamp(r.started_at), "tags": r.tags,
            }),
            Origin::File(p) => {
                serde_json::json!({ "spec": self.spec, "file": p.display().to_string() })
            }
        }
    }
}

/// One side of several invocations in machine-readable output: one object, or a list of them.
pub fn sides_json(s: &[Side]) -> serde_json::Value {
    match s {
        [one] => one.to_json(),
        many => many.iter().map(Side::to_json).collect(),
    }
}

/// A comparison that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    File(#[from] ImportError),

    #[error(transparent)]
    Facade(#[from] Error),

    #[error(
        "no stored run has the tag `{key}={value}`; `benchfleet history --format json` shows the tags of each run"
    )]
    TagNotFound { key: String, value: String },

    #[error(
        "`{0}` is not a file, a run id (or a unique prefix of one, or `latest`) nor a tag KEY=VALUE; list runs with `benchfleet history`"
    )]
    Unresolvable(String),

    #[error(
        "the baseline was measured on machine class {} and the candidate on {}: a comparison across machines measures the machines, not the change. Compare runs of one class (`benchfleet history --format json` shows each run's `machine.class` tag), or pass --allow-cross-machine to compare anyway",
        .baseline.join(", "),
        .candidate.join(", ")
    )]
    CrossMachine {
        baseline: Vec<String>,
        candidate: Vec<String>,
    },
}

impl CompareError {
    /// Whether the user can fix this by changing their input (exit code 2 in the CLI).
    pub fn is_user_input(&self) -> bool {
        match self {
            CompareError::File(e) => e.is_user_input(),
            CompareError::Facade(e) => e.is_user_input(),
            _ => true,
        }
    }
}

/// Whether `spec` names an existing file (files win over ids and tags).
pub fn is_file(spec: &str) -> bool {
    Path::new(spec).is_file()
}

/// Results of an exported JSON file (hyperfine's format, which benchfleet's export extends).
pub fn results_from_file(path: &Path) -> Result<Vec<BenchmarkResult>, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let set = import::parse_hyperfine(path, &bytes)?;
    // A fixed placeholder id: the file's runs only need to be grouped together.
    let id: RunId = "00000000000000000000000000"
        .parse()
        .expect("a valid run id");
    let records = import::to_records(&set, &id, "file", Default::default(), &Default::default());
    Ok(group_records(&records))
}

/// The newest run whose tag `key` equals `value`; when none does, the newest whose value starts
/// with `value` (at least 4 characters, for abbreviated commits).
pub async fn find_run_by_tag(
    storage: &Storage,
    key: &str,
    value: &str,
) -> Result<RunInfo, CompareError> {
    let runs = storage
        .catalog
        .find_runs(&RunFilter::default())
        .await
        .map_err(Error::from)?;
    let exact = runs
        .iter()
        .find(|r| r.tags.get(key).is_some_and(|v| v == value));
    let prefix = || {
        (value.len() >= 4)
            .then(|| {
                runs.iter()
                    .find(|r| r.tags.get(key).is_some_and(|v| v.starts_with(value)))
            })
            .flatten()
    };
    exact
        .or_else(prefix)
        .cloned()
        .ok_or_else(|| CompareError::TagNotFound {
            key: key.to_owned(),
            value: value.to_owned(),
        })
}

/// Resolve one side: an existing file, else `KEY=VALUE` as a tag, else a run id, prefix or
/// `latest`. `storage` may be `None` when every side is a file.
pub async fn resolve(storage: Option<&Storage>, spec: &str) -> Result<Side, CompareError> {
    if is_file(spec) {
        let path = PathBuf::from(spec);
        return Ok(Side {
            spec: spec.to_owned(),
            results: results_from_file(&path)?,
            origin: Origin::File(path),
        });
    }
    let Some(storage) = storage else {
        return Err(CompareError::Unresolvable(spec.to_owned()));
    };
    let run = match spec.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => find_run_by_tag(storage, k.trim(), v).await?,
        _ => match find_run(storage, spec).await {
            Err(Error::RunNotFound(_)) => {
                return Err(CompareError::Unresolvable(spec.to_owned()));
            }
            other => other?,
        },
    };
    let records = load_records(storage, &run.run_id).await?;
    Ok(Side {
        spec: spec.to_owned(),
        results: group_records(&records),
        origin: Origin::Run(run),
    })
}

/// A comparison of two resolved sides, each one or more invocations.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareOutcome {
    pub baseline: Vec<Side>,
    pub candidate: Vec<Side>,
    pub set: ComparisonSet,
    /// Stored runs the history bands were learned from (0: no history used).
    pub history_runs: usize,
    /// The sides' machine classes (baseline, candidate) when they differ and
    /// `allow_cross_machine` let the comparison go ahead.
    pub cross_machine: Option<(Vec<String>, Vec<String>)>,
}

/// Runs of history a band is learned from, at most (the newest).
pub const HISTORY_WINDOW: usize = 30;

/// Resolve a side that may list several invocations separated by commas (a file whose name has
/// a comma wins as a whole).
pub async fn resolve_many(
    storage: Option<&Storage>,
    spec: &str,
) -> Result<Vec<Side>, CompareError> {
    if is_file(spec) || !spec.contains(',') {
        return Ok(vec![resolve(storage, spec).await?]);
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(resolve(storage, part).await?);
    }
    if out.is_empty() {
        return Err(CompareError::Unresolvable(spec.to_owned()));
    }
    Ok(out)
}

/// A run's machine class for its history: its `machine.class` tag, or (runs stored before it
/// existed) OS, architecture and CPU count.
fn machine_class(r: &RunInfo) -> String {
    match r.tags.get(crate::machine::TAG_CLASS) {
        Some(c) => c.clone(),
        None => format!("{}/{}/{}", r.host.os, r.host.arch, r.host.cpus),
    }
}

/// The machine classes a side was measured on: its records' and its runs' `machine.class`
/// tags, sorted, each once; empty when unknown (exported files, older runs).
pub fn side_classes(sides: &[Side]) -> Vec<String> {
    let mut v: Vec<String> = sides
        .iter()
        .flat_map(|s| {
            let run = match &s.origin {
                Origin::Run(r) => r.tags.get(crate::machine::TAG_CLASS).cloned(),
                Origin::File(_) => None,
            };
            s.results
                .iter()
                .flat_map(|r| r.machine_classes.iter().cloned())
                .chain(run)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The means of each benchmark in the newest [`HISTORY_WINDOW`] finished runs of `suite` on
/// `run`'s machine class, `exclude`d runs left out; oldest first.
pub async fn history_means(
    storage: &Storage,
    suite: &str,
    like: &RunInfo,
    exclude: &[RunId],
) -> Result<(BTreeMap<String, Vec<f64>>, usize), CompareError> {
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            suite: Some(suite.to_owned()),
            ..Default::default()
        })
        .await
        .map_err(Error::from)?;
    let class = machine_class(like);
    let mut means: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut used = 0;
    for run in runs
        .iter()
        .filter(|r| machine_class(r) == class && !exclude.contains(&r.run_id))
        .take(HISTORY_WINDOW)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let records = load_records(storage, &run.run_id).await?;
        used += 1;
        for r in group_records(&records) {
            if let Some(s) = r.wall() {
                means.entry(r.name.clone()).or_default().push(s.mean);
            }
        }
    }
    Ok((means, used))
}

/// Resolve `baseline` and `candidate` (each one or more invocations, see [`resolve_many`]) and
/// compare every benchmark present in both by name (see the module docs for the modes). Sides
/// measured on different machine classes are refused ([`CompareError::CrossMachine`]) unless
/// `allow_cross_machine`, which compares them and says so in
/// [`CompareOutcome::cross_machine`].
pub async fn compare(
    storage: Option<&Storage>,
    baseline: &str,
    candidate: &str,
    cfg: &LevelsConfig,
    allow_cross_machine: bool,
) -> Result<CompareOutcome, CompareError> {
    let b = resolve_many(storage, baseline).await?;
    let c = resolve_many(storage, candidate).await?;
    let (bc, cc) = (side_classes(&b), side_classes(&c));
    let cross_machine = !bc.is_empty() && !cc.is_empty() && bc != cc;
    if cross_machine && !allow_cross_machine {
        return Err(CompareError::CrossMachine {
            baseline: bc,
            candidate: cc,
        });
    }
    let mut history = BTreeMap::new();
    let mut history_runs = 0;
    if let (Some(storage), [bs], [cs]) = (storage, b.as_slice(), c.as_slice())
        && let (Origin::Run(br), Origin::Run(cr)) = (&bs.origin, &cs.origin)
        && !cfg.head_to_head
        && cfg.history.is_none()
    {
        let (means, used) = history_means(
            storage,
            &cr.suite,
            cr,
            &[br.run_id.clone(), cr.run_id.clone()],
        )
        .await?;
        history = means;
        history_runs = used;
    }
    let set = compare_invocations(
        &b.iter().map(|s| s.results.clone()).collect::<Vec<_>>(),
        &c.iter().map(|s| s.results.clone()).collect::<Vec<_>>(),
        cfg,
        |name| {
            history
                .get(name)
                .and_then(|m| HistoryBand::from_means(m).ok())
        },
    );
    let history_runs = if set
        .compared
        .iter()
        .any(|c| c.comparison.assessment.mode == benchfleet_analysis::Mode::HistoryBand)
    {
        history_runs
    } else {
        0
    };
    Ok(CompareOutcome {
        baseline: b,
        candidate: c,
        set,
        history_runs,
        cross_machine: cross_machine.then_some((bc, cc)),
    })
}
