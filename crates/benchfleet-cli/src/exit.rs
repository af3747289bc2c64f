//! How a command ends, and the one mapping from that to the exit codes of `docs/cli.md`.
//!
//! A command returns `Result<Status, CliError>`: [`Status`] when it did its work (which may have
//! found failed jobs or a regression), [`CliError`] when it could not. Only `main` turns either
//! into a process exit code, with [`Status::exit_code`] and [`CliError::exit_code`]. Nothing in
//! this module prints.

use benchfleet::bench::BenchError;
use benchfleet::compare::CompareError;
use benchfleet::import::ImportError;
use benchfleet::load::LoadRunError;
use benchfleet::model::RunStatus;

/// Success.
pub const OK: u8 = 0;
/// Some job or benchmark failed (or was skipped because a dependency failed).
pub const FAILED: u8 = 1;
/// Bad input: suite or config file, flags, unknown run id.
pub const USAGE: u8 = 2;
/// Storage or internal error.
pub const INTERNAL: u8 = 3;
/// Interrupted by Ctrl-C; what finished is stored.
pub const INTERRUPTED: u8 = 130;

/// How a command that did its work ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success,
    /// A job or benchmark failed or was skipped, a regression was found (`--fail-on`), a record
    /// is corrupt (`tier verify`).
    Failed,
    /// Interrupted by Ctrl-C; what finished is stored.
    Interrupted,
}

impl Status {
    /// The status of a stored run's final state.
    pub fn of_run(status: RunStatus) -> Status {
        match status {
            RunStatus::Succeeded => Status::Success,
            RunStatus::Interrupted => Status::Interrupted,
            _ => Status::Failed,
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Status::Success => OK,
            Status::Failed => FAILED,
            Status::Interrupted => INTERRUPTED,
        }
    }
}

/// Why a command could not do its work. `main` prints it as `error: ` and the chain of causes
/// (`outer: inner`), except [`CliError::BrokenPipe`], which ends the program quietly.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input that clap cannot see, worded by the CLI with the flag or key it concerns.
    #[error("{0}")]
    Usage(String),
    /// The configuration files, environment or flags are wrong.
    #[error(transparent)]
    Config(#[from] benchfleet_config::ConfigError),
    #[error(transparent)]
    Facade(#[from] benchfleet::Error),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Load(#[from] LoadRunError),
    #[error(transparent)]
    Compare(Box<CompareError>),
    #[error(transparent)]
    Import(#[from] ImportError),
    /// What the program was doing when `source` happened: `benchmark failed: …`.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<CliError>,
    },
    /// Standard output was closed (`benchfleet show … | head`): not an error for the user.
    #[error("standard output was closed")]
    BrokenPipe,
    /// Storage, I/O, rendering, the runtime: nothing the user's input can fix.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CliError {
    /// The one mapping from errors to the exit codes of `docs/cli.md`: bad input is 2, a closed
    /// standard output 0, everything else (storage, internal) 3 — never 2, so scripts can tell
    /// "fix your input" from "something broke".
    pub fn exit_code(&self) -> u8 {
        let user = match self {
            CliError::Usage(_) | CliError::Config(_) => true,
            CliError::Facade(e) => e.is_user_input(),
            CliError::Bench(e) => e.is_user_input(),
            CliError::Load(e) => e.is_user_input(),
            CliError::Compare(e) => e.is_user_input(),
            CliError::Import(e) => e.is_user_input(),
            CliError::Context { source, .. } => return source.exit_code(),
            CliError::BrokenPipe => return OK,
            CliError::Internal(_) => false,
        };
        if user { USAGE } else { INTERNAL }
    }

    /// A usage error from any message.
    pub fn usage(message: impl std::fmt::Display) -> CliError {
        CliError::Usage(message.to_string())
    }

    /// An internal error from any message.
    pub fn internal(message: impl std::fmt::Display) -> CliError {
        CliError::Internal(anyhow::anyhow!("{message}"))
    }

    /// `self`, with what the program was doing in front of its message.
    pub fn context(self, context: impl Into<String>) -> CliError {
        CliError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

/// Errors of the crates below the facade and of the standard library are internal (exit 3).
macro_rules! internal_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Internal(e.into())
            }
        }
    )*};
}

internal_from!(
    benchfleet::store::StoreError,
    benchfleet::prom::PromError,
    benchfleet::analysis::AnalysisError,
    benchfleet::report::ReportError,
    serde_json::Error,
);

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Boxed: a comparison error carries what it compared, which would make every `Result` of the
/// CLI as large as it.
impl From<CompareError> for CliError {
    fn from(e: CompareError) -> Self {
        CliError::Compare(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet::store::{ErrorKind, StoreError};

    fn store_error() -> StoreError {
        StoreError::new(ErrorKind::Other, "catalog", "put_run", "disk full")
    }

    #[test]
    fn every_error_has_its_documented_code() {
        let cases: Vec<(CliError, u8)> = vec![
            (
                CliError::usage("--noise -1: expected a fraction ≥ 0"),
                USAGE,
            ),
            (
                CliError::Facade(benchfleet::Error::RunNotFound("x".into())),
                USAGE,
            ),
            (CliError::Bench(BenchError::Usage("-r 0".into())), USAGE),
            (
                CliError::Bench(BenchError::Internal("join error".into())),
                INTERNAL,
            ),
            (CliError::Bench(BenchError::Store(store_error())), INTERNAL),
            (
                CliError::Load(LoadRunError::Internal("join error".into())),
                INTERNAL,
            ),
            (
                CliError::Facade(benchfleet::Error::Store(store_error())),
                INTERNAL,
            ),
            (store_error().into(), INTERNAL),
            (CliError::internal("a task panicked"), INTERNAL),
            (
                CliError::Bench(BenchError::Internal("join error".into()))
                    .context("benchmark failed"),
                INTERNAL,
            ),
            (
                CliError::usage("bad flag").context("while reading flags"),
                USAGE,
            ),
            (CliError::BrokenPipe, OK),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err:?}");
        }
    }

    #[test]
    fn internal_errors_are_never_usage_errors() {
        // A join error or a panicked task surfacing through the facade is a bug, not bad input.
        for err in [
            CliError::Bench(BenchError::Internal("task panicked".into())),
            CliError::Load(LoadRunError::Internal("task panicked".into())),
            CliError::internal("task panicked"),
            CliError::internal("task panicked").context("load failed"),
        ] {
            assert_ne!(err.exit_code(), USAGE, "{err:?}");
            assert_ne!(err.exit_code(), OK, "{err:?}");
        }
    }

    #[test]
    fn run_statuses_map_to_codes() {
        for (status, code) in [
            (RunStatus::Succeeded, OK),
            (RunStatus::Failed, FAILED),
            (RunStatus::Interrupted, INTERRUPTED),
        ] {
            assert_eq!(Status::of_run(status).exit_code(), code, "{status:?}");
        }
    }

    #[test]
    fn context_is_printed_before_the_cause() {
        let err = CliError::Bench(BenchError::Usage("-r/--runs must be at least 1".into()))
            .context("benchmark failed");
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "benchmark failed: -r/--runs must be at least 1"
        );
    }
}
