//! Comparing two sets of results named on the command line: stored runs (id, unique prefix,
//! `latest`), tags recorded with a run (`git.commit=abc123`: the newest run with that tag), or
//! exported JSON files (hyperfine `--export-json`, benchfleet's JSON export).

use std::path::{Path, PathBuf};

use benchfleet_analysis::CompareConfig;
use benchfleet_model::{RunId, RunInfo};
use benchfleet_report::{BenchmarkResult, ComparisonSet, compare_results, group_records};
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

/// A comparison of two resolved sides.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareOutcome {
    pub baseline: Side,
    pub candidate: Side,
    pub set: ComparisonSet,
}

/// Resolve `baseline` and `candidate` and compare every benchmark present in both by name.
pub async fn compare(
    storage: Option<&Storage>,
    baseline: &str,
    candidate: &str,
    cfg: &CompareConfig,
) -> Result<CompareOutcome, CompareError> {
    let b = resolve(storage, baseline).await?;
    let c = resolve(storage, candidate).await?;
    let set = compare_results(&b.results, &c.results, cfg);
    Ok(CompareOutcome {
        baseline: b,
        candidate: c,
        set,
    })
}
