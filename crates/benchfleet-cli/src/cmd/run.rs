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
    let budget = benchfleet::sched::Resources::host_budget(
        config.run.reserve_cpu,
        config.run.reserve_memory,
    )
    .map_err(|e| CliError::internal(format!("run.reserve_cpu / run.reserve_memory: {e}")))?;
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
        eprintln!("cached (unchanged, not run again): {}", names.join(", "));
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
