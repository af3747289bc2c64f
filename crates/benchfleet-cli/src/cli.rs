//! The command line (clap): global flags, one subcommand per module of [`crate::cmd`], and the
//! dispatch from a parsed command to its module. Flags stay raw; commands resolve them, with
//! the configuration of the [`Context`], into the facade's settings.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::context::Context;
use crate::exit::{Result, Status};

#[derive(Debug, Parser)]
#[command(
    name = "benchfleet",
    version,
    about = "Run measured job DAGs, keep every result, know when something got slower."
)]
pub struct Cli {
    /// Configuration file (default: benchfleet.toml in the working directory, if present).
    #[arg(long, global = true, value_name = "FILE", env = "BENCHFLEET_CONFIG")]
    pub config: Option<PathBuf>,

    /// More log output (-v info, -vv debug); BENCHFLEET_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a suite file: schedule its DAG, measure every run, store every record.
    Run(cmd::run::RunArgs),
    /// Benchmark commands ad hoc, with hyperfine's flags (interleaved, stored like suite results).
    Bench(Box<cmd::bench::BenchArgs>),
    /// Throughput benchmark: run a command under a load profile (soak, stress, spike); ops/s and
    /// latency percentiles per step and per time window.
    Load(Box<cmd::load::LoadArgs>),
    /// Show a suite's DAG without running it: critical path, width, speedup, what fits this host.
    Plan(cmd::plan::PlanArgs),
    /// List stored runs, newest first.
    History(cmd::history::HistoryArgs),
    /// Compare two runs, tags or exported JSON files: ratio, interval, p-values, verdict.
    Compare(cmd::compare::CompareArgs),
    /// Render one stored run as HTML (with history plots), Markdown, JSON, CSV, JUnit or BMF.
    Report(cmd::report::ReportArgs),
    /// Import hyperfine, criterion or Bencher Metric Format results into history.
    Import(cmd::import::ImportArgs),
    /// Find the first commit where a benchmark got slower: binary search over the first-parent
    /// commits between --good and --bad, each measured in its own worktree and stored (one
    /// commit at a time, on this machine).
    Bisect(Box<cmd::bisect::BisectArgs>),
    /// Run a suite at several concurrency levels and print speedup and efficiency.
    Scale(cmd::scale::ScaleArgs),
    /// Print one stored run's results, read back from storage.
    Show(cmd::show::ShowArgs),
    /// Tiered storage: status, migrate by age (hot → warm → cold), verify, gc.
    #[command(subcommand)]
    Tier(cmd::tier::TierCommand),
    /// Put a suite's DAG in the fleet's queue (PostgreSQL) for workers to run; prints the run id.
    Submit(cmd::submit::SubmitArgs),
    /// Run nodes of submitted suites: claim ready nodes, measure them as `run` does, store their
    /// records in the shared catalog and tiers. SIGTERM drains.
    Worker(cmd::worker::WorkerArgs),
    /// The fleet's workers, queue and runs (`status`); stop a submitted run (`cancel`).
    #[command(subcommand)]
    Fleet(cmd::fleet::FleetCommand),
    /// Shared catalog database maintenance: refresh and print the daily summary (PostgreSQL).
    #[command(subcommand)]
    Db(cmd::db::DbCommand),
    /// The live dashboard: runs, history with change points, comparisons, alerts (HTTP).
    Serve(cmd::serve::ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
}

impl Command {
    /// The configuration keys this command's flags set: the top layer of the configuration,
    /// loaded once into the [`Context`] before [`dispatch`].
    pub fn config_overrides(&self) -> Vec<(String, benchfleet_config::Value)> {
        match self {
            Command::Run(args) => cmd::run::config_overrides(args),
            _ => Vec::new(),
        }
    }
}

/// Run `command` in `ctx`.
pub async fn dispatch(ctx: &Context, command: Command) -> Result<Status> {
    match command {
        Command::Run(args) => cmd::run::run(ctx, args).await,
        Command::Bench(args) => cmd::bench::bench(ctx, *args).await,
        Command::Load(args) => cmd::load::load(ctx, *args).await,
        Command::Plan(args) => cmd::plan::plan(ctx, args).await,
        Command::History(args) => cmd::history::history(ctx, args).await,
        Command::Compare(args) => cmd::compare::compare(ctx, args).await,
        Command::Report(args) => cmd::report::report(ctx, args).await,
        Command::Import(args) => cmd::import::import(ctx, args).await,
        Command::Scale(args) => cmd::scale::scale(ctx, args).await,
        Command::Bisect(args) => cmd::bisect::bisect(ctx, *args).await,
        Command::Show(args) => cmd::show::show(ctx, args).await,
        Command::Tier(c) => cmd::tier::tier(ctx, c).await,
        Command::Submit(args) => cmd::submit::submit(ctx, args).await,
        Command::Worker(args) => cmd::worker::worker(ctx, args).await,
        Command::Fleet(c) => cmd::fleet::fleet(ctx, c).await,
        Command::Db(c) => cmd::db::db(ctx, c).await,
        Command::Serve(args) => cmd::serve::serve(ctx, args).await,
        Command::Config(c) => cmd::config::config(ctx, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        // Flag groups flattened into several commands must not collide with a command's own flags.
        Cli::command().debug_assert();
    }

    #[test]
    fn only_run_flags_set_configuration_keys() {
        let keys = |args: &[&str]| -> Vec<String> {
            let cli =
                Cli::try_parse_from(std::iter::once("benchfleet").chain(args.iter().copied()))
                    .unwrap();
            cli.command
                .config_overrides()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys(&[
                "run",
                "s.toml",
                "-j",
                "3",
                "--keep-going",
                "--progress",
                "lines",
                "--sample-interval",
                "100ms"
            ]),
            [
                "run.jobs",
                "run.keep_going",
                "output.progress",
                "run.sample_interval"
            ]
        );
        assert!(keys(&["run", "s.toml"]).is_empty());
        assert!(keys(&["bench", "-j", "2", "true"]).is_empty());
        assert!(keys(&["scale", "s.toml", "--jobs", "1,2"]).is_empty());
    }

    /// Command modules never use each other: what two commands share lives below `cmd`.
    #[test]
    fn command_modules_are_independent() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "mod.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for needle in ["crate::cmd", "super::", "crate::cli"] {
                assert!(
                    !code.contains(needle),
                    "{} uses `{needle}`: move what commands share to a module below `cmd`",
                    path.display()
                );
            }
        }
    }
}
