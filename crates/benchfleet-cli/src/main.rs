//! `benchfleet`: run measured job DAGs, keep every result, tell when something got slower.
//!
//! **Architecture invariant:** the only crate that knows the terminal (colours, progress bars,
//! exit codes) and clap. Everything it does goes through the `benchfleet` facade and the
//! `benchfleet-config` settings.

mod analyze;
mod bench;
mod cli;
mod commands;
mod db;
mod load;
mod plan;
mod progress;
mod tier;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes, documented in `docs/cli.md`.
pub mod exit {
    pub const OK: u8 = 0;
    /// Some job or benchmark failed (or was skipped because a dependency failed).
    pub const FAILED: u8 = 1;
    /// Bad input: suite or config file, flags, unknown run id.
    pub const USAGE: u8 = 2;
    /// Storage or internal error.
    pub const INTERNAL: u8 = 3;
    /// Interrupted by Ctrl-C; what finished is stored.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(commands::dispatch(args)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code_for(&err))
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("BENCHFLEET_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
