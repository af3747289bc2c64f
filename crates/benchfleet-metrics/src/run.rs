//! [`run`] and [`run_cancellable`]: spawn one child, measure it from its own `wait4`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use benchfleet_model::{Measurement, Outcome};

use crate::counters::{self, Counters};
use crate::isolation::{self, ChildSetup, MemoryLimit, MemoryLimitVia};
use crate::kill::Kill;
use crate::spec::{ENV_PADDING_VAR, OutputMode, ProcessSpec};
use crate::{spawn, sys};

/// How often a run polls a [`Kill`] that has no eventfd, or a child when pidfds are unavailable.
const FALLBACK_POLL: Duration = Duration::from_millis(10);

/// The captured stdout of one run ([`OutputMode::Capture`]): its first `limit` bytes, in an
/// unlinked temporary file that disappears when this is dropped. Nothing of it is in memory;
/// read it with [`CapturedOutput::reader`] (bounded buffers) or, when it is small,
/// [`CapturedOutput::to_vec`].
#[derive(Debug)]
pub struct CapturedOutput {
    file: File,
    len: u64,
    truncated: bool,
}

impl CapturedOutput {
    /// Bytes kept (at most the capture limit).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The child wrote more than the limit; the rest was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The file holding the kept bytes, from offset 0 (use positional reads, or
    /// [`CapturedOutput::reader`], rather than moving its shared offset).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A path that opens this (unlinked) file while `self` lives: `/proc/self/fd/N`. For APIs
    /// that take a path, e.g. streaming it into storage.
    ///
    /// Each open gets its own offset. A process the run started that outlives it and keeps
    /// writing to its stdout can still append to the file; [`CapturedOutput::len`] is what was
    /// there when the run ended.
    pub fn proc_path(&self) -> std::path::PathBuf {
        format!("/proc/self/fd/{}", self.file.as_raw_fd()).into()
    }

    /// A reader over the kept bytes from the start, independent of any other reader.
    pub fn reader(&self) -> impl io::Read + '_ {
        CapturedReader {
            file: &self.file,
            pos: 0,
            end: self.len,
        }
    }

    /// The kept bytes in memory: for small captures (check [`CapturedOutput::len`] first).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        let bytes = sys::read_range(&self.file, 0, len)?;
        if bytes.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the captured output shrank from {len} to {} bytes",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}

struct CapturedReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl io::Read for CapturedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// After the child exited: cut the capture file to `limit` bytes.
fn finish_capture(file: File, limit: usize) -> io::Result<CapturedOutput> {
    let written = file.metadata()?.len();
    let limit = limit as u64;
    let truncated = written > limit;
    if truncated {
        // Frees the dropped bytes' blocks at once rather than when the file is closed.
        file.set_len(limit)?;
    }
    Ok(CapturedOutput {
        file,
        len: written.min(limit),
        truncated,
    })
}

/// The result of one process run. Never an error: problems of the child are in `outcome`.
#[derive(Debug)]
pub struct ProcessResult {
    /// Wall clock from just before spawn to the reap; everything else from this child's own
    /// `wait4` rusage (it includes descendants the child itself waited for).
    pub measurement: Measurement,
    pub outcome: Outcome,
    /// Last [`ProcessSpec::stderr_tail`] bytes of stderr, lossy UTF-8; `None` when empty.
    pub stderr_tail: Option<String>,
    /// The first `limit` bytes of stdout with [`OutputMode::Capture`] (in a file, see
    /// [`CapturedOutput`]); `None` with `Null`, or when the capture could not be read back (said
    /// in `stderr_tail`).
    pub stdout: Option<CapturedOutput>,
    /// How long `spawn` itself took (included in `measurement.wall_ns`): the launcher's share.
    pub spawn_ns: u64,
    /// The run was stopped through a [`Kill`].
    pub cancelled: bool,
    /// Hardware counters; all `None` unless [`ProcessSpec::counters`] was set and the kernel
    /// allowed them.
    pub counters: Counters,
    /// How the memory limit was enforced, when one was set.
    pub memory_limit: Option<MemoryLimitVia>,
}

impl ProcessResult {
    /// A run that never started, with `message` saying why.
    pub fn spawn_failed(message: impl Into<String>) -> Self {
        ProcessResult {
            measurement: Measurement::default(),
            outcome: Outcome::SpawnFailed {
                message: message.into(),
            },
            stderr_tail: None,
            stdout: None,
            spawn_ns: 0,
            cancelled: false,
            counters: Counters::default(),
            memory_limit: None,
        }
    }
}

/// Run `spec` to completion (or its timeout) and measure it. Blocking.
pub fn run(spec: &ProcessSpec) -> ProcessResult {
    run_inner(spec, None)
}

/// Like [`run`], but `cancel.kill(grace)` stops it: SIGTERM to its process group, SIGKILL after
/// the grace period. The result then has `cancelled: true` and the outcome the signal produced.
pub fn run_cancellable(spec: &ProcessSpec, cancel: &Kill) -> ProcessResult {
    run_inner(spec, Some(cancel))
}

fn spawn_failed(start: Instant, message: String) -> ProcessResult {
    ProcessResult {
        measurement: Measurement {
            wall_ns: elapsed_ns(start),
            ..Default::default()
        },
        outcome: Outcome::SpawnFailed { message },
        stderr_tail: None,
        stdout: None,
        spawn_ns: elapsed_ns(start),
        cancelled: false,
        counters: Counters::default(),
        memory_limit: None,
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn describe_spawn_error(spec: &ProcessSpec, err: &io::Error, isolated: bool) -> String {
    if let Some(cwd) = &spec.cwd
        && !cwd.is_dir()
    {
        return format!(
            "cannot start `{}`: working directory `{}` does not exist or is not a directory ({err})",
            spec.program,
            cwd.display()
        );
    }
    match err.kind() {
        io::ErrorKind::NotFound => format!(
            "`{}`: command not found (not in PATH, or the file does not exist) ({err})",
            spec.program
        ),
        io::ErrorKind::PermissionDenied => {
            format!(
                "`{}`: permission denied (is it executable?) ({err})",
                spec.program
            )
        }
        _ if isolated => format!(
            "cannot start `{}`: applying CPU pinning / memory limit / counters failed ({err})",
            spec.program
        ),
        _ => format!("cannot start `{}`: {err}", spec.program),
    }
}

thread_local! {
    /// `(program, PATH) -> absolute path`, so repeated runs skip the `PATH` walk (one failed
    /// `execve` per entry before the right one, in every child).
    static RESOLVED: std::cell::RefCell<std::collections::HashMap<(String, std::ffi::OsString), std::path::PathBuf>> =
        Default::default();
}

/// The program to exec: `spec.program` resolved through `PATH` once per thread when that is
/// unambiguous (a bare name, `PATH` not overridden by the spec, only absolute `PATH` entries);
/// otherwise the name as given, for std's own lookup and error.
fn program_path(spec: &ProcessSpec) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name = &spec.program;
    if name.is_empty() || name.contains('/') || spec.env.iter().any(|(k, _)| k == "PATH") {
        return name.into();
    }
    let Some(path) = std::env::var_os("PATH") else {
        return name.into();
    };
    let key = (name.clone(), path);
    if let Some(hit) = RESOLVED.with(|c| c.borrow().get(&key).cloned()) {
        return hit;
    }
    let dirs: Vec<&std::path::Path> = key
        .1
        .as_bytes()
        .split(|b| *b == b':')
        .map(|d| std::path::Path::new(std::ffi::OsStr::from_bytes(d)))
        .collect();
    if dirs.iter().any(|d| !d.is_absolute()) {
        return name.into();
    }
    let found = dirs
        .iter()
        .map(|d| d.join(name))
        .find(|p| is_executable_file(p));
    match found {
        Some(p) => {
            RESOLVED.with(|c| c.borrow_mut().insert(key, p.clone()));
            p
        }
        None => name.into(),
    }
}

fn is_executable_file(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    meta.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

thread_local! {
    /// `/dev/null`, opened once per measuring thread for the stdio of every run.
    static DEV_NULL: Option<File> = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok();
}

fn dev_null_fd() -> Option<std::os::fd::RawFd> {
    DEV_NULL.with(|f| f.as_ref().map(AsRawFd::as_raw_fd))
}

/// How a run is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaunchKind {
    /// [`spawn`]: `clone(CLONE_VM | CLONE_VFORK)` + `execve`; the child joins the run's cgroup,
    /// sets its affinity and its `RLIMIT_AS` itself. Never copies this process.
    Direct,
    /// std's `Command`: a `fork` when there is work between fork and exec (the hardware
    /// counters' descriptor hand-over), std's own lookup and errors for what [`spawn`] cannot
    /// start (a program not resolved to a path, NUL bytes).
    Std,
}

/// The launch `spec` takes, run as `program` (what [`program_path`] resolved).
pub(crate) fn launch_kind(spec: &ProcessSpec, program: &Path) -> LaunchKind {
    if spec.counters || !spawn::can_launch(program, spec) {
        LaunchKind::Std
    } else {
        LaunchKind::Direct
    }
}

/// A launch ready to start, of the [`LaunchKind`] it names.
enum Launch {
    Direct(spawn::Prepared),
    Std(Command),
}

/// A started child: its pid, and std's handle when std started it (never waited through std).
type Started = (libc::pid_t, Option<std::process::Child>);

/// One launch attempt: the clock's start (just before the spawn), the spawn's own time, and the
/// child or the user-facing reason it did not start.
struct Launched {
    start: Instant,
    spawn_ns: u64,
    child: Result<Started, String>,
}

/// Start `spec` as `program` with stdout and stderr on the given files (`/dev/null` when `None`),
/// the child applying `setup` before exec. Everything is prepared before the clock starts.
fn launch(
    spec: &ProcessSpec,
    program: &Path,
    setup: ChildSetup,
    [stdin_file, stdout_file, stderr_file]: [&Option<File>; 3],
) -> Launched {
    let isolated = !setup.is_empty();
    let direct = match launch_kind(spec, program) {
        LaunchKind::Std => None,
        LaunchKind::Direct => dev_null_fd().and_then(|null| {
            let fd = |f: &Option<File>| f.as_ref().map_or(null, AsRawFd::as_raw_fd);
            let fds = [fd(stdin_file), fd(stdout_file), fd(stderr_file)];
            spawn::Prepared::new(program, spec, fds, setup)
        }),
    };
    let mut launch = match direct {
        Some(p) => Launch::Direct(p),
        None => {
            let mut c = Command::new(program);
            c.arg0(&spec.program);
            c.args(&spec.args)
                .stdin(child_stdio(stdin_file))
                .process_group(0);
            for (k, v) in &spec.env {
                c.env(k, v);
            }
            if let Some(n) = spec.env_padding {
                c.env(ENV_PADDING_VAR, "X".repeat(n));
            }
            if let Some(dir) = &spec.cwd {
                c.current_dir(dir);
            }
            c.stdout(child_stdio(stdout_file));
            c.stderr(child_stdio(stderr_file));
            if isolated {
                // SAFETY: `ChildSetup::apply` only makes async-signal-safe syscalls on plain data.
                unsafe { c.pre_exec(move || setup.apply()) };
            }
            Launch::Std(c)
        }
    };

    let start = Instant::now();
    let spawned = match &mut launch {
        Launch::Direct(p) => spawn::spawn(p).map(|pid| (pid, None)),
        Launch::Std(c) => c
            .spawn()
            .map(|child| (child.id() as libc::pid_t, Some(child))),
    };
    let spawn_ns = elapsed_ns(start);
    drop(launch); // closes our copies of the child's stdio
    Launched {
        start,
        spawn_ns,
        child: spawned.map_err(|e| describe_spawn_error(spec, &e, isolated)),
    }
}

fn run_inner(spec: &ProcessSpec, cancel: Option<&Kill>) -> ProcessResult {
    let program = program_path(spec);

    // Output files, read after the exit, so no reader thread runs during the measurement and
    // lingering grandchildren cannot make us wait for an EOF. stdout, which may be large, goes
    // to an unlinked file on disk; stderr, of which only a small tail is kept, to an anonymous
    // memory file (no inode to allocate on every run).
    let failed = |what: String| spawn_failed(Instant::now(), format!("`{}`: {what}", spec.program));
    let stdin_file = match &spec.stdin {
        None => None,
        Some(path) => match File::open(path) {
            Ok(f) => Some(f),
            Err(e) => {
                return failed(format!("cannot open its input `{}`: {e}", path.display()));
            }
        },
    };
    let inherit = spec.stdout == OutputMode::Inherit;
    let stdout_file = match &spec.stdout {
        OutputMode::Null => None,
        OutputMode::Inherit => match std::io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => Some(File::from(fd)),
            Err(e) => return failed(format!("cannot pass it this process's stdout: {e}")),
        },
        OutputMode::File(path) => match File::create(path) {
            Ok(f) => Some(f),
            Err(e) => {
                return failed(format!(
                    "cannot create its output file `{}`: {e}",
                    path.display()
                ));
            }
        },
        OutputMode::Pipe => match sys::drained_pipe() {
            Ok(f) => Some(f),
            Err(e) => return failed(format!("cannot create a pipe for its stdout: {e}")),
        },
        OutputMode::Capture { .. } => {
            let dir = spec.capture_dir.clone().unwrap_or_else(std::env::temp_dir);
            match sys::spill_file(&dir) {
                Ok(f) => Some(f),
                Err(e) => {
                    return spawn_failed(
                        Instant::now(),
                        format!(
                            "`{}`: cannot create a file for its captured stdout in `{}`: {e}",
                            spec.program,
                            dir.display()
                        ),
                    );
                }
            }
        }
    };
    let stderr_file = if inherit {
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(File::from)
    } else if spec.stderr_tail == 0 {
        None
    } else {
        sys::anon_file(c"benchfleet-stderr").ok()
    };

    // Isolation and counters: applied by the child itself before exec.
    let mut setup = ChildSetup::default();
    if let Some(cpus) = &spec.cpus {
        match isolation::cpu_set(cpus) {
            Ok(set) => setup.cpus = Some(set),
            Err(message) => {
                return spawn_failed(Instant::now(), format!("`{}`: {message}", spec.program));
            }
        }
    }
    let memory_limit = spec.memory_limit.map(MemoryLimit::prepare);
    match &memory_limit {
        Some(MemoryLimit::Cgroup(cg)) => setup.cgroup_procs = Some(cg.procs_fd()),
        Some(MemoryLimit::Rlimit(bytes)) => setup.rlimit_as = Some(*bytes),
        None => {}
    }
    let handover = if spec.counters {
        Some(counters::handover())
    } else {
        None
    };
    if let Some(Ok(h)) = &handover {
        setup.perf_sock = Some(h.child.as_raw_fd());
    }
    let Launched {
        start,
        spawn_ns,
        child,
    } = launch(
        spec,
        &program,
        setup,
        [&stdin_file, &stdout_file, &stderr_file],
    );
    let (pid, child) = match child {
        Ok(c) => c,
        Err(message) => {
            return ProcessResult {
                spawn_ns,
                ..spawn_failed(start, message)
            };
        }
    };
    // The setup descriptors (cgroup.procs, the counters' socket end) stay open with their
    // owners (`memory_limit`, `handover`) until the run ends.
    let received = match &handover {
        Some(Ok(h)) => Some(counters::receive(&h.parent)),
        _ => None,
    };

    let deadline = spec.timeout.map(|t| start + t);
    let (ending, reaped) = watch(pid, deadline, cancel);
    let end = Instant::now();
    drop(child); // never waited through std; we reaped it ourselves

    let wall_ns = u64::try_from(end.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
    let (measurement, outcome, reap_error) = match reaped {
        Ok((status, ru)) => {
            let m = sys::measurement_from_rusage(wall_ns, &ru);
            let outcome = match ending {
                Ending::TimedOut => Outcome::TimedOut {
                    timeout_ns: spec
                        .timeout
                        .map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)),
                },
                _ => outcome_of(status),
            };
            (m, outcome, None)
        }
        Err(e) => (
            Measurement {
                wall_ns,
                ..Default::default()
            },
            Outcome::Failed {
                exit_code: None,
                signal: None,
            },
            Some(format!(
                "benchfleet: could not reap `{}` (pid {pid}): {e}; is SIGCHLD ignored?",
                spec.program
            )),
        ),
    };

    let mut stderr_tail = stderr_file
        .as_ref()
        .filter(|_| !inherit)
        .and_then(|f| sys::read_tail(f, spec.stderr_tail).ok())
        .filter(|b| !b.is_empty())
        .map(|b| sys::tail_to_string(&b))
        .or(reap_error);
    let stdout = match (&spec.stdout, stdout_file) {
        (OutputMode::Capture { limit }, Some(f)) => match finish_capture(f, *limit) {
            Ok(out) => Some(out),
            Err(e) => {
                let note = format!(
                    "benchfleet: could not read the captured stdout of `{}` back: {e}",
                    spec.program
                );
                stderr_tail = Some(match stderr_tail {
                    Some(t) => format!("{t}\n{note}"),
                    None => note,
                });
                None
            }
        },
        _ => None,
    };
    let counters = match (&handover, &received) {
        (None, _) => Counters::default(),
        (Some(Err(e)), _) => {
            counters::unavailable(format!("could not create the fd hand-over socket: {e}"))
        }
        (Some(Ok(_)), Some(r)) => counters::read(r),
        (Some(Ok(_)), None) => counters::unavailable("no counters received from the child"),
    };
    let memory_limit_via = memory_limit.as_ref().map(MemoryLimit::via);
    drop(memory_limit); // removes the run's cgroup, if any

    ProcessResult {
        measurement,
        outcome,
        stderr_tail,
        stdout,
        spawn_ns,
        cancelled: ending == Ending::Cancelled,
        counters,
        memory_limit: memory_limit_via,
    }
}

fn child_stdio(file: &Option<File>) -> Stdio {
    match file.as_ref().map(File::try_clone) {
        Some(Ok(f)) => Stdio::from(f),
        _ => Stdio::null(),
    }
}

fn outcome_of(status: libc::c_int) -> Outcome {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Outcome::Success,
            code => Outcome::Failed {
                exit_code: Some(code),
                signal: None,
            },
        }
    } else if libc::WIFSIGNALED(status) {
        Outcome::Failed {
            exit_code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    } else {
        Outcome::Failed {
            exit_code: None,
            signal: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

type Reaped = io::Result<(libc::c_int, libc::rusage)>;

/// Wait for `pid` to exit, enforcing the deadline and the cancel handle; reap it.
fn watch(pid: libc::pid_t, deadline: Option<Instant>, cancel: Option<&Kill>) -> (Ending, Reaped) {
    if deadline.is_none() && cancel.is_none() {
        // The common, cheapest path: one blocking wait4.
        return (Ending::Exited, sys::wait4(pid));
    }
    let pidfd = sys::pidfd_open(pid);
    let cancel_fd = cancel.and_then(Kill::event_fd);
    loop {
        if cancel.is_some_and(Kill::is_killed) {
            let grace = cancel.map_or(Duration::ZERO, Kill::grace);
            stop(pid, pidfd.as_ref().map(sys::raw), grace);
            return (Ending::Cancelled, sys::wait4(pid));
        }
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            // The leader is not reaped yet, so its process group id cannot have been reused.
            sys::signal_group(pid, libc::SIGKILL);
            return (Ending::TimedOut, sys::wait4(pid));
        }
        let exited = match &pidfd {
            Some(fd) => {
                // Without an eventfd, wake up periodically to look at the cancel flag.
                let step = if cancel.is_some() && cancel_fd.is_none() {
                    Some(remaining.map_or(FALLBACK_POLL, |r| r.min(FALLBACK_POLL)))
                } else {
                    remaining
                };
                sys::poll_two(fd.as_raw_fd(), cancel_fd, step).exited
            }
            None => {
                if sys::has_exited(pid) {
                    true
                } else {
                    std::thread::sleep(
                        remaining.map_or(FALLBACK_POLL, |r| r.min(Duration::from_millis(1))),
                    );
                    false
                }
            }
        };
        if exited {
            return (Ending::Exited, sys::wait4(pid));
        }
    }
}

/// SIGTERM the group, wait up to `grace` for the leader, then SIGKILL the group (before reaping,
/// so stragglers die too and the group id is still ours).
fn stop(pid: libc::pid_t, pidfd: Option<std::os::fd::RawFd>, grace: Duration) {
    if !grace.is_zero() {
        sys::signal_group(pid, libc::SIGTERM);
        let until = Instant::now() + grace;
        loop {
            if sys::has_exited(pid) {
                break;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match pidfd {
                Some(fd) => {
                    sys::poll_two(fd, None, Some(left));
                }
                None => std::thread::sleep(left.min(Duration::from_millis(1))),
            }
        }
    }
    sys::signal_group(pid, libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which launch a spec takes: every run but those with counters, or whose program std must
    /// look up or refuse itself, starts without forking this process.
    #[test]
    fn only_counters_and_what_std_must_look_up_take_command() {
        let spec = |f: fn(&mut ProcessSpec)| {
            let mut s = ProcessSpec::new("sh", ["-c", "true"]);
            f(&mut s);
            s
        };
        let cases: Vec<(&str, ProcessSpec, LaunchKind)> = vec![
            ("plain", spec(|_| {}), LaunchKind::Direct),
            (
                "pinned",
                spec(|s| s.cpus = Some(vec![0])),
                LaunchKind::Direct,
            ),
            (
                "memory-limited",
                spec(|s| s.memory_limit = Some(1 << 30)),
                LaunchKind::Direct,
            ),
            (
                "pinned and limited, padded, in a directory",
                spec(|s| {
                    s.cpus = Some(vec![0]);
                    s.memory_limit = Some(1 << 30);
                    s.env_padding = Some(10);
                    s.cwd = Some("/".into());
                }),
                LaunchKind::Direct,
            ),
            ("counters", spec(|s| s.counters = true), LaunchKind::Std),
            (
                "pinned with counters",
                spec(|s| {
                    s.cpus = Some(vec![0]);
                    s.counters = true;
                }),
                LaunchKind::Std,
            ),
            (
                "not found in PATH",
                ProcessSpec::new("benchfleet-no-such-program", Vec::<String>::new()),
                LaunchKind::Std,
            ),
            (
                "PATH set by the spec",
                spec(|s| s.env = vec![("PATH".into(), "/bin".into())]),
                LaunchKind::Std,
            ),
            (
                "a NUL byte",
                spec(|s| s.args.push("a\0b".into())),
                LaunchKind::Std,
            ),
        ];
        for (what, spec, want) in cases {
            assert_eq!(launch_kind(&spec, &program_path(&spec)), want, "{what}");
        }
    }

    /// A setup step the child fails (here the affinity: a CPU that does not exist, which
    /// `cpu_set` would have refused before the launch) gives the isolated-launch message with the
    /// step's errno, and the child is reaped.
    #[test]
    fn a_failed_setup_step_is_described_and_the_child_reaped() {
        let spec = ProcessSpec::new("true", Vec::<String>::new());
        let setup = ChildSetup {
            cpus: Some(isolation::mask(&[libc::CPU_SETSIZE as usize - 1])),
            ..ChildSetup::default()
        };
        let program = program_path(&spec);
        assert_eq!(launch_kind(&spec, &program), LaunchKind::Direct);
        let launched = launch(&spec, &program, setup, [&None, &None, &None]);
        let Err(message) = launched.child else {
            panic!("started despite the failed setup")
        };
        let os = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(
            message,
            format!(
                "cannot start `true`: applying CPU pinning / memory limit / counters failed ({os})"
            )
        );
        assert_eq!(
            std::fs::read_to_string("/proc/thread-self/children").unwrap(),
            "",
            "the failed child is reaped"
        );
    }
}
