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
}

pub async fn plan(ctx: &Context, args: PlanArgs) -> Result<Status> {
    let config = ctx.config();
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
        p.critical_path.join(" -> ")
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
    out.push_str(&format!(
        "host: {:.1} CPUs, {}; budget after reserve ({:.0}% CPU, {:.0}% memory): {:.1} CPUs, {}\n",
        p.host.cpus(),
        format_bytes(p.host.memory_bytes),
        config.run.reserve_cpu * 100.0,
        config.run.reserve_memory * 100.0,
        p.budget.cpus(),
        format_bytes(p.budget.memory_bytes)
    ));
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
