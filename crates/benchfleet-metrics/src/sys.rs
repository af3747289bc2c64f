//! Thin, safe wrappers over the libc calls the runner needs.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use benchfleet_model::Measurement;

/// `ru_*` of one reaped child.
pub(crate) fn measurement_from_rusage(wall_ns: u64, ru: &libc::rusage) -> Measurement {
    fn tv_ns(tv: libc::timeval) -> u64 {
        (tv.tv_sec.max(0) as u64) * 1_000_000_000 + (tv.tv_usec.max(0) as u64) * 1_000
    }
    let n = |v: libc::c_long| v.max(0) as u64;
    Measurement {
        wall_ns,
        user_ns: tv_ns(ru.ru_utime),
        sys_ns: tv_ns(ru.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: n(ru.ru_maxrss) * 1024,
        minor_faults: n(ru.ru_minflt),
        major_faults: n(ru.ru_majflt),
        voluntary_context_switches: n(ru.ru_nvcsw),
        involuntary_context_switches: n(ru.ru_nivcsw),
        block_in: n(ru.ru_inblock),
        block_out: n(ru.ru_oublock),
    }
}

/// An anonymous in-memory file (falls back to an unlinked temp file).
pub(crate) fn anon_file(name: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string; flags are valid.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: memfd_create returned a fresh fd we own.
        return Ok(unsafe { File::from_raw_fd(fd) });
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

/// The write end of a pipe whose read end a detached thread reads and discards until every
/// writer closed it (hyperfine's `--output=pipe`).
pub(crate) fn drained_pipe() -> io::Result<File> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors we own.
    let (read, write) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    std::thread::Builder::new()
        .name("benchfleet-pipe".into())
        .spawn(move || {
            let _ = io::copy(&mut { read }, &mut io::sink());
        })?;
    Ok(write)
}

/// An unlinked temporary file in `dir` (`O_TMPFILE`; on a filesystem without it, a file created
/// under a unique name and unlinked at once), for output that may be large: it lives on disk,
/// not in memory, and disappears with its last descriptor.
pub(crate) fn spill_file(dir: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmpfile = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir);
    match tmpfile {
        Ok(f) => return Ok(f),
        // EISDIR / EOPNOTSUPP / EINVAL: no O_TMPFILE here; anything else is a real error.
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EISDIR | libc::EOPNOTSUPP | libc::EINVAL)
            ) =>
        {
            return Err(e);
        }
        Err(_) => {}
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let path = dir.join(format!(
            ".benchfleet-capture.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The last `limit` bytes of `file` (read at its current size, without moving the offset).
pub(crate) fn read_tail(file: &File, limit: usize) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(limit as u64);
    read_range(file, start, (len - start) as usize)
}

pub(crate) fn read_range(file: &File, start: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], start + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Lossy UTF-8 of a tail cut at an arbitrary byte: drops the continuation bytes of a character
/// whose start was cut off, instead of showing a replacement character.
pub(crate) fn tail_to_string(bytes: &[u8]) -> String {
    let skip = bytes
        .iter()
        .take(3)
        .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
        .count();
    String::from_utf8_lossy(&bytes[skip..]).into_owned()
}

/// A pidfd for `pid` (Linux ≥ 5.3), or `None`.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: raw syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Which of the polled fds became readable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ready {
    pub exited: bool,
    pub cancelled: bool,
}

/// Wait until `pidfd` or `cancel_fd` is readable, at most `timeout` (forever when `None`).
pub(crate) fn poll_two(pidfd: RawFd, cancel_fd: Option<RawFd>, timeout: Option<Duration>) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: cancel_fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live array of 2 pollfds (a negative fd is ignored by the kernel); the
    // timespec pointer is null or points to a live value; no signal mask is changed.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
    if n <= 0 {
        return Ready {
            exited: false,
            cancelled: false,
        };
    }
    Ready {
        exited: fds[0].revents != 0,
        cancelled: fds[1].revents != 0,
    }
}

/// Whether `pid` has exited, without reaping it (so its pid and process group stay reserved).
pub(crate) fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a live siginfo_t.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is valid to read for SIGCHLD-style siginfo filled by waitid (0 when nothing).
    r != 0 || unsafe { info.si_pid() } != 0
}

/// Reap `pid`, returning its wait status and its own rusage. Retries on EINTR.
pub(crate) fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            return Ok((status, ru));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Signal the process group led by `pid`, and `pid` itself (in case it moved to another group).
pub(crate) fn signal_group(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain syscalls; errors (ESRCH: already gone) are irrelevant here.
    unsafe {
        libc::killpg(pid, sig);
        libc::kill(pid, sig);
    }
}

pub(crate) fn raw(f: &impl AsRawFd) -> RawFd {
    f.as_raw_fd()
}
