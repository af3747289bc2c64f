//! Command-line flags (clap). Kept as close to the raw arguments as possible; `commands` resolves
//! them, together with the configuration layers, into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Run(RunArgs),
    /// Benchmark commands ad hoc, with hyperfine's flags (interleaved, stored like suite results).
    Bench(Box<crate::bench::BenchArgs>),
    /// Throughput benchmark: run a command under a load profile (soak, stress, spike); ops/s and
    /// latency percentiles per step and per time window.
    Load(Box<crate::load::LoadArgs>),
    /// Show a suite's DAG without running it: critical path, width, speedup, what fits this host.
    Plan(crate::plan::PlanArgs),
    /// List stored runs, newest first.
    History(HistoryArgs),
    /// Compare two runs, tags or exported JSON files: ratio, interval, p-values, verdict.
    Compare(crate::analyze::CompareArgs),
    /// Render one stored run as HTML (with history plots), Markdown, JSON, CSV, JUnit or BMF.
    Report(crate::analyze::ReportArgs),
    /// Import hyperfine, criterion or Bencher Metric Format results into history.
    Import(crate::analyze::ImportArgs),
    /// Run a suite at several concurrency levels and print speedup and efficiency.
    Scale(crate::analyze::ScaleArgs),
    /// Print one stored run's results, read back from storage.
    Show(ShowArgs),
    /// Tiered storage: status, migrate by age (hot → warm → cold), verify, gc.
    #[command(subcommand)]
    Tier(crate::tier::TierCommand),
    /// Shared catalog database maintenance: refresh and print the daily summary (PostgreSQL).
    #[command(subcommand)]
    Db(crate::db::DbCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The suite file (TOML; see docs/suite-format.md).
    pub suite: PathBuf,

    /// Maximum number of jobs running at once (default: available cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Continue the latest unfinished run of this suite (same run id): only what did not finish
    /// runs.
    #[arg(long)]
    pub resume: bool,

    /// Run every node, even unchanged ones with a stored result (results are still cached).
    #[arg(long)]
    pub no_cache: bool,

    /// Stop starting new jobs at the first failure.
    #[arg(long, conflicts_with = "keep_going")]
    pub fail_fast: bool,

    /// Keep running independent jobs after a failure (the default).
    #[arg(long)]
    pub keep_going: bool,

    /// Write results as hyperfine-compatible JSON (plus benchfleet's fields).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Write results as a Markdown table.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    /// Label stored with the run, e.g. `--tag branch=main` (repeatable). The git commit of the
    /// working directory is recorded as `git.commit` automatically.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Progress display.
    #[arg(long, value_enum)]
    pub progress: Option<ProgressArg>,

    /// How often the system is sampled while the suite runs, e.g. `100ms` (config key
    /// `run.sample_interval`, default 250ms; 10ms–10m).
    #[arg(long, value_name = "DURATION")]
    pub sample_interval: Option<String>,

    #[command(flatten)]
    pub metrics: crate::load::MetricsArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bars,
    Lines,
    None,
}

impl ProgressArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressArg::Auto => "auto",
            ProgressArg::Bars => "bars",
            ProgressArg::Lines => "lines",
            ProgressArg::None => "none",
        }
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only runs of this suite.
    #[arg(long)]
    pub suite: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Show this benchmark's series across all stored runs (one value per run: the mean of its
    /// successful runs) instead of the run list.
    #[arg(long, value_name = "NAME")]
    pub benchmark: Option<String>,
    /// Metric of the series: wall, user, sys, cpu, rss, minor-faults, major-faults,
    /// voluntary-cs, involuntary-cs, block-in, block-out [default: wall].
    #[arg(long, requires = "benchmark")]
    pub metric: Option<String>,
    /// Detect change points in the series.
    #[arg(long, requires = "benchmark")]
    pub changes: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id, a unique prefix of one, or `latest`.
    pub run: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting and where it came from.
    Show,
}

pub(crate) fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
