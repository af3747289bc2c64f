//! `benchfleet compare A B`: ratio with interval, p-values and a verdict per benchmark, between
//! two runs, tags or exported JSON files; each side one or more invocations (comma-separated).
//! Every verdict says what it saw: its mode, the noise at each level, its band and the smallest
//! change it could have detected.

use clap::Args;

use benchfleet::compare::{CompareOutcome, Side};
use benchfleet::report;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{FailOn, Format, compare_config};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline: a run id (or unique prefix, or `latest`), a tag KEY=VALUE (the newest run
    /// recorded with it, e.g. `git.commit=abc123`), or an exported JSON file (hyperfine or
    /// benchfleet `--export-json`). Several, separated by commas, are several invocations of the
    /// same build: the verdict then tests the per-invocation means.
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
    /// With one invocation a side and no history: the between-invocation variation assumed (a
    /// fraction; 0 assumes none, which trusts the runs of two separate invocations).
    #[arg(long, default_value_t = benchfleet::analysis::DEFAULT_ASSUMED_BETWEEN_CV, value_name = "FRACTION")]
    pub assume_between: f64,
    /// Both sides were measured interleaved in one invocation (e.g. the two results of one
    /// `bench` export): test the runs as they are.
    #[arg(long)]
    pub head_to_head: bool,
    /// Compare sides measured on different machine classes (refused otherwise: the difference
    /// would be the machines'). The verdicts then carry a warning.
    #[arg(long)]
    pub allow_cross_machine: bool,
}

fn describe(s: &[Side]) -> String {
    match s {
        [one] => one.describe(),
        many => format!(
            "{} invocations: {}",
            many.len(),
            many.iter()
                .map(Side::describe)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

pub async fn compare(ctx: &Context, args: CompareArgs) -> Result<Status> {
    let compare = compare_config(args.noise, args.alpha)?;
    if !(args.assume_between.is_finite() && args.assume_between >= 0.0) {
        return Err(CliError::Usage(format!(
            "--assume-between {}: expected a fraction ≥ 0, e.g. 0.02 for 2%",
            args.assume_between
        )));
    }
    let cfg = benchfleet::analysis::LevelsConfig {
        compare,
        head_to_head: args.head_to_head,
        assumed_between_cv: args.assume_between,
        ..Default::default()
    };
    let all_files = |spec: &str| {
        benchfleet::compare::is_file(spec)
            || spec
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .all(|p| benchfleet::compare::is_file(p.trim()))
    };
    let needs_storage = !all_files(&args.baseline) || !all_files(&args.candidate);
    let storage = if needs_storage {
        Some(ctx.storage().await?)
    } else {
        None
    };
    let CompareOutcome {
        baseline,
        candidate,
        set,
        history_runs,
        cross_machine,
    } = benchfleet::compare::compare(
        storage,
        &args.baseline,
        &args.candidate,
        &cfg,
        args.allow_cross_machine,
    )
    .await?;
    if let Some((b, c)) = &cross_machine {
        eprintln!(
            "warning: comparing across machines (--allow-cross-machine): baseline on {}, candidate on {}; differences include the machines'",
            b.join(", "),
            c.join(", ")
        );
    }
    let history_note = (history_runs > 0).then(|| {
        format!("noise bands learned from {history_runs} earlier runs on this machine class")
    });
    match args.format {
        Format::Table => {
            eprintln!("baseline:  {}", describe(&baseline));
            eprintln!("candidate: {}", describe(&candidate));
            if let Some(n) = &history_note {
                eprintln!("{n}");
            }
            ctx.out.emit(&report::comparison_table(&set))?;
        }
        Format::Markdown => ctx.out.emit(&format!(
            "Comparing {} against {}.{}\n\n{}",
            describe(&candidate),
            describe(&baseline),
            history_note.map_or(String::new(), |n| format!(" {n}.")),
            report::comparison_markdown(&set)
        ))?,
        Format::Json => {
            let mut v = report::comparison_json(&set);
            v["baseline"] = benchfleet::compare::sides_json(&baseline);
            v["candidate"] = benchfleet::compare::sides_json(&candidate);
            v["noise"] = args.noise.into();
            v["alpha"] = args.alpha.into();
            v["assume_between"] = args.assume_between.into();
            v["history_runs"] = history_runs.into();
            v["cross_machine"] = match &cross_machine {
                Some((b, c)) => serde_json::json!({ "baseline": b, "candidate": c }),
                None => serde_json::Value::Null,
            };
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
