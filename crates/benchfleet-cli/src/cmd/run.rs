//! `benchfleet run SUITE`: schedule a suite's DAG, measure every run, store every record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use benchfleet::runner::{self, RunOptions};

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{ExecFlags, MetricsFlags, ProgressArg, parse_tag};
use crate::output::write_exports;
use crate::progress::{self, Mode};
use crate::{interrupt, metrics, tables, words};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The suite file (TOML; see docs/suite-format.md).
    pub suite: PathBuf,

    #[command(flatten)]
    pub exec: ExecFlags,

    /// Write results as hyperfine-compatible JSON (plus benchfleet's fields).
    #[arg(long, value_name = "FILE", conflicts_with = "commits")]
    pub export_json: Option<PathBuf>,

    /// Write results as a Markdown table.
    #[arg(long, value_name = "FILE", conflicts_with = "commits")]
    pub export_markdown: Option<PathBuf>,

    /// Run the suite once per first-parent commit after A up to and including B (git's `A..B`),
    /// oldest first, each in its own temporary git worktree (commands run there; `{worktree}`
    /// is its path). Commits already measured with the same suite file are skipped; with
    /// --resume, an interrupted commit's run is continued, then the commits not yet measured.
    #[arg(long, value_name = "A..B")]
    pub commits: Option<String>,

    /// With --commits: only every Nth commit, counted back from B (which is always measured).
    #[arg(long, value_name = "N", requires = "commits", conflicts_with = "max")]
    pub every: Option<usize>,

    /// With --commits: at most N commits, evenly spread over the range (A's child and B included).
    #[arg(long, value_name = "N", requires = "commits")]
    pub max: Option<usize>,

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
    pub metrics: MetricsFlags,
}

/// The configuration keys `run`'s flags set (the top layer of the configuration).
pub fn config_overrides(args: &RunArgs) -> Vec<(String, benchfleet_config::Value)> {
    let mut flags = args.exec.config_overrides();
    if let Some(p) = args.progress {
        flags.push(("output.progress".to_owned(), p.as_str().into()));
    }
    if let Some(i) = &args.sample_interval {
        // Checked by the configuration, which names the flag when the value is wrong.
        flags.push(("run.sample_interval".to_owned(), i.as_str().into()));
    }
    flags
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<Status> {
    let config = ctx.config();
    let root = ctx.root();
    let suite = ctx.load_suite(&args.suite)?;
    // Refuse cycles before touching storage.
    runner::build_dag(&suite)?;
    if let Some(range) = args.commits.clone() {
        return commits(ctx, &args, &suite, &range).await;
    }
    let storage = ctx.storage().await?;

    let mut tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
    if let Some(commit) = benchfleet::host::git_commit() {
        tags.entry("git.commit".into()).or_insert(commit);
    }
    let resume = if args.exec.resume {
        match benchfleet::cache::resumable_run(storage, &suite.name).await? {
            Some(run) => {
                eprintln!(
                    "resuming run {} ({}): nodes that finished in it are not run again",
                    run.run_id,
                    run.status.as_str()
                );
                Some(run)
            }
            None => {
                eprintln!(
                    "nothing to resume: the latest run of suite `{}` finished; starting a new run",
                    suite.name
                );
                None
            }
        }
    } else {
        None
    };
    let budget = host_budget(ctx)?;
    let opts = RunOptions {
        jobs: config.run.jobs,
        keep_going: config.run.keep_going,
        stderr_tail_bytes: config.run.stderr_tail_bytes,
        tags,
        use_cache: config.run.cache && !args.exec.no_cache,
        resume,
        budget: Some(budget),
        base_dir: ctx.cwd().to_owned(),
        sample_interval: Some(config.run.sample_interval.as_duration()),
        ..RunOptions::default()
    };
    let cancel = opts.cancel.clone();
    interrupt::on_ctrl_c(
        "\ninterrupted: no new runs will start; everything measured so far is kept in storage",
        move || cancel.cancel(),
    );

    let mode = Mode::choose(config.output.progress, ctx.out.stderr_is_terminal);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let expo = metrics::start(&args.metrics).await?;
    let (tx, rx) = metrics::tee_events(expo.as_ref(), tx, rx);
    let display = tokio::spawn(progress::render(rx, mode, suite.nodes.len()));
    let outcome = runner::run_suite(&suite, storage, &opts, tx).await;
    let _ = display.await;
    metrics::finish(expo).await?;
    let outcome = outcome?;

    let result = |r| outcome.benchmark_result(r);
    if !outcome.results.is_empty() {
        ctx.out.emit_table(|| outcome.results.iter().map(result))?;
    }
    for load in &outcome.loads {
        ctx.out.emit(&format!("{}\n", tables::node_summary(load)))?;
        for w in words::load_node_warnings(load) {
            eprintln!("{w}");
        }
    }
    if !outcome.reused.is_empty() {
        let names: Vec<&str> = outcome
            .reused
            .iter()
            .map(|r| r.node.name.as_str())
            .collect();
        eprintln!("{}", words::cached(&names));
        ctx.out.emit_table(|| outcome.reused.iter().map(result))?;
    }
    for line in words::node_states(&outcome) {
        eprintln!("{line}");
    }
    if let Some(series) = &outcome.series {
        for line in words::series(series) {
            eprintln!("{line}");
        }
    }
    if args.export_json.is_some() || args.export_markdown.is_some() {
        let results: Vec<_> = outcome.results.iter().map(result).collect();
        write_exports(
            &results,
            args.export_json.as_deref(),
            None,
            args.export_markdown.as_deref(),
        )?;
    }
    let load_records: usize = outcome.loads.iter().map(|l| l.report.records).sum();
    Ok(ctx
        .out
        .run_footer(&outcome.run, outcome.records() + load_records, &root))
}

fn host_budget(ctx: &Context) -> Result<benchfleet::sched::Resources> {
    let config = ctx.config();
    benchfleet::sched::Resources::host_budget(config.run.reserve_cpu, config.run.reserve_memory)
        .map_err(|e| CliError::internal(format!("run.reserve_cpu / run.reserve_memory: {e}")))
}

/// `run SUITE --commits A..B`: one suite run per commit, each in its own worktree.
async fn commits(
    ctx: &Context,
    args: &RunArgs,
    suite: &benchfleet::suite::Suite,
    range: &str,
) -> Result<Status> {
    use benchfleet::commits::{self as c, Action, Select};
    let config = ctx.config();
    let select = match (args.every, args.max) {
        (Some(0), _) => return Err(CliError::usage("--every 0: expected a step of at least 1")),
        (_, Some(0)) => return Err(CliError::usage("--max 0: expected at least 1 commit")),
        (Some(n), _) => Select::Every(n),
        (_, Some(n)) => Select::Max(n),
        _ => Select::All,
    };
    let repo = benchfleet::git::Repo::open(ctx.cwd()).map_err(benchfleet::Error::from)?;
    let all = repo.range(range).map_err(benchfleet::Error::from)?;
    let (_, end) = benchfleet::git::parse_range(range).map_err(benchfleet::Error::from)?;
    let branch = repo.branch_of(&end).map_err(benchfleet::Error::from)?;
    let positions: Vec<usize> = (1..=all.len()).collect();
    let infos = c::select(&positions, select)
        .into_iter()
        .map(|pos| repo.commit_info(&all[pos - 1]).map(|info| (pos, info)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(benchfleet::Error::from)?;
    let digest = c::suite_digest(&args.suite)?;
    let storage = ctx.storage().await?;
    let remeasure = !config.run.cache || args.exec.no_cache;
    let plan = c::plan(
        storage,
        &suite.name,
        &digest,
        infos,
        remeasure,
        args.exec.resume,
    )
    .await?;
    let skipped = plan
        .iter()
        .filter(|p| matches!(p.action, Action::Skip(_)))
        .count();
    eprintln!(
        "{} of {} commits in {range}{}: {} to measure, {skipped} already measured with this suite file (skipped)",
        plan.len(),
        all.len(),
        match select {
            Select::All => String::new(),
            Select::Every(n) => format!(" (every {n})"),
            Select::Max(n) => format!(" (at most {n})"),
        },
        plan.len() - skipped
    );
    let cancel = benchfleet::sched::CancelToken::default();
    {
        let cancel = cancel.clone();
        interrupt::on_ctrl_c(
            "\ninterrupted: no new runs or commits will start; everything measured so far is kept in storage (`--resume` continues)",
            move || cancel.cancel(),
        );
    }
    let budget = host_budget(ctx)?;
    let mode = Mode::choose(config.output.progress, ctx.out.stderr_is_terminal);
    let expo = metrics::start(&args.metrics).await?;
    let worktrees = benchfleet::bisect::worktrees_under(&ctx.root());
    let user_tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
    let mut rows = Vec::new();
    let mut failed = 0usize;
    let mut records = 0usize;
    let mut interrupted = false;
    for (k, p) in plan.iter().enumerate() {
        let label = format!(
            "[{}/{}] commit #{} {} {}",
            k + 1,
            plan.len(),
            p.position,
            p.commit.short(),
            p.commit.subject
        );
        let resume = match &p.action {
            Action::Skip(run) => {
                eprintln!("{label}: skipped, measured in run {}", run.run_id);
                rows.push((p, run.run_id.to_string(), "skipped".to_owned()));
                continue;
            }
            Action::Resume(run) => Some(run.clone()),
            Action::Run => None,
        };
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        eprintln!(
            "{label}: {}",
            if resume.is_some() {
                "resuming its unfinished run"
            } else {
                "measuring"
            }
        );
        let mut tags = user_tags.clone();
        tags.extend(c::commit_tags(
            &p.commit,
            branch.as_deref(),
            p.position,
            &digest,
        ));
        let opts = RunOptions {
            jobs: config.run.jobs,
            keep_going: config.run.keep_going,
            stderr_tail_bytes: config.run.stderr_tail_bytes,
            tags,
            resume,
            budget: Some(budget),
            sample_interval: Some(config.run.sample_interval.as_duration()),
            cancel: cancel.clone(),
            ..RunOptions::default()
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (tx, rx) = metrics::tee_events(expo.as_ref(), tx, rx);
        let display = tokio::spawn(progress::render(rx, mode, suite.nodes.len()));
        let outcome = c::run_commit(&repo, &p.commit, suite, storage, &opts, &worktrees, tx).await;
        let _ = display.await;
        let outcome = outcome?;
        for line in words::node_states(&outcome) {
            eprintln!("{line}");
        }
        let status = outcome.run.status;
        records += outcome.records();
        eprintln!(
            "{label}: run {} {} ({} records)",
            outcome.run.run_id,
            status.as_str(),
            outcome.records()
        );
        rows.push((
            p,
            outcome.run.run_id.to_string(),
            status.as_str().to_owned(),
        ));
        match Status::of_run(status) {
            Status::Interrupted => {
                interrupted = true;
                break;
            }
            Status::Failed => failed += 1,
            Status::Success => {}
        }
    }
    metrics::finish(expo).await?;
    let mut table = String::from("position  commit        status       run\n");
    for (p, run, status) in &rows {
        table.push_str(&format!(
            "{:>8}  {}  {status:<11}  {run}\n",
            p.position,
            p.commit.short()
        ));
    }
    ctx.out.emit(&table)?;
    let measured = rows.len() - skipped;
    eprintln!(
        "{measured} commits measured ({records} records), {skipped} skipped (already measured with this suite file){}{}",
        if failed > 0 {
            format!(", {failed} with failures")
        } else {
            String::new()
        },
        if interrupted {
            format!(
                "; interrupted with {} commits not measured: `benchfleet run {} --commits {range} --resume` continues",
                plan.len() - rows.len()
                    + usize::from(rows.last().is_some_and(|r| r.2 == "interrupted")),
                args.suite.display()
            )
        } else {
            String::new()
        }
    );
    Ok(if interrupted {
        Status::Interrupted
    } else if failed > 0 {
        Status::Failed
    } else {
        Status::Success
    })
}
