//! `benchfleet bisect SUITE --benchmark NAME --good A --bad B`: the first commit where a
//! benchmark got slower, by binary search over the first-parent commits, each measured in its own
//! worktree and stored like any run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use benchfleet::bisect::{self, BisectConfig, Finding, Inconclusive};
use benchfleet::history::Metric;
use benchfleet::runner::RunOptions;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{Format, compare_config, parse_tag};
use crate::{interrupt, words};

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The suite file (its benchmark and the jobs it needs run at each commit).
    pub suite: PathBuf,
    /// The benchmark that got slower (name after matrix expansion).
    #[arg(long, value_name = "NAME")]
    pub benchmark: String,
    /// Metric compared: wall, user, sys, cpu, rss, … (as `history --metric`).
    #[arg(long, default_value = "wall")]
    pub metric: String,
    /// A commit where the benchmark was fast.
    #[arg(long, value_name = "COMMIT")]
    pub good: String,
    /// A later commit where it is slow (the good one must be on its first-parent line).
    #[arg(long, value_name = "COMMIT")]
    pub bad: String,
    /// At most this many successful runs per commit; a commit still undecided then ends the
    /// bisection as inconclusive. Runs are added one suite run (the benchmark's own run count)
    /// at a time.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub max_runs: usize,
    /// Changes of the mean smaller than this fraction count as no change (the noise band).
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub noise: f64,
    /// Significance level; both Welch's t-test and Mann–Whitney U must be below it.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Label stored with every run it measures (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

pub async fn bisect(ctx: &Context, args: BisectArgs) -> Result<Status> {
    let config = ctx.config();
    let metric: Metric = args.metric.parse().map_err(CliError::Usage)?;
    let compare = compare_config(args.noise, args.alpha)?;
    if args.max_runs < 2 {
        return Err(CliError::usage(format!(
            "--max-runs {}: expected at least 2 (a comparison needs two runs per commit)",
            args.max_runs
        )));
    }
    let suite = ctx.load_suite(&args.suite)?;
    benchfleet::runner::build_dag(&suite)?;
    let repo = benchfleet::git::Repo::open(ctx.cwd()).map_err(benchfleet::Error::from)?;
    let (sub, good, commits) =
        bisect::prepare(&repo, &suite, &args.benchmark, &args.good, &args.bad)?;
    let digest = benchfleet::commits::suite_digest(&args.suite)?;
    let storage = ctx.storage().await?;
    let cfg = BisectConfig {
        benchmark: args.benchmark.clone(),
        metric,
        compare,
        max_runs: args.max_runs,
        digest,
        worktrees: bisect::worktrees_under(&ctx.root()),
    };
    let budget = benchfleet::sched::Resources::host_budget(
        config.run.reserve_cpu,
        config.run.reserve_memory,
    )
    .map_err(|e| CliError::internal(format!("run.reserve_cpu / run.reserve_memory: {e}")))?;
    let opts = RunOptions {
        jobs: config.run.jobs,
        keep_going: config.run.keep_going,
        stderr_tail_bytes: config.run.stderr_tail_bytes,
        tags: args.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
        budget: Some(budget),
        sample_interval: Some(config.run.sample_interval.as_duration()),
        ..RunOptions::default()
    };
    {
        let cancel = opts.cancel.clone();
        interrupt::on_ctrl_c(
            "\ninterrupted: no new runs will start; everything measured so far is kept in storage and reused by the next bisect",
            move || cancel.cancel(),
        );
    }
    eprintln!(
        "bisecting `{}` ({}) over {} commits after {} up to {}",
        args.benchmark,
        metric.as_str(),
        commits.len(),
        &good[..good.len().min(12)],
        commits.last().map_or("", |c| &c[..c.len().min(12)])
    );
    let mut on_event = |e: bisect::BisectEvent| eprintln!("{}", words::bisect_event(&e));
    let outcome = bisect::bisect(
        &repo,
        &sub,
        &good,
        &commits,
        storage,
        &opts,
        &cfg,
        &mut on_event,
    )
    .await?;
    match args.format {
        Format::Json => ctx.out.emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&words::bisect_json(&outcome, metric))?
        ))?,
        Format::Table | Format::Markdown => {
            for line in words::bisect_outcome(&outcome, metric) {
                ctx.out.emit(&format!("{line}\n"))?;
            }
        }
    }
    Ok(match &outcome.finding {
        Finding::FirstBad { .. } => Status::Success,
        Finding::Inconclusive(Inconclusive::Interrupted) => Status::Interrupted,
        Finding::Inconclusive(_) => Status::Failed,
    })
}
