//! `benchfleet bench 'cmd1' 'cmd2' …`: ad-hoc benchmarks with hyperfine's flag names and meaning.
//!
//! Flags stay raw here ([`BenchArgs`]); [`input`] and [`settings`] resolve them into the facade's
//! [`BenchInput`] and [`BenchSettings`]; [`bench`] runs, prints and exports.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use benchfleet::bench::{
    self, BenchCommand, BenchInput, BenchOutcome, BenchSettings, Order, ParameterScan,
};
use benchfleet::metrics::OutputMode;
use benchfleet::model::DurationSpec;
use benchfleet::report::units::TimeUnit;
use benchfleet::report::{self, BenchmarkResult};
use benchfleet::suite::RunPolicy;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::flags::{FailOn, MetricsFlags, TagFlags, compare_config, parse_size};
use crate::output::write_file;
use crate::{interrupt, metrics, progress, words};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The commands to benchmark. `{name}` placeholders take -L/-P values. Unlike hyperfine,
    /// executed directly (split into words like a shell would) unless -S/--shell is given; a
    /// command using shell syntax (`&&`, `|`, `>`, `$VAR`, `exit` …) runs through `sh` with its
    /// spawn time subtracted, never as literal arguments. `-S sh` restores hyperfine's behaviour.
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

    /// Run before every run (warmups included): once for all, or once per benchmark (the
    /// --reference first), like hyperfine.
    #[arg(short = 'p', long, value_name = "CMD")]
    pub prepare: Vec<String>,

    /// Run after every run: once for all, or once per benchmark (the --reference first).
    #[arg(short = 'C', long, value_name = "CMD")]
    pub conclude: Vec<String>,

    /// Run once before each benchmark's runs (with its parameter values). Never separated from
    /// its runs: with -s/-c the order is sequential, hyperfine's.
    #[arg(short = 's', long, value_name = "CMD")]
    pub setup: Option<String>,

    /// Run once after each benchmark's runs (with its parameter values).
    #[arg(short = 'c', long, value_name = "CMD")]
    pub cleanup: Option<String>,

    /// `-L VAR a,b,c`: benchmark once per value, `{VAR}` replaced (`\,` is a comma in a value).
    /// Several lists give every combination, the first list varying fastest. Values may start
    /// with `-` (`-L opt -O1,-O2`). Like hyperfine, not with -P/-D.
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

    /// Run every command through this shell (`SHELL -c CMD`, or a command line such as
    /// `bash --norc`; `default` is `sh`) and subtract its spawn time. Unlike hyperfine, commands
    /// run directly by default (see COMMAND); `-S sh` restores hyperfine's behaviour.
    #[arg(short = 'S', long, value_name = "SHELL")]
    pub shell: Option<String>,

    /// Execute directly, without a shell (--shell=none); a command using shell syntax is then
    /// refused.
    #[arg(short = 'N', conflicts_with = "shell")]
    pub no_shell: bool,

    /// Record failed runs and keep measuring (the exit code stays 0). `-i=CODES` ignores only
    /// these exit codes (`-i=1,2`); `-i=all-non-zero` is `-i`.
    #[arg(
        short = 'i',
        long,
        value_name = "CODES",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all-non-zero"
    )]
    pub ignore_failure: Option<String>,

    /// Also benchmark this command, first, and report the others relative to it.
    #[arg(long, value_name = "CMD")]
    pub reference: Option<String>,

    /// Name of the --reference command in results (default: its command).
    #[arg(long, value_name = "NAME", requires = "reference")]
    pub reference_name: Option<String>,

    /// With --reference: exit with code 1 when any command's head-to-head verdict against the
    /// reference is `regressed` (the way to gate a change: both measured interleaved in one
    /// invocation, so the machine's state hits both alike).
    #[arg(long, value_enum, value_name = "WHAT", requires = "reference")]
    pub fail_on: Option<FailOn>,

    /// With --reference: changes of the mean smaller than this fraction are never a verdict.
    #[arg(
        long,
        default_value_t = 0.02,
        value_name = "FRACTION",
        requires = "reference"
    )]
    pub noise: f64,

    /// With --reference: significance level of the verdicts (Welch's t and Mann–Whitney U).
    #[arg(long, default_value_t = 0.01, requires = "reference")]
    pub alpha: f64,

    /// With --reference: once the planned runs are done, keep measuring in rounds until a
    /// change of this fraction against the reference could be detected (95% power at --alpha),
    /// sized from the noise the runs show, e.g. 0.1 for 10%. Bounded by -M/--max-runs and
    /// --detect-max-time.
    #[arg(
        long,
        value_name = "FRACTION",
        requires = "reference",
        conflicts_with = "runs"
    )]
    pub detect: Option<f64>,

    /// With --detect: measure for at most this long.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        requires = "detect"
    )]
    pub detect_max_time: DurationSpec,

    /// Name of a benchmark in results (`{VAR}` placeholders allowed): one per command, or with
    /// -L/-P once for all or one per benchmark, like hyperfine.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub command_name: Vec<String>,

    /// Write hyperfine-compatible JSON (plus benchfleet's fields); `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,

    /// Write CSV (hyperfine's columns first, in hyperfine's order); `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,

    /// Write a Markdown table (benchfleet's columns); `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    /// Write hyperfine's AsciiDoc table; `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub export_asciidoc: Option<PathBuf>,

    /// Write hyperfine's Emacs org-mode table; `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub export_orgmode: Option<PathBuf>,

    /// The order of runs. Unlike hyperfine (`sequential`: each command's runs in turn),
    /// `interleaved` (A B A B …) is the default without -s/-c, so drift hits all alike;
    /// `shuffled` draws each round's order from --seed. `--order sequential` restores
    /// hyperfine's behaviour, and is the default with -s/-c.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub order: Option<OrderArg>,

    /// Same as --order shuffled.
    #[arg(long, conflicts_with = "order")]
    pub shuffle: bool,

    /// hyperfine's output styles: `none` prints no results table or summary (exports to
    /// stdout still are); benchfleet prints no colours, so the others look alike.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = StyleArg::Auto)]
    pub style: StyleArg,

    /// Order of the summary and the markup exports: `auto` and `mean-time` sort the summary by
    /// mean time (`auto` keeps the exports in command order); `command` keeps command order.
    #[arg(long, value_enum, value_name = "METHOD", default_value_t = SortArg::Auto)]
    pub sort: SortArg,

    /// Show times in this unit (default: the best for each value).
    #[arg(short = 'u', long, value_enum, value_name = "UNIT")]
    pub time_unit: Option<TimeUnitArg>,

    /// Runs measured side by side, each pinned to its own CPUs (default 1: one at a time).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,

    /// Kill a run (its whole process group) after this long; it is recorded as timed out.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationSpec>,

    /// Seed of the shuffle and of the environment padding (default: random; always recorded).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Where the commands' output goes, once for all or once per benchmark (the --reference
    /// first): `null` (default), `pipe` (read and discarded), `inherit` (shown), a file (a path
    /// with a directory, e.g. `./out.txt`, truncated before every run), or `capture` (the first
    /// --output-limit bytes stored with each run, benchfleet's own).
    #[arg(long, value_name = "WHERE", conflicts_with = "show_output")]
    pub output: Vec<String>,

    /// Show the commands' output (stdout and stderr): --output=inherit.
    #[arg(long)]
    pub show_output: bool,

    /// The commands' stdin: this file (default: `null`, nothing).
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,

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
pub enum OrderArg {
    Interleaved,
    Shuffled,
    Sequential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleArg {
    Auto,
    Basic,
    Full,
    Nocolor,
    Color,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    Auto,
    Command,
    MeanTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeUnitArg {
    Microsecond,
    Millisecond,
    Second,
}

impl TimeUnitArg {
    fn unit(self) -> TimeUnit {
        match self {
            TimeUnitArg::Microsecond => TimeUnit::MicroSecond,
            TimeUnitArg::Millisecond => TimeUnit::MilliSecond,
            TimeUnitArg::Second => TimeUnit::Second,
        }
    }
}

/// One `--output` value (hyperfine's, plus `capture`). `Err` is a usage message.
fn output_mode(value: &str, limit: usize) -> std::result::Result<OutputMode, String> {
    Ok(match value {
        "null" => OutputMode::Null,
        "pipe" => OutputMode::Pipe,
        "inherit" => OutputMode::Inherit,
        "capture" => OutputMode::Capture { limit },
        path => {
            let p = PathBuf::from(path);
            // hyperfine's rule: a bare word is a typo of a mode, not a file.
            if p.components().count() <= 1 {
                return Err(format!(
                    "--output {path:?}: not one of null, pipe, inherit, capture; for a file give a path with a directory, e.g. `./{path}`"
                ));
            }
            OutputMode::File(p)
        }
    })
}

/// The facade's inputs from the flags (hyperfine's meaning).
pub fn input(args: &BenchArgs) -> BenchInput {
    BenchInput {
        commands: args.commands.clone(),
        names: args.command_name.clone(),
        reference: args.reference.clone(),
        reference_name: args.reference_name.clone(),
        prepare: args.prepare.clone(),
        conclude: args.conclude.clone(),
        setup: args.setup.clone(),
        cleanup: args.cleanup.clone(),
        parameter_lists: args
            .parameter_list
            .chunks(2)
            .map(|p| {
                let values = p.get(1).map(|v| bench::split_list(v)).unwrap_or_default();
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

/// The measurement settings from the flags, for `commands` (the expanded benchmarks, the
/// reference first). `Err` is a usage message.
pub fn settings(
    args: &BenchArgs,
    commands: &[BenchCommand],
) -> std::result::Result<BenchSettings, String> {
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
        Some("default") => Some(bench::SYNTAX_SHELL.to_owned()),
        Some(s) if s.trim().is_empty() => {
            return Err("-S/--shell: the shell is empty; use e.g. `-S sh`, or -N".into());
        }
        Some(s) => Some(s.to_owned()),
    };
    let explicit_no_shell = args.no_shell || args.shell.as_deref() == Some("none");
    if args.jobs == 0 {
        return Err("-j/--jobs must be at least 1".into());
    }
    let hooked = commands
        .iter()
        .any(|c| c.setup.is_some() || c.cleanup.is_some());
    let order = match (args.order, args.shuffle) {
        (Some(OrderArg::Interleaved), _) => Order::Interleaved,
        (Some(OrderArg::Shuffled), _) | (None, true) => Order::Shuffled,
        (Some(OrderArg::Sequential), _) => Order::Sequential,
        (None, false) if hooked => Order::Sequential,
        (None, false) => Order::Interleaved,
    };
    if let Err(e) = bench::check_order(commands, order) {
        return Err(e.to_string());
    }
    if order == Order::Sequential && args.jobs > 1 && commands.len() > 1 {
        return Err(format!(
            "-j {} measures the commands of a round side by side, and --order sequential (hyperfine's order{}) runs one command at a time; use --order interleaved, or -j 1",
            args.jobs,
            if args.order.is_none() {
                ", the default with -s/-c"
            } else {
                ""
            }
        ));
    }
    let (ignore_failure, ignore_exit_codes) = match args.ignore_failure.as_deref() {
        None => (false, Vec::new()),
        Some("" | "all-non-zero") => (true, Vec::new()),
        Some(codes) => {
            let codes = codes
                .split(',')
                .map(|c| c.trim().parse::<i32>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| {
                    format!(
                        "-i/--ignore-failure={codes}: not a list of exit codes; write e.g. `-i=1,2`, or `-i` for every failure"
                    )
                })?;
            (true, codes)
        }
    };
    let mut outputs = if args.show_output {
        vec![OutputMode::Inherit]
    } else {
        args.output
            .iter()
            .map(|o| output_mode(o, args.output_limit))
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    let output = match outputs.len() {
        0 => OutputMode::Null,
        1 => outputs.pop().unwrap_or_default(),
        k if k == commands.len() => OutputMode::Null,
        k => {
            return Err(format!(
                "--output is given {k} times for {} benchmarks{}; give it once (for all) or once per benchmark",
                commands.len(),
                if commands.iter().any(|c| c.reference) {
                    ", the --reference included"
                } else {
                    ""
                }
            ));
        }
    };
    let input = match args.input.as_deref() {
        None | Some("null") => None,
        Some(path) => {
            let p = PathBuf::from(path);
            if !p.is_file() {
                return Err(format!(
                    "--input {path:?}: no such file; give a readable file (its content is every run's stdin), or `null`"
                ));
            }
            Some(p)
        }
    };
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
    let detect = match args.detect {
        None => None,
        Some(change) => {
            let compare =
                crate::flags::compare_config(args.noise, args.alpha).map_err(|e| e.to_string())?;
            if !(change.is_finite() && change > compare.noise_threshold) {
                return Err(format!(
                    "--detect {change}: expected a fraction larger than --noise ({}), e.g. 0.1 for 10%: no run count makes a smaller change a verdict",
                    compare.noise_threshold
                ));
            }
            if order == Order::Sequential {
                return Err(format!(
                    "--detect sizes a head-to-head comparison: the commands must be measured in rounds, not {}; use --order interleaved",
                    if args.order.is_none() {
                        "one after the other (the default with -s/-c)"
                    } else {
                        "--order sequential"
                    }
                ));
            }
            Some(bench::Detect {
                change,
                levels: benchfleet::analysis::LevelsConfig {
                    compare,
                    head_to_head: true,
                    ..Default::default()
                },
                max_time: args.detect_max_time.0,
            })
        }
    };
    Ok(BenchSettings {
        detect,
        policy: RunPolicy {
            // hyperfine: `-M` below the default minimum lowers the minimum.
            min_runs: match (args.min_runs, args.max_runs) {
                (None, Some(max)) => policy.min_runs.min(max.max(1)),
                _ => policy.min_runs,
            },
            ..policy
        },
        shell,
        syntax_shell: (!explicit_no_shell).then(|| bench::SYNTAX_SHELL.to_owned()),
        ignore_failure,
        ignore_exit_codes,
        timeout: args.timeout.map(|t| t.0).filter(|t| !t.is_zero()),
        order,
        seed,
        output,
        outputs,
        input,
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

/// hyperfine's "Summary … ran x.xx ± y.yy times faster than …" block (the others sorted by
/// mean time, as hyperfine's `--sort auto|mean-time`).
pub fn summary_text(results: &[BenchmarkResult], reference: Option<usize>) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let (r, mut rows) = relative_speeds(results, reference)?;
    if rows.is_empty() {
        return None;
    }
    let mean = |i: usize| results[i].wall().map_or(f64::INFINITY, |s| s.mean);
    rows.sort_by(|a, b| mean(a.index).total_cmp(&mean(b.index)));
    let mut out = format!("Summary\n  {} ran\n", results[r].name);
    for row in rows {
        out.push_str(&format!(
            "{:8.2} ± {:.2} times {} than {}\n",
            row.ratio,
            row.stddev,
            if row.faster { "faster" } else { "slower" },
            results[row.index].name
        ));
    }
    Some(out)
}

/// hyperfine's `--sort command` block: every result in command order with its mean relative to
/// the reference (or the fastest), `± σ` except on the reference.
pub fn relative_table(results: &[BenchmarkResult], reference: Option<usize>) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let (r, rows) = relative_speeds(results, reference)?;
    let rm = results[r].wall()?.mean;
    let mut out = "Relative speed comparison\n".to_string();
    for (i, res) in results.iter().enumerate() {
        let Some(s) = res.wall() else { continue };
        let sd = rows.iter().find(|row| row.index == i).map(|row| row.stddev);
        let sd = match sd {
            Some(sd) if i != r => format!(" ± {sd:5.2}"),
            _ => " ".repeat(8),
        };
        out.push_str(&format!("  {:10.2}{sd}  {}\n", s.mean / rm, res.name));
    }
    Some(out)
}

/// Every result compared with the reference's: head-to-head when the runs were interleaved
/// (or shuffled) in rounds, else as one invocation a side (hyperfine's sequential order).
/// `(index of the result, comparison)`, the reference and results that cannot be compared left
/// out.
pub fn reference_verdicts(
    results: &[BenchmarkResult],
    reference: usize,
    interleaved: bool,
    compare: benchfleet::analysis::CompareConfig,
) -> Vec<(usize, benchfleet::analysis::Comparison)> {
    let cfg = benchfleet::analysis::LevelsConfig {
        compare,
        head_to_head: interleaved,
        ..Default::default()
    };
    let base = [results[reference].successful_times()];
    results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != reference)
        .filter_map(|(i, r)| {
            benchfleet::analysis::compare_levels(&base, &[r.successful_times()], &cfg)
                .ok()
                .map(|c| (i, c))
        })
        .collect()
}

/// hyperfine's JSON export, each compared result with a `comparison` object added (the
/// `compare` verdict against the reference, with its assessment).
fn bench_json(
    results: &[BenchmarkResult],
    reference: Option<usize>,
    verdicts: &[(usize, benchfleet::analysis::Comparison)],
) -> serde_json::Value {
    let mut v = report::hyperfine_json(results);
    for (i, c) in verdicts {
        let mut cv = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
        if let (serde_json::Value::Object(m), Some(r)) = (&mut cv, reference) {
            m.insert("reference".into(), results[r].name.clone().into());
            m.insert("change_percent".into(), (c.change() * 100.0).into());
            m.insert(
                "assessment_text".into(),
                report::assessment_text(&c.assessment).into(),
            );
        }
        v["results"][*i]["comparison"] = cv;
    }
    v
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

/// The exports asked for, each to its file or, for `-`, to stdout. The markup tables (Markdown,
/// AsciiDoc, org-mode) follow --sort (`mean-time`: fastest first) and -u.
fn write_bench_exports(
    ctx: &Context,
    args: &BenchArgs,
    results: &[BenchmarkResult],
    unit: Option<TimeUnit>,
    json: serde_json::Value,
) -> Result<()> {
    let mut sorted = results.to_vec();
    if args.sort == SortArg::MeanTime {
        let mean = |r: &BenchmarkResult| r.wall().map_or(f64::INFINITY, |s| s.mean);
        sorted.sort_by(|a, b| mean(a).total_cmp(&mean(b)));
    }
    type Render<'a> = &'a dyn Fn() -> Result<String>;
    let exports: [(&Option<PathBuf>, Render); 5] = [
        (&args.export_json, &|| {
            Ok(serde_json::to_string_pretty(&json)? + "\n")
        }),
        (&args.export_csv, &|| Ok(report::csv(results))),
        (&args.export_markdown, &|| {
            Ok(report::markdown_in(&sorted, unit))
        }),
        (&args.export_asciidoc, &|| {
            Ok(report::markup_table(
                &sorted,
                report::Markup::AsciiDoc,
                unit,
            ))
        }),
        (&args.export_orgmode, &|| {
            Ok(report::markup_table(&sorted, report::Markup::OrgMode, unit))
        }),
    ];
    for (path, render) in exports {
        match path.as_deref() {
            None => {}
            Some(p) if p == Path::new("-") => ctx.out.emit(&render()?)?,
            Some(p) => write_file(p, &render()?)?,
        }
    }
    Ok(())
}

/// Run `benchfleet bench`.
pub async fn bench(ctx: &Context, args: BenchArgs) -> Result<Status> {
    let compare = compare_config(args.noise, args.alpha)?;
    let commands = bench::expand(&input(&args)).map_err(CliError::usage)?;
    let settings = settings(&args, &commands).map_err(CliError::Usage)?;
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
        settings.order.as_str(),
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
    let unit = args.time_unit.map(TimeUnitArg::unit);
    let quiet = args.style == StyleArg::None;
    if !results.is_empty() && !quiet {
        ctx.out
            .emit(&format!("{}\n", report::terminal_table_in(&results, unit)))?;
    }
    if let Some(o) = &outcome.shell_overhead {
        let ms = o.wall_ns as f64 / 1e6;
        match (settings.shell.as_deref(), outcome.through_shell.as_slice()) {
            (Some(_), _) => eprintln!("shell spawn time subtracted: {ms:.3} ms"),
            (None, [(name, what), rest @ ..]) => eprintln!(
                "note: `{name}`{} uses shell syntax ({what}): run through `{} -c`, its spawn time ({ms:.3} ms) subtracted; -S sh runs every command through a shell (hyperfine's default), -N refuses such commands",
                if rest.is_empty() {
                    String::new()
                } else {
                    format!(" and {} other command(s)", rest.len())
                },
                bench::SYNTAX_SHELL
            ),
            (None, []) => {}
        }
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
    let summary = match args.sort {
        SortArg::Auto | SortArg::MeanTime => summary_text(&results, reference),
        SortArg::Command => relative_table(&results, reference),
    };
    if let Some(s) = summary.filter(|_| !quiet) {
        ctx.out.emit(&format!("\n{s}"))?;
    }
    for w in words::warnings(&outcome.warnings) {
        eprintln!("{w}");
    }
    for line in words::bench_commands(&outcome.commands) {
        eprintln!("{line}");
    }

    let interleaved = settings.order != Order::Sequential;
    let verdicts = reference.map_or_else(Vec::new, |r| {
        reference_verdicts(&results, r, interleaved, compare)
    });
    if let Some(r) = reference {
        for (i, c) in &verdicts {
            eprintln!(
                "verdict {} vs {}: {} ({:+.1}%, p = {:.2e}); {}",
                results[*i].name,
                results[r].name,
                c.verdict.as_str(),
                c.change() * 100.0,
                c.assessment.p_value,
                report::assessment_text(&c.assessment)
            );
        }
    }
    write_bench_exports(
        ctx,
        &args,
        &results,
        unit,
        bench_json(&results, reference, &verdicts),
    )?;
    let status = ctx
        .out
        .run_footer(&outcome.run, outcome.records_stored, &ctx.root());
    let regressed: Vec<&str> = verdicts
        .iter()
        .filter(|(_, c)| c.verdict == benchfleet::analysis::Verdict::Regressed)
        .map(|(i, _)| results[*i].name.as_str())
        .collect();
    if args.fail_on == Some(FailOn::Regression) && !regressed.is_empty() {
        eprintln!("regressed: {}", regressed.join(", "));
        return Ok(Status::Failed);
    }
    Ok(status)
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

    /// Parse, expand and resolve the settings; `Err` is the usage message.
    fn resolve(args: &[&str]) -> Result<BenchSettings, String> {
        let a = parse(args)?;
        let commands = bench::expand(&input(&a)).map_err(|e| e.to_string())?;
        settings(&a, &commands)
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
                ("e 2x", "e 2x"),
                ("e 1y", "e 1y"),
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
        let shell = |args: &[&str]| resolve(args).map(|s| s.shell);
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
        let policy = |args: &[&str]| resolve(args).map(|s| s.policy);
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
        let s = resolve(&[
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
        let s = resolve(&["--profile", "small", "true"]).unwrap();
        assert_eq!((s.cpus_per_job, s.memory_limit), (Some(1), Some(1 << 30)));
        assert_eq!(s.sample_interval, Some(Duration::from_millis(250)));
        assert!(s.pin_measuring, "pinned unless --no-pin");
        assert!(resolve(&["--profile", "huge", "true"]).is_err());
    }

    #[test]
    fn hyperfine_flags_resolve_with_hyperfines_meaning() {
        // Escaped commas in -L values; one -n per benchmark; --reference-name.
        assert_eq!(
            expanded(&["-L", "a", r"x\,y,z", "e {a}"]),
            pairs(&[("e x,y", "e x,y"), ("e z", "e z")])
        );
        assert_eq!(
            expanded(&["-L", "v", "1,2", "-n", "one", "-n", "two", "e {v}"]),
            pairs(&[("one", "e 1"), ("two", "e 2")])
        );
        assert_eq!(
            expanded(&["--reference", "r", "--reference-name", "base", "a"]),
            pairs(&[("base", "r"), ("a", "a")])
        );
        assert_eq!(
            expanded(&["-L", "branch", "master", "echo test"]),
            pairs(&[("echo test (branch = master)", "echo test")])
        );
        assert!(parse(&["--reference-name", "x", "a"]).is_err());

        // The order: interleaved, or sequential with -s/-c; never interleaved with them.
        let order = |args: &[&str]| resolve(args).map(|s| s.order);
        assert_eq!(order(&["a", "b"]), Ok(Order::Interleaved));
        assert_eq!(order(&["--shuffle", "a", "b"]), Ok(Order::Shuffled));
        assert_eq!(order(&["-s", "x", "a", "b"]), Ok(Order::Sequential));
        assert_eq!(
            order(&["--order", "sequential", "a"]),
            Ok(Order::Sequential)
        );
        let e = order(&["--order", "interleaved", "-c", "x", "a", "b"]).unwrap_err();
        assert!(e.contains("--order sequential"), "{e}");
        let e = order(&["-s", "x", "-j", "2", "a", "b"]).unwrap_err();
        assert!(e.contains("--order interleaved, or -j 1"), "{e}");
        assert!(parse(&["--order", "sequential", "--shuffle", "a"]).is_err());

        // -i, -i=CODES, -i=all-non-zero.
        let ignore = |args: &[&str]| resolve(args).map(|s| (s.ignore_failure, s.ignore_exit_codes));
        assert_eq!(ignore(&["a"]), Ok((false, vec![])));
        assert_eq!(ignore(&["-i", "a"]), Ok((true, vec![])));
        assert_eq!(ignore(&["--ignore-failure", "a"]), Ok((true, vec![])));
        assert_eq!(ignore(&["-i=all-non-zero", "a"]), Ok((true, vec![])));
        assert_eq!(
            ignore(&["--ignore-failure=1,2", "a"]),
            Ok((true, vec![1, 2]))
        );
        assert!(ignore(&["-i=x", "a"]).unwrap_err().contains("-i=1,2"));

        // --output once or per benchmark, --show-output, --input.
        let outputs = |args: &[&str]| resolve(args).map(|s| (s.output, s.outputs));
        assert_eq!(outputs(&["a"]), Ok((OutputMode::Null, vec![])));
        assert_eq!(
            outputs(&["--show-output", "a"]),
            Ok((OutputMode::Inherit, vec![]))
        );
        assert_eq!(
            outputs(&["--output=pipe", "a", "b"]),
            Ok((OutputMode::Pipe, vec![]))
        );
        assert_eq!(
            outputs(&["--output", "null", "--output", "./o.txt", "a", "b"]),
            Ok((
                OutputMode::Null,
                vec![OutputMode::Null, OutputMode::File("./o.txt".into())]
            ))
        );
        assert!(
            outputs(&["--output", "o.txt", "a"])
                .unwrap_err()
                .contains("./o.txt")
        );
        let e = outputs(&[
            "--reference",
            "r",
            "--output=null",
            "--output=pipe",
            "a",
            "b",
        ])
        .unwrap_err();
        assert!(e.contains("3 benchmarks, the --reference included"), "{e}");
        assert!(parse(&["--show-output", "--output=pipe", "a"]).is_err());
        assert!(
            resolve(&["--input", "/no/such/file", "cat"])
                .unwrap_err()
                .contains("no such file")
        );
        assert_eq!(resolve(&["--input", "null", "cat"]).unwrap().input, None);

        // -S with arguments and `default`; -N refuses shell syntax, the default runs it in sh.
        let shells = |args: &[&str]| resolve(args).map(|s| (s.shell, s.syntax_shell));
        let sh = || Some("sh".to_string());
        assert_eq!(shells(&["a"]), Ok((None, sh())));
        assert_eq!(shells(&["-N", "a"]), Ok((None, None)));
        assert_eq!(shells(&["--shell=none", "a"]), Ok((None, None)));
        assert_eq!(shells(&["-S", "default", "a"]), Ok((sh(), sh())));
        assert_eq!(
            shells(&["-S", "bash --norc", "a"]),
            Ok((Some("bash --norc".into()), sh()))
        );

        // Accepted for hyperfine's command lines.
        for args in [
            &["--style", "none", "a"][..],
            &["--style=basic", "a"],
            &["--sort", "command", "a"],
            &["--sort=mean-time", "a"],
            &["-u", "millisecond", "a"],
            &["--time-unit", "microsecond", "a"],
            &["--export-asciidoc", "-", "--export-orgmode", "o.org", "a"],
        ] {
            assert!(resolve(args).is_ok(), "{args:?}");
        }
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
        // hyperfine's wording and layout.
        let text = summary_text(&results, None).unwrap();
        assert_eq!(
            text,
            "Summary\n  fast ran\n    2.00 ± 0.00 times faster than slow\n"
        );
        let text = summary_text(&results, Some(0)).unwrap();
        assert!(text.contains("  slow ran\n"), "{text}");
        assert!(
            text.contains("    2.00 ± 0.00 times slower than fast"),
            "{text}"
        );
        // --sort command: every result in command order.
        let text = relative_table(&results, None).unwrap();
        assert_eq!(
            text,
            "Relative speed comparison\n        2.00 ±  0.00  slow\n        1.00          fast\n"
        );
    }
}
