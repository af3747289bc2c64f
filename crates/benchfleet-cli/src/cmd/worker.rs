//! `benchfleet worker`: claim ready nodes of the fleet's queue and run them through the same
//! measuring path as `run`, storing their records in the shared catalog and tiers.

use clap::Args;

use benchfleet::fleet::{self, Jobs, WorkerOptions};
use benchfleet::runner::RunnerEvent;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{MetricsFlags, parse_tag};
use crate::{metrics, words};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Nodes run at once: a number, or `auto` (between 1 and the cores: up while CPU is under
    /// 80% and work waits, down under memory pressure or when idle).
    #[arg(long, short = 'j', value_name = "N|auto", default_value = "1", value_parser = parse_jobs)]
    pub jobs: Jobs,

    /// Pools to serve (repeatable; default `default`).
    #[arg(long = "pool", value_name = "NAME")]
    pub pools: Vec<String>,

    /// Label shown in `fleet status` (repeatable), e.g. `--label rack=r1`.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub labels: Vec<(String, String)>,

    /// Exit once no node of its pools is ready, claimed or waiting.
    #[arg(long)]
    pub until_idle: bool,

    #[command(flatten)]
    pub metrics: MetricsFlags,
}

fn parse_jobs(s: &str) -> std::result::Result<Jobs, String> {
    if s == "auto" {
        return Ok(Jobs::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Jobs::Fixed(n)),
        _ => Err(format!(
            "`{s}` is not a number of jobs (1 or more) or `auto`"
        )),
    }
}

pub async fn worker(ctx: &Context, args: WorkerArgs) -> Result<Status> {
    let queue = ctx.queue().await?;
    let storage = ctx.storage().await?.clone();
    // Records and shipped outputs go to the hot tier: on this machine's disk, no other machine
    // reads them.
    if let benchfleet::BlobChoice::Fs { root } = &ctx.storage_settings().hot {
        eprintln!("{}", words::local_hot_tier(root));
    }
    let mut opts = WorkerOptions {
        jobs: args.jobs,
        labels: args.labels.iter().cloned().collect(),
        until_idle: args.until_idle,
        work_dir: ctx.root().join("fleet"),
        base_dir: ctx.cwd().to_owned(),
        stderr_tail_bytes: ctx.config().run.stderr_tail_bytes,
        ..WorkerOptions::default()
    };
    if !args.pools.is_empty() {
        opts.pools = args.pools.clone();
    }
    // SIGTERM or a first Ctrl-C drains (no new claims, running nodes finish and are stored);
    // a second stops the running nodes too.
    let (drain, stop) = (opts.drain.clone(), opts.stop.clone());
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut signals = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            signals += 1;
            if signals == 1 {
                eprintln!("{}", words::worker_draining());
                drain.cancel();
            } else {
                eprintln!("stopping: running nodes are cancelled");
                stop.cancel();
                return;
            }
        }
    });
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let expo = metrics::start(&args.metrics).await?;
    if let (Some(e), Jobs::Fixed(n)) = (&expo, args.jobs) {
        e.metrics().set_fleet_concurrency(n);
    }
    let (tx, mut rx) = metrics::tee_events(expo.as_ref(), tx, rx);
    let display = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let Some(line) = words::fleet_event(&e) {
                eprintln!("{line}");
            }
            if let RunnerEvent::Warning { warning, .. } = &e {
                tracing::debug!("{warning}");
            }
        }
    });
    eprintln!(
        "worker {} (machine class {}) serving pool(s) {}",
        opts.id,
        benchfleet::machine::class(),
        opts.pools.join(", ")
    );
    let report = fleet::run_worker(queue, storage, opts, tx).await;
    let _ = display.await;
    metrics::finish(expo).await?;
    let report = report.map_err(CliError::from)?;
    eprintln!("{}", words::worker_report(&report));
    Ok(Status::Success)
}
