//! The measured launch: `clone(CLONE_VM | CLONE_VFORK)` and `execve`, with everything the child
//! needs (paths, argument and environment arrays, descriptors) built before the clock starts.
//!
//! Why not `std::process::Command` (glibc `posix_spawn`) on this path: the time between clone and
//! exec is inside every measured interval, and glibc's spawn child resets the disposition of every
//! one of the 64 signals there, two system calls each, whether or not this process handles it
//! (≈ 13 µs on the reference VM, ≈ 2 % of a run of `true`); std also builds the environment array
//! after the clock has started. Here the child makes only the calls the run needs: reset the few
//! signals this process catches, `setpgid`, three `dup2`, optionally `chdir`, the isolation steps
//! the spec asks for, unblock signals, `execve`. What the measured program sees is what std gives
//! it: its own process group, stdio on the given descriptors, the environment, an empty signal
//! mask, default `SIGPIPE`.
//!
//! Pinned and memory-limited runs start here too: the child itself joins the run's cgroup (a
//! write to its `cgroup.procs` descriptor), sets its CPU affinity and its `RLIMIT_AS` before
//! `execve` ([`ChildSetup::apply_isolation`]: raw system calls on data prepared beforehand). So no
//! run copies the runner's address space: a `fork` of a multi-threaded runner with a large heap
//! costs page-table copies, copy-on-write faults and TLB shootdowns on every run. A step that
//! fails comes back as the errno of any other failed step. Only hardware counters (the perf
//! descriptors are handed over from the child, `counters.rs`) and programs std must look up
//! itself still take `Command` (see `run.rs`, `launch_kind`).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::isolation::ChildSetup;
use crate::spec::{ENV_PADDING_VAR, ProcessSpec};

/// Stack of the child between clone and exec: it only calls a few thin libc wrappers.
const CHILD_STACK: usize = 64 * 1024;

/// How long the set of signals this process catches, and the environment children inherit, are
/// reused before they are read again (neither changes while benchfleet measures; re-reading
/// them for every run would put ≈ 10 µs of work between runs).
const CACHE_TTL: Duration = Duration::from_millis(100);

/// The environment a child of `spec` gets before the padding: the inherited variables (but
/// those the spec or the padding replace), then the spec's, as std builds it. Cached per thread
/// for [`CACHE_TTL`]; `None` when a variable holds a NUL byte.
fn base_env(spec: &ProcessSpec, padded: bool) -> Option<Rc<[CString]>> {
    /// When it was read, for which spec variables and padding, and the result.
    type Cached = (Instant, (Vec<(String, String)>, bool), Rc<[CString]>);
    thread_local! {
        static BASE: std::cell::RefCell<Option<Cached>> = const { std::cell::RefCell::new(None) };
    }
    let hit = BASE.with(|b| {
        b.borrow().as_ref().and_then(|(at, (env, p), base)| {
            (at.elapsed() < CACHE_TTL && *p == padded && *env == spec.env).then(|| base.clone())
        })
    });
    if hit.is_some() {
        return hit;
    }
    let replaced = |k: &OsStr| {
        spec.env.iter().any(|(n, _)| n.as_bytes() == k.as_bytes())
            || (padded && k.as_bytes() == ENV_PADDING_VAR.as_bytes())
    };
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !replaced(&k) {
            envp.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in &spec.env {
        envp.push(cstring(format!("{k}={v}").as_bytes())?);
    }
    let base: Rc<[CString]> = envp.into();
    BASE.with(|b| {
        *b.borrow_mut() = Some((Instant::now(), (spec.env.clone(), padded), base.clone()))
    });
    Some(base)
}

/// A launch prepared outside the measured interval. Holds every pointer the child reads.
pub(crate) struct Prepared {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: (Rc<[CString]>, Option<CString>),
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    fds: [RawFd; 3],
    setup: ChildSetup,
}

/// What the child reads and, on failure, writes (it shares this process's memory).
#[repr(C)]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    fds: [RawFd; 3],
    setup: ChildSetup,
    reset: libc::sigset_t,
    /// errno of the step that failed (0: the exec happened).
    error: libc::c_int,
}

fn cstring(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// Whether `spec`, run as `program` (its resolved path), can start here: not a program without a
/// path (std's own `PATH` lookup and errors apply) nor a NUL byte in the path, an argument, a
/// variable or the working directory (std reports those).
pub(crate) fn can_launch(program: &Path, spec: &ProcessSpec) -> bool {
    let path = program.as_os_str().as_bytes();
    let no_nul = |b: &[u8]| !b.contains(&0);
    path.contains(&b'/')
        && no_nul(path)
        && no_nul(spec.program.as_bytes())
        && spec.args.iter().all(|a| no_nul(a.as_bytes()))
        && spec
            .env
            .iter()
            .all(|(k, v)| no_nul(k.as_bytes()) && no_nul(v.as_bytes()))
        && spec
            .cwd
            .as_ref()
            .is_none_or(|d| no_nul(d.as_os_str().as_bytes()))
}

impl Prepared {
    /// The launch of `spec` as `program`, stdio on `fds`, the child applying `setup` before exec.
    /// `None` when this launch is for `Command` instead: what [`can_launch`] refuses, stdio on
    /// descriptors 0–2 (the `dup2` sequence would overwrite a source), or a counters hand-over
    /// (done by std's forked child).
    pub(crate) fn new(
        program: &Path,
        spec: &ProcessSpec,
        fds: [RawFd; 3],
        setup: ChildSetup,
    ) -> Option<Prepared> {
        if !can_launch(program, spec) || fds.iter().any(|fd| *fd < 3) || setup.perf_sock.is_some() {
            return None;
        }
        let path = program.as_os_str().as_bytes();
        let path = cstring(path)?;
        let mut argv = Vec::with_capacity(spec.args.len() + 1);
        argv.push(cstring(spec.program.as_bytes())?);
        for a in &spec.args {
            argv.push(cstring(a.as_bytes())?);
        }
        let base = base_env(spec, spec.env_padding.is_some())?;
        // `NAME=XXX…`, built in one allocation.
        let padding = match spec.env_padding {
            Some(n) => {
                let mut v = Vec::with_capacity(ENV_PADDING_VAR.len() + 1 + n);
                v.extend_from_slice(ENV_PADDING_VAR.as_bytes());
                v.push(b'=');
                v.resize(v.capacity(), b'X');
                Some(CString::new(v).ok()?)
            }
            None => None,
        };
        let cwd = match &spec.cwd {
            Some(d) => Some(cstring(d.as_os_str().as_bytes())?),
            None => None,
        };
        let ptrs = |v: &[CString], last: Option<&CString>| {
            v.iter()
                .chain(last)
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Some(Prepared {
            argv_ptrs: ptrs(&argv, None),
            envp_ptrs: ptrs(&base, padding.as_ref()),
            path,
            _argv: argv,
            _env: (base, padding),
            cwd,
            fds,
            setup,
        })
    }
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; CHILD_STACK]);
    static CAUGHT: std::cell::Cell<Option<(Instant, libc::sigset_t)>> =
        const { std::cell::Cell::new(None) };
}

/// The signals whose handlers the child must not run between unblocking and exec (every signal
/// this process catches), plus `SIGPIPE`, which Rust programs ignore and std resets for children.
fn signals_to_reset() -> libc::sigset_t {
    if let Some((at, set)) = CAUGHT.with(std::cell::Cell::get)
        && at.elapsed() < CACHE_TTL
    {
        return set;
    }
    // SAFETY: sigemptyset/sigaddset write to the live local set; sigaction only reads the current
    // disposition into a live local.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
            {
                libc::sigaddset(&mut set, sig);
            }
        }
        set
    };
    CAUGHT.with(|c| c.set(Some((Instant::now(), set))));
    set
}

/// The child, on [`STACK`], sharing this process's memory until it execs or exits. Only
/// async-signal-safe calls, no allocation.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the suspended parent keeps alive; every pointer in it is
    // valid until the parent resumes, which happens only after this execs or exits.
    unsafe {
        let a = &mut *arg.cast::<ChildArgs>();
        let fail = |a: &mut ChildArgs| -> ! {
            a.error = *libc::__errno_location();
            libc::_exit(127)
        };
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=libc::SIGRTMAX() {
            if libc::sigismember(&a.reset, sig) == 1 {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(a);
        }
        for (target, fd) in a.fds.iter().enumerate() {
            if libc::dup2(*fd, target as libc::c_int) < 0 {
                fail(a);
            }
        }
        if !a.cwd.is_null() && libc::chdir(a.cwd) != 0 {
            fail(a);
        }
        if let Err(errno) = a.setup.apply_isolation() {
            a.error = errno;
            libc::_exit(127)
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(a.path, a.argv, a.envp);
        fail(a)
    }
}

/// Start `p`; returns once the child has exec'd (or failed to). The child's pid, or why it could
/// not start (the failed step's errno, as std reports it; the failed child is reaped).
pub(crate) fn spawn(p: &Prepared) -> io::Result<libc::pid_t> {
    let mut args = ChildArgs {
        path: p.path.as_ptr(),
        argv: p.argv_ptrs.as_ptr(),
        envp: p.envp_ptrs.as_ptr(),
        cwd: p.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        fds: p.fds,
        setup: p.setup,
        reset: signals_to_reset(),
        error: 0,
    };
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        // SAFETY: the stack top stays inside the buffer and is 16-byte aligned; all signals are
        // blocked around the clone, so no handler runs in the child before it reset them; the
        // parent is suspended (CLONE_VFORK) while the child uses `stack` and `args`.
        unsafe {
            let top = stack.as_mut_ptr().add(stack.len());
            let top = top.sub(top as usize % 16);
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child_main,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&raw mut args).cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                return Err(clone_error);
            }
            let error = std::ptr::read_volatile(&raw const args.error);
            if error != 0 {
                let mut status = 0;
                while libc::waitpid(pid, &mut status, 0) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                return Err(io::Error::from_raw_os_error(error));
            }
            Ok(pid)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn devnull() -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap()
    }

    fn reap(pid: libc::pid_t) -> i32 {
        let mut status = 0;
        // SAFETY: plain syscall on our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "{status}");
        libc::WEXITSTATUS(status)
    }

    /// What the program sees: its arguments (with argv[0] as given), the environment with the
    /// spec's variables replacing inherited ones, the working directory, its own process group,
    /// stdout on the given descriptor, default SIGPIPE, no blocked signals.
    #[test]
    fn the_child_sees_what_std_would_give_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("out")).unwrap();
        let null = devnull();
        let mut spec = ProcessSpec::new(
            "sh",
            [
                "-c",
                // The masks are read first, with builtins only: dash blocks every signal for
                // a moment around each fork, so a later read could see its own window.
                "while read -r k v; do case $k in SigBlk:|SigIgn:) m=\"$m$k $v\n\";; esac; done < /proc/$$/status; \
                 echo \"$(head -zn1 /proc/$$/cmdline | tr -d '\\0')|$1|$HOME|$BF_X|$(pwd)|$(cut -d' ' -f5 /proc/$$/stat)|$$|$(env | grep -c '^BENCHFLEET_RANDOMIZED_ENVIRONMENT_OFFSET=XXXX$')\"; \
                 printf \"$m\"",
                "zero",
                "two words",
            ],
        );
        spec.env = vec![
            ("HOME".into(), "/elsewhere".into()),
            ("BF_X".into(), "x".into()),
        ];
        spec.cwd = Some(dir.path().to_path_buf());
        spec.env_padding = Some(4);
        let p = Prepared::new(
            Path::new("/bin/sh"),
            &spec,
            [null.as_raw_fd(), out.as_raw_fd(), null.as_raw_fd()],
            no_setup(),
        )
        .expect("a plain launch");
        let pid = spawn(&p).unwrap();
        assert_eq!(reap(pid), 0);
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap();
        let mut lines = text.lines();
        let first: Vec<&str> = lines.next().unwrap().split('|').collect();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            &first[..5],
            &["sh", "two words", "/elsewhere", "x", cwd.to_str().unwrap()],
            "argv[0] as given, then the arguments"
        );
        assert_eq!(first[5], first[6], "leader of its own process group");
        assert_eq!(first[7], "1", "the padding variable, once");
        let masks: Vec<&str> = lines.collect();
        assert_eq!(masks.len(), 2, "SigBlk and SigIgn read: {text}");
        for line in masks {
            let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            if line.starts_with("SigBlk") {
                assert_eq!(mask, 0, "no signal blocked");
            } else {
                assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE not ignored");
            }
        }
    }

    /// Failures come back as std reports them, and the failed child is reaped.
    #[test]
    fn failures_are_errors_with_the_errno_of_the_failed_step() {
        let null = devnull();
        let fds = [null.as_raw_fd(); 3];
        let spec = ProcessSpec::new("x", Vec::<String>::new());
        let missing = Prepared::new(Path::new("/nonexistent/x"), &spec, fds, no_setup()).unwrap();
        assert_eq!(spawn(&missing).unwrap_err().kind(), io::ErrorKind::NotFound);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        let not_exec = Prepared::new(&plain, &spec, fds, no_setup()).unwrap();
        let e = spawn(&not_exec).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        let mut in_nowhere = ProcessSpec::new("true", Vec::<String>::new());
        in_nowhere.cwd = Some("/nonexistent-dir".into());
        let p = Prepared::new(Path::new("/bin/true"), &in_nowhere, fds, no_setup()).unwrap();
        assert_eq!(spawn(&p).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn what_std_must_launch_is_not_prepared() {
        let null = devnull();
        let fds = [null.as_raw_fd(); 3];
        let spec = ProcessSpec::new("true", Vec::<String>::new());
        let bin = Path::new("/bin/true");
        assert!(Prepared::new(Path::new("true"), &spec, fds, no_setup()).is_none());
        assert!(Prepared::new(bin, &spec, [0, 1, 2], no_setup()).is_none());
        let nul = ProcessSpec::new("true", ["a\0b"]);
        assert!(Prepared::new(bin, &nul, fds, no_setup()).is_none());
        let counters = ChildSetup {
            perf_sock: Some(null.as_raw_fd()),
            ..no_setup()
        };
        assert!(Prepared::new(bin, &spec, fds, counters).is_none());
        assert!(Prepared::new(bin, &spec, fds, no_setup()).is_some());
        let isolated = ChildSetup {
            cpus: Some(crate::isolation::mask(&[0])),
            rlimit_as: Some(1 << 30),
            ..no_setup()
        };
        assert!(Prepared::new(bin, &spec, fds, isolated).is_some());
    }

    fn no_setup() -> ChildSetup {
        ChildSetup::default()
    }

    /// The children this thread started and has not reaped (each test runs on its own thread).
    fn unreaped_children() -> String {
        std::fs::read_to_string("/proc/thread-self/children").unwrap()
    }

    /// Run `sh -c script` with `setup`, its stdout in a file; its output.
    fn output_with(setup: ChildSetup, script: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("out")).unwrap();
        let null = devnull();
        let spec = ProcessSpec::new("sh", ["-c", script]);
        let fds = [null.as_raw_fd(), out.as_raw_fd(), null.as_raw_fd()];
        let p = Prepared::new(Path::new("/bin/sh"), &spec, fds, setup).expect("a direct launch");
        let pid = spawn(&p).unwrap();
        assert_eq!(reap(pid), 0);
        std::fs::read_to_string(dir.path().join("out"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The child applies the affinity and the address-space limit to itself, and this thread
    /// keeps its own (the child shares our memory, not our scheduling or limits).
    #[test]
    fn the_child_applies_its_affinity_and_limit_to_itself() {
        let allowed = crate::allowed_cpus();
        let mine = crate::isolation::affinity_of(0);
        let limits = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("Max address space"))
                .map(|l| {
                    l.split_whitespace()
                        .skip(3)
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap()
        };
        let my_limit = limits(&std::fs::read_to_string("/proc/self/limits").unwrap());
        let cases: Vec<(Vec<usize>, u64)> = allowed
            .iter()
            .map(|c| (vec![*c], 1u64 << 30))
            .chain([(allowed.clone(), 3 << 30)])
            .collect();
        for (cpus, limit) in cases {
            let setup = ChildSetup {
                cpus: Some(crate::isolation::mask(&cpus)),
                rlimit_as: Some(limit),
                ..no_setup()
            };
            let text = output_with(
                setup,
                "grep Cpus_allowed_list /proc/self/status; cat /proc/self/limits",
            );
            let want_cpus = crate::isolation::cpu_list(&cpus);
            assert!(
                text.lines()
                    .next()
                    .unwrap()
                    .ends_with(&format!("\t{want_cpus}")),
                "{cpus:?}: {text}"
            );
            assert_eq!(limits(&text), format!("{limit} {limit}"), "{text}");
            assert_eq!(crate::isolation::affinity_of(0), mine);
            let now = limits(&std::fs::read_to_string("/proc/self/limits").unwrap());
            assert_eq!(now, my_limit);
        }
        assert_eq!(unreaped_children(), "");
    }

    /// A setup step the kernel refuses fails the launch with that step's errno, before exec, and
    /// the failed child is reaped. (A refused `RLIMIT_AS` needs an unprivileged process with a
    /// lower hard limit, which a test cannot set up and undo.)
    #[test]
    fn a_failed_setup_step_is_an_error_and_the_child_is_reaped() {
        let null = devnull();
        let fds = [null.as_raw_fd(); 3];
        let read_only = std::fs::File::open("/dev/null").unwrap();
        // (setup, errno)
        let cases = [
            // A CPU that does not exist (below CPU_SETSIZE, so it fits the mask).
            (
                ChildSetup {
                    cpus: Some(crate::isolation::mask(&[libc::CPU_SETSIZE as usize - 1])),
                    ..no_setup()
                },
                libc::EINVAL,
            ),
            // A `cgroup.procs` descriptor that cannot be written.
            (
                ChildSetup {
                    cgroup_procs: Some(read_only.as_raw_fd()),
                    ..no_setup()
                },
                libc::EBADF,
            ),
        ];
        let spec = ProcessSpec::new("true", Vec::<String>::new());
        for (setup, errno) in cases {
            let p = Prepared::new(Path::new("/bin/true"), &spec, fds, setup).unwrap();
            let e = spawn(&p).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{e}");
            assert_eq!(unreaped_children(), "", "the failed child is reaped");
        }
    }
}
