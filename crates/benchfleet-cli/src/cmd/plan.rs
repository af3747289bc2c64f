//! `benchfleet plan SUITE`.

use std::path::PathBuf;

use clap::Args;

use benchfleet::report::units::{format_bytes, format_duration};
use benchfleet::sched::Resources;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The suite file.
    pub suite: PathBuf,
    /// Concurrency levels to bound the speedup for (default: `run.jobs`, or this host's cores
    /// when it is 0).
    #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
    pub jobs: Vec<usize>,
}

/// The critical path's names, the middle elided when it is long (a 1,000-node chain).
fn path_names(path: &[String]) -> String {
    const ENDS: usize = 5;
    if path.len() <= 2 * ENDS + 2 {
        return path.join(" -> ");
    }
    format!(
        "{} -> … ({} more) … -> {}",
        path[..ENDS].join(" -> "),
        path.len() - 2 * ENDS,
        path[path.len() - ENDS..].join(" -> ")
    )
}

pub async fn plan(ctx: &Context, args: PlanArgs) -> Result<Status> {
    let config = ctx.config();
    if args.jobs.contains(&0) {
        return Err(CliError::usage(
            "--jobs: expected concurrency levels ≥ 1, e.g. 1,2,4",
        ));
    }
    let suite = ctx.load_suite(&args.suite)?;
    // Estimates come from history when there is a store; planning never creates one.
    let catalog = ctx.resolve(&config.storage.catalog_path());
    let storage = if catalog.exists()
        || config.storage.catalog.backend == benchfleet_config::CatalogBackend::Postgres
    {
        Some(ctx.storage().await?)
    } else {
        None
    };
    let host = Resources::host().map_err(CliError::internal)?;
    let budget = host
        .minus_reserve(config.run.reserve_cpu, config.run.reserve_memory)
        .map_err(|e| CliError::internal(format!("run.reserve_cpu / run.reserve_memory: {e}")))?;
    let p = benchfleet::plan::plan(&suite, storage, host, budget).await?;

    let mut out = String::new();
    out.push_str(&format!(
        "suite `{}`: {} nodes, {} edges\n",
        suite.name, p.nodes, p.edges
    ));
    let path_len = match p.critical_path_time {
        Some(t) => format!(
            "{} nodes, ~{}",
            p.critical_path.len(),
            format_duration(t.as_secs_f64())
        ),
        None => format!("{} nodes", p.critical_path.len()),
    };
    out.push_str(&format!(
        "critical path: {path_len}: {}\n",
        path_names(&p.critical_path)
    ));
    out.push_str(&format!("maximum width: {}\n", p.max_width));
    match p.total_time {
        Some(t) => out.push_str(&format!(
            "estimated work: ~{} ({} of {} nodes estimated from stored history; the rest count as their mean)\n",
            format_duration(t.as_secs_f64()),
            p.estimated_nodes,
            p.nodes
        )),
        None => out.push_str("estimated work: no history yet; every node counts as one unit\n"),
    }
    out.push_str(&format!(
        "theoretical speedup: {:.2}x (total work / critical path)\n",
        p.speedup
    ));
    let mut levels = args.jobs.clone();
    if levels.is_empty() {
        levels.push(match config.run.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        });
    }
    levels.sort_unstable();
    levels.dedup();
    for jobs in levels {
        let (lo, hi) = benchfleet::plan::speedup_bounds(p.speedup, jobs);
        out.push_str(&format!(
            "speedup at -j {jobs}: {lo:.2}x to {hi:.2}x (at least work / (work / jobs + critical path), at most min(jobs, theoretical))\n"
        ));
    }
    out.push_str(&format!(
        "host: {:.1} CPUs, {}; budget after reserve ({:.0}% CPU, {:.0}% memory): {:.1} CPUs, {}\n",
        p.host.cpus(),
        format_bytes(p.host.memory_bytes),
        config.run.reserve_cpu * 100.0,
        config.run.reserve_memory * 100.0,
        p.budget.cpus(),
        format_bytes(p.budget.memory_bytes)
    ));
    let (_, unavailable) = suite.unavailable(ctx.cwd());
    if !unavailable.nodes.is_empty() {
        let missing: Vec<&str> = unavailable.missing.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "skipped here: {} nodes, for want of {} on PATH (`requires`); the figures above count them\n",
            unavailable.nodes.len(),
            missing.join(", ")
        ));
    }
    out.push_str("replicas that fit at once:");
    for (name, need, n) in &p.replicas {
        out.push_str(&format!(
            "  {name} ({:.1} CPU, {}) x{n}",
            need.cpus(),
            format_bytes(need.memory_bytes)
        ));
    }
    out.push('\n');
    ctx.out.emit(&out)?;
    Ok(Status::Success)
}
