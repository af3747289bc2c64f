//! `benchfleet submit SUITE`: put a suite's DAG in the fleet's queue (PostgreSQL) and print the
//! run id; with `--wait`, follow it until it ends and exit with `run`'s codes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use benchfleet::fleet::{self, SubmitOptions};
use benchfleet::store::LeaseTimes;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::TagFlags;
use crate::words;

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The suite file (TOML). Its content goes into the queue: workers need no copy of it.
    pub suite: PathBuf,

    #[command(flatten)]
    pub tags: TagFlags,

    /// The pool its nodes go to (workers serve the pools given by their `--pool`).
    #[arg(long, value_name = "NAME", default_value = fleet::DEFAULT_POOL)]
    pub pool: String,

    /// Follow the run until it ends, then exit with `run`'s exit codes (0 all succeeded, 1 a node
    /// failed or was skipped, 130 cancelled).
    #[arg(long)]
    pub wait: bool,
}

pub async fn submit(ctx: &Context, args: SubmitArgs) -> Result<Status> {
    let queue = ctx.queue().await?;
    let text = std::fs::read_to_string(&args.suite).map_err(|e| {
        CliError::from(benchfleet::Error::SuiteIo {
            path: args.suite.clone(),
            source: e,
        })
    })?;
    let suite = benchfleet::suite::load_text(&text, &args.suite, &ctx.root().join("out"))?;
    let mut tags: std::collections::BTreeMap<String, String> =
        args.tags.tags.iter().cloned().collect();
    if let Some(commit) = benchfleet::host::git_commit() {
        tags.entry("git.commit".into()).or_insert(commit);
    }
    let opts = SubmitOptions {
        tags,
        keep_going: ctx.config().run.keep_going,
        pool: args.pool.clone(),
    };
    let sub = fleet::submission(&suite, &text, &opts)?;
    // A node no live worker of the pool could ever hold is refused before it is queued.
    let status = queue.status(LeaseTimes::default()).await?;
    let live: Vec<_> = status
        .workers
        .iter()
        .filter(|w| w.state == "live" && w.info.pools.contains(&args.pool))
        .collect();
    if !live.is_empty()
        && let Some(n) = sub
            .nodes
            .iter()
            .find(|n| !live.iter().any(|w| w.info.fits(n.cpus, n.memory_bytes)))
    {
        return Err(CliError::usage(words::fits_no_worker(
            &n.name,
            n.cpus,
            n.memory_bytes,
            &args.pool,
            live.iter().map(|w| &w.info),
        )));
    }
    queue.submit(&sub).await?;
    let run_id = sub.run.run_id.clone();
    ctx.out.emit(&format!("{run_id}\n"))?;
    eprintln!(
        "submitted run {run_id}: {} nodes of suite `{}` in pool `{}`",
        sub.nodes.len(),
        suite.name,
        args.pool
    );
    if live.is_empty() {
        eprintln!("{}", words::no_live_worker(&args.pool));
    }
    if !args.wait {
        return Ok(Status::Success);
    }
    let mut last = String::new();
    let mut warned_no_worker = !live.is_empty();
    let mut since_no_worker = std::time::Instant::now();
    loop {
        let Some(p) = queue.progress(&run_id).await? else {
            return Err(CliError::internal(format!(
                "run {run_id} vanished from the queue"
            )));
        };
        let line = words::fleet_progress(&p);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if p.is_finished() {
            for (name, message) in &p.failures {
                eprintln!("  {name}: {message}");
            }
            return Ok(match p.state.as_str() {
                "succeeded" => Status::Success,
                "cancelled" => Status::Interrupted,
                _ => Status::Failed,
            });
        }
        if p.running == 0 && p.ready > 0 {
            let any_live = queue
                .status(LeaseTimes::default())
                .await?
                .workers
                .iter()
                .any(|w| w.state == "live" && w.info.pools.contains(&args.pool));
            if any_live {
                since_no_worker = std::time::Instant::now();
            } else if !warned_no_worker && since_no_worker.elapsed() > Duration::from_secs(5) {
                eprintln!("{}", words::no_live_worker(&args.pool));
                warned_no_worker = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
