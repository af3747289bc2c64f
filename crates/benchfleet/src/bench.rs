//! Ad-hoc benchmarks (`benchfleet bench 'cmd1' 'cmd2' …`): hyperfine's vocabulary, measured the
//! benchfleet way and stored like suite results.
//!
//! Two stages, like the rest of the facade: [`expand`] turns hyperfine-style inputs
//! ([`BenchInput`]: commands, names, `-L`/`-P` parameters, prepare/conclude/setup/cleanup) into
//! concrete [`BenchCommand`]s; [`run_bench`] measures them with [`BenchSettings`] and stores one
//! [`RunRecord`] per measured run plus a [`RunInfo`] with source `bench`.
//!
//! Memory stays small however many runs there are: each run becomes a record as it finishes, is
//! fed into its command's running statistics (Welford mean/variance, min, max, HDR histogram)
//! and compact result (a few numbers per run for the exports), and is stored in batches of at
//! most [`RECORD_BATCH`] while the next runs are measured, so an interrupted or crashed benchmark
//! keeps everything already stored.
//!
//! The measurement loop interleaves the commands of one comparison (round `r` runs every command
//! that still needs an `r`-th run: A B A B …, or a seeded shuffle of each round), so machine drift
//! hits all of them alike; or, in hyperfine's sequential order, measures one command after the
//! other, each with its setup and cleanup right around its own runs ([`Order`],
//! [`check_order`]). With `jobs > 1`, the runs of one round run side by side, each worker
//! pinned to its own CPUs, and every record says whether its run was alone.
//!
//! A thin driver over the core: every process runs through [`crate::exec`] (one
//! [`Invocation`] per command, behind the [`Executor`] seam), the run's lifecycle is a
//! [`Session`] finalised on every path, and what happens is told as [`RunnerEvent`]s (the
//! commands are the run's nodes; see [`run_bench`]). It imports no other driver.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use benchfleet_analysis::BenchStats;
use benchfleet_metrics::{
    CapturedOutput, EnvRandomizer, Kill, OutputMode, ProcessResult, ProcessSpec, SystemSeries,
};
use benchfleet_model::{Digest, Measurement, NodeKind, RunInfo, RunRecord, Timestamp};
use benchfleet_report::{BenchmarkResult, RunningWall};
use benchfleet_sched::NodeState;
use benchfleet_store::{Storage, StoreError};
use tokio::sync::mpsc::UnboundedSender;

use crate::cpus::Overlap;
use crate::event::{CancelToken, RunnerEvent};
use crate::exec::{CommandError, Executor, Hook, Invocation, Phase, RecordOwner};
use crate::host;
use crate::session::{self, Session};
use crate::suite::RunPolicy;

pub use crate::exec::{SHELL_COST_SAMPLES, TAG_SHELL, TAG_SHELL_OVERHEAD};
pub use crate::session::{describe_series, load_series, store_series};

/// Suite name of ad-hoc runs in the catalog, and `RunInfo::source`.
pub const BENCH_SOURCE: &str = "bench";
/// `RunInfo` tag with the seed of the shuffle and of the environment padding.
pub const TAG_SEED: &str = "bench.seed";
/// `RunInfo` tag with the run order: `interleaved`, `shuffled` or `sequential`.
pub const TAG_ORDER: &str = "bench.order";
/// `RunInfo` tag with the CPU the light runs (see [`PIN_CPU_BELOW`]) ran on when `-j 1` pinned
/// them ([`BenchSettings::pin_measuring`]); absent when nothing was pinned.
pub const TAG_MEASURING_CPU: &str = "bench.measuring_cpu";
/// Environment variable of every warmup and measured run: `warmup-N` or the run's number `N`
/// (0-based), as hyperfine's `HYPERFINE_ITERATION`, which is set too.
pub const ITERATION_VAR: &str = "BENCHFLEET_ITERATION";
/// hyperfine's name of [`ITERATION_VAR`], set to the same value.
pub const HYPERFINE_ITERATION_VAR: &str = "HYPERFINE_ITERATION";
/// The shell of command lines with shell syntax when no -S is given: hyperfine's default shell.
pub const SYNTAX_SHELL: &str = "sh";
/// hyperfine's environment padding range (`0..4096` bytes).
pub const ENV_PADDING_MAX: usize = 4096;
/// Blob namespace of captured stdout: the store's one namespace of outputs, streamed or not.
pub const OUTPUT_NS: &str = benchfleet_store::OUTPUTS_NS;

/// Why an ad-hoc benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad flags or commands: the message says which and what to do.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Shell(#[from] benchfleet_metrics::ShellCostError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the measurement thread failed: {0}; this is a bug, please report it")]
    Internal(String),
}

impl BenchError {
    /// Whether the user can fix this by changing flags or commands (exit code 2).
    pub fn is_user_input(&self) -> bool {
        matches!(self, BenchError::Usage(_) | BenchError::Shell(_))
    }
}

impl From<CommandError> for BenchError {
    fn from(e: CommandError) -> Self {
        BenchError::Usage(e.0)
    }
}

fn usage(msg: impl Into<String>) -> BenchError {
    BenchError::Usage(msg.into())
}

/// `-P NAME MIN MAX [-D STEP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterScan {
    pub name: String,
    pub min: String,
    pub max: String,
    pub step: Option<String>,
}

/// The raw ad-hoc inputs, with hyperfine's meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BenchInput {
    pub commands: Vec<String>,
    /// `-n`: names (placeholders allowed): at most one per command without parameters; with
    /// parameters one for all, one per benchmark (hyperfine) or one per command.
    pub names: Vec<String>,
    /// `--reference`: measured too, listed first, the baseline of relative speeds.
    pub reference: Option<String>,
    /// `--reference-name`: the reference's name (default: its command).
    pub reference_name: Option<String>,
    /// `-p`: once for every benchmark, or once per benchmark (the reference first), or once per
    /// command (the reference first).
    pub prepare: Vec<String>,
    /// `-C`: like `prepare`.
    pub conclude: Vec<String>,
    /// `-s`: run once before each benchmark's runs (with its parameter values).
    pub setup: Option<String>,
    /// `-c`: run once after each benchmark's runs.
    pub cleanup: Option<String>,
    /// `-L NAME a,b,c` (several: cross product; see [`parameter_combinations`]). Split values
    /// with [`split_list`].
    pub parameter_lists: Vec<(String, Vec<String>)>,
    pub parameter_scan: Option<ParameterScan>,
}

/// One command to measure, after parameter expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchCommand {
    /// Its name in results: the `-n` name or the command, followed like hyperfine by the
    /// parameters the command does not use (`echo test (branch = master)`).
    pub name: String,
    /// The command with placeholders substituted.
    pub command: String,
    pub parameters: BTreeMap<String, String>,
    pub prepare: Option<String>,
    pub conclude: Option<String>,
    pub setup: Option<String>,
    pub cleanup: Option<String>,
    /// This is the `--reference` command.
    pub reference: bool,
}

/// The values of `-L NAME VALUES`, like hyperfine: split at commas, `\,` is a comma and `\\` a
/// backslash inside a value (`x\,y,z` → `x,y` and `z`); any other backslash stays as written.
pub fn split_list(values: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = values.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (',' | '\\')) => cur.push(e),
                Some(other) => {
                    cur.push('\\');
                    cur.push(other);
                }
                None => cur.push('\\'),
            },
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Values of a parameter scan, like hyperfine: `MIN, MIN+STEP, …` up to and including `MAX`.
/// Without a step, `MIN` and `MAX` must be integers (step 1). With a decimal step the values are
/// exact decimals printed as hyperfine prints them: `MIN` as written (its fraction digits), the
/// others with the larger number of fraction digits of `MIN` and `STEP`
/// (`-P t 0 1 -D 0.25` → `0, 0.25, 0.50, 0.75, 1.00`; `-P d 1 2 -D 0.5` → `1, 1.5, 2.0`).
pub fn scan_values(scan: &ParameterScan) -> Result<Vec<String>, BenchError> {
    const MAX_VALUES: i128 = 100_000;
    let what = format!("-P/--parameter-scan {}", scan.name);
    let step_text = scan.step.as_deref().unwrap_or("1");
    let parse = |label: &str, s: &str| {
        parse_decimal(s).ok_or_else(|| {
            usage(format!(
                "{what}: {label} `{s}` is not a number; write e.g. 1, -3 or 0.25"
            ))
        })
    };
    let min = parse("MIN", &scan.min)?;
    let max = parse("MAX", &scan.max)?;
    let step = parse("step (-D)", step_text)?;
    if scan.step.is_none() && (min.1 > 0 || max.1 > 0) {
        return Err(usage(format!(
            "{what}: MIN and MAX must be integers without -D/--parameter-step-size; add e.g. `-D 0.1` for decimals"
        )));
    }
    let scale = min.1.max(max.1).max(step.1);
    let at = |d: (i128, u32)| d.0 * 10i128.pow(scale - d.1);
    let (lo, hi, st) = (at(min), at(max), at(step));
    if st <= 0 {
        return Err(usage(format!(
            "{what}: the step size must be positive (got {step_text})"
        )));
    }
    if hi < lo {
        return Err(usage(format!(
            "{what}: empty range: MAX ({}) is smaller than MIN ({})",
            scan.max, scan.min
        )));
    }
    if (hi - lo) / st + 1 > MAX_VALUES {
        return Err(usage(format!(
            "{what}: more than {MAX_VALUES} values; use a larger step"
        )));
    }
    // hyperfine adds decimals exactly; a sum has the larger scale of its terms.
    let shown = min.1.max(step.1);
    let mut out = vec![format_decimal(lo, scale, min.1)];
    let mut v = lo + st;
    while v <= hi {
        out.push(format_decimal(v, scale, shown));
        v += st;
    }
    Ok(out)
}

/// `"-1.25"` → `(-125, 2)`; `None` when not a plain decimal number.
fn parse_decimal(s: &str) -> Option<(i128, u32)> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || int.len() + frac.len() > 30
    {
        return None;
    }
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    Some((if neg { -mantissa } else { mantissa }, frac.len() as u32))
}

/// `value / 10^scale` printed with `shown` fraction digits (`shown <= scale`; trailing digits
/// beyond `shown` are always zero for scan values).
fn format_decimal(value: i128, scale: u32, shown: u32) -> String {
    let v = value / 10i128.pow(scale - shown);
    if shown == 0 {
        return v.to_string();
    }
    let p = 10i128.pow(shown);
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        v.abs() / p,
        v.abs() % p,
        width = shown as usize
    )
}

/// The parameter axes (name and values) in the order given: the scan, or the lists.
fn parameter_axes(input: &BenchInput) -> Result<Vec<(String, Vec<String>)>, BenchError> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(scan) = &input.parameter_scan {
        axes.push((scan.name.clone(), scan_values(scan)?));
    }
    for (name, values) in &input.parameter_lists {
        if values.is_empty() {
            return Err(usage(format!(
                "-L/--parameter-list {name}: no values; write e.g. `-L {name} a,b,c`"
            )));
        }
        axes.push((name.clone(), values.clone()));
    }
    for (i, (name, _)) in axes.iter().enumerate() {
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(usage(format!(
                "parameter name `{name}` is invalid; use a plain word such as `size`"
            )));
        }
        if axes[..i].iter().any(|(n, _)| n == name) {
            return Err(usage(format!(
                "parameter `{name}` is given twice; each -L/-P name must be unique"
            )));
        }
    }
    Ok(axes)
}

/// Every combination of parameter values, in hyperfine's order: the first list varies fastest,
/// the last slowest (`-L a 1,2 -L b x,y` → `1x 2x 1y 2y`). One empty map when there are no
/// parameters.
pub fn parameter_combinations(
    input: &BenchInput,
) -> Result<Vec<BTreeMap<String, String>>, BenchError> {
    Ok(combinations(&parameter_axes(input)?))
}

fn combinations(axes: &[(String, Vec<String>)]) -> Vec<BTreeMap<String, String>> {
    let mut combos = vec![BTreeMap::new()];
    for (name, values) in axes.iter().rev() {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    combos
}

/// Replace `{name}` with parameter values; other braces stay as written (like hyperfine).
///
/// One left-to-right pass over `text`: a substituted value is never scanned again, so
/// `-L a '{b}' -L b x 'echo {a}'` gives `echo {b}`, as hyperfine does.
pub fn substitute(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = params
            .iter()
            .find(|(k, _)| after.starts_with(k.as_str()) && after[k.len()..].starts_with('}'));
        match hit {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Which entry of a list given once, once per benchmark or once per command applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Per {
    None,
    All,
    Benchmark,
    Command,
}

/// How a `-p`/`-C`/`-n` list of `k` entries maps onto `commands` commands × `combos` parameter
/// combinations (+ `reference`, which counts as a command, first, as in hyperfine).
fn per(k: usize, commands: usize, combos: usize, reference: usize) -> Option<Per> {
    match k {
        0 => Some(Per::None),
        1 => Some(Per::All),
        k if k == commands * combos + reference => Some(Per::Benchmark),
        k if k == commands + reference => Some(Per::Command),
        _ => None,
    }
}

/// Expand hyperfine-style inputs into the commands to measure: the reference first, then for each
/// parameter combination each command in order (hyperfine's order).
pub fn expand(input: &BenchInput) -> Result<Vec<BenchCommand>, BenchError> {
    let n = input.commands.len();
    if n == 0 {
        return Err(usage(
            "no command to benchmark; give at least one, e.g. `benchfleet bench 'sleep 0.1'`",
        ));
    }
    if let Some(empty) = input.commands.iter().position(|c| c.trim().is_empty()) {
        return Err(usage(format!("command #{} is empty", empty + 1)));
    }
    let axes = parameter_axes(input)?;
    let combos = combinations(&axes);
    let r = usize::from(input.reference.is_some());
    let total = n * combos.len() + r;
    let with_ref = if r == 1 {
        ", the --reference included"
    } else {
        ""
    };
    let list = |flag: &str, list: &[String]| -> Result<Per, BenchError> {
        per(list.len(), n, combos.len(), r).ok_or_else(|| {
            let per_command = if combos.len() > 1 {
                format!(" or once per command ({})", n + r)
            } else {
                String::new()
            };
            usage(format!(
                "{flag} is given {} times for {total} benchmarks{with_ref}; give it once (for all), once per benchmark ({total}){per_command}, in the order the benchmarks run{with_ref}",
                list.len()
            ))
        })
    };
    let prepare = list("-p/--prepare", &input.prepare)?;
    let conclude = list("-C/--conclude", &input.conclude)?;
    // `-n` does not name the reference (--reference-name does).
    let names = if axes.is_empty() {
        if input.names.len() > n {
            return Err(usage(format!(
                "-n/--command-name is given {} times for {n} commands; give at most one name per command",
                input.names.len()
            )));
        }
        Per::Command
    } else {
        per(input.names.len(), n, combos.len(), 0).ok_or_else(|| {
            usage(format!(
                "-n/--command-name is given {} times for {} benchmarks ({n} commands × {} parameter values); give it once (placeholders such as {{{}}} allowed), once per benchmark or once per command",
                input.names.len(),
                n * combos.len(),
                combos.len(),
                axes[0].0
            ))
        })?
    };
    // The entry of `list` for benchmark `b` (reference: 0) of command `c` (reference: 0).
    let pick = |how: Per, list: &[String], b: usize, c: usize| -> Option<String> {
        match how {
            Per::None => None,
            Per::All => list.first().cloned(),
            Per::Benchmark => list.get(b).cloned(),
            Per::Command => list.get(c).cloned(),
        }
    };

    let mut out = Vec::with_capacity(total);
    if let Some(reference) = &input.reference {
        if reference.trim().is_empty() {
            return Err(usage("--reference: the command is empty"));
        }
        out.push(BenchCommand {
            name: input
                .reference_name
                .clone()
                .unwrap_or_else(|| reference.clone()),
            command: reference.clone(),
            parameters: BTreeMap::new(),
            prepare: pick(prepare, &input.prepare, 0, 0),
            conclude: pick(conclude, &input.conclude, 0, 0),
            setup: input.setup.clone(),
            cleanup: input.cleanup.clone(),
            reference: true,
        });
    } else if input.reference_name.is_some() {
        return Err(usage(
            "--reference-name names the --reference command; give --reference CMD too",
        ));
    }
    for params in &combos {
        for (i, cmd) in input.commands.iter().enumerate() {
            let (b, c) = (out.len(), i + r);
            let sub = |s: Option<String>| s.map(|t| substitute(&t, params));
            let command = substitute(cmd, params);
            let name = match pick(names, &input.names, b - r, i) {
                Some(name) => substitute(&name, params),
                None => command.clone(),
            };
            // hyperfine names benchmarks with the parameters their command does not use.
            let unused: Vec<String> = axes
                .iter()
                .filter(|(k, _)| !cmd.contains(&format!("{{{k}}}")))
                .map(|(k, _)| format!("{k} = {}", params[k]))
                .collect();
            let name = if unused.is_empty() {
                name
            } else {
                format!("{name} ({})", unused.join(", "))
            };
            out.push(BenchCommand {
                name,
                command,
                parameters: params.clone(),
                prepare: sub(pick(prepare, &input.prepare, b, c)),
                conclude: sub(pick(conclude, &input.conclude, b, c)),
                setup: sub(input.setup.clone()),
                cleanup: sub(input.cleanup.clone()),
                reference: false,
            });
        }
    }
    // Names identify results in storage: make duplicates unique rather than merging them.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &mut out {
        let k = seen.entry(c.name.clone()).or_insert(0);
        *k += 1;
        if *k > 1 {
            c.name = format!("{} #{}", c.name, k);
        }
    }
    Ok(out)
}

/// The order of the runs within each round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// A B C, A B C, … (the default).
    Interleaved,
    /// Each round is a permutation drawn from this seed (recorded with the run).
    Shuffled,
    /// hyperfine's order: one command after the other, each with its setup, warmups, runs and
    /// cleanup (A A A, B B B).
    Sequential,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Interleaved => "interleaved",
            Order::Shuffled => "shuffled",
            Order::Sequential => "sequential",
        }
    }
}

/// How to measure. `Default` is hyperfine's defaults with benchfleet's execution (direct exec,
/// interleaved, stdout to /dev/null, env padding on, sampling every 250 ms).
#[derive(Clone, Debug)]
pub struct BenchSettings {
    pub policy: RunPolicy,
    /// Run every command as `SHELL -c COMMAND` and subtract the shell's spawn cost; `None`:
    /// executed directly (split into words like a shell would, without one).
    pub shell: Option<String>,
    /// Without `shell`: the shell that runs the command lines using shell syntax (`&&`, `>`,
    /// `$VAR`, `exit` …; see [`crate::exec::shell_syntax`]), its spawn cost subtracted from
    /// their runs; `None` (`-N`) refuses them. Such a line never runs as literal arguments.
    pub syntax_shell: Option<String>,
    /// `-i`: record failures and keep measuring.
    pub ignore_failure: bool,
    /// With `ignore_failure`: only runs exiting with one of these codes are kept going
    /// (hyperfine's `-i=1,2`); empty: every failure (`-i`, `-i=all-non-zero`).
    pub ignore_exit_codes: Vec<i32>,
    pub timeout: Option<Duration>,
    pub order: Order,
    /// Seed of the shuffle and of the environment padding.
    pub seed: u64,
    /// Where the commands' stdout goes, unless `outputs` says it per command.
    pub output: OutputMode,
    /// Per command (in the order of the commands given to [`run_bench`]), overriding `output`;
    /// empty for `output` everywhere.
    pub outputs: Vec<OutputMode>,
    /// The commands' stdin: this file (hyperfine's `--input`), `/dev/null` when `None`.
    pub input: Option<std::path::PathBuf>,
    /// Runs measured side by side (each worker pinned to its own CPUs when > 1).
    pub jobs: usize,
    /// CPUs per worker when `jobs > 1` (default: the allowed CPUs split evenly, at least 1).
    pub cpus_per_job: Option<usize>,
    pub memory_limit: Option<u64>,
    /// Per-run environment padding (hyperfine's `0..4096` bytes).
    pub randomize_env: bool,
    /// Hardware counters (instructions, cycles) through perf_event.
    pub counters: bool,
    /// System sampling interval; `None` disables it.
    pub sample_interval: Option<Duration>,
    pub stderr_tail: usize,
    pub tags: BTreeMap<String, String>,
    /// Stops measuring (Ctrl-C); running processes get `grace` then are killed.
    pub cancel: CancelToken,
    pub grace: Duration,
    /// While measuring, this process's other threads (storing, async runtime, sampler) run under
    /// `SCHED_IDLE`, so they never take a CPU from a measured process
    /// ([`benchfleet_metrics::idle_other_threads`]); measured processes keep their policy.
    pub idle_harness: bool,
    /// With `jobs == 1`: the measuring thread gets one CPU of its own (the one taking the fewest
    /// device interrupts) and this process's other threads the rest
    /// ([`benchfleet_metrics::pin_measuring_thread`]). Light runs (see [`PIN_CPU_BELOW`])
    /// share that CPU with it (cheaper, steadier start, wake-up and exit); after a CPU-heavy run
    /// the next may use every CPU (free to move away from other work). Recorded as
    /// [`TAG_MEASURING_CPU`].
    pub pin_measuring: bool,
    /// `--detect`: with a reference command measured in rounds, keep measuring every command
    /// past its planned runs until a change of this size against the reference could be
    /// detected ([`Detect`]).
    pub detect: Option<Detect>,
}

/// Size a head-to-head comparison from the noise it sees (Kalibera & Jones): once every command
/// has its planned runs, more rounds are measured while the runs so far say that a change of
/// `change` between a command and the reference could not yet be detected with the verdict's
/// power ([`benchfleet_analysis::head_to_head_runs_to_detect`]); each extension adds at least a
/// fifth. The count follows the spread, never the difference, so the verdict stays unbiased.
/// Bounded by `max_runs` of the policy and by `max_time` of measuring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detect {
    /// The change to be able to detect (a fraction of the reference's mean).
    pub change: f64,
    /// The verdict's significance level, noise floor and power.
    pub levels: benchfleet_analysis::LevelsConfig,
    pub max_time: Duration,
}

/// Longest a `--detect` measurement goes on by default.
pub const DETECT_MAX_TIME: Duration = Duration::from_secs(300);

impl Default for BenchSettings {
    fn default() -> Self {
        BenchSettings {
            policy: RunPolicy::BENCHMARK,
            shell: None,
            syntax_shell: Some(SYNTAX_SHELL.into()),
            ignore_failure: false,
            ignore_exit_codes: Vec::new(),
            timeout: None,
            order: Order::Interleaved,
            seed: 0,
            output: OutputMode::Null,
            outputs: Vec::new(),
            input: None,
            jobs: 1,
            cpus_per_job: None,
            memory_limit: None,
            randomize_env: true,
            counters: false,
            sample_interval: Some(Duration::from_millis(250)),
            stderr_tail: benchfleet_metrics::DEFAULT_STDERR_TAIL,
            tags: BTreeMap::new(),
            cancel: CancelToken::default(),
            grace: Duration::from_secs(2),
            idle_harness: true,
            pin_measuring: true,
            detect: None,
        }
    }
}

/// What happened to one command.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandReport {
    pub name: String,
    /// Measured runs (records stored).
    pub runs: usize,
    /// Why the command stopped early (a failed run without `-i`, or a failing
    /// prepare/conclude/setup/cleanup command).
    pub failure: Option<String>,
    /// Measured runs that failed (with `-i` they are recorded and measuring went on).
    pub failed_runs: u32,
}

/// Records written to storage per batch while measuring (at most; what was measured is written
/// every [`FLUSH_EVERY`], and the rest as soon as measuring ends, so a crash loses at most the
/// runs of the last fraction of a second).
pub const RECORD_BATCH: usize = 256;

/// How often what was measured is taken over and written while measuring.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The result of [`run_bench`].
#[derive(Clone, Debug)]
pub struct BenchOutcome {
    pub run: RunInfo,
    /// One compact result per command that has runs, in command order: per run only what the
    /// renderers and exports need, plus the running statistics (Welford + HDR) kept while
    /// measuring. The records themselves went to storage in batches as runs finished.
    pub results: Vec<BenchmarkResult>,
    /// Records stored.
    pub records_stored: usize,
    pub commands: Vec<CommandReport>,
    /// Mean spawn cost of the shell that was subtracted (shell mode, or the commands in
    /// `through_shell`).
    pub shell_overhead: Option<Measurement>,
    /// Commands run through [`BenchSettings::syntax_shell`] because they use shell syntax
    /// (without -S): their name and the construct found ([`crate::exec::shell_syntax`]).
    pub through_shell: Vec<(String, String)>,
    pub series: Option<SystemSeries>,
    /// Human-readable warnings (too short with a shell, oversubscription, sampling, outliers …).
    pub warnings: Vec<String>,
}

impl BenchOutcome {
    /// Commands that stopped because of a failure (without `-i`) or a failing
    /// prepare/setup/conclude/cleanup command.
    pub fn failed(&self) -> usize {
        self.commands.iter().filter(|c| c.failure.is_some()).count()
    }
}

/// Build the process spec for one command line, directly or through `shell`
/// ([`crate::exec::command_spec`], with its error as a usage error).
pub fn command_spec(command: &str, shell: Option<&str>) -> Result<ProcessSpec, BenchError> {
    Ok(crate::exec::command_spec(command, shell)?)
}

pub use crate::cpus::{cpu_sets, physical_cores};

/// Warnings for `jobs` workers of `per_job` CPUs each on a machine with `physical` cores and
/// `allowed` usable CPUs: more jobs than physical cores, or more CPUs wanted than allowed.
pub fn concurrency_warnings(
    jobs: usize,
    per_job: usize,
    physical: usize,
    allowed: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    if jobs > physical {
        out.push(format!(
            "warning: -j {jobs} runs more benchmarks at once than this machine has physical cores ({physical}); concurrent runs disturb each other, compare them with care"
        ));
    }
    if jobs * per_job > allowed {
        out.push(format!(
            "warning: {jobs} jobs × {per_job} CPUs each need more than the {allowed} CPUs available; workers share CPUs"
        ));
    }
    out
}

/// The commands' order in round `round` (0-based) among `n` commands.
pub fn round_order(order: Order, seed: u64, round: u64, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if order == Order::Shuffled {
        // Fisher–Yates with splitmix64, one stream per round (reproducible from the seed).
        let mut state = seed ^ round.wrapping_mul(0xA24B_AED4_963E_E407);
        for i in (1..n).rev() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            idx.swap(i, (z % (i as u64 + 1)) as usize);
        }
    }
    idx
}

/// A setup or cleanup belongs to its benchmark's runs: refused with an order that would
/// separate them (rounds across several commands).
pub fn check_order(commands: &[BenchCommand], order: Order) -> Result<(), BenchError> {
    let hooked = commands
        .iter()
        .any(|c| c.setup.is_some() || c.cleanup.is_some());
    if order != Order::Sequential && commands.len() > 1 && hooked {
        return Err(usage(format!(
            "-s/--setup and -c/--cleanup run once per benchmark, right before and after its own runs; --order {} would run every setup before any run. Use --order sequential (hyperfine's order, the default with -s/-c)",
            order.as_str()
        )));
    }
    Ok(())
}

/// Per-command state of the measurement loop.
struct Cmd {
    /// The command, its hooks and the shell cost to subtract.
    inv: Invocation,
    planned: Option<u32>,
    measured: u32,
    stopped: Option<String>,
    failed_runs: u32,
    /// CPU time (user + system) of its latest run, warmups included.
    last_cpu_ns: Option<u64>,
    /// The `--reference` command.
    reference: bool,
    /// Wall times of its successful measured runs, seconds (kept only for `detect`).
    walls: Vec<f64>,
}

/// Runs of a command whose previous run used less CPU time than this (a first run counts as
/// light) share the measuring thread's CPU when pinning is on; after a CPU-heavy run the next
/// may use every CPU.
pub const PIN_CPU_BELOW: Duration = Duration::from_millis(5);

/// One unit of work of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The `n`-th warmup run (0-based).
    Warmup(u32),
    Measure(u32),
}

/// A measured run, before it becomes a record.
struct Measured {
    cmd: usize,
    iteration: u32,
    started_at: Timestamp,
    result: ProcessResult,
    concurrent: bool,
    /// Digest of its captured stdout, already stored, and whether it was truncated.
    output: Option<(Digest, bool)>,
}

/// Stores captured outputs from the measuring thread as each run finishes, so that none waits
/// in a temporary file (an open descriptor and its disk space) until the end of the benchmark.
struct OutputSink {
    storage: Storage,
    rt: tokio::runtime::Handle,
}

impl OutputSink {
    /// At or above the policy's `stream_threshold_bytes`, streamed from the capture's file with
    /// bounded memory ([`Storage::put_output_file`]); smaller ones read and put at once. Both
    /// land content-addressed in [`OUTPUT_NS`] of the hot tier.
    fn store(&self, out: &CapturedOutput) -> Result<Digest, String> {
        let storage = &self.storage;
        self.rt.block_on(async {
            if out.len() >= storage.policy.stream_threshold_bytes {
                let put = storage
                    .put_output_file(&out.proc_path())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(put.digest)
            } else {
                let bytes = out
                    .to_vec()
                    .map_err(|e| format!("cannot read the captured output back: {e}"))?;
                let (digest, _) =
                    benchfleet_store::content::put(&*storage.blobs, OUTPUT_NS, bytes.into())
                        .await
                        .map_err(|e| e.to_string())?;
                Ok(digest)
            }
        })
    }
}

struct Loop<'a> {
    settings: &'a BenchSettings,
    ex: &'a dyn Executor,
    /// Fired by cancellation (Ctrl-C) or by a storage error.
    kill: &'a Kill,
    /// Events of the measured runs, sent on by the storing side (see [`Told`]).
    told: &'a Told,
}

/// Events of the measured runs, kept here by the measuring thread and sent on by the storing side
/// at its next wake-up, with the records: sending them from the measuring thread would wake the
/// events' consumer once per run (the cost the records' hand-over avoids).
type Told = Mutex<Vec<RunnerEvent>>;

fn tell(told: &Told, event: RunnerEvent) {
    told.lock().unwrap_or_else(|p| p.into_inner()).push(event);
}

impl Loop<'_> {
    /// prepare, `step` of command `i` (`c`), conclude (on `pin`'s CPUs). `Err` when a
    /// prepare/conclude command failed (the run is then not kept). A measured run is told as
    /// `RunStarted` when its process starts and `Measured` once it (and its conclude) ended;
    /// warmups are not.
    fn one(
        &self,
        (i, step): (usize, Step),
        c: &Cmd,
        spec: &ProcessSpec,
        pin: Option<&[usize]>,
        overlap: &Overlap,
    ) -> Result<(Timestamp, ProcessResult, bool), String> {
        let iteration = match step {
            Step::Measure(k) => Some(k),
            Step::Warmup(_) => None,
        };
        let mut on = |phase: Phase| {
            if let (Phase::Started { .. }, Some(iteration)) = (phase, iteration) {
                tell(self.told, RunnerEvent::RunStarted { node: i, iteration });
            }
        };
        let once = c
            .inv
            .once(self.ex, spec, pin, self.kill, overlap, &mut on)?;
        if let Some(iteration) = iteration {
            let wall = Duration::from_nanos(once.result.measurement.wall_ns);
            let policy = &self.settings.policy;
            tell(
                self.told,
                RunnerEvent::Measured {
                    node: i,
                    iteration,
                    planned: c.planned.unwrap_or_else(|| policy.run_count(wall)),
                    wall,
                    ok: once.result.outcome.is_success(),
                },
            );
        }
        once.concluded?;
        Ok((once.started_at, once.result, once.concurrent))
    }
}

/// Where runs go: one worker per CPU set (`-j` > 1), or the measuring thread's pin (`-j 1`).
struct Placement<'a> {
    cpu_sets: &'a [Vec<usize>],
    pin: Option<&'a benchfleet_metrics::PinnedMeasuring>,
}

/// Measure `commands` (blocking). Returns the runs in execution order.
#[allow(clippy::too_many_arguments)]
fn measure(
    ex: &dyn Executor,
    kill: &Kill,
    cmds: &mut [Cmd],
    settings: &BenchSettings,
    placement: Placement<'_>,
    outputs: &OutputSink,
    sink: &Mutex<Vec<Measured>>,
    told: &Told,
) {
    let Placement { cpu_sets, pin } = placement;
    let lp = Loop {
        settings,
        ex,
        kill,
        told,
    };
    let overlap = Overlap::default();
    let mut env = EnvRandomizer::new(settings.seed, ENV_PADDING_MAX);

    // Sequential: each command alone, setup → warmups → runs → cleanup, then the next
    // (hyperfine's order). Interleaved or shuffled: one group of all, rounds across them.
    let groups: Vec<Vec<usize>> = match settings.order {
        Order::Sequential => (0..cmds.len()).map(|i| vec![i]).collect(),
        Order::Interleaved | Order::Shuffled => vec![(0..cmds.len()).collect()],
    };
    for group in &groups {
        if kill.is_killed() {
            break;
        }
        measure_group(
            &lp, cmds, group, settings, cpu_sets, pin, &overlap, &mut env, outputs, sink,
        );
    }
}

/// Setup of each command of `group`, its warmups and runs in rounds across the group, its
/// cleanup.
#[allow(clippy::too_many_arguments)]
fn measure_group(
    lp: &Loop<'_>,
    cmds: &mut [Cmd],
    group: &[usize],
    settings: &BenchSettings,
    cpu_sets: &[Vec<usize>],
    pin: Option<&benchfleet_metrics::PinnedMeasuring>,
    overlap: &Overlap,
    env: &mut EnvRandomizer,
    outputs: &OutputSink,
    sink: &Mutex<Vec<Measured>>,
) {
    let (ex, kill) = (lp.ex, lp.kill);
    for &i in group {
        if kill.is_killed() {
            break;
        }
        let c = &mut cmds[i];
        if let Err(e) = c.inv.run_setup(ex, kill) {
            c.stopped = Some(e);
        }
    }

    let warmup = settings.policy.warmup as u64;
    let mut round: u64 = 0;
    let measuring_since = std::time::Instant::now();
    loop {
        if kill.is_killed() {
            break;
        }
        let step_of = |c: &Cmd| -> Option<Step> {
            if c.stopped.is_some() {
                return None;
            }
            if round < warmup {
                return Some(Step::Warmup(round as u32));
            }
            match c.planned {
                Some(p) if c.measured >= p => None,
                _ => Some(Step::Measure(c.measured)),
            }
        };
        let tasks: Vec<(usize, Step)> =
            round_order(settings.order, settings.seed, round, group.len())
                .into_iter()
                .map(|k| group[k])
                .filter_map(|i| step_of(&cmds[i]).map(|s| (i, s)))
                .collect();
        if tasks.is_empty() && round >= warmup {
            if grow_to_detect(cmds, group, settings, measuring_since.elapsed()) {
                continue;
            }
            break;
        }
        round += 1;

        // Prepare each task's spec (env padding drawn in task order, so reproducible).
        let specs: Vec<ProcessSpec> = tasks
            .iter()
            .map(|&(i, step)| {
                let mut s = cmds[i].inv.spec.clone();
                let iteration = match step {
                    Step::Warmup(n) => format!("warmup-{n}"),
                    Step::Measure(n) => n.to_string(),
                };
                s.env.push((ITERATION_VAR.into(), iteration.clone()));
                s.env.push((HYPERFINE_ITERATION_VAR.into(), iteration));
                if settings.randomize_env {
                    s.env_padding = Some(env.next_padding());
                }
                s
            })
            .collect();
        let results: Vec<Result<(Timestamp, ProcessResult, bool), String>> = if cpu_sets.len() <= 1
        {
            let mut v = Vec::with_capacity(tasks.len());
            for (&(i, step), spec) in tasks.iter().zip(&specs) {
                if kill.is_killed() {
                    break;
                }
                if let Some(p) = pin {
                    p.hold(
                        cmds[i]
                            .last_cpu_ns
                            .is_none_or(|c| c < PIN_CPU_BELOW.as_nanos() as u64),
                    );
                }
                v.push(lp.one((i, step), &cmds[i], spec, None, overlap));
            }
            v
        } else {
            run_parallel(lp, cmds, &tasks, specs, cpu_sets, overlap)
        };

        for (&(i, step), r) in tasks.iter().zip(results) {
            let c = &mut cmds[i];
            let (started_at, result, concurrent) = match r {
                Ok(x) => x,
                Err(e) => {
                    c.stopped = Some(e);
                    continue;
                }
            };
            if kill.is_killed() && !result.outcome.is_success() {
                // Killed by cancellation: not a measurement of the command.
                continue;
            }
            c.last_cpu_ns = Some(result.measurement.user_ns + result.measurement.sys_ns);
            let ok = result.outcome.is_success();
            if !ok {
                // Only measured runs count: warmups are not runs of the statistics.
                if matches!(step, Step::Measure(_)) {
                    c.failed_runs += 1;
                }
                let ignored = settings.ignore_failure
                    && (settings.ignore_exit_codes.is_empty()
                        || matches!(result.outcome, benchfleet_model::Outcome::Failed { exit_code: Some(code), .. } if settings.ignore_exit_codes.contains(&code)));
                if !ignored {
                    let what = if matches!(step, Step::Warmup(_)) {
                        "warmup run"
                    } else {
                        "run"
                    };
                    let hint = if settings.ignore_exit_codes.is_empty() {
                        "use -i/--ignore-failure to keep measuring".to_string()
                    } else {
                        format!(
                            "not an exit code -i/--ignore-failure={} ignores",
                            settings
                                .ignore_exit_codes
                                .iter()
                                .map(i32::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    };
                    c.stopped = Some(format!(
                        "{}; {hint}",
                        crate::exec::describe_failure(what, &result)
                    ));
                }
            }
            if let Step::Measure(iteration) = step {
                if c.planned.is_none() {
                    let first = Duration::from_nanos(result.measurement.wall_ns);
                    c.planned = Some(settings.policy.run_count(first));
                }
                c.measured += 1;
                if settings.detect.is_some() && ok {
                    c.walls.push(result.measurement.wall_ns as f64 / 1e9);
                }
                let mut result = result;
                let output = match result.stdout.take().filter(|o| !o.is_empty()) {
                    None => None,
                    Some(o) => match outputs.store(&o) {
                        Ok(digest) => Some((digest, o.truncated())),
                        Err(e) => {
                            c.stopped = Some(format!("could not store its captured output: {e}"));
                            None
                        }
                    },
                };
                // Taken by the storing side at its next wake-up (nobody is woken here).
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Measured {
                        cmd: i,
                        iteration,
                        started_at,
                        result,
                        concurrent,
                        output,
                    });
            }
        }
    }

    for &i in group {
        let c = &mut cmds[i];
        if let Err(e) = c.inv.run_cleanup(ex, kill)
            && c.stopped.is_none()
        {
            c.stopped = Some(e);
        }
    }
}

/// [`Detect`]: when the group's planned runs are done, plan more for every command still
/// measuring if a command's runs and the reference's are too few to detect the change. `true`
/// when more runs were planned.
fn grow_to_detect(
    cmds: &mut [Cmd],
    group: &[usize],
    settings: &BenchSettings,
    measuring: Duration,
) -> bool {
    let Some(d) = settings.detect else {
        return false;
    };
    let Some(r) = group.iter().copied().find(|&i| cmds[i].reference) else {
        return false;
    };
    if measuring >= d.max_time || cmds[r].stopped.is_some() {
        return false;
    }
    let live: Vec<usize> = group
        .iter()
        .copied()
        .filter(|&i| cmds[i].stopped.is_none())
        .collect();
    let need = live
        .iter()
        .filter(|&&i| i != r)
        .filter_map(|&i| {
            benchfleet_analysis::head_to_head_runs_to_detect(
                &cmds[r].walls,
                &cmds[i].walls,
                d.change,
                &d.levels,
            )
        })
        .max();
    let have = live.iter().map(|&i| cmds[i].measured).min().unwrap_or(0);
    let Some(need) = need.map(|n| n.min(u32::MAX as usize) as u32) else {
        return false;
    };
    if need <= have {
        return false;
    }
    let mut to = need.max(have + (have / 5).max(1));
    if let Some(max) = settings.policy.max_runs {
        to = to.min(max);
    }
    let mut grew = false;
    for &i in &live {
        if cmds[i].planned.is_some_and(|p| p < to) {
            cmds[i].planned = Some(to);
            grew = true;
        }
    }
    grew
}

type StepResult = Result<(Timestamp, ProcessResult, bool), String>;

/// Run one round's tasks with one worker per CPU set, each pinned to its set.
fn run_parallel(
    lp: &Loop<'_>,
    cmds: &[Cmd],
    tasks: &[(usize, Step)],
    specs: Vec<ProcessSpec>,
    cpu_sets: &[Vec<usize>],
    overlap: &Overlap,
) -> Vec<StepResult> {
    let next = Mutex::new(0usize);
    let slots: Vec<Mutex<Option<StepResult>>> = tasks.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for cpus in cpu_sets.iter().take(tasks.len()) {
            let (next, slots, specs) = (&next, &slots, &specs);
            scope.spawn(move || {
                loop {
                    let k = {
                        let mut n = next.lock().expect("task index lock");
                        let k = *n;
                        *n += 1;
                        k
                    };
                    if k >= tasks.len() || lp.kill.is_killed() {
                        break;
                    }
                    let r = lp.one(tasks[k], &cmds[tasks[k].0], &specs[k], Some(cpus), overlap);
                    *slots[k].lock().expect("slot lock") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map_while(|s| s.into_inner().expect("slot lock"))
        .collect()
}

/// What the measurement loop keeps per command: the compact result (a few numbers per run, for
/// the exports) and running statistics of the successful wall times.
#[derive(Default)]
struct CommandStats {
    result: Option<BenchmarkResult>,
    /// Welford mean/variance, min, max and an HDR histogram of successful wall times, ns.
    wall: BenchStats,
    /// Why hardware counters were unavailable for the last run that had none.
    counter_reason: Option<String>,
}

impl CommandStats {
    fn push(&mut self, record: &RunRecord, counter_reason: Option<String>) {
        self.result
            .get_or_insert_with(|| BenchmarkResult::new(record))
            .push(record);
        if record.outcome.is_success() {
            self.wall.record(record.measurement.wall_ns);
        }
        if record.instructions().is_none() && counter_reason.is_some() {
            self.counter_reason = counter_reason;
        }
    }
}

/// The record of a measured run, fed into its command's statistics on the way.
fn record_of_measured(
    run: &RunInfo,
    (c, own_tags): (&BenchCommand, &BTreeMap<String, String>),
    settings: &BenchSettings,
    stats: &mut CommandStats,
    m: Measured,
) -> RunRecord {
    let counter_reason = m.result.counters.unavailable.clone();
    let mut rtags = settings.tags.clone();
    rtags.extend(own_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let counters = &m.result.counters;
    if let Some(n) = counters.instructions {
        rtags.insert(RunRecord::TAG_INSTRUCTIONS.into(), n.to_string());
    }
    if let Some(n) = counters.cycles {
        rtags.insert(RunRecord::TAG_CYCLES.into(), n.to_string());
    }
    rtags.insert(RunRecord::TAG_CONCURRENT.into(), m.concurrent.to_string());
    if let Some((digest, truncated)) = m.output {
        rtags.insert(RunRecord::TAG_STDOUT.into(), digest.to_hex());
        if truncated {
            rtags.insert("output.truncated".into(), "true".into());
        }
    }
    let owner = RecordOwner {
        run_id: run.run_id.clone(),
        suite: run.suite.clone(),
        name: c.name.clone(),
        kind: NodeKind::Benchmark,
        command: c.command.clone(),
        parameters: c.parameters.clone(),
    };
    let record = crate::exec::record_of(&owner, m.iteration, m.started_at, m.result, rtags);
    stats.push(&record, counter_reason);
    record
}

/// The running moments of `wall` (ns) in seconds; `None` before the first successful run.
fn running_wall(wall: &BenchStats) -> Option<RunningWall> {
    let r = wall.running();
    Some(RunningWall {
        count: r.count(),
        mean: r.mean()? / 1e9,
        stddev: r.std_dev().map(|s| s / 1e9),
        min: r.min()? / 1e9,
        max: r.max()? / 1e9,
    })
}

/// hyperfine's warning for commands too short to measure through a shell (mean under 5 ms
/// after subtracting the shell's spawn time).
fn short_with_shell_warning(name: &str, wall: &BenchStats, shell: &Measurement) -> Option<String> {
    let mean_ns = wall.running().mean()?;
    (mean_ns < 5e6).then(|| {
        format!(
            "warning: `{name}` took less than 5 ms on average; the shell's spawn time ({:.2} ms) was subtracted, which cannot be calibrated much more precisely than that. Run without a shell (-N) for accurate numbers",
            shell.wall_ns as f64 / 1e6
        )
    })
}

/// Warnings about runs without hardware counters when they were asked for: one line when no run
/// had them, else one per command where some runs lacked them, with the reason (`reasons[i]` is
/// the last reason seen for `results[i]`).
pub fn counter_warnings(results: &[BenchmarkResult], reasons: &[Option<String>]) -> Vec<String> {
    let total: usize = results.iter().map(BenchmarkResult::runs).sum();
    let missing: usize = results
        .iter()
        .map(BenchmarkResult::runs_without_counters)
        .sum();
    let why = |r: Option<&Option<String>>| match r.and_then(Option::as_deref) {
        Some(reason) => format!(" ({reason})"),
        None => String::new(),
    };
    if total == 0 || missing == 0 {
        return Vec::new();
    }
    if missing == total {
        let reason = why(reasons.iter().find(|r| r.is_some()));
        return vec![format!(
            "warning: hardware counters are unavailable here{reason}: no PMU, or perf_event_paranoid forbids them; they are recorded as unavailable, not zero"
        )];
    }
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.runs_without_counters() > 0)
        .map(|(i, r)| {
            format!(
                "warning: `{}`: {} of {} runs have no hardware counters{}; their counts are recorded as unavailable, not zero, and the means use the runs that have them",
                r.name,
                r.runs_without_counters(),
                r.runs(),
                why(reasons.get(i))
            )
        })
        .collect()
}

/// Warnings about statistical outliers in each command's successful wall times. Both
/// classifications count: a run beyond Tukey's severe fences (3 IQR), a run beyond a Tukey
/// fence that is also a modified-z outlier (|z| > [`benchfleet_analysis::MODIFIED_Z_THRESHOLD`]),
/// or modified-z outliers in at least a tenth of the runs. Outliers are never dropped: they stay
/// in the statistics.
pub fn outlier_warnings(results: &[BenchmarkResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| {
            let w = benchfleet_analysis::outliers_to_warn(&r.successful_times())?;
            Some(format!(
                "warning: `{}`: statistical outliers in {} runs ({} severe, {} mild by Tukey fences; {} with |modified z| > {}). They are kept in the statistics; a quiet machine, more warmup (-w) or more runs help",
                r.name,
                w.samples,
                w.severe,
                w.mild,
                w.z,
                benchfleet_analysis::MODIFIED_Z_THRESHOLD
            ))
        })
        .collect()
}

/// Measure `commands` and store the results (a [`RunInfo`] with source `bench`, one record per
/// measured run). Failures of commands are recorded, not errors. The run ends with a final
/// status on every path, a store error included (then `failed`).
///
/// Events: `Started` (the commands are the nodes, in command order) and a `NodeStarted` per
/// command once the run is created; `RunStarted`/`Measured` per measured run (warmups are not
/// told), sent with its record at the storing side's next wake-up (every 50 ms) rather than as
/// it happens, so that telling them wakes no thread per run; `Stored` per command as its records are written in batches; a `NodeFinished` per
/// command at the end, on every path once `Started` was sent (`Failed` with the reason when the
/// command stopped or the benchmark could not go on).
pub async fn run_bench(
    commands: &[BenchCommand],
    settings: &BenchSettings,
    storage: &Storage,
    events: UnboundedSender<RunnerEvent>,
) -> Result<BenchOutcome, BenchError> {
    run_bench_with(
        commands,
        settings,
        storage,
        events,
        std::sync::Arc::new(crate::exec::Real),
    )
    .await
}

/// [`run_bench`] with the processes run by `executor` (a mock in tests).
pub async fn run_bench_with(
    commands: &[BenchCommand],
    settings: &BenchSettings,
    storage: &Storage,
    events: UnboundedSender<RunnerEvent>,
    executor: std::sync::Arc<dyn Executor>,
) -> Result<BenchOutcome, BenchError> {
    if commands.is_empty() {
        return Err(usage("no command to benchmark"));
    }
    check_order(commands, settings.order)?;
    let mut warnings = Vec::new();
    let shell = settings
        .shell
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "none");
    // Without -S, a command line with shell syntax runs through `syntax_shell` (never as literal
    // arguments), or is refused.
    let spec_of = |flag: &str, text: &str| -> Result<(ProcessSpec, Option<String>), BenchError> {
        if shell.is_none()
            && let Some(what) = crate::exec::shell_syntax(text)
        {
            return match settings.syntax_shell.as_deref() {
                Some(sh) => Ok((command_spec(text, Some(sh))?, Some(what))),
                None => Err(usage(format!(
                    "{flag}`{text}` uses shell syntax ({what}) but -N/--shell=none runs commands without a shell; drop -N (benchfleet then runs it through `sh`) or give -S sh"
                ))),
            };
        }
        Ok((command_spec(text, shell)?, None))
    };
    let hook = |what: &str, text: &Option<String>| -> Result<Option<Hook>, BenchError> {
        text.as_deref()
            .map(|t| {
                let (mut spec, _) = spec_of(&format!("{what} command "), t)?;
                spec.timeout = settings.timeout;
                Ok(Hook {
                    what: format!("{what} command `{t}`"),
                    spec,
                })
            })
            .transpose()
    };
    let mut cmds = Vec::with_capacity(commands.len());
    let mut through_syntax_shell = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let (mut spec, syntax) = spec_of("", &c.command)?;
        if let Some(what) = syntax {
            through_syntax_shell.push((i, what));
        }
        spec.timeout = settings.timeout;
        spec.stdout = settings.outputs.get(i).unwrap_or(&settings.output).clone();
        spec.stdin = settings.input.clone();
        spec.stderr_tail = settings.stderr_tail;
        spec.memory_limit = settings.memory_limit;
        spec.counters = settings.counters;
        cmds.push(Cmd {
            inv: Invocation {
                spec,
                prepare: hook("prepare", &c.prepare)?,
                conclude: hook("conclude", &c.conclude)?,
                setup: hook("setup", &c.setup)?,
                cleanup: hook("cleanup", &c.cleanup)?,
                overhead: None,
            },
            planned: None,
            measured: 0,
            stopped: None,
            failed_runs: 0,
            last_cpu_ns: None,
            reference: c.reference,
            walls: Vec::new(),
        });
    }

    let jobs = settings.jobs.max(1);
    let cpu_sets = if jobs > 1 {
        let allowed = benchfleet_metrics::allowed_cpus();
        let sets = cpu_sets(&allowed, jobs, settings.cpus_per_job);
        let physical = physical_cores().unwrap_or(allowed.len());
        let per = sets.first().map_or(1, Vec::len);
        warnings.extend(concurrency_warnings(jobs, per, physical, allowed.len()));
        sets
    } else {
        Vec::new()
    };

    let mut tags = settings.tags.clone();
    tags.insert(TAG_ORDER.into(), settings.order.as_str().into());
    tags.insert(TAG_SEED.into(), settings.seed.to_string());
    // The run's row is written while the first runs are measured (on the other CPUs); the
    // storing side waits for it before it stores a record.
    let mut session = Session::start(
        storage,
        session::new_run(host::new_run_id(), BENCH_SOURCE, BENCH_SOURCE, tags),
    );
    let run = session.run().clone();
    let _ = events.send(RunnerEvent::Started {
        run_id: run.run_id.clone(),
        nodes: commands.len(),
    });
    for (i, c) in commands.iter().enumerate() {
        let _ = events.send(RunnerEvent::NodeStarted {
            node: i,
            name: c.name.clone(),
            kind: NodeKind::Benchmark,
        });
    }
    // Records durable per command.
    let mut stored_of = vec![0usize; commands.len()];
    // Every command ends with its records durable; `why` fails those that did not stop already.
    let finish_commands = |stored_of: &[usize], stopped: &[Option<String>], why: Option<&str>| {
        for (i, c) in commands.iter().enumerate() {
            let failure = stopped
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| why.map(str::to_owned));
            let _ = events.send(RunnerEvent::NodeFinished {
                node: i,
                name: c.name.clone(),
                state: if failure.is_some() {
                    NodeState::Failed
                } else {
                    NodeState::Succeeded
                },
                runs: stored_of[i],
                failure,
            });
        }
    };
    let kill = Kill::new();
    let stop = crate::event::kill_on_cancel(&settings.cancel, &kill, settings.grace);

    // The shell to calibrate: -S's for every command, or the one running the commands with
    // shell syntax.
    let calibrated = match (shell, settings.syntax_shell.as_deref()) {
        (Some(sh), _) => Some(sh),
        (None, Some(sh)) if !through_syntax_shell.is_empty() => Some(sh),
        _ => None,
    };
    let overhead = match calibrated {
        Some(sh) => {
            let (sh2, ex) = (sh.to_owned(), executor.clone());
            let cost = match tokio::task::spawn_blocking(move || ex.calibrate(&sh2)).await {
                Ok(Ok(c)) => c,
                failed => {
                    // Nothing was measured: the run ends failed rather than `running`.
                    stop.abort();
                    let err = match failed {
                        Ok(Err(e)) => e.into(),
                        Err(e) => BenchError::Internal(e.to_string()),
                        Ok(Ok(_)) => unreachable!("matched above"),
                    };
                    finish_commands(&stored_of, &[], Some(&err.to_string()));
                    session.finish(session::final_status(false, true)).await?;
                    return Err(err);
                }
            };
            if shell.is_some() {
                session.tags_mut().insert(TAG_SHELL.into(), sh.to_owned());
                session
                    .tags_mut()
                    .insert(TAG_SHELL_OVERHEAD.into(), cost.wall_ns.to_string());
            }
            Some(cost)
        }
        None => None,
    };
    let mut record_tags: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); commands.len()];
    for (i, c) in cmds.iter_mut().enumerate() {
        if shell.is_some() {
            c.inv.overhead = overhead;
        } else if through_syntax_shell.iter().any(|(k, _)| *k == i)
            && let (Some(o), Some(sh)) = (overhead, calibrated)
        {
            c.inv.overhead = Some(o);
            record_tags[i].insert(TAG_SHELL.into(), sh.to_owned());
            record_tags[i].insert(TAG_SHELL_OVERHEAD.into(), o.wall_ns.to_string());
        }
    }
    let through_shell: Vec<(String, String)> = through_syntax_shell
        .iter()
        .map(|(i, what)| (commands[*i].name.clone(), what.clone()))
        .collect();

    // Started beside the first runs as well (its first `/proc` reading takes ≈ 0.5 ms).
    session.sample(settings.sample_interval);

    let settings_owned = settings.clone();
    let outputs = OutputSink {
        storage: storage.clone(),
        rt: tokio::runtime::Handle::current(),
    };
    let queue = std::sync::Arc::new(Mutex::new(Vec::<Measured>::new()));
    let tx = queue.clone();
    let measuring_kill = kill.clone();
    let told = std::sync::Arc::new(Told::default());
    let measuring_told = told.clone();
    let mut measuring = tokio::task::spawn_blocking(move || {
        // This thread measures (and starts the measured processes); the others yield to it.
        let _idle = settings_owned
            .idle_harness
            .then(benchfleet_metrics::idle_other_threads);
        let pinned = (settings_owned.pin_measuring && settings_owned.jobs <= 1)
            .then(benchfleet_metrics::pin_measuring_thread)
            .flatten();
        let mut cmds = cmds;
        measure(
            &*executor,
            &measuring_kill,
            &mut cmds,
            &settings_owned,
            Placement {
                cpu_sets: &cpu_sets,
                pin: pinned.as_ref(),
            },
            &outputs,
            &tx,
            &measuring_told,
        );
        (cmds, pinned.map(|p| p.cpu))
    });

    // Each run becomes a record as it finishes: fed into its command's running statistics and
    // stored while the next runs are measured. This side wakes up every FLUSH_EVERY, takes what
    // was measured meanwhile from the queue and writes it in batches, and once more as soon as
    // measuring ends. Handing a run over wakes no thread: a wake-up per run (a cross-CPU
    // interrupt, costly on a VM) showed as overhead next to hyperfine's loop. The runs' events
    // travel the same way.
    let mut acc: Vec<CommandStats> = commands.iter().map(|_| CommandStats::default()).collect();
    let mut stored = 0usize;
    let mut store_error: Option<StoreError> = None;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finished = None;
    while finished.is_none() {
        tokio::select! {
            _ = tick.tick() => {}
            done = &mut measuring => finished = Some(done),
        }
        // After `measuring` ended every run is in the queue.
        let measured = std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()));
        // Taken after the runs: the events of every run taken are in (told before it was queued).
        for e in std::mem::take(&mut *told.lock().unwrap_or_else(|p| p.into_inner())) {
            let _ = events.send(e);
        }
        let mut measured = measured.into_iter().peekable();
        while measured.peek().is_some() {
            let mut of_batch = vec![0usize; commands.len()];
            let records: Vec<RunRecord> = measured
                .by_ref()
                .take(RECORD_BATCH)
                .map(|m| {
                    of_batch[m.cmd] += 1;
                    let owner = (&commands[m.cmd], &record_tags[m.cmd]);
                    record_of_measured(&run, owner, settings, &mut acc[m.cmd], m)
                })
                .collect();
            if store_error.is_some() {
                continue;
            }
            if let Err(e) = session.registered().await {
                kill.kill(settings.grace);
                store_error = Some(e);
                continue;
            }
            let n = records.len();
            match storage.write_records(&records).await {
                Ok(_) => {
                    stored += n;
                    for (node, records) in of_batch.into_iter().enumerate() {
                        if records > 0 {
                            stored_of[node] += records;
                            let _ = events.send(RunnerEvent::Stored { node, records });
                        }
                    }
                }
                Err(e) => {
                    // Stop measuring what could not be kept; what was stored stays stored.
                    kill.kill(settings.grace);
                    store_error = Some(e);
                }
            }
        }
    }
    stop.abort();
    let interrupted = settings.cancel.is_cancelled();
    let (cmds, measuring_cpu) = match finished.expect("the loop ends when measuring has") {
        Ok(done) => done,
        Err(e) => {
            let err = BenchError::Internal(e.to_string());
            finish_commands(&stored_of, &[], Some(&err.to_string()));
            session
                .finish(session::final_status(interrupted, true))
                .await?;
            return Err(err);
        }
    };
    if let Some(cpu) = measuring_cpu {
        session
            .tags_mut()
            .insert(TAG_MEASURING_CPU.into(), cpu.to_string());
    }
    if let Err(e) = session.registered().await {
        store_error.get_or_insert(e);
    }
    if let Some(e) = store_error {
        let stopped: Vec<Option<String>> = cmds.iter().map(|c| c.stopped.clone()).collect();
        finish_commands(&stored_of, &stopped, Some(&e.to_string()));
        session
            .finish(session::final_status(interrupted, true))
            .await?;
        return Err(e.into());
    }

    let reports: Vec<CommandReport> = commands
        .iter()
        .zip(&cmds)
        .map(|(c, st)| CommandReport {
            name: c.name.clone(),
            runs: st.measured as usize,
            failure: st.stopped.clone(),
            failed_runs: st.failed_runs,
        })
        .collect();
    let any_failed = reports.iter().any(|r| r.failure.is_some());
    let stopped: Vec<Option<String>> = reports.iter().map(|r| r.failure.clone()).collect();
    finish_commands(&stored_of, &stopped, None);
    let done = session
        .finish(session::final_status(interrupted, any_failed))
        .await?;
    warnings.extend(done.warnings.iter().map(|w| format!("warning: {w}")));
    if let Some(s) = &done.series {
        warnings.extend(describe_series(s));
    }
    for ((c, a), st) in commands.iter().zip(&acc).zip(&cmds) {
        if let Some(o) = &st.inv.overhead {
            warnings.extend(short_with_shell_warning(&c.name, &a.wall, o));
        }
    }
    let results: Vec<BenchmarkResult> = acc
        .iter_mut()
        .filter_map(|a| {
            let mut r = a.result.take()?;
            r.running = running_wall(&a.wall);
            Some(r)
        })
        .collect();
    warnings.extend(outlier_warnings(&results));
    if settings.counters {
        let reasons: Vec<Option<String>> = acc.iter().map(|a| a.counter_reason.clone()).collect();
        warnings.extend(counter_warnings(&results, &reasons));
    }
    Ok(BenchOutcome {
        run: done.run,
        results,
        records_stored: stored,
        commands: reports,
        shell_overhead: overhead,
        through_shell,
        series: done.series,
        warnings,
    })
}

#[cfg(test)]
mod tests;
