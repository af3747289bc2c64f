//! `benchfleet bench 'cmd1' 'cmd2' …`: ad-hoc benchmarks with hyperfine's flag names and meaning.
//!
//! Flags stay raw here ([`BenchArgs`]); [`input`] and [`settings`] resolve them into the facade's
//! [`BenchInput`] and [`BenchSettings`]; [`bench`] runs, prints and exports.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchfleet::bench::{
    self, BenchCommand, BenchInput, BenchOutcome, BenchSettings, Order, ParameterScan,
};
use benchfleet::metrics::OutputMode;
use benchfleet::model::DurationSpec;
use benchfleet::report::{self, BenchmarkResult};
use benchfleet::suite::RunPolicy;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{MetricsFlags, TagFlags, parse_size};
use crate::output::write_exports;
use crate::{interrupt, metrics, progress, words};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The commands to benchmark. Executed directly (split into words like a shell would, no
    /// shell) unless -S/--shell is given. `{name}` placeholders take -L/-P values.
    #[arg(required = true, value_name = "COMMAND")]
    pub commands: Vec<String>,

    /// Runs of each command before measuring (not recorded).
    #[arg(short = 'w', long, value_name = "NUM", default_value_t = 0)]
    pub warmup: u32,

    /// Exactly this many measured runs per command.
    #[arg(short = 'r', long, value_name = "NUM", conflicts_with_all = ["min_runs", "max_runs"])]
    pub runs: Option<u32>,

    /// At least this many runs (default 10).
    #[arg(short = 'm', long, value_name = "NUM")]
    pub min_runs: Option<u32>,

    /// At most this many runs (default: unlimited).
    #[arg(short = 'M', long, value_name = "NUM")]
    pub max_runs: Option<u32>,

    /// Keep measuring each command until this much time was spent (default 3 s; bounded by
    /// -M): seconds (`0.5`) or with a unit (`500ms`).
    #[arg(long, value_name = "SECS")]
    pub min_benchmarking_time: Option<DurationSpec>,

    /// Run before every run (warmups included): once for all commands, or once per command.
    #[arg(short = 'p', long, value_name = "CMD")]
    pub prepare: Vec<String>,

    /// Run after every run: once for all commands, or once per command.
    #[arg(short = 'C', long, value_name = "CMD")]
    pub conclude: Vec<String>,

    /// Run once before each command's runs.
    #[arg(short = 's', long, value_name = "CMD")]
    pub setup: Option<String>,

    /// Run once after each command's runs.
    #[arg(short = 'c', long, value_name = "CMD")]
    pub cleanup: Option<String>,

    /// `-L VAR a,b,c`: benchmark once per value, `{VAR}` replaced. Several lists give every
    /// combination. Values may start with `-` (`-L opt -O1,-O2`). Like hyperfine, not with
    /// -P/-D.
    #[arg(
        short = 'L',
        long,
        num_args = 2,
        value_names = ["VAR", "VALUES"],
        action = clap::ArgAction::Append,
        allow_hyphen_values = true,
        conflicts_with_all = ["parameter_scan", "parameter_step_size"]
    )]
    pub parameter_list: Vec<String>,

    /// `-P VAR MIN MAX`: benchmark for VAR = MIN, MIN+STEP, … MAX (negative bounds allowed:
    /// `-P n -2 1`). Given once, like hyperfine.
    #[arg(
        short = 'P',
        long,
        num_args = 3,
        value_names = ["VAR", "MIN", "MAX"],
        action = clap::ArgAction::Set,
        allow_hyphen_values = true
    )]
    pub parameter_scan: Vec<String>,

    /// Step of -P (default 1; decimals allowed, e.g. 0.1).
    #[arg(
        short = 'D',
        long,
        value_name = "DELTA",
        requires = "parameter_scan",
        allow_negative_numbers = true
    )]
    pub parameter_step_size: Option<String>,

    /// Run commands through this shell (`SHELL -c CMD`) and subtract its spawn time; `none`
    /// executes directly (the default).
    #[arg(short = 'S', long, value_name = "SHELL")]
    pub shell: Option<String>,

    /// Execute directly, without a shell (the default; same as --shell=none).
    #[arg(short = 'N', conflicts_with = "shell")]
    pub no_shell: bool,

    /// Record failed runs and keep measuring (the exit code stays 0).
    #[arg(short = 'i', long)]
    pub ignore_failure: bool,

    /// Also benchmark this command, first, and report the others relative to it.
    #[arg(long, value_name = "CMD")]
    pub reference: Option<String>,

    /// Name of a command in results (once per command, in order; `{VAR}` placeholders allowed).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub command_name: Vec<String>,

    /// Write hyperfine-compatible JSON (plus benchfleet's fields).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Write CSV (hyperfine's columns first).
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,

    /// Write a Markdown table.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    /// Runs measured side by side, each pinned to its own CPUs (default 1: one at a time).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,

    /// Kill a run (its whole process group) after this long; it is recorded as timed out.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationSpec>,

    /// Shuffle the commands' order in every round (default: round-robin A B A B …).
    #[arg(long)]
    pub shuffle: bool,

    /// Seed of the shuffle and of the environment padding (default: random; always recorded).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Where the commands' stdout goes.
    #[arg(long, value_enum, default_value_t = OutputArg::Null)]
    pub output: OutputArg,

    /// With --output=capture, keep at most this many bytes of each run's stdout.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub output_limit: usize,

    /// Count instructions and cycles (perf_event; reported as unavailable when not allowed).
    #[arg(long)]
    pub counters: bool,

    /// Resource profile (micro, small, medium, large, xlarge): CPUs per job and memory limit.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Memory limit per run, e.g. `512M`, `2G` (cgroup v2 when writable, else RLIMIT_AS).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<u64>,

    /// Interval of system sampling (CPU, memory, disk, load) during the benchmark.
    #[arg(long, value_name = "DURATION", default_value = "250ms")]
    pub sample_interval: DurationSpec,

    /// Do not sample the system.
    #[arg(long)]
    pub no_sample: bool,

    /// Do not give the measured processes a CPU of their own. By default (with -j 1) they run on
    /// the CPU taking the fewest device interrupts and benchfleet's own threads on the others.
    #[arg(long)]
    pub no_pin: bool,

    #[command(flatten)]
    pub tags: TagFlags,

    #[command(flatten)]
    pub metrics: MetricsFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// Discard (/dev/null), like hyperfine.
    Null,
    /// Keep the first --output-limit bytes of each run's stdout, stored with the run.
    Capture,
}

/// The facade's inputs from the flags (hyperfine's meaning).
pub fn input(args: &BenchArgs) -> BenchInput {
    BenchInput {
        commands: args.commands.clone(),
        names: args.command_name.clone(),
        reference: args.reference.clone(),
        prepare: args.prepare.clone(),
        conclude: args.conclude.clone(),
        setup: args.setup.clone(),
        cleanup: args.cleanup.clone(),
        parameter_lists: args
            .parameter_list
            .chunks(2)
            .map(|p| {
                let values = p
                    .get(1)
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
                (p[0].clone(), values)
            })
            .collect(),
        parameter_scan: (args.parameter_scan.len() == 3).then(|| ParameterScan {
            name: args.parameter_scan[0].clone(),
            min: args.parameter_scan[1].clone(),
            max: args.parameter_scan[2].clone(),
            step: args.parameter_step_size.clone(),
        }),
    }
}

/// The measurement settings from the flags. `Err` is a usage message.
pub fn settings(args: &BenchArgs) -> std::result::Result<BenchSettings, String> {
    let d = RunPolicy::BENCHMARK;
    let policy = RunPolicy {
        warmup: args.warmup,
        runs: args.runs,
        min_runs: args.min_runs.unwrap_or(d.min_runs),
        max_runs: args.max_runs,
        min_time: args.min_benchmarking_time.map_or(d.min_time, |t| t.0),
    };
    if policy.runs == Some(0) {
        return Err("-r/--runs must be at least 1".into());
    }
    if let (Some(max), Some(min)) = (args.max_runs, args.min_runs)
        && max < min
    {
        return Err(format!(
            "-M/--max-runs ({max}) is smaller than -m/--min-runs ({min}); raise one or lower the other"
        ));
    }
    let shell = match args.shell.as_deref() {
        None | Some("none") => None,
        Some("") => return Err("-S/--shell: the shell is empty; use e.g. `-S sh`, or -N".into()),
        Some(s) => Some(s.to_owned()),
    };
    if args.jobs == 0 {
        return Err("-j/--jobs must be at least 1".into());
    }
    let (cpus_per_job, profile_mem) = match &args.profile {
        Some(name) => {
            let r = benchfleet::sched::Resources::profile(name).map_err(|e| e.to_string())?;
            (
                Some(r.cpu_millis.div_ceil(1000).max(1) as usize),
                Some(r.memory_bytes),
            )
        }
        None => (None, None),
    };
    let seed = args.seed.unwrap_or_else(random_seed);
    Ok(BenchSettings {
        policy: RunPolicy {
            // hyperfine: `-M` below the default minimum lowers the minimum.
            min_runs: match (args.min_runs, args.max_runs) {
                (None, Some(max)) => policy.min_runs.min(max.max(1)),
                _ => policy.min_runs,
            },
            ..policy
        },
        shell,
        ignore_failure: args.ignore_failure,
        timeout: args.timeout.map(|t| t.0).filter(|t| !t.is_zero()),
        order: if args.shuffle {
            Order::Shuffled
        } else {
            Order::Interleaved
        },
        seed,
        output: match args.output {
            OutputArg::Null => OutputMode::Null,
            OutputArg::Capture => OutputMode::Capture {
                limit: args.output_limit,
            },
        },
        jobs: args.jobs,
        cpus_per_job,
        memory_limit: args.memory_limit.or(profile_mem),
        counters: args.counters,
        sample_interval: (!args.no_sample && !args.sample_interval.0.is_zero())
            .then_some(args.sample_interval.0),
        tags: args.tags.tags.iter().cloned().collect(),
        pin_measuring: !args.no_pin,
        ..BenchSettings::default()
    })
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    t ^ (u64::from(std::process::id()) << 32)
}

/// One row of hyperfine's relative-speed summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relative {
    /// Index of the compared result.
    pub index: usize,
    /// Slower mean / faster mean (≥ 1).
    pub ratio: f64,
    /// Standard deviation of the ratio (error propagation of both σ/mean).
    pub stddev: f64,
    /// The reference is faster than this result.
    pub faster: bool,
}

/// Relative speed of every result against the reference (or, without one, the fastest), like
/// hyperfine's summary. Returns the reference's index and one row per other result with
/// statistics.
pub fn relative_speeds(
    results: &[BenchmarkResult],
    reference: Option<usize>,
) -> Option<(usize, Vec<Relative>)> {
    let stats: Vec<Option<(f64, f64)>> = results
        .iter()
        .map(|r| r.wall().map(|s| (s.mean, s.stddev.unwrap_or(0.0))))
        .collect();
    let reference = match reference {
        Some(i) => i,
        None => {
            stats
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s.0)))
                .min_by(|a, b| a.1.total_cmp(&b.1))?
                .0
        }
    };
    let (rm, rs) = (*stats.get(reference)?)?;
    if rm <= 0.0 {
        return None;
    }
    let mut out = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        let Some((m, sd)) = *s else { continue };
        if i == reference || m <= 0.0 {
            continue;
        }
        let (ratio, faster) = if m >= rm {
            (m / rm, true)
        } else {
            (rm / m, false)
        };
        let err = ratio * ((sd / m).powi(2) + (rs / rm).powi(2)).sqrt();
        out.push(Relative {
            index: i,
            ratio,
            stddev: err,
            faster,
        });
    }
    Some((reference, out))
}

/// hyperfine's "Summary … ran x.xx ± y.yy times faster than …" block.
pub fn summary_text(results: &[BenchmarkResult], reference: Option<usize>) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let (r, rows) = relative_speeds(results, reference)?;
    if rows.is_empty() {
        return None;
    }
    let mut out = format!("Summary\n  `{}` ran\n", results[r].name);
    for row in rows {
        out.push_str(&format!(
            "    {:.2} ± {:.2} times {} than `{}`\n",
            row.ratio,
            row.stddev,
            if row.faster { "faster" } else { "slower" },
            results[row.index].name
        ));
    }
    Some(out)
}

/// Results in command order (the reference first), whatever order the runs happened in.
fn ordered_results(outcome: &BenchOutcome, commands: &[BenchCommand]) -> Vec<BenchmarkResult> {
    let mut results = outcome.results.clone();
    results.sort_by_key(|r| {
        commands
            .iter()
            .position(|c| c.name == r.name)
            .unwrap_or(usize::MAX)
    });
    results
}

/// Run `benchfleet bench`.
pub async fn bench(ctx: &Context, args: BenchArgs) -> Result<Status> {
    let commands = bench::expand(&input(&args)).map_err(CliError::usage)?;
    let settings = settings(&args).map_err(CliError::Usage)?;
    let storage = ctx.storage().await?;
    let expo = metrics::start(&args.metrics).await?;

    let cancel = settings.cancel.clone();
    interrupt::on_ctrl_c(
        "\ninterrupted: stopping; everything measured so far is kept in storage",
        move || cancel.cancel(),
    );
    eprintln!(
        "benchmarking {} command{} ({}{}, seed {})",
        commands.len(),
        if commands.len() == 1 { "" } else { "s" },
        match settings.order {
            Order::Interleaved => "interleaved",
            Order::Shuffled => "shuffled",
        },
        settings
            .shell
            .as_deref()
            .map_or(String::new(), |s| format!(", through {s}")),
        settings.seed
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (tx, rx) = metrics::tee_events(expo.as_ref(), tx, rx);
    let display = tokio::spawn(progress::none(rx));
    let outcome = bench::run_bench(&commands, &settings, storage, tx).await;
    let _ = display.await;
    // The metrics file gets its last rewrite whether or not the benchmark could run.
    let finished = metrics::finish(expo).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) if e.is_user_input() => return Err(CliError::usage(e)),
        Err(e) => return Err(CliError::from(e).context("benchmark failed")),
    };
    finished?;

    let results = ordered_results(&outcome, &commands);
    if !results.is_empty() {
        ctx.out
            .emit(&format!("{}\n", report::terminal_table(&results)))?;
    }
    if let Some(o) = &outcome.shell_overhead {
        eprintln!(
            "shell spawn time subtracted: {:.3} ms",
            o.wall_ns as f64 / 1e6
        );
    }
    let concurrent: usize = results.iter().map(BenchmarkResult::concurrent_runs).sum();
    if settings.jobs > 1 {
        eprintln!(
            "{concurrent} of {} runs ran beside others (-j {})",
            outcome.records_stored, settings.jobs
        );
    }
    let reference = commands
        .iter()
        .position(|c| c.reference)
        .and_then(|ri| results.iter().position(|r| r.name == commands[ri].name));
    if let Some(s) = summary_text(&results, reference) {
        ctx.out.emit(&format!("\n{s}"))?;
    }
    for w in words::warnings(&outcome.warnings) {
        eprintln!("{w}");
    }
    for line in words::bench_commands(&outcome.commands) {
        eprintln!("{line}");
    }

    write_exports(
        &results,
        args.export_json.as_deref(),
        args.export_csv.as_deref(),
        args.export_markdown.as_deref(),
    )?;
    Ok(ctx
        .out
        .run_footer(&outcome.run, outcome.records_stored, &ctx.root()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        T::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|t| t.bench)
            .map_err(|e| e.to_string())
    }

    fn expanded(args: &[&str]) -> Vec<(String, String)> {
        let a = parse(args).unwrap();
        bench::expand(&input(&a))
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.command))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parameter_flags_expand_like_hyperfine() {
        let check = |args: &[&str], want: &[(&str, &str)]| {
            assert_eq!(expanded(args), pairs(want), "{args:?}");
        };
        check(
            &["-P", "n", "1", "3", "sleep {n}"],
            &[
                ("sleep 1", "sleep 1"),
                ("sleep 2", "sleep 2"),
                ("sleep 3", "sleep 3"),
            ],
        );
        check(
            &["-P", "t", "0.1", "0.3", "-D", "0.1", "sleep {t}"],
            &[
                ("sleep 0.1", "sleep 0.1"),
                ("sleep 0.2", "sleep 0.2"),
                ("sleep 0.3", "sleep 0.3"),
            ],
        );
        check(
            &["-L", "c", "gzip,xz", "-n", "{c}-fast", "{c} -1 f"],
            &[("gzip-fast", "gzip -1 f"), ("xz-fast", "xz -1 f")],
        );
        check(
            &["-L", "a", "1,2", "-L", "b", "x,y", "e {a}{b}"],
            &[
                ("e 1x", "e 1x"),
                ("e 1y", "e 1y"),
                ("e 2x", "e 2x"),
                ("e 2y", "e 2y"),
            ],
        );
        // Commands vary fastest; unknown braces stay.
        check(
            &["-L", "m", "k,l", "awk '{print}' {m}", "b{m}"],
            &[
                ("awk '{print}' k", "awk '{print}' k"),
                ("bk", "bk"),
                ("awk '{print}' l", "awk '{print}' l"),
                ("bl", "bl"),
            ],
        );
        // Hyphenated and negative values, as hyperfine accepts them.
        check(
            &["-P", "n", "-2", "1", "e {n}"],
            &[
                ("e -2", "e -2"),
                ("e -1", "e -1"),
                ("e 0", "e 0"),
                ("e 1", "e 1"),
            ],
        );
        check(
            &["-P", "n", "-3", "-1", "-D", "2", "e {n}"],
            &[("e -3", "e -3"), ("e -1", "e -1")],
        );
        check(
            &["-L", "opt", "-O1,-O2", "cc {opt} x.c"],
            &[("cc -O1 x.c", "cc -O1 x.c"), ("cc -O2 x.c", "cc -O2 x.c")],
        );
        check(
            &["-L", "a", "-x", "-L", "b", "-y,z", "e {a}{b}"],
            &[("e -x-y", "e -x-y"), ("e -xz", "e -xz")],
        );
        check(
            &["--reference", "r", "-n", "A", "a", "b"],
            &[("r", "r"), ("A", "a"), ("b", "b")],
        );
    }

    #[test]
    fn a_scan_and_lists_together_are_refused_like_hyperfine() {
        for args in [
            &["-P", "n", "1", "2", "-L", "m", "k", "e {n}{m}"][..],
            &["-L", "m", "k", "-P", "n", "1", "2", "e {n}{m}"][..],
            &["-P", "n", "1", "2", "-D", "1", "-L", "m", "k", "e"][..],
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains("cannot be used with"), "{args:?}: {e}");
        }
        assert!(
            parse(&["-P", "n", "1", "2", "-P", "m", "1", "2", "e"]).is_err(),
            "-P is given once"
        );
        // A negative step parses, and is refused with the facade's message.
        let a = parse(&["-P", "n", "1", "2", "-D", "-1", "e"]).unwrap();
        let e = bench::expand(&input(&a)).unwrap_err().to_string();
        assert!(e.contains("must be positive"), "{e}");
    }

    #[test]
    fn shell_flags_follow_hyperfine() {
        let shell = |args: &[&str]| settings(&parse(args).unwrap()).map(|s| s.shell);
        assert_eq!(shell(&["true"]), Ok(None), "direct by default");
        assert_eq!(shell(&["-N", "true"]), Ok(None));
        assert_eq!(shell(&["--shell=none", "true"]), Ok(None));
        assert_eq!(shell(&["-S", "bash", "true"]), Ok(Some("bash".into())));
        assert_eq!(shell(&["--shell", "sh", "true"]), Ok(Some("sh".into())));
        assert!(
            parse(&["-N", "-S", "bash", "true"]).is_err(),
            "-N conflicts with -S"
        );
    }

    #[test]
    fn run_count_flags_follow_hyperfine() {
        let policy = |args: &[&str]| settings(&parse(args).unwrap()).map(|s| s.policy);
        let p = policy(&["true"]).unwrap();
        assert_eq!(
            (p.runs, p.min_runs, p.max_runs, p.min_time),
            (None, 10, None, Duration::from_secs(3))
        );
        let p = policy(&["-r", "5", "-w", "2", "true"]).unwrap();
        assert_eq!((p.runs, p.warmup), (Some(5), 2));
        let p = policy(&[
            "-m",
            "3",
            "-M",
            "7",
            "--min-benchmarking-time",
            "500ms",
            "true",
        ])
        .unwrap();
        assert_eq!(
            (p.min_runs, p.max_runs, p.min_time),
            (3, Some(7), Duration::from_millis(500))
        );
        let p = policy(&["-M", "4", "true"]).unwrap();
        assert_eq!(
            (p.min_runs, p.max_runs),
            (4, Some(4)),
            "-M alone lowers the minimum"
        );
        assert!(
            policy(&["-m", "8", "-M", "2", "true"])
                .unwrap_err()
                .contains("smaller")
        );
        assert!(
            policy(&["-r", "0", "true"])
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            parse(&["-r", "3", "-m", "2", "true"]).is_err(),
            "-r conflicts with -m"
        );
        assert!(parse(&["-D", "0.5", "true"]).is_err(), "-D needs -P");
        assert!(parse(&[]).is_err(), "a command is required");
    }

    #[test]
    fn other_flags_resolve() {
        let s = settings(
            &parse(&[
                "--shuffle",
                "--seed",
                "9",
                "-j",
                "2",
                "--timeout",
                "2s",
                "--output",
                "capture",
                "--output-limit",
                "10",
                "--memory-limit",
                "64M",
                "--no-sample",
                "--no-pin",
                "--tag",
                "k=v",
                "true",
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(s.order, Order::Shuffled);
        assert_eq!(s.seed, 9);
        assert_eq!(s.jobs, 2);
        assert_eq!(s.timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.output, OutputMode::Capture { limit: 10 });
        assert_eq!(s.memory_limit, Some(64 << 20));
        assert_eq!(s.sample_interval, None);
        assert!(!s.pin_measuring);
        assert_eq!(s.tags.get("k").map(String::as_str), Some("v"));
        let s = settings(&parse(&["--profile", "small", "true"]).unwrap()).unwrap();
        assert_eq!((s.cpus_per_job, s.memory_limit), (Some(1), Some(1 << 30)));
        assert_eq!(s.sample_interval, Some(Duration::from_millis(250)));
        assert!(s.pin_measuring, "pinned unless --no-pin");
        assert!(settings(&parse(&["--profile", "huge", "true"]).unwrap()).is_err());
    }

    #[test]
    fn relative_speed_uses_the_reference_or_the_fastest() {
        let rec = |name: &str, i: u32, ms: u64| benchfleet::model::RunRecord {
            schema_version: benchfleet::model::SCHEMA_VERSION,
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
            suite: "bench".into(),
            name: name.into(),
            kind: benchfleet::model::NodeKind::Benchmark,
            command: name.into(),
            parameters: Default::default(),
            iteration: i,
            started_at: benchfleet::model::Timestamp(0),
            measurement: benchfleet::model::Measurement {
                wall_ns: ms * 1_000_000,
                ..Default::default()
            },
            outcome: benchfleet::model::Outcome::Success,
            stderr_tail: None,
            tags: Default::default(),
        };
        let records = [
            rec("slow", 0, 20),
            rec("slow", 1, 20),
            rec("fast", 0, 10),
            rec("fast", 1, 10),
        ];
        let results = report::group_records(&records);
        let text = summary_text(&results, None).unwrap();
        assert!(text.contains("`fast` ran"), "{text}");
        assert!(
            text.contains("2.00 ± 0.00 times faster than `slow`"),
            "{text}"
        );
        let text = summary_text(&results, Some(0)).unwrap();
        assert!(text.contains("`slow` ran"), "{text}");
        assert!(
            text.contains("2.00 ± 0.00 times slower than `fast`"),
            "{text}"
        );
    }
}
