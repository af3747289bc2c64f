//! Execution: one invocation (a [`ProcessSpec`] with its hooks, the shell's calibrated spawn
//! cost, its placement on CPUs and memory limit) runs once with cancellation and yields a
//! measurement or a described failure. Suites, `bench` and `load` all run their processes
//! through here, behind the [`Executor`] seam (a mock in tests, real processes otherwise).
//!
//! Also the one record builder ([`record_of`]), the one failure wording ([`describe_failure`])
//! and the tags every driver writes.
//!
//! **Architecture invariant:** a lower module: it imports no driver and no consumer.

use std::collections::BTreeMap;
use std::time::Duration;

use benchfleet_metrics::{Kill, ProcessResult, ProcessSpec, ShellCostError};
use benchfleet_model::{Measurement, NodeKind, RunId, RunRecord, SCHEMA_VERSION, Timestamp};

use crate::cpus::Overlap;
use crate::host;

/// Record tag: how the node's memory limit was enforced, `cgroup` or `rlimit` (absent: no
/// limit). Jobs get their `memory` (or their profile's) as a limit when several may run at once.
pub const TAG_MEMORY_LIMIT: &str = "run.memory_limit";
/// Record tag: the CPUs the run was pinned to, e.g. `0,1` (absent: not pinned, `-j 1`).
pub const TAG_CPUS: &str = "run.cpus";
/// Record and run tag: the shell the command ran through (absent: executed directly).
pub const TAG_SHELL: &str = "run.shell";
/// Record and run tag: the shell's mean spawn time subtracted from the run's times, ns.
pub const TAG_SHELL_OVERHEAD: &str = "run.shell_overhead_ns";
/// The name `bench` and `load` runs stored [`TAG_SHELL`] under before it had one name; read by
/// [`shell_of`], never written.
pub const LEGACY_TAG_SHELL: &str = "bench.shell";
/// The old name of [`TAG_SHELL_OVERHEAD`] on `bench` runs; read by [`shell_overhead_of`].
pub const LEGACY_TAG_SHELL_OVERHEAD: &str = "bench.shell_overhead_ns";
/// Runs of `SHELL -c ''` averaged to estimate a shell's spawn cost.
pub const SHELL_COST_SAMPLES: u32 = 50;
/// A shell-mode command faster than this on average gets a warning: the subtracted spawn cost
/// cannot be calibrated much more precisely.
pub const SHELL_SHORT_MEAN: Duration = Duration::from_millis(5);

/// The shell a run or record ran through, whichever name it was stored under.
pub fn shell_of(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(TAG_SHELL)
        .or_else(|| tags.get(LEGACY_TAG_SHELL))
        .map(String::as_str)
}

/// The subtracted shell spawn time of a run or record, whichever name it was stored under.
pub fn shell_overhead_of(tags: &BTreeMap<String, String>) -> Option<Duration> {
    tags.get(TAG_SHELL_OVERHEAD)
        .or_else(|| tags.get(LEGACY_TAG_SHELL_OVERHEAD))
        .and_then(|v| v.parse().ok())
        .map(Duration::from_nanos)
}

/// Runs processes. [`Real`] starts them; tests script results with a mock.
pub trait Executor: Send + Sync {
    /// Run `spec` once, measured; `kill` stops it (after its grace period).
    fn run(&self, spec: &ProcessSpec, kill: &Kill) -> ProcessResult;
    /// The mean spawn cost of `SHELL -c ''`, subtracted from shell-mode runs.
    fn calibrate(&self, shell: &str) -> Result<Measurement, ShellCostError>;
}

/// Real processes ([`benchfleet_metrics::run_cancellable`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Real;

impl Executor for Real {
    fn run(&self, spec: &ProcessSpec, kill: &Kill) -> ProcessResult {
        benchfleet_metrics::run_cancellable(spec, kill)
    }
    fn calibrate(&self, shell: &str) -> Result<Measurement, ShellCostError> {
        match command_spec("", Some(shell)) {
            Ok(spec) => benchfleet_metrics::spawn_cost(shell, &spec, SHELL_COST_SAMPLES),
            Err(e) => Err(ShellCostError::ShellFailed {
                shell: shell.to_owned(),
                outcome: e.0,
            }),
        }
    }
}

/// A command line that cannot become a process spec (bad quoting, empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

/// Build the process spec for one command line, directly or through `shell` (`SHELL -c
/// COMMAND`; a shell with arguments, e.g. `bash --norc`, is split into words like a command,
/// as hyperfine does, and `-c COMMAND` follows them).
pub fn command_spec(command: &str, shell: Option<&str>) -> Result<ProcessSpec, CommandError> {
    match shell {
        Some(sh) if sh.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') => {
            let mut words = shell_words::split(sh).map_err(|e| {
                CommandError(format!(
                    "-S/--shell {sh:?}: cannot split it into words ({e}); check the quotes"
                ))
            })?;
            if words.is_empty() || words[0].is_empty() {
                return Err(CommandError(format!(
                    "-S/--shell {sh:?}: the shell is empty; use e.g. `-S sh`"
                )));
            }
            let program = words.remove(0);
            words.extend(["-c".to_owned(), command.to_owned()]);
            Ok(ProcessSpec::new(program, words))
        }
        Some(sh) => Ok(ProcessSpec::shell(sh, command)),
        None => {
            let mut words = shell_words::split(command).map_err(|e| {
                CommandError(format!(
                    "cannot split {command:?} into words ({e}); check the quotes, or run it through a shell with -S sh"
                ))
            })?;
            if words.is_empty() {
                return Err(CommandError(format!("command {command:?} is empty")));
            }
            let program = words.remove(0);
            Ok(ProcessSpec::new(program, words))
        }
    }
}

/// Shell keywords and builtins that are no program of their own (or must not run as one): a
/// command line starting with one needs a shell.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[[", "{", "alias", "break", "case", "cd", "command", "continue", "eval",
    "exec", "exit", "export", "for", "function", "if", "local", "read", "readonly", "return",
    "select", "set", "shift", "source", "time", "trap", "type", "ulimit", "umask", "unset",
    "until", "wait", "while",
];

/// The first shell construct in `command` that only a shell understands, described for a user
/// (`` `&&` ``, `a redirection (`>`)`, `` the shell builtin `exit` `` …), or `None` when splitting
/// it into words like a shell would runs the same program with the same arguments.
///
/// Found outside single quotes: `| & ; < > ( )`, command substitution and expansion (`` ` ``, `$`,
/// also inside double quotes), globs (`* ? [`), `~` and `#` at the start of a word, a line
/// break, a leading `NAME=value` assignment, and a first word that is a shell keyword or builtin.
pub fn shell_syntax(command: &str) -> Option<String> {
    let mut chars = command.chars().peekable();
    let (mut single, mut double) = (false, false);
    let mut word_start = true;
    let mut first_word = String::new();
    let mut in_first = true;
    while let Some(c) = chars.next() {
        if single {
            single = c != '\'';
            continue;
        }
        let at_start = word_start;
        word_start = false;
        if double {
            match c {
                '"' => double = false,
                '\\' => {
                    chars.next();
                }
                '$' | '`' => return Some(format!("`{c}` (expansion)")),
                _ => {}
            }
            continue;
        }
        match c {
            '\'' => single = true,
            '"' => double = true,
            '\\' => {
                if let Some(n) = chars.next()
                    && in_first
                {
                    first_word.push(n);
                }
                continue;
            }
            c if c == ' ' || c == '\t' => {
                word_start = true;
                if !first_word.is_empty() {
                    in_first = false;
                }
                continue;
            }
            '\n' | '\r' => return Some("a line break (several commands)".into()),
            '|' | '&' | ';' => {
                let mut op = c.to_string();
                if chars.peek() == Some(&c) {
                    op.push(c);
                }
                return Some(format!("`{op}`"));
            }
            '<' | '>' => return Some(format!("a redirection (`{c}`)")),
            '(' | ')' => return Some(format!("`{c}` (subshell or grouping)")),
            '$' | '`' => return Some(format!("`{c}` (expansion)")),
            '*' | '?' | '[' => return Some(format!("a glob (`{c}`)")),
            '~' | '#' if at_start => {
                return Some(if c == '~' {
                    "`~` (home directory)".into()
                } else {
                    "`#` (comment)".into()
                });
            }
            '=' if in_first
                && !first_word.is_empty()
                && first_word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !first_word.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                return Some(format!("a variable assignment (`{first_word}=`)"));
            }
            _ => {}
        }
        if in_first {
            first_word.push(c);
        }
    }
    let program = shell_words::split(command).ok()?.into_iter().next()?;
    SHELL_WORDS
        .contains(&program.as_str())
        .then(|| format!("the shell builtin `{program}`"))
}

/// Why a process run failed, in one line: `{what} {outcome}`, then the last (at most three)
/// lines of its stderr joined with ` | `.
pub fn describe_failure(what: &str, r: &ProcessResult) -> String {
    let mut msg = if what.is_empty() {
        r.outcome.describe()
    } else {
        format!("{what} {}", r.outcome.describe())
    };
    if let Some(tail) = r
        .stderr_tail
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let last: Vec<&str> = tail.lines().rev().take(3).collect();
        msg.push_str(": ");
        msg.push_str(&last.into_iter().rev().collect::<Vec<_>>().join(" | "));
    }
    msg
}

/// Whose records a measured command writes: the run, its suite (or source) and the benchmark.
#[derive(Clone, Debug)]
pub struct RecordOwner {
    pub run_id: RunId,
    pub suite: String,
    pub name: String,
    pub kind: NodeKind,
    /// The command as displayed and recorded.
    pub command: String,
    pub parameters: BTreeMap<String, String>,
}

/// The one record builder: the record of one measured run (stderr kept for failures only).
pub fn record_of(
    owner: &RecordOwner,
    iteration: u32,
    started_at: Timestamp,
    result: ProcessResult,
    mut tags: BTreeMap<String, String>,
) -> RunRecord {
    let ok = result.outcome.is_success();
    tags.insert(
        crate::machine::TAG_CLASS.to_owned(),
        crate::machine::class().to_owned(),
    );
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: owner.run_id.clone(),
        suite: owner.suite.clone(),
        name: owner.name.clone(),
        kind: owner.kind,
        command: owner.command.clone(),
        parameters: owner.parameters.clone(),
        iteration,
        started_at,
        measurement: result.measurement,
        outcome: result.outcome,
        stderr_tail: if ok { None } else { result.stderr_tail },
        tags,
    }
}

/// An unmeasured command of an invocation: how its failure is named, and its spec.
#[derive(Clone, Debug)]
pub struct Hook {
    /// E.g. "`prepare` command" (suites) or "prepare command `make clean`" (bench).
    pub what: String,
    pub spec: ProcessSpec,
}

/// One measured command with its hooks and the shell cost to subtract.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub spec: ProcessSpec,
    /// Once before the first run.
    pub setup: Option<Hook>,
    /// Before every run (warmups included).
    pub prepare: Option<Hook>,
    /// After every run.
    pub conclude: Option<Hook>,
    /// Once after the last run, whenever setup ran.
    pub cleanup: Option<Hook>,
    /// The shell's calibrated spawn cost, subtracted from every measured run.
    pub overhead: Option<Measurement>,
}

/// What happens around the measured process of [`Invocation::once`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The process is about to start; `running` processes of the run now (itself included).
    Started { running: u32 },
    /// It ended.
    Finished { ok: bool },
}

/// One run of an invocation: when it started, its result (shell cost subtracted), whether
/// another process of the run overlapped it, and how its `conclude` hook went.
#[derive(Debug)]
pub struct Once {
    pub started_at: Timestamp,
    pub result: ProcessResult,
    pub concurrent: bool,
    pub concluded: Result<(), String>,
}

impl Invocation {
    /// An invocation of `spec` without hooks or shell cost.
    pub fn new(spec: ProcessSpec) -> Invocation {
        Invocation {
            spec,
            setup: None,
            prepare: None,
            conclude: None,
            cleanup: None,
            overhead: None,
        }
    }

    /// Run `hook` (if any, and unless the run was stopped); its failure, described, unless the
    /// run was stopped meanwhile.
    pub fn hook(
        ex: &dyn Executor,
        hook: Option<&Hook>,
        pin: Option<&[usize]>,
        kill: &Kill,
    ) -> Result<(), String> {
        let Some(h) = hook else { return Ok(()) };
        if kill.is_killed() {
            // Stopped: a hook started now would only be killed.
            return Ok(());
        }
        let r = ex.run(&placed(&h.spec, pin), kill);
        if r.outcome.is_success() || kill.is_killed() {
            Ok(())
        } else {
            Err(describe_failure(&h.what, &r))
        }
    }

    pub fn run_setup(&self, ex: &dyn Executor, kill: &Kill) -> Result<(), String> {
        Invocation::hook(ex, self.setup.as_ref(), None, kill)
    }

    pub fn run_cleanup(&self, ex: &dyn Executor, kill: &Kill) -> Result<(), String> {
        Invocation::hook(ex, self.cleanup.as_ref(), None, kill)
    }

    /// prepare, the measured process (`spec`: this invocation's, or a variant of it, e.g. with
    /// environment padding), conclude; `pin` places all three on those CPUs. `Err` when the
    /// prepare command failed (nothing was measured).
    pub fn once(
        &self,
        ex: &dyn Executor,
        spec: &ProcessSpec,
        pin: Option<&[usize]>,
        kill: &Kill,
        overlap: &Overlap,
        on: &mut dyn FnMut(Phase),
    ) -> Result<Once, String> {
        Invocation::hook(ex, self.prepare.as_ref(), pin, kill)?;
        let started_at = host::now();
        let token = overlap.start();
        on(Phase::Started {
            running: overlap.running(),
        });
        let mut result = ex.run(&placed(spec, pin), kill);
        let concurrent = overlap.end(token);
        on(Phase::Finished {
            ok: result.outcome.is_success(),
        });
        if let Some(o) = &self.overhead {
            result.measurement = benchfleet_metrics::subtract_overhead(&result.measurement, o);
        }
        let concluded = Invocation::hook(ex, self.conclude.as_ref(), pin, kill);
        Ok(Once {
            started_at,
            result,
            concurrent,
            concluded,
        })
    }
}

/// `spec` pinned to `cpus` (unchanged without).
fn placed<'a>(spec: &'a ProcessSpec, cpus: Option<&[usize]>) -> std::borrow::Cow<'a, ProcessSpec> {
    match cpus {
        Some(c) if !c.is_empty() => {
            let mut s = spec.clone();
            s.cpus = Some(c.to_vec());
            std::borrow::Cow::Owned(s)
        }
        _ => std::borrow::Cow::Borrowed(spec),
    }
}

/// The spawn cost of each shell in `shells` (or why it could not be measured): the one shell
/// calibration of suites, `bench` and `load`.
pub fn shell_costs<'a>(
    ex: &dyn Executor,
    shells: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Result<Measurement, String>> {
    shells
        .into_iter()
        .map(|sh| (sh.to_owned(), ex.calibrate(sh).map_err(|e| e.to_string())))
        .collect()
}

/// A scripted executor for tests of the drivers' loops (no real processes).
#[cfg(test)]
pub(crate) mod mock;
#[cfg(test)]
mod tests;
