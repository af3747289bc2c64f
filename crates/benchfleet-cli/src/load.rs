//! `benchfleet load COMMAND --profile soak|stress|spike …`: throughput benchmarks, plus the
//! `--metrics-file` / `--metrics-listen` flags shared by `run`, `bench` and `load`.
//!
//! Flags stay raw here ([`LoadArgs`], [`MetricsArgs`]); [`profile`] turns them into the
//! parameters a suite node's `load` table holds ([`LoadSpec`], same names) and resolves them with
//! the facade's [`benchfleet::load::plan`], so the command and suites share one vocabulary and
//! one set of checks; [`load`] runs, prints the per-step and per-window tables ([`period_table`],
//! also used by `run` for load nodes) and exports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use benchfleet::StorageSettings;
use benchfleet::load::{LoadOutcome, LoadPlan, LoadSettings, MissingDuration};
use benchfleet::metrics::load::{LoadProfile, Period};
use benchfleet::model::{DurationSpec, LoadSpec};
use benchfleet::prom::{self, Exposition, PromOptions, RunnerMetrics};
use benchfleet::runner::RunnerEvent;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::commands::emit;
use crate::exit;

/// Runner metrics in the Prometheus text exposition.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Write the runner's metrics (Prometheus/OpenMetrics text) to this file, rewritten
    /// atomically every --metrics-interval and at the end.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Serve the runner's metrics at http://ADDR/metrics while running (loopback only, e.g.
    /// 127.0.0.1:9464; port 0 picks a free one, printed on stderr).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,

    /// How often the metrics file is rewritten and the machine's CPU is read.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub metrics_interval: DurationSpec,
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    prom::loopback_addr(s).map_err(|e| e.to_string())
}

impl MetricsArgs {
    fn wanted(&self) -> bool {
        self.metrics_file.is_some() || self.metrics_listen.is_some()
    }
}

/// Start the exposition the flags ask for (`None` when neither flag is given).
pub(crate) async fn start_metrics(args: &MetricsArgs) -> Result<Option<Exposition>> {
    if !args.wanted() {
        return Ok(None);
    }
    let expo = prom::start(
        Arc::new(RunnerMetrics::new()),
        &PromOptions {
            file: args.metrics_file.clone(),
            listen: args.metrics_listen,
            interval: args.metrics_interval.0,
        },
    )
    .await?;
    if let Some(addr) = expo.local_addr() {
        eprintln!("serving metrics on http://{addr}/metrics");
    }
    Ok(Some(expo))
}

/// Put the metrics between the runner and the progress display: returns the sender the runner
/// gets and the receiver the display reads (unchanged when there is no exposition).
pub(crate) fn tee_events(
    expo: Option<&Exposition>,
    tx: UnboundedSender<RunnerEvent>,
    rx: UnboundedReceiver<RunnerEvent>,
) -> (UnboundedSender<RunnerEvent>, UnboundedReceiver<RunnerEvent>) {
    match expo {
        Some(e) => {
            let (runner_tx, runner_rx) = tokio::sync::mpsc::unbounded_channel();
            prom::tee(runner_rx, e.metrics().clone(), tx);
            (runner_tx, rx)
        }
        None => (tx, rx),
    }
}

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

    /// Label stored with the run, e.g. `--tag branch=main` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = crate::cli::parse_tag)]
    pub tags: Vec<(String, String)>,

    #[command(flatten)]
    pub metrics: MetricsArgs,
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

/// The short summary `run` prints for a load node: its name, the per-step table and the total
/// (the per-window table is in the records' `load.window` tags).
pub fn node_summary(load: &benchfleet::load::NodeLoadOutcome) -> String {
    let r = &load.report;
    format!(
        "{} (load: {} profile, {} records)\n{}{}",
        load.name,
        load.profile.kind.as_str(),
        r.records,
        period_table("step", &r.steps),
        period_table("total", std::slice::from_ref(&r.total))
    )
}

fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The per-period table: one row per step or window.
pub fn period_table(first: &str, periods: &[Period]) -> String {
    let header = [
        first, "from s", "to s", "conc", "rate/s", "ok", "failed", "missed", "ops/s", "p50 ms",
        "p90 ms", "p99 ms", "max ms",
    ];
    let rows: Vec<Vec<String>> = periods
        .iter()
        .map(|p| {
            let lat = |v: u64| {
                if p.completed == 0 {
                    "-".to_owned()
                } else {
                    ms(v)
                }
            };
            vec![
                if first == "window" {
                    format!("{} ({})", p.index, p.label)
                } else {
                    p.label.clone()
                },
                format!("{:.1}", p.start.as_secs_f64()),
                format!("{:.1}", p.end.as_secs_f64()),
                p.concurrency.to_string(),
                p.rate.map_or("-".into(), |r| format!("{r:.1}")),
                p.completed.to_string(),
                p.failed.to_string(),
                p.missed.to_string(),
                format!("{:.1}", p.throughput),
                lat(p.latency.p50),
                lat(p.latency.p90),
                lat(p.latency.p99),
                lat(p.latency.max),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(&header.map(str::to_owned));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
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

pub async fn load(root: &Path, storage: StorageSettings, args: LoadArgs) -> Result<u8> {
    let plan = match profile(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let shell = match args.shell.as_deref() {
        None | Some("none") => None,
        Some("") => {
            eprintln!("error: -S/--shell: the shell is empty; use e.g. `-S sh`, or -N");
            return Ok(exit::USAGE);
        }
        Some(s) => Some(s.to_owned()),
    };
    let storage = benchfleet::open_storage(&storage).await?;
    let expo = start_metrics(&args.metrics).await?;

    let profile = plan.profile.clone();
    let mut settings = LoadSettings::new(args.command.clone(), plan);
    settings.name = args.command_name.clone();
    settings.shell = shell;
    settings.timeout = args.timeout.map(|t| t.0).filter(|t| !t.is_zero());
    settings.ignore_failure = args.ignore_failure;
    settings.tags = args.tags.iter().cloned().collect();
    if args.no_sample {
        settings.sample_interval = None;
    }
    settings.metrics = expo.as_ref().map(|e| e.metrics().clone());
    let cancel = settings.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping; everything measured so far is kept in storage");
            cancel.cancel();
        }
    });
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
    let outcome = benchfleet::load::run_load(&settings, &storage).await;
    // The metrics exposition is finalised on every path, failures included.
    if let Some(e) = expo {
        e.finish().await?;
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) if e.is_user_input() => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e).context("load failed"),
    };

    emit(&format!("{}\n", outcome.name));
    emit(&period_table("step", &outcome.steps));
    if !args.no_windows {
        emit("\n");
        emit(&period_table("window", &outcome.windows));
    }
    emit("\n");
    emit(&period_table("total", std::slice::from_ref(&outcome.total)));
    for w in &outcome.warnings {
        eprintln!("{w}");
    }
    if let Some(path) = &args.export_json {
        let text = serde_json::to_string_pretty(&export_json(&outcome, &profile, &args.command))?;
        std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(crate::commands::run_footer(
        &outcome.run,
        outcome.records,
        root,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

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

    #[test]
    fn metrics_listen_refuses_non_loopback_addresses() {
        let ok = parse(&["--metrics-listen", "127.0.0.1:9464", "true"]).unwrap();
        assert_eq!(
            ok.metrics.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(ok.metrics.metrics_interval.0, Duration::from_secs(1));
        for bad in ["0.0.0.0:9464", "10.1.2.3:80", "nonsense"] {
            let e = parse(&["--metrics-listen", bad, "true"]).unwrap_err();
            assert!(
                e.contains("loopback") || e.contains("not an address"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn tables_have_one_row_per_period_and_dashes_without_runs() {
        let p = profile(
            &parse(&[
                "--profile",
                "stress",
                "--steps",
                "3",
                "--max-concurrency",
                "3",
                "true",
            ])
            .unwrap(),
        )
        .unwrap();
        let stats = benchfleet::metrics::load::LoadStats::new(&p.profile, p.window).unwrap();
        let text = period_table("step", &stats.steps());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("step") && lines[0].contains("p99 ms"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("step 1") && lines[1].ends_with('-'),
            "{text}"
        );
    }
}
