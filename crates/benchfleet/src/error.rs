use std::path::PathBuf;

use benchfleet_store::StoreError;

/// Everything the facade can fail with. The CLI maps [`Error::is_user_input`] to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read suite file `{}`: {source}", path.display())]
    SuiteIo {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A malformed suite: the message names the key and what was expected.
    #[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}:{col} (line {line})") } else { String::new() })]
    Suite {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },

    /// A suite that would expand into more nodes than its limit (`[suite] max_nodes`, default
    /// [`crate::suite::DEFAULT_MAX_NODES`]), refused before anything was expanded.
    #[error("{}", suite_too_large(path, node, matrix, *node_count, *count, *limit))]
    SuiteTooLarge {
        path: PathBuf,
        /// The node that expands into the most nodes, as `job `name`` or `benchmark `name``.
        node: String,
        /// Its matrix: each key with its number of values.
        matrix: Vec<(String, usize)>,
        /// How many nodes it expands into; `None`: more than `u64::MAX`.
        node_count: Option<u64>,
        /// How many nodes the whole suite expands into; `None`: more than `u64::MAX`.
        count: Option<u64>,
        /// The limit in force.
        limit: u64,
    },

    #[error("{path}: dependency cycle: {}; remove one of these `needs`", cycle.join(" -> "))]
    Cycle { path: String, cycle: Vec<String> },

    #[error("{0}")]
    Schedule(String),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Git(#[from] crate::git::GitError),

    /// A statistic that could not be computed: an invalid setting (`alpha`, `noise`) is the
    /// user's input, too few samples is not.
    #[error(transparent)]
    Analysis(#[from] benchfleet_analysis::AnalysisError),

    #[error(
        "storage backend `{0}` is not compiled into this build; enable the cargo feature `{0}` of the `benchfleet` crate"
    )]
    BackendMissing(&'static str),

    #[error(
        "the fleet needs a PostgreSQL catalog (its queue lives there), and this configuration uses the embedded one; set `storage.catalog.backend = \"postgres\"` and `storage.catalog.url` in benchfleet.toml (or BENCHFLEET_STORAGE__CATALOG__BACKEND / __URL), and put the tiers where every worker reaches them (postgres or s3): see docs/fleet.md"
    )]
    FleetNeedsPostgres,

    #[error("no run matches `{0}`; list runs with `benchfleet history`")]
    RunNotFound(String),

    #[error("`{prefix}` matches {count} runs; give more characters of the run id")]
    AmbiguousRun { prefix: String, count: usize },

    /// A bug in benchfleet (a measuring thread or task that failed), not the user's input.
    #[error("internal error: {0}; this is a bug, please report it")]
    Internal(String),

    #[error("{what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the user can fix this by changing their input (suite, flags, ids): exit code 2.
    pub fn is_user_input(&self) -> bool {
        match self {
            Error::Git(e) => return e.is_user_input(),
            Error::Analysis(e) => {
                return matches!(
                    e,
                    benchfleet_analysis::AnalysisError::InvalidParameter { .. }
                );
            }
            _ => {}
        }
        matches!(
            self,
            Error::SuiteIo { .. }
                | Error::Suite { .. }
                | Error::SuiteTooLarge { .. }
                | Error::Cycle { .. }
                | Error::Schedule(_)
                | Error::RunNotFound(_)
                | Error::AmbiguousRun { .. }
                | Error::BackendMissing(_)
                | Error::FleetNeedsPostgres
        )
    }
}

/// The words of [`Error::SuiteTooLarge`]: the count, the culprit and its matrix, the limit and how
/// to raise it.
fn suite_too_large(
    path: &std::path::Path,
    node: &str,
    matrix: &[(String, usize)],
    node_count: Option<u64>,
    count: Option<u64>,
    limit: u64,
) -> String {
    let nodes = |n: Option<u64>| match n {
        Some(n) => format!("{n} nodes"),
        None => format!("more than {} nodes", u64::MAX),
    };
    let sizes: Vec<String> = matrix.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let culprit = if node_count == count {
        format!("{node} expands into {}", nodes(node_count))
    } else {
        format!("the largest, {node}, expands into {}", nodes(node_count))
    };
    let matrix = if sizes.is_empty() {
        String::new()
    } else {
        format!(" (matrix {})", sizes.join(" × "))
    };
    let raise = match count {
        Some(n) => format!(
            "Shrink the matrix, or raise the limit with `max_nodes = {n}` under `[suite]` if \
             this machine can hold that many nodes"
        ),
        None => "Shrink the matrix".to_string(),
    };
    format!(
        "{}: the suite expands into {}, more than its limit of {limit}; {culprit}{matrix}. {raise}",
        path.display(),
        nodes(count),
    )
}
