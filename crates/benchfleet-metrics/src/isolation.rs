//! CPU pinning and memory limits a child applies to itself before exec (in the `CLONE_VM`
//! child of `spawn.rs`, or std's forked one when counters need it), and the placement a
//! measuring thread takes for itself.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How [`crate::ProcessSpec::memory_limit`] was enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryLimitVia {
    /// A fresh cgroup v2 with `memory.max` (counts RSS and page cache of the whole tree).
    Cgroup,
    /// `RLIMIT_AS` on the child (address space: counts mappings, inherited by descendants).
    RlimitAs,
}

/// CPUs this process may run on (its own affinity mask).
pub fn allowed_cpus() -> Vec<usize> {
    affinity_of(0)
}

/// The affinity mask of thread `tid` (0: the calling thread); empty if it cannot be read.
pub(crate) fn affinity_of(tid: libc::pid_t) -> Vec<usize> {
    // SAFETY: zeroed cpu_set_t is a valid empty set; the pointer is to a live local.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid size and pointer.
    let r =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the live set for indexes below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
        .collect()
}

/// The affinity mask for `cpus`, or a message naming the CPUs that may be used.
pub(crate) fn cpu_set(cpus: &[usize]) -> Result<libc::cpu_set_t, String> {
    let allowed = allowed_cpus();
    let bad: Vec<usize> = cpus
        .iter()
        .copied()
        .filter(|c| !allowed.contains(c))
        .collect();
    if cpus.is_empty() || !bad.is_empty() {
        return Err(format!(
            "cannot pin to CPUs {cpus:?}: {} not available; this process may use CPUs {allowed:?}",
            if cpus.is_empty() {
                "an empty set is".to_string()
            } else {
                format!("{bad:?}")
            }
        ));
    }
    Ok(mask(cpus))
}

/// The affinity mask holding `cpus` (those below `CPU_SETSIZE`).
pub(crate) fn mask(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in cpus.iter().filter(|c| **c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `c` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(*c, &mut set) };
    }
    set
}

/// `cpus` (ascending) as the kernel lists them in `Cpus_allowed_list`: `0-2,5`.
#[cfg(test)]
pub(crate) fn cpu_list(cpus: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &c in cpus {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A cgroup created for one run; removed on drop (after killing anything left in it).
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    procs: OwnedFd,
}

impl RunCgroup {
    pub(crate) fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if fs::remove_dir(&self.dir).is_err() {
            // Something the run started is still inside: cgroup.kill (Linux ≥ 5.14), then retry.
            let _ = fs::write(self.dir.join("cgroup.kill"), "1");
            for _ in 0..50 {
                if fs::remove_dir(&self.dir).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

/// Our own cgroup v2 directory, when its subtree has the memory controller enabled and we may
/// create children in it.
///
/// In practice this is rare: cgroup v2 lets a non-root cgroup enable controllers for its
/// children only while it has no processes of its own ("no internal processes"), and benchfleet
/// lives in its cgroup. It works when benchfleet runs in the root cgroup of a pure v2 host or of
/// a cgroup namespace whose manager enabled `memory` there; on hybrid hosts (controllers on v1,
/// an empty `unified` v2 tree) and in ordinary containers and login sessions it does not, and
/// [`MemoryLimit::prepare`] falls back to `RLIMIT_AS`. [`memory_limit_method`] says which.
///
/// Looked up again at most once per [`CGROUP_LOOKUP_TTL`] per process: three file reads and a
/// parse of `mountinfo` are a per-run cost a large suite of memory-limited jobs would otherwise
/// pay for every node, while the answer changes only if something moves this process.
fn own_cgroup_v2() -> Option<PathBuf> {
    type Cached = Option<(std::time::Instant, Option<PathBuf>)>;
    static CACHE: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    let mut cached = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, dir)) = cached.as_ref()
        && at.elapsed() < CGROUP_LOOKUP_TTL
    {
        return dir.clone();
    }
    let dir = look_up_own_cgroup_v2();
    *cached = Some((std::time::Instant::now(), dir.clone()));
    dir
}

/// How long [`own_cgroup_v2`]'s answer is reused.
const CGROUP_LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(1);

fn look_up_own_cgroup_v2() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
    delegated_memory_cgroup(&mountinfo, &cgroup)
}

/// The cgroup v2 directory named by `/proc/self/cgroup` (`proc_cgroup`) under the cgroup2 mount
/// of `mountinfo`, if its `cgroup.subtree_control` enables `memory` (so a child created there
/// gets `memory.max`).
pub(crate) fn delegated_memory_cgroup(mountinfo: &str, proc_cgroup: &str) -> Option<PathBuf> {
    // fields: id parent major:minor root mount-point opts ... - fstype source superopts
    let mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    let rel = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = mount.join(rel.trim().trim_start_matches('/'));
    let subtree = fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    subtree
        .split_whitespace()
        .any(|c| c == "memory")
        .then_some(dir)
}

/// How a memory limit ([`crate::ProcessSpec::memory_limit`]) would be enforced on this host
/// now: [`MemoryLimitVia::Cgroup`] when this process's cgroup v2 delegates the memory
/// controller to children, otherwise [`MemoryLimitVia::RlimitAs`]. A run reports the method it
/// actually used in [`crate::ProcessResult::memory_limit`] (creating the cgroup can still fail,
/// e.g. without write permission, and then falls back the same way).
pub fn memory_limit_method() -> MemoryLimitVia {
    if own_cgroup_v2().is_some() {
        MemoryLimitVia::Cgroup
    } else {
        MemoryLimitVia::RlimitAs
    }
}

impl MemoryLimitVia {
    /// `cgroup` or `rlimit` (the value of the `run.memory_limit` record tag).
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryLimitVia::Cgroup => "cgroup",
            MemoryLimitVia::RlimitAs => "rlimit",
        }
    }
}

fn create_cgroup(parent: &Path, limit: u64) -> io::Result<RunCgroup> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = parent.join(format!(
        "benchfleet-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir)?;
    let setup = || -> io::Result<OwnedFd> {
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join("memory.max"))?
            .write_all(limit.to_string().as_bytes())?;
        // Without swap the limit is a real RSS limit; ignore failure (no swap accounting).
        let _ = fs::write(dir.join("memory.swap.max"), "0");
        Ok(fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?
            .into())
    };
    match setup() {
        Ok(procs) => Ok(RunCgroup { dir, procs }),
        Err(e) => {
            let _ = fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// How to enforce a memory limit for one run.
#[derive(Debug)]
pub(crate) enum MemoryLimit {
    Cgroup(RunCgroup),
    Rlimit(u64),
}

impl MemoryLimit {
    pub(crate) fn prepare(limit: u64) -> MemoryLimit {
        match own_cgroup_v2().map(|parent| create_cgroup(&parent, limit)) {
            Some(Ok(cg)) => MemoryLimit::Cgroup(cg),
            _ => MemoryLimit::Rlimit(limit),
        }
    }

    pub(crate) fn via(&self) -> MemoryLimitVia {
        match self {
            MemoryLimit::Cgroup(_) => MemoryLimitVia::Cgroup,
            MemoryLimit::Rlimit(_) => MemoryLimitVia::RlimitAs,
        }
    }
}

/// Everything the child applies to itself before exec. Plain data, prepared before the launch:
/// what uses it in the child must stay async-signal-safe and allocation-free.
#[derive(Clone, Copy, Default)]
pub(crate) struct ChildSetup {
    pub cgroup_procs: Option<RawFd>,
    pub cpus: Option<libc::cpu_set_t>,
    pub rlimit_as: Option<u64>,
    pub perf_sock: Option<RawFd>,
}

impl ChildSetup {
    pub(crate) fn is_empty(&self) -> bool {
        self.cgroup_procs.is_none()
            && self.cpus.is_none()
            && self.rlimit_as.is_none()
            && self.perf_sock.is_none()
    }

    /// The isolation steps (cgroup, affinity, address-space limit), in the child before exec:
    /// raw system calls on this plain data only, so it runs as well in std's forked child as in
    /// the `CLONE_VM` child of `spawn.rs`, which shares this process's memory. `Err` is the errno
    /// of the step that failed.
    pub(crate) fn apply_isolation(&self) -> Result<(), libc::c_int> {
        // SAFETY: reads the calling thread's errno right after a failed call.
        let errno = || unsafe { *libc::__errno_location() };
        if let Some(fd) = self.cgroup_procs {
            // SAFETY: writes 1 byte from a static buffer to an fd inherited from the parent.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(errno());
            }
        }
        if let Some(set) = &self.cpus {
            // SAFETY: valid size and pointer to a live cpu_set_t.
            if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) }
                != 0
            {
                return Err(errno());
            }
        }
        if let Some(limit) = self.rlimit_as {
            let rl = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            // SAFETY: valid pointer to a live rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) } != 0 {
                return Err(errno());
            }
        }
        Ok(())
    }

    /// Runs in std's forked child between fork and exec: the isolation steps, then the hand-over
    /// of the hardware counters' descriptors.
    pub(crate) fn apply(&self) -> io::Result<()> {
        self.apply_isolation()
            .map_err(io::Error::from_raw_os_error)?;
        if let Some(sock) = self.perf_sock {
            crate::counters::child_open_and_send(sock);
        }
        Ok(())
    }
}

/// While alive, every other thread of this process runs under `SCHED_IDLE`: it gets CPU time
/// only when nothing else wants it, so a storing thread, an async runtime's workers or the
/// system sampler never take a CPU from a process being measured. The thread that calls
/// [`idle_other_threads`] keeps its policy, and so do the processes it starts (a child inherits
/// the policy of the thread that spawns it): measure from that thread. Threads the idled ones
/// create meanwhile inherit `SCHED_IDLE`.
///
/// Dropping it puts back `SCHED_OTHER` on every thread it idled and on the threads that appeared
/// meanwhile, where the kernel allows it (an unprivileged process may not leave `SCHED_IDLE`
/// unless `RLIMIT_NICE` permits nice 0; those threads then stay idle, which only matters to a
/// long-lived process that embeds benchfleet).
#[derive(Debug)]
pub struct IdleOthers {
    /// Threads that were already `SCHED_IDLE` (left alone on restore), and this thread.
    untouched: Vec<libc::pid_t>,
    /// Threads put under `SCHED_IDLE`.
    pub idled: usize,
}

fn thread_ids() -> Vec<libc::pid_t> {
    fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn set_policy(tid: libc::pid_t, policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on a thread id with a valid, live sched_param.
    unsafe { libc::sched_setscheduler(tid, policy, &param) == 0 }
}

fn policy_of(tid: libc::pid_t) -> libc::c_int {
    // SAFETY: plain syscall; a negative return (thread gone) is handled by the caller.
    unsafe { libc::sched_getscheduler(tid) }
}

/// Put every other thread of this process under `SCHED_IDLE` until the returned guard drops.
pub fn idle_other_threads() -> IdleOthers {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    let mut untouched = vec![me];
    let mut idled = 0;
    for tid in thread_ids() {
        if tid == me {
            continue;
        }
        if policy_of(tid) == libc::SCHED_IDLE {
            untouched.push(tid);
        } else if set_policy(tid, libc::SCHED_IDLE) {
            idled += 1;
        }
    }
    IdleOthers { untouched, idled }
}

impl Drop for IdleOthers {
    fn drop(&mut self) {
        for tid in thread_ids() {
            if !self.untouched.contains(&tid) && policy_of(tid) == libc::SCHED_IDLE {
                set_policy(tid, libc::SCHED_OTHER);
            }
        }
    }
}

/// The CPUs that take the fewest device interrupts first: per-CPU sums of the numbered (device)
/// rows of a `/proc/interrupts` text, e.g. the block device's completions, which land on the CPU
/// the kernel routed that IRQ to. Timer, rescheduling and IPI rows (`LOC`, `RES`, …) are left out:
/// every CPU takes them. Ties, and CPUs the text does not show, keep `allowed`'s order.
pub fn cpus_by_device_interrupts(allowed: &[usize], interrupts: &str) -> Vec<usize> {
    let mut lines = interrupts.lines();
    let columns: Vec<usize> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.strip_prefix("CPU")?.parse().ok())
        .collect();
    let mut per_cpu = vec![0u64; columns.iter().max().map_or(0, |m| m + 1)];
    for line in lines {
        let Some((label, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        if label.parse::<u32>().is_err() {
            continue;
        }
        for (col, count) in rest.split_whitespace().take(columns.len()).enumerate() {
            if let Ok(n) = count.parse::<u64>() {
                per_cpu[columns[col]] += n;
            }
        }
    }
    let mut order = allowed.to_vec();
    order.sort_by_key(|c| per_cpu.get(*c).copied().unwrap_or(u64::MAX));
    order
}

/// While alive, the thread that called [`pin_measuring_thread`] runs on one CPU only, and every
/// other thread of this process on the remaining ones. Measure from that thread: the processes
/// it starts inherit its CPU, so a measured process never competes with benchfleet's own storing
/// or sampling for a CPU, its start and its exit are handled on the CPU that waits for it (no
/// cross-CPU wake-up), and it does not share its CPU with the interrupts of the disk that
/// records are written to (see [`cpus_by_device_interrupts`]).
///
/// Dropping it gives every thread of the process (also those that appeared meanwhile) the mask
/// the calling thread had before.
#[derive(Debug)]
pub struct PinnedMeasuring {
    /// The CPU the measuring thread (and what it starts) runs on.
    pub cpu: usize,
    restore: Vec<usize>,
    /// Whether the measuring thread is on `cpu` alone right now (see [`PinnedMeasuring::hold`]).
    on_cpu: std::cell::Cell<bool>,
}

/// Set `tid`'s mask to `cpus` (CPUs the process was allowed when the guard was made: not checked
/// against the calling thread's mask, which by then is one CPU).
fn set_affinity(tid: libc::pid_t, cpus: &[usize]) -> bool {
    let set = mask(cpus);
    // SAFETY: plain syscall with a valid size and a live set.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Pin the calling thread to the allowed CPU with the fewest device interrupts, and the other
/// threads of this process to the rest, until the returned guard drops. `None` (nothing changed)
/// when fewer than two CPUs are allowed, the kernel refuses, or another thread of this process
/// holds the pin.
pub fn pin_measuring_thread() -> Option<PinnedMeasuring> {
    let allowed = allowed_cpus();
    if allowed.len() < 2 {
        return None;
    }
    // One measuring thread per process: a second one (a library running two benchmarks at
    // once) would move the first one's thread onto "the other CPUs". It stays unpinned.
    if PINNED.swap(true, Ordering::AcqRel) {
        return None;
    }
    let interrupts = fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let cpu = *cpus_by_device_interrupts(&allowed, &interrupts).first()?;
    if !spread(cpu, &allowed) {
        PINNED.store(false, Ordering::Release);
        return None;
    }
    Some(PinnedMeasuring {
        cpu,
        restore: allowed,
        on_cpu: std::cell::Cell::new(true),
    })
}

impl PinnedMeasuring {
    /// From the measuring thread, before a run: pinned (`true`: this thread, and the processes
    /// it starts next, on [`PinnedMeasuring::cpu`], the other threads on the rest), or not
    /// (`false`: every thread on every CPU the process was allowed, as without the guard).
    /// Sharing the waiting thread's CPU makes start and exit cheaper and steadier, which matters
    /// for short runs; a long run is better free to move away from whatever else wants a CPU.
    pub fn hold(&self, pinned: bool) {
        if self.on_cpu.get() == pinned {
            return;
        }
        if pinned {
            spread(self.cpu, &self.restore);
        } else {
            for tid in thread_ids() {
                set_affinity(tid, &self.restore);
            }
        }
        self.on_cpu.set(pinned);
    }
}

/// The calling thread on `cpu`, the process's other threads on the rest of `allowed`. `false`
/// when the kernel refused the calling thread's mask.
fn spread(cpu: usize, allowed: &[usize]) -> bool {
    let others: Vec<usize> = allowed.iter().copied().filter(|c| *c != cpu).collect();
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    if !set_affinity(me, &[cpu]) {
        return false;
    }
    for tid in thread_ids() {
        if tid != me {
            // A thread that just exited cannot be moved; nothing to do about it.
            set_affinity(tid, &others);
        }
    }
    true
}

impl Drop for PinnedMeasuring {
    fn drop(&mut self) {
        for tid in thread_ids() {
            set_affinity(tid, &self.restore);
        }
        PINNED.store(false, Ordering::Release);
    }
}

/// Whether a [`PinnedMeasuring`] is alive in this process.
static PINNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cgroup_is_used_only_where_the_memory_controller_is_delegated() {
        let root = std::env::temp_dir().join(format!("benchfleet-cg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (dir, controllers) in [("on", "cpu memory io"), ("off", "cpu io"), ("empty", "")] {
            fs::create_dir_all(root.join("svc").join(dir)).unwrap();
            fs::write(
                root.join("svc").join(dir).join("cgroup.subtree_control"),
                controllers,
            )
            .unwrap();
        }
        let v2 = format!(
            "22 1 0:5 / /proc rw - proc proc rw\n41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
            root.display()
        );
        // A hybrid host: the memory controller is on v1, v2 is mounted but empty.
        let v1_only = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let cases: &[(&str, &str, Option<PathBuf>)] = &[
            (&v2, "0::/svc/on\n", Some(root.join("svc/on"))),
            (&v2, "4:memory:/x\n0::/svc/on\n", Some(root.join("svc/on"))),
            (&v2, "0::/svc/off\n", None),
            (&v2, "0::/svc/empty\n", None),
            (&v2, "0::/svc/missing\n", None),
            (&v2, "4:memory:/svc/on\n", None),
            (v1_only, "0::/svc/on\n", None),
        ];
        for (mountinfo, cgroup, want) in cases {
            assert_eq!(
                &delegated_memory_cgroup(mountinfo, cgroup),
                want,
                "{mountinfo:?} {cgroup:?}"
            );
        }
        let _ = fs::remove_dir_all(&root);
        assert_eq!(
            (
                MemoryLimitVia::Cgroup.as_str(),
                MemoryLimitVia::RlimitAs.as_str()
            ),
            ("cgroup", "rlimit")
        );
    }

    /// What a run then reports is checked in `tests/run.rs`
    /// (`a_limited_run_reports_the_method_this_host_supports`).
    #[test]
    fn the_memory_limit_method_is_the_one_this_host_supports() {
        // What the host offers decides the method: a cgroup only where `memory` is delegated to
        // our cgroup's children, RLIMIT_AS otherwise (hybrid v1/v2 hosts, containers, sessions).
        let expected = match (
            fs::read_to_string("/proc/self/mountinfo"),
            fs::read_to_string("/proc/self/cgroup"),
        ) {
            (Ok(m), Ok(c)) if delegated_memory_cgroup(&m, &c).is_some() => MemoryLimitVia::Cgroup,
            _ => MemoryLimitVia::RlimitAs,
        };
        assert_eq!(memory_limit_method(), expected);
    }

    /// Field 41 (`policy`) of a `/proc/<pid>/stat` line.
    fn stat_policy(pid: u32) -> libc::c_int {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_comm = stat.rsplit_once(')').unwrap().1;
        after_comm
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Another thread of this process, alive until dropped.
    struct Helper {
        tid: libc::pid_t,
        stop: Option<std::sync::mpsc::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Helper {
        fn start() -> Helper {
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                let _ = stop_rx.recv();
            });
            Helper {
                tid: tid_rx.recv().unwrap(),
                stop: Some(stop),
                thread: Some(thread),
            }
        }
    }

    impl Drop for Helper {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// While the guard lives the other threads are idle; the calling thread, and the processes
    /// it starts, are not; dropping the guard restores the others (where permitted).
    #[test]
    fn only_the_measuring_thread_and_its_children_keep_their_policy() {
        let helper = Helper::start();
        let helper_tid = helper.tid;
        let guard = idle_other_threads();
        assert!(guard.idled >= 1, "{guard:?}");
        assert_eq!(policy_of(helper_tid), libc::SCHED_IDLE);
        assert_eq!(policy_of(0), libc::SCHED_OTHER);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let child_policy = stat_policy(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            child_policy,
            libc::SCHED_OTHER,
            "a measured process must not be idle"
        );
        drop(guard);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(policy_of(helper_tid), libc::SCHED_OTHER);
        }
        drop(helper);
    }

    #[test]
    fn cpus_are_ordered_by_their_device_interrupts() {
        let text = "           CPU0       CPU1       CPU2\n\
 28:          0          0          0 PCI-MSIX virtio0-config\n\
 36:          5    3899076         10 PCI-MSIX virtio1-req.0\n\
 41:       5372          0          1 PCI-MSIX virtio3-rx\n\
NMI:          0          0          0 Non-maskable interrupts\n\
LOC:    3302330          1          9 Local timer interrupts\n\
ERR:          0\n";
        let cases: &[(&[usize], &[usize])] = &[
            (&[0, 1, 2], &[2, 0, 1]),
            (&[0, 1], &[0, 1]),
            (&[1, 0], &[0, 1]),
            // A CPU the table does not show comes last; ties keep the given order.
            (&[7, 1, 2], &[2, 1, 7]),
        ];
        for (allowed, want) in cases {
            assert_eq!(
                &cpus_by_device_interrupts(allowed, text),
                want,
                "{allowed:?}"
            );
        }
        assert_eq!(cpus_by_device_interrupts(&[3, 1], ""), vec![3, 1]);
    }

    /// The measuring thread and what it starts share one CPU; the other threads get the rest;
    /// dropping the guard gives everyone the whole mask back.
    #[test]
    fn the_measuring_thread_and_its_children_get_a_cpu_of_their_own() {
        let allowed = allowed_cpus();
        let helper = Helper::start();
        let helper_tid = helper.tid;
        let guard = pin_measuring_thread();
        if allowed.len() < 2 {
            assert!(guard.is_none());
        } else {
            let second = std::thread::spawn(|| pin_measuring_thread().map(|p| p.cpu));
            assert_eq!(
                second.join().unwrap(),
                None,
                "one measuring thread at a time"
            );
            let cpu = guard.as_ref().expect("two CPUs allowed: pinned").cpu;
            assert!(allowed.contains(&cpu));
            assert_eq!(affinity_of(0), vec![cpu]);
            let others: Vec<usize> = allowed.iter().copied().filter(|c| *c != cpu).collect();
            assert_eq!(affinity_of(helper_tid), others);
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let child_mask = affinity_of(child.id() as libc::pid_t);
            child.kill().unwrap();
            child.wait().unwrap();
            assert_eq!(
                child_mask,
                vec![cpu],
                "a measured process runs on the measuring CPU"
            );
            let g = guard.as_ref().unwrap();
            g.hold(false);
            assert_eq!(affinity_of(0), allowed, "released for long runs");
            assert_eq!(affinity_of(helper_tid), allowed, "everyone released");
            g.hold(true);
            assert_eq!(affinity_of(0), vec![cpu]);
            assert_eq!(affinity_of(helper_tid), others);
        }
        drop(guard);
        assert_eq!(affinity_of(0), allowed);
        assert_eq!(affinity_of(helper_tid), allowed);
        drop(helper);
    }
}
