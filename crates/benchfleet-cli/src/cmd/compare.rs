//! `benchfleet compare A B`: ratio with interval, p-values and a verdict per benchmark, between
//! two runs, tags or exported JSON files.

use clap::{Args, ValueEnum};

use benchfleet::compare::{CompareOutcome, Origin, Side};
use benchfleet::report;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{Format, compare_config};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline: a run id (or unique prefix, or `latest`), a tag KEY=VALUE (the newest run
    /// recorded with it, e.g. `git.commit=abc123`), or an exported JSON file (hyperfine or
    /// benchfleet `--export-json`).
    pub baseline: String,
    /// Candidate, in the same forms as the baseline.
    pub candidate: String,
    /// Exit with code 1 when any benchmark regressed.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on: Option<FailOn>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Changes of the mean smaller than this fraction are `unchanged` even when significant.
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub noise: f64,
    /// Significance level; both Welch's t-test and Mann–Whitney U must be below it.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Regression,
}

fn side_json(s: &Side) -> serde_json::Value {
    match &s.origin {
        Origin::Run(r) => serde_json::json!({
            "spec": s.spec, "run_id": r.run_id.as_str(), "suite": r.suite,
            "started_at": report::format_timestamp(r.started_at), "tags": r.tags,
        }),
        Origin::File(p) => serde_json::json!({ "spec": s.spec, "file": p.display().to_string() }),
    }
}

pub async fn compare(ctx: &Context, args: CompareArgs) -> Result<Status> {
    let cfg = compare_config(args.noise, args.alpha)?;
    let needs_storage = !benchfleet::compare::is_file(&args.baseline)
        || !benchfleet::compare::is_file(&args.candidate);
    let storage = if needs_storage {
        Some(ctx.storage().await?)
    } else {
        None
    };
    let CompareOutcome {
        baseline,
        candidate,
        set,
    } = benchfleet::compare::compare(storage, &args.baseline, &args.candidate, &cfg).await?;
    match args.format {
        Format::Table => {
            eprintln!("baseline:  {}", baseline.describe());
            eprintln!("candidate: {}", candidate.describe());
            ctx.out.emit(&report::comparison_table(&set))?;
        }
        Format::Markdown => ctx.out.emit(&format!(
            "Comparing {} against {}.\n\n{}",
            candidate.describe(),
            baseline.describe(),
            report::comparison_markdown(&set)
        ))?,
        Format::Json => {
            let mut v = report::comparison_json(&set);
            v["baseline"] = side_json(&baseline);
            v["candidate"] = side_json(&candidate);
            v["noise"] = args.noise.into();
            v["alpha"] = args.alpha.into();
            ctx.out
                .emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        }
    }
    if set.compared.is_empty() {
        return Err(CliError::Usage(format!(
            "no benchmark could be compared between `{}` and `{}` (see the skipped list); compare runs that share benchmark names and have at least 2 successful runs each",
            args.baseline, args.candidate
        )));
    }
    let regressed: Vec<&str> = set
        .compared
        .iter()
        .filter(|c| c.comparison.verdict == benchfleet::analysis::Verdict::Regressed)
        .map(|c| c.name.as_str())
        .collect();
    if args.fail_on == Some(FailOn::Regression) && !regressed.is_empty() {
        eprintln!("regressed: {}", regressed.join(", "));
        return Ok(Status::Failed);
    }
    Ok(Status::Success)
}
