//! `benchfleet scale SUITE --jobs 1,2,4`: the suite at each concurrency level; speedup and
//! efficiency.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use benchfleet::analysis::scaling;
use benchfleet::report;
use benchfleet::runner::{self, RunOptions};

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{Format, parse_tag};

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The suite file to run at each concurrency level.
    pub suite: PathBuf,
    /// Concurrency levels, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4",
        value_name = "N,N,…"
    )]
    pub jobs: Vec<usize>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Label stored with each run (repeatable); `scale.jobs=N` is added.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

pub async fn scale(ctx: &Context, args: ScaleArgs) -> Result<Status> {
    let config = ctx.config();
    let mut levels = args.jobs.clone();
    if levels.is_empty() || levels.contains(&0) {
        return Err(CliError::usage(
            "--jobs: expected concurrency levels ≥ 1, e.g. 1,2,4",
        ));
    }
    levels.sort_unstable();
    levels.dedup();
    let suite = ctx.load_suite(&args.suite)?;
    runner::build_dag(&suite)?;
    let storage = ctx.storage().await?;
    let mut measured: Vec<(u32, f64)> = Vec::new();
    let mut runs = Vec::new();
    let mut failed = false;
    for &jobs in &levels {
        let mut tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
        tags.insert("scale.jobs".into(), jobs.to_string());
        let opts = RunOptions {
            jobs,
            keep_going: config.run.keep_going,
            stderr_tail_bytes: config.run.stderr_tail_bytes,
            tags,
            // Every level must run every node afresh: no stored result is reused.
            use_cache: false,
            base_dir: ctx.cwd().to_owned(),
            ..RunOptions::default()
        };
        // Commands may read the level they run at.
        let mut level_suite = suite.clone();
        for node in &mut level_suite.nodes {
            std::sync::Arc::make_mut(node)
                .settings_mut()
                .env
                .insert("BENCHFLEET_SCALE_JOBS".into(), jobs.to_string());
        }
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let outcome = runner::run_suite(&level_suite, storage, &opts, tx).await?;
        let secs = start.elapsed().as_secs_f64();
        let ok = outcome.failed_nodes() == 0 && outcome.skipped_nodes() == 0;
        failed |= !ok;
        eprintln!(
            "jobs={jobs}: {} in {secs:.3} s (run {}, {})",
            suite.name,
            outcome.run.run_id,
            outcome.run.status.as_str()
        );
        measured.push((u32::try_from(jobs).unwrap_or(u32::MAX), secs));
        runs.push(outcome.run.run_id.to_string());
    }
    let points = scaling(&measured)
        .map_err(|e| CliError::from(e).context("cannot compute the scaling table"))?;
    match args.format {
        Format::Table => ctx.out.emit(&report::scaling_table(&points, false))?,
        Format::Markdown => ctx.out.emit(&report::scaling_table(&points, true))?,
        Format::Json => {
            let v = serde_json::json!({
                "schema_version": report::JSON_SCHEMA_VERSION,
                "suite": suite.name,
                "levels": points.iter().zip(&runs).map(|(p, id)| serde_json::json!({
                    "jobs": p.jobs, "time": p.time, "speedup": p.speedup,
                    "efficiency": p.efficiency, "run_id": id,
                })).collect::<Vec<_>>(),
            });
            ctx.out
                .emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        }
    }
    if failed {
        eprintln!("some jobs failed: the timings include failures; see `benchfleet show RUN`");
        return Ok(Status::Failed);
    }
    Ok(Status::Success)
}
