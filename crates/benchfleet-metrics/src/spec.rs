//! What to run and how: [`ProcessSpec`].

use std::path::PathBuf;
use std::time::Duration;

/// Name of the variable [`ProcessSpec::env_padding`] adds, like hyperfine's
/// `HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET`.
pub const ENV_PADDING_VAR: &str = "BENCHFLEET_RANDOMIZED_ENVIRONMENT_OFFSET";

/// Default number of trailing stderr bytes kept ([`ProcessSpec::stderr_tail`]).
pub const DEFAULT_STDERR_TAIL: usize = 4096;

/// Where the child's stdout goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// `/dev/null` (what hyperfine does by default).
    #[default]
    Null,
    /// Keep at most the first `limit` bytes (see [`crate::ProcessResult::stdout`]); what the
    /// child writes beyond them is dropped and the capture is flagged
    /// [`truncated`](crate::CapturedOutput::truncated).
    ///
    /// The child writes straight into an unlinked temporary file in
    /// [`ProcessSpec::capture_dir`], cut to `limit` bytes after it exits: no reader thread runs
    /// during the measurement, and neither this process's memory nor RAM holds the output (unless
    /// the directory is a tmpfs), so a limit of gigabytes costs disk, not memory.
    Capture { limit: usize },
    /// This process's own stdout and stderr (hyperfine's `--show-output`, `--output=inherit`):
    /// no stderr tail is kept then.
    Inherit,
    /// A pipe that this process reads and discards (hyperfine's `--output=pipe`), for commands
    /// that behave differently when writing to a pipe.
    Pipe,
    /// This file, created or truncated before every run (hyperfine's `--output=FILE`).
    File(PathBuf),
}

/// One process to run and measure. Build with [`ProcessSpec::new`] and set the fields you need;
/// new optional fields may be added, so prefer that over a struct literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Program name (looked up in `PATH`) or path.
    pub program: String,
    pub args: Vec<String>,
    /// Added to / overriding the inherited environment.
    pub env: Vec<(String, String)>,
    /// Working directory of the child; the parent's when `None`.
    pub cwd: Option<PathBuf>,
    /// On expiry the whole process group is killed (SIGKILL) and the outcome is `TimedOut`.
    /// Without a timeout (or when the child exits in time) background processes it leaves
    /// behind are not killed: a job may legitimately start a server.
    pub timeout: Option<Duration>,
    pub stdout: OutputMode,
    /// The child's stdin: this file, opened before every run (hyperfine's `--input FILE`);
    /// `/dev/null` when `None`.
    pub stdin: Option<PathBuf>,
    /// Directory of the temporary file [`OutputMode::Capture`] writes to (unlinked: nothing is
    /// left behind); [`std::env::temp_dir`] when `None`. A directory that cannot hold one makes
    /// the run `SpawnFailed`, naming it.
    pub capture_dir: Option<PathBuf>,
    /// Keep at most this many trailing stderr bytes (0: stderr goes to `/dev/null`).
    pub stderr_tail: usize,
    /// Pin the child (and everything it starts) to these CPU numbers (`sched_setaffinity`).
    /// A CPU this process may not use makes the run `SpawnFailed` with a message listing the
    /// allowed ones.
    pub cpus: Option<Vec<usize>>,
    /// Memory limit in bytes: a cgroup v2 `memory.max` when a cgroup with the memory controller is
    /// writable, otherwise `RLIMIT_AS` (address space, which counts mappings, not only RSS). The
    /// method used is reported in [`crate::ProcessResult::memory_limit`].
    pub memory_limit: Option<u64>,
    /// Adds [`ENV_PADDING_VAR`] with this many bytes to the environment, to move the stack by a
    /// run-dependent amount (decorrelates memory-layout effects). Draw it per run from
    /// [`EnvRandomizer`].
    pub env_padding: Option<usize>,
    /// Count instructions and cycles of the child and its descendants (perf_event, user space
    /// only when the kernel's paranoia level requires it). Costs a fork instead of a vfork-like
    /// spawn, so it is off by default.
    pub counters: bool,
}

impl ProcessSpec {
    /// A spec with defaults: inherited environment and cwd, no timeout, stdout to `/dev/null`,
    /// the last [`DEFAULT_STDERR_TAIL`] bytes of stderr kept, no isolation, no counters.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            timeout: None,
            stdout: OutputMode::Null,
            stdin: None,
            capture_dir: None,
            stderr_tail: DEFAULT_STDERR_TAIL,
            cpus: None,
            memory_limit: None,
            env_padding: None,
            counters: false,
        }
    }

    /// `shell -c command`: the spec used in shell mode (see [`crate::shell_spawn_cost`]).
    pub fn shell(shell: &str, command: &str) -> Self {
        ProcessSpec::new(shell, ["-c", command])
    }
}

/// Deterministic per-run environment padding sizes in `0..max` (hyperfine uses 0..4096), from a
/// seed the caller records so a run order can be reproduced.
#[derive(Clone, Debug)]
pub struct EnvRandomizer {
    state: u64,
    max: usize,
}

impl EnvRandomizer {
    /// Sizes in `0..max`; `max == 0` always yields 0.
    pub fn new(seed: u64, max: usize) -> Self {
        EnvRandomizer { state: seed, max }
    }

    /// The next padding size (splitmix64).
    pub fn next_padding(&mut self) -> usize {
        if self.max == 0 {
            return 0;
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % self.max as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_padding_is_seeded_bounded_and_varied() {
        for (seed, max) in [(0u64, 4096usize), (42, 4096), (7, 3), (1, 1), (9, 0)] {
            let a: Vec<usize> = std::iter::repeat_with({
                let mut r = EnvRandomizer::new(seed, max);
                move || r.next_padding()
            })
            .take(200)
            .collect();
            let mut again = EnvRandomizer::new(seed, max);
            assert!(
                a.iter().all(|n| *n == again.next_padding()),
                "same seed, same sizes"
            );
            assert!(a.iter().all(|n| *n < max.max(1)), "{seed} {max}: {a:?}");
            let distinct: std::collections::BTreeSet<_> = a.iter().collect();
            assert_eq!(distinct.len() > 1, max > 1, "{seed} {max}");
        }
    }
}
