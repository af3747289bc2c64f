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

    #[error("{path}: dependency cycle: {}; remove one of these `needs`", cycle.join(" -> "))]
    Cycle { path: String, cycle: Vec<String> },

    #[error("{0}")]
    Schedule(String),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(
        "storage backend `{0}` is not compiled into this build; enable the cargo feature `{0}` of the `benchfleet` crate"
    )]
    BackendMissing(&'static str),

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
        matches!(
            self,
            Error::SuiteIo { .. }
                | Error::Suite { .. }
                | Error::Cycle { .. }
                | Error::Schedule(_)
                | Error::RunNotFound(_)
                | Error::AmbiguousRun { .. }
                | Error::BackendMissing(_)
        )
    }
}
