//! `benchfleet load COMMAND --profile soak|stress|spike …`: throughput benchmarks.
//!
//! Flags stay raw here ([`LoadArgs`]); [`profile`] turns them into the parameters a suite node's
//! `load` table holds ([`LoadSpec`], same names) and resolves them with the facade's
//! [`benchfleet::load::plan`], so the command and suites share one vocabulary and one set of
//! checks; [`load`] runs, prints the per-step and per-window tables and exports.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchfleet::analysis::load::LoadProfile;
use benchfleet::load::{LoadOutcome, LoadPlan, LoadSettings, MissingDuration};
use benchfleet::model::{DurationSpec, LoadSpec};

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{MetricsFlags, TagFlags};
use crate::output::write_file;
use crate::tables::period_table;
use crate::{interrupt, metrics, progress, words};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// Fixed concurrency (and rate) for --duration.
    Soak,
    /// Concurrency ramps from --concurrency to --max-concurrency in --steps steps.
    Stress,
    /// A burst (--burst, --burst-duration) in the middle of --duration over --baseline.
    Spike,
}

impl ProfileArg {
    /// The profile's name, as a suite's `load.profile` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileArg::Soak => "soak",
            ProfileArg::Stress => "stress",
            ProfileArg::Spike => "spike",
        }
    }
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The command to run repeatedly. Executed directly (split into words) unless -S is given.
    #[arg(value_name = "COMMAND")]
    pub command: String,

    #[arg(long, value_enum, default_value_t = ProfileArg::Soak)]
    pub profile: ProfileArg,

    /// Length of a soak or spike (default 10s); for stress, divided into --steps when
    /// --step-duration is not given.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<DurationSpec>,

    /// Runs in flight at most (soak), of the first step (stress), outside the burst (spike)
    /// [default: 1].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// Open loop: start this many runs per second whatever the completions do (a start that
    /// finds every slot busy until the next is due is counted as missed). Without it: closed
    /// loop, a new run as soon as one ends.
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,

    /// Stress: number of steps [default: 5].
    #[arg(long, value_name = "N")]
    pub steps: Option<u32>,

    /// Stress: length of each step (default 2s, or --duration / --steps).
    #[arg(long, value_name = "DURATION")]
    pub step_duration: Option<DurationSpec>,

    /// Stress: concurrency of the last step (default: --concurrency × --steps).
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<u32>,

    /// Stress: rate of the last step (ramps from --rate).
    #[arg(long, value_name = "PER_SEC", requires = "rate")]
    pub max_rate: Option<f64>,

    /// Spike: concurrency outside the burst (default --concurrency).
    #[arg(long, value_name = "N")]
    pub baseline: Option<u32>,

    /// Spike: concurrency during the burst (default 4 × baseline).
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,

    /// Spike: length of the burst (default a fifth of --duration).
    #[arg(long, value_name = "DURATION")]
    pub burst_duration: Option<DurationSpec>,

    /// Spike: rate during the burst (default --rate × burst / baseline).
    #[arg(long, value_name = "PER_SEC", requires = "rate")]
    pub burst_rate: Option<f64>,

    /// Length of the reporting windows.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub window: DurationSpec,

    /// Run the command through this shell (`SHELL -c CMD`; latency then includes the shell).
    #[arg(short = 'S', long, value_name = "SHELL")]
    pub shell: Option<String>,

    /// Execute directly, without a shell (the default).
    #[arg(short = 'N', conflicts_with = "shell")]
    pub no_shell: bool,

    /// Name in results.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub command_name: Option<String>,

    /// Failed runs do not fail the load (exit code 0); they are always stored and counted.
    #[arg(short = 'i', long)]
    pub ignore_failure: bool,

    /// Kill a run (its process group) after this long; it counts as failed.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationSpec>,

    /// Write the per-step and per-window figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Do not print the per-window table (steps and total only).
    #[arg(long)]
    pub no_windows: bool,

    /// Do not sample the system.
    #[arg(long)]
    pub no_sample: bool,

    #[command(flatten)]
    pub tags: TagFlags,

    #[command(flatten)]
    pub metrics: MetricsFlags,
}

/// The load parameters the flags give: the keys of a suite node's `load` table.
pub fn spec(args: &LoadArgs) -> LoadSpec {
    LoadSpec {
        profile: Some(args.profile.as_str().to_owned()),
        duration: args.duration,
        concurrency: args.concurrency,
        rate: args.rate,
        steps: args.steps,
        step_duration: args.step_duration,
        max_concurrency: args.max_concurrency,
        max_rate: args.max_rate,
        baseline: args.baseline,
        burst: args.burst,
        burst_duration: args.burst_duration,
        burst_rate: args.burst_rate,
        window: Some(args.window),
    }
}

/// The profile the flags describe, with the command's default durations. `Err` is a usage
/// message naming the flag.
pub fn profile(args: &LoadArgs) -> std::result::Result<LoadPlan, String> {
    benchfleet::load::plan(&spec(args), MissingDuration::Default).map_err(|e| e.to_string())
}

/// The JSON export: run, profile, steps, windows, total.
pub fn export_json(
    outcome: &LoadOutcome,
    profile: &LoadProfile,
    command: &str,
) -> serde_json::Value {
    serde_json::json!({
        "run_id": outcome.run.run_id.to_string(),
        "name": outcome.name,
        "command": command,
        "profile": profile,
        "records": outcome.records,
        "total": outcome.total,
        "steps": outcome.steps,
        "windows": outcome.windows,
    })
}

pub async fn load(ctx: &Context, args: LoadArgs) -> Result<Status> {
    let plan = profile(&args).map_err(CliError::Usage)?;
    let shell = match args.shell.as_deref() {
        None | Some("none") => None,
        Some("") => {
            return Err(CliError::usage(
                "-S/--shell: the shell is empty; use e.g. `-S sh`, or -N",
            ));
        }
        Some(s) => Some(s.to_owned()),
    };
    let storage = ctx.storage().await?;
    let expo = metrics::start(&args.metrics).await?;

    let profile = plan.profile.clone();
    let mut settings = LoadSettings::new(args.command.clone(), plan);
    settings.name = args.command_name.clone();
    settings.shell = shell;
    settings.timeout = args.timeout.map(|t| t.0).filter(|t| !t.is_zero());
    settings.ignore_failure = args.ignore_failure;
    settings.tags = args.tags.tags.iter().cloned().collect();
    if args.no_sample {
        settings.sample_interval = None;
    }
    let cancel = settings.cancel.clone();
    interrupt::on_ctrl_c(
        "\ninterrupted: stopping; everything measured so far is kept in storage",
        move || cancel.cancel(),
    );
    eprintln!(
        "load: {} profile, {} step{}, {:.1} s, {} (max {} in flight)",
        profile.kind.as_str(),
        profile.steps.len(),
        if profile.steps.len() == 1 { "" } else { "s" },
        profile.duration().as_secs_f64(),
        if profile.open_loop() {
            "open loop (rate)"
        } else {
            "closed loop"
        },
        profile.max_concurrency()
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (tx, rx) = metrics::tee_events(expo.as_ref(), tx, rx);
    let display = tokio::spawn(progress::none(rx));
    let outcome = benchfleet::load::run_load(&settings, storage, tx).await;
    let _ = display.await;
    // The metrics file gets its last rewrite whether or not the load could run.
    let finished = metrics::finish(expo).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) if e.is_user_input() => return Err(CliError::usage(e)),
        Err(e) => return Err(CliError::from(e).context("load failed")),
    };
    finished?;

    let out = &ctx.out;
    out.emit(&format!("{}\n", outcome.name))?;
    out.emit(&period_table("step", &outcome.steps))?;
    if !args.no_windows {
        out.emit("\n")?;
        out.emit(&period_table("window", &outcome.windows))?;
    }
    out.emit("\n")?;
    out.emit(&period_table("total", std::slice::from_ref(&outcome.total)))?;
    for w in words::warnings(&outcome.warnings) {
        eprintln!("{w}");
    }
    if let Some(path) = &args.export_json {
        let text = serde_json::to_string_pretty(&export_json(&outcome, &profile, &args.command))?;
        write_file(path, &text)?;
    }
    Ok(out.run_footer(&outcome.run, outcome.records, &ctx.root()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, String> {
        T::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .map(|t| t.load)
            .map_err(|e| e.to_string())
    }

    /// (flags, expected steps as (concurrency, rate, duration ms)).
    #[test]
    fn flags_resolve_into_profiles() {
        type Steps = Vec<(u32, Option<f64>, u128)>;
        let steps = |args: &[&str]| -> Result<Steps, String> {
            let p = profile(&parse(args)?)?.profile;
            Ok(p.steps
                .iter()
                .map(|s| (s.concurrency, s.rate, s.duration.as_millis()))
                .collect())
        };
        let cases: Vec<(&[&str], Steps)> = vec![
            (&["true"], vec![(1, None, 10_000)]),
            (
                &["--duration", "2s", "--concurrency", "3", "true"],
                vec![(3, None, 2000)],
            ),
            (
                &["--rate", "20", "--duration", "1", "true"],
                vec![(1, Some(20.0), 1000)],
            ),
            (
                &[
                    "--profile",
                    "stress",
                    "--steps",
                    "3",
                    "--max-concurrency",
                    "5",
                    "--step-duration",
                    "500ms",
                    "true",
                ],
                vec![(1, None, 500), (3, None, 500), (5, None, 500)],
            ),
            (
                &[
                    "--profile",
                    "stress",
                    "--steps",
                    "2",
                    "--duration",
                    "4s",
                    "--concurrency",
                    "2",
                    "true",
                ],
                vec![(2, None, 2000), (4, None, 2000)],
            ),
            (
                &[
                    "--profile",
                    "spike",
                    "--duration",
                    "5s",
                    "--baseline",
                    "2",
                    "--burst",
                    "6",
                    "--burst-duration",
                    "1s",
                    "true",
                ],
                vec![(2, None, 2000), (6, None, 1000), (2, None, 2000)],
            ),
            (
                &[
                    "--profile",
                    "spike",
                    "--duration",
                    "10s",
                    "--rate",
                    "4",
                    "true",
                ],
                vec![
                    (1, Some(4.0), 4000),
                    (4, Some(16.0), 2000),
                    (1, Some(4.0), 4000),
                ],
            ),
        ];
        for (args, want) in cases {
            assert_eq!(steps(args), Ok(want), "{args:?}");
        }
        for (args, needle) in [
            (&["--concurrency", "0", "true"][..], "--concurrency"),
            (
                &[
                    "--profile",
                    "stress",
                    "--concurrency",
                    "4",
                    "--max-concurrency",
                    "2",
                    "true",
                ][..],
                "--max-concurrency",
            ),
            (
                &[
                    "--profile",
                    "spike",
                    "--duration",
                    "1s",
                    "--burst-duration",
                    "2s",
                    "true",
                ][..],
                "--burst-duration",
            ),
            (&["--max-rate", "3", "true"][..], "--rate"),
            (
                &["--steps", "3", "true"][..],
                "--steps does not apply to a soak",
            ),
            (
                &[
                    "--profile",
                    "spike",
                    "--concurrency",
                    "2",
                    "--baseline",
                    "3",
                    "true",
                ][..],
                "--baseline (3) and --concurrency (2)",
            ),
            (
                &[
                    "--profile",
                    "stress",
                    "--steps",
                    "2",
                    "--duration",
                    "1s",
                    "--step-duration",
                    "1s",
                    "true",
                ][..],
                "--step-duration",
            ),
        ] {
            let e = parse(args)
                .and_then(|a| profile(&a).map(|_| ()))
                .unwrap_err();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    /// A suite node's `load` table and this command take the same parameters, under the same
    /// names (`max_concurrency` is `--max-concurrency`).
    #[test]
    fn every_load_table_key_is_a_flag() {
        use clap::CommandFactory;
        let cmd = T::command();
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect();
        for key in benchfleet::load::LOAD_KEYS {
            let flag = key.replace('_', "-");
            assert!(
                flags.contains(&flag),
                "`load.{key}` has no --{flag}: {flags:?}"
            );
        }
    }
}
