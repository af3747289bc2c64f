//! `benchfleet history`: the stored runs, newest first, or with `--benchmark` one benchmark's
//! series across them (with change points).

use clap::Args;

use benchfleet::history::{self, HistoryQuery, Metric};
use benchfleet::model::RunInfo;
use benchfleet::report;
use benchfleet::store::RunFilter;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::Format;

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
    /// Only runs measured on this machine class (`mc-…`, each run's `machine.class` tag).
    #[arg(long, value_name = "CLASS", requires = "benchmark")]
    pub machine_class: Option<String>,
    /// With --changes: detect change points in a history that mixes machine classes (refused
    /// otherwise: a step between two machines is not a change of the code).
    #[arg(long, requires = "changes")]
    pub allow_cross_machine: bool,
    /// Order the series by time (default) or by commit: first-parent order of the runs'
    /// `git.commit` (recorded by `run --commits` and `bisect`; other runs' commits are looked up
    /// in the git repository of the working directory); runs without a commit are left out.
    #[arg(long, value_enum, requires = "benchmark", default_value_t = By::Time)]
    pub by: By,
}

/// The order of a benchmark's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Time,
    Commit,
}

pub async fn history(ctx: &Context, args: HistoryArgs) -> Result<Status> {
    match args.benchmark.clone() {
        Some(name) => benchmark_history(ctx, &args, name).await,
        None => runs(ctx, &args).await,
    }
}

async fn runs(ctx: &Context, args: &HistoryArgs) -> Result<Status> {
    let storage = ctx.storage().await?;
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            suite: args.suite.clone(),
            limit: Some(args.limit),
            ..Default::default()
        })
        .await?;
    match args.format {
        Format::Json => ctx
            .out
            .emit(&format!("{}\n", serde_json::to_string_pretty(&runs)?))?,
        Format::Table | Format::Markdown => {
            if runs.is_empty() {
                eprintln!(
                    "no runs stored yet in {}; run a suite with `benchfleet run SUITE`",
                    ctx.config().storage.root.display()
                );
            } else {
                ctx.out.emit(&report::runs_table(
                    &runs.iter().map(run_row).collect::<Vec<_>>(),
                    args.format == Format::Markdown,
                ))?;
            }
        }
    }
    Ok(Status::Success)
}

fn run_row(r: &RunInfo) -> report::RunRow {
    report::RunRow {
        run_id: r.run_id.to_string(),
        suite: r.suite.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        status: r.status.as_str().to_owned(),
        commit: r
            .tags
            .get("git.commit")
            .map(|c| c.chars().take(10).collect()),
    }
}

async fn benchmark_history(ctx: &Context, args: &HistoryArgs, name: String) -> Result<Status> {
    let metric: Metric = args
        .metric
        .as_deref()
        .unwrap_or("wall")
        .parse()
        .map_err(CliError::Usage)?;
    let storage = ctx.storage().await?;
    let q = HistoryQuery {
        suite: args.suite.clone(),
        machine_class: args.machine_class.clone(),
        ..HistoryQuery::new(name.clone(), metric)
    };
    let points = match args.by {
        By::Time => history::benchmark_history(storage, &q).await?,
        By::Commit => {
            let repo = benchfleet::git::Repo::open(ctx.cwd()).ok();
            let (points, left_out) =
                history::benchmark_history_by_commit(storage, &q, repo.as_ref()).await?;
            if left_out > 0 {
                eprintln!(
                    "{left_out} runs left out: no `git.commit` tag, or a commit whose position is unknown (not recorded, and not in the git repository here)"
                );
            }
            points
        }
    };
    if points.is_empty() {
        return Err(CliError::Usage(format!(
            "no stored run has a successful run of benchmark `{name}`{}; `benchfleet show RUN` lists a run's benchmark names",
            args.suite
                .as_deref()
                .map(|s| format!(" in suite `{s}`"))
                .unwrap_or_default()
        )));
    }
    let classes = history::classes_of(&points);
    if args.changes && classes.len() > 1 {
        let list = classes
            .iter()
            .map(|(c, n)| format!("{c} ({n} runs)"))
            .collect::<Vec<_>>()
            .join(", ");
        if !args.allow_cross_machine {
            return Err(CliError::Usage(format!(
                "the history of `{name}` mixes machine classes: {list}; a step between two machines is not a change of the code. Choose one with --machine-class {}, or pass --allow-cross-machine",
                classes[0].0
            )));
        }
        eprintln!(
            "warning: change points over several machine classes (--allow-cross-machine): {list}"
        );
    }
    let changes = if args.changes {
        Some(
            history::detect_changes(&points, None)
                .map_err(|e| CliError::from(e).context("change-point detection failed"))?,
        )
    } else {
        None
    };
    match args.format {
        Format::Json => ctx.out.emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&history::history_json(&q, &points, changes.as_deref()))?
        ))?,
        Format::Table | Format::Markdown => {
            let md = args.format == Format::Markdown;
            if md {
                ctx.out.emit(&format!(
                    "History of `{}` ({}), {} runs\n\n",
                    name.replace('`', "'"),
                    metric.as_str(),
                    points.len()
                ))?;
            } else {
                eprintln!(
                    "history of `{name}` ({}, mean of successful runs), {} runs, {}",
                    metric.as_str(),
                    points.len(),
                    match args.by {
                        By::Time => "oldest first",
                        By::Commit => "in first-parent commit order",
                    }
                );
            }
            ctx.out.emit(&report::history_table(
                &history::table_rows(&points),
                metric.quantity(),
                changes.as_deref(),
                md,
            ))?;
        }
    }
    Ok(Status::Success)
}
