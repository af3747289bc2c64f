//! `benchfleet`: run measured job DAGs, keep every result, tell when something got slower.
//!
//! **Architecture invariant:** the only crate that knows the terminal (colours, progress bars,
//! exit codes) and clap. Everything it does goes through the `benchfleet` facade and the
//! `benchfleet-config` settings.
//!
//! `main` parses the command line, builds the [`context::Context`] (configuration loaded once,
//! storage opened on first use), dispatches to the command's module in [`cmd`], and maps how it
//! ended to the exit code ([`exit`]). Modules only depend downwards: `cli` → `cmd::*` → the
//! shared modules (context, flags, output, words, progress, metrics, tables, interrupt,
//! storage, exit); command modules never use each other.

mod cli;
mod cmd;
mod context;
mod exit;
mod flags;
mod interrupt;
mod metrics;
mod output;
mod progress;
mod storage;
mod tables;
mod words;

use std::process::ExitCode;

use clap::Parser;

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
    let ended = runtime.block_on(async {
        let ctx = context::Context::load(args.config, args.command.config_overrides())?;
        cli::dispatch(&ctx, args.command).await
    });
    match ended {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(err) => {
            let code = err.exit_code();
            // A closed stdout (`… | head`) ends the program quietly.
            if !matches!(err, exit::CliError::BrokenPipe) {
                eprintln!("error: {:#}", anyhow::Error::from(err));
            }
            ExitCode::from(code)
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
