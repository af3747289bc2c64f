//! System sampling while a suite runs: per-core utilisation (incl. steal and iowait), memory,
//! disk bytes and load average from `/proc`, with a verdict on whether the machine was noisy.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Why sampling could not start.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error(
        "cannot read {path}: {source}; system sampling needs Linux /proc (disable sampling to run without it)"
    )]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("{path} has no per-CPU lines; cannot sample CPU utilisation")]
    NoCpus { path: &'static str },
    #[error("sampling interval must be positive (got 0); the default is 250 ms")]
    ZeroInterval,
    #[error("cannot start the sampling thread: {0}")]
    Thread(std::io::Error),
}

/// One core over one interval, as fractions of that core's time (0..=1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreUsage {
    /// user + nice + system + irq + softirq.
    pub busy: f32,
    /// Time the hypervisor gave to someone else.
    pub steal: f32,
    pub iowait: f32,
}

/// The machine over one interval, ending `t_ms` after the sampler started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_ms: u64,
    pub cores: Vec<CoreUsage>,
    pub mem_total_bytes: u64,
    /// `MemTotal − MemAvailable`.
    pub mem_used_bytes: u64,
    /// Read from / written to whole physical disks during the interval.
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// CPUs' worth of time used during the interval by this process and its descendants: the
    /// ones still running (read from their `/proc/<pid>/stat`) and the ones already reaped.
    pub own_busy_cores: f64,
}

/// What a [`Sampler`] recorded. Serializable so it can be stored with a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSeries {
    pub interval_ms: u64,
    pub samples: Vec<Sample>,
}

/// Thresholds for [`SystemSeries::noisy_with`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseThresholds {
    /// Mean steal fraction above which the machine is noisy (default 5 %).
    pub max_steal: f64,
    /// CPUs' worth of busy time outside this process and its descendants (default 0.5).
    pub max_foreign_busy_cores: f64,
}

impl Default for NoiseThresholds {
    fn default() -> Self {
        NoiseThresholds {
            max_steal: 0.05,
            max_foreign_busy_cores: 0.5,
        }
    }
}

/// Whether the machine was quiet enough for trustworthy numbers, and why not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseVerdict {
    pub noisy: bool,
    pub mean_steal: f64,
    /// Mean busy fraction over all cores.
    pub mean_busy: f64,
    pub foreign_busy_cores: f64,
    /// Human-readable reasons, empty when quiet.
    pub reasons: Vec<String>,
}

impl SystemSeries {
    /// [`Self::noisy_with`] the default thresholds.
    pub fn noisy(&self) -> NoiseVerdict {
        self.noisy_with(&NoiseThresholds::default())
    }

    /// Foreign load is the machine's busy time minus our own over the whole series, not per
    /// sample: the two come from different counters read at slightly different instants, so one
    /// sample may see our CPU time a little early and the next a little late. Clamping each
    /// sample at zero would count every late reading as foreign load and never the early one that
    /// cancels it.
    pub fn noisy_with(&self, t: &NoiseThresholds) -> NoiseVerdict {
        let (mut steal, mut busy, mut cells, mut own) = (0.0, 0.0, 0usize, 0.0);
        for s in &self.samples {
            steal += s.cores.iter().map(|c| f64::from(c.steal)).sum::<f64>();
            busy += s.cores.iter().map(|c| f64::from(c.busy)).sum::<f64>();
            cells += s.cores.len();
            own += s.own_busy_cores;
        }
        if cells == 0 {
            return NoiseVerdict::default();
        }
        let mean_steal = steal / cells as f64;
        let foreign_busy_cores = (busy - own).max(0.0) / self.samples.len() as f64;
        let mut reasons = Vec::new();
        if mean_steal > t.max_steal {
            reasons.push(format!(
                "high steal: the hypervisor took {:.1}% of CPU time (limit {:.1}%)",
                mean_steal * 100.0,
                t.max_steal * 100.0
            ));
        }
        if foreign_busy_cores > t.max_foreign_busy_cores {
            reasons.push(format!(
                "other processes were busy: {foreign_busy_cores:.2} CPUs on average outside benchfleet (limit {:.2})",
                t.max_foreign_busy_cores
            ));
        }
        NoiseVerdict {
            noisy: !reasons.is_empty(),
            mean_steal,
            mean_busy: busy / cells as f64,
            foreign_busy_cores,
            reasons,
        }
    }
}

/// Samples `/proc` on a background thread until [`Sampler::stop`] (or drop).
#[derive(Debug)]
pub struct Sampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<SystemSeries>,
}

impl Sampler {
    /// Start sampling every `interval` (one thread, woken only by the interval or by `stop`).
    pub fn start(interval: Duration) -> Result<Sampler, SamplerError> {
        if interval.is_zero() {
            return Err(SamplerError::ZeroInterval);
        }
        let source = ProcSource::new();
        let first = source.snapshot()?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("benchfleet-sampler".into())
            .spawn(move || sample_loop(source, first, interval, stopped))
            .map_err(SamplerError::Thread)?;
        Ok(Sampler { stop, thread })
    }

    /// Stop, take a last sample, and return the series.
    pub fn stop(self) -> SystemSeries {
        let _ = self.stop.send(());
        // The loop cannot panic on bad /proc content (parsers are total); a panic would only
        // lose the series.
        self.thread.join().unwrap_or_default()
    }
}

/// Live readings for exporters (e.g. a Prometheus endpoint): each [`CpuMeter::read`] returns the
/// machine over the time since the previous read (or since [`CpuMeter::new`]).
#[derive(Debug)]
pub struct CpuMeter {
    source: ProcSource,
    prev: Snapshot,
    start: Instant,
}

impl CpuMeter {
    pub fn new() -> Result<CpuMeter, SamplerError> {
        let source = ProcSource::new();
        let prev = source.snapshot()?;
        Ok(CpuMeter {
            source,
            prev,
            start: Instant::now(),
        })
    }

    /// The machine since the last read; `None` when `/proc` could not be read this time.
    pub fn read(&mut self) -> Option<Sample> {
        let now = self.source.snapshot().ok()?;
        let sample = sample_between(
            &self.prev,
            &now,
            self.start.elapsed(),
            self.source.ticks_per_sec,
        );
        self.prev = now;
        Some(sample)
    }
}

fn sample_loop(
    source: ProcSource,
    first: Snapshot,
    interval: Duration,
    stopped: mpsc::Receiver<()>,
) -> SystemSeries {
    let start = Instant::now();
    let mut series = SystemSeries {
        interval_ms: interval.as_millis() as u64,
        samples: Vec::new(),
    };
    let mut prev = first;
    loop {
        let stop = !matches!(
            stopped.recv_timeout(interval),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if let Ok(now) = source.snapshot() {
            series.samples.push(sample_between(
                &prev,
                &now,
                start.elapsed(),
                source.ticks_per_sec,
            ));
            prev = now;
        }
        if stop {
            return series;
        }
    }
}

/// Raw counters of `/proc/stat` for one CPU, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    pub busy: u64,
    pub idle: u64,
    pub iowait: u64,
    pub steal: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.iowait + self.steal
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Snapshot {
    at: Option<Instant>,
    cpus: Vec<CpuTimes>,
    mem_total: u64,
    mem_available: u64,
    disk_sectors: (u64, u64),
    load: (f64, f64, f64),
    /// CPU time of this process and its descendants, in ticks (see [`own_tree_ticks`]).
    own_ticks: u64,
}

#[derive(Debug)]
struct ProcSource {
    disks: Vec<String>,
    ticks_per_sec: f64,
}

impl ProcSource {
    fn new() -> Self {
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcSource {
            disks: physical_disks(Path::new("/sys/block")),
            ticks_per_sec: if tck > 0 { tck as f64 } else { 100.0 },
        }
    }

    fn snapshot(&self) -> Result<Snapshot, SamplerError> {
        let read = |path: &'static str| {
            std::fs::read_to_string(path).map_err(|source| SamplerError::Read { path, source })
        };
        let cpus = parse_stat(&read("/proc/stat")?);
        if cpus.is_empty() {
            return Err(SamplerError::NoCpus { path: "/proc/stat" });
        }
        let (mem_total, mem_available) = parse_meminfo(&read("/proc/meminfo")?);
        // Optional sources: absent in some containers.
        let disk_sectors = std::fs::read_to_string("/proc/diskstats")
            .map(|s| parse_diskstats(&s, &self.disks))
            .unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|s| parse_loadavg(&s))
            .unwrap_or_default();
        let own_ticks = own_tree_ticks(Path::new("/proc"), std::process::id());
        Ok(Snapshot {
            at: Some(Instant::now()),
            cpus,
            mem_total,
            mem_available,
            disk_sectors,
            load,
            own_ticks,
        })
    }
}

fn sample_between(prev: &Snapshot, now: &Snapshot, t: Duration, ticks_per_sec: f64) -> Sample {
    let cores = now
        .cpus
        .iter()
        .zip(&prev.cpus)
        .map(|(n, p)| {
            let total = n.total().saturating_sub(p.total());
            let frac = |a: u64, b: u64| {
                if total == 0 {
                    0.0
                } else {
                    a.saturating_sub(b) as f32 / total as f32
                }
            };
            CoreUsage {
                busy: frac(n.busy, p.busy),
                steal: frac(n.steal, p.steal),
                iowait: frac(n.iowait, p.iowait),
            }
        })
        .collect();
    let secs = match (now.at, prev.at) {
        (Some(n), Some(p)) => n.duration_since(p).as_secs_f64(),
        _ => 0.0,
    };
    let own = now.own_ticks.saturating_sub(prev.own_ticks) as f64 / ticks_per_sec;
    Sample {
        t_ms: t.as_millis() as u64,
        cores,
        mem_total_bytes: now.mem_total,
        mem_used_bytes: now.mem_total.saturating_sub(now.mem_available),
        disk_read_bytes: now.disk_sectors.0.saturating_sub(prev.disk_sectors.0) * 512,
        disk_write_bytes: now.disk_sectors.1.saturating_sub(prev.disk_sectors.1) * 512,
        load1: now.load.0,
        load5: now.load.1,
        load15: now.load.2,
        own_busy_cores: if secs > 0.0 { own / secs } else { 0.0 },
    }
}

/// Per-CPU lines (`cpu0 …`) of `/proc/stat`; malformed fields count as 0.
pub(crate) fn parse_stat(text: &str) -> Vec<CpuTimes> {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            let f = |i: usize| v.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal (guest time is already in user)
            CpuTimes {
                busy: f(0) + f(1) + f(2) + f(5) + f(6),
                idle: f(3),
                iowait: f(4),
                steal: f(7),
            }
        })
        .collect()
}

/// `(MemTotal, MemAvailable)` in bytes.
pub(crate) fn parse_meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("MemTotal"), field("MemAvailable"))
}

/// Total `(sectors read, sectors written)` over the named devices.
pub(crate) fn parse_diskstats(text: &str, disks: &[String]) -> (u64, u64) {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(2)?;
            disks.iter().any(|d| d == name).then(|| {
                let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                (n(5), n(9))
            })
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

pub(crate) fn parse_loadavg(text: &str) -> (f64, f64, f64) {
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    (
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    )
}

/// utime + stime + cutime + cstime (fields 14–17) of a `/proc/<pid>/stat` line.
#[cfg(test)]
pub(crate) fn parse_self_ticks(text: &str) -> u64 {
    parse_proc_stat(text).map_or(0, |p| p.ticks)
}

/// The fields of a `/proc/<pid>/stat` line the sampler needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcTicks {
    pub ppid: u32,
    /// utime + stime + cutime + cstime: the process's own CPU time plus that of the children
    /// it reaped (which include what those had reaped).
    pub ticks: u64,
    /// cutime + cstime alone: changes whenever the process reaps a child.
    pub reaped: u64,
}

/// ppid (field 4) and the CPU times (fields 14–17) of a `/proc/<pid>/stat` line; `None` when
/// the line is not one (the command name, field 2, may contain spaces and parentheses).
pub(crate) fn parse_proc_stat(text: &str) -> Option<ProcTicks> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let n = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64
    };
    Some(ProcTicks {
        ppid,
        ticks: n(11) + n(12) + n(13) + n(14),
        reaped: n(13) + n(14),
    })
}

/// CPU time, in ticks, of process `pid` and all its descendants, from the `proc` directory: its
/// own utime + stime + cutime + cstime, plus the same of every live descendant (found by walking
/// ppid links). A child's time only enters its parent's cutime/cstime once it is reaped, so
/// without the live descendants a benchmark running for several sampling intervals would look
/// like a foreign process until it exits. A reaped descendant's time moves into its parent's
/// counters, so the sum stays continuous; a descendant that is re-parented away (a daemon that
/// double-forks) leaves the tree and counts as foreign from then on.
///
/// When `pid` reaps a child while the tree is read, the child could be counted twice or not at
/// all; the read is retried (a few times) until the reaped counters of `pid` did not move.
pub(crate) fn own_tree_ticks(proc: &Path, pid: u32) -> u64 {
    let own = || {
        std::fs::read_to_string(proc.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|s| parse_proc_stat(&s))
    };
    let mut total = 0;
    for _ in 0..3 {
        let Some(before) = own() else {
            return 0;
        };
        let descendants = descendant_ticks(proc, pid);
        let Some(after) = own() else {
            return 0;
        };
        total = after.ticks + descendants;
        if after.reaped == before.reaped {
            break;
        }
    }
    total
}

/// Sum of utime + stime + cutime + cstime of the live descendants of `pid` under `proc`.
///
/// Follows `/proc/<pid>/task/<tid>/children` down the tree, reading only the descendants' own
/// `stat` (a handful of files, however many processes the machine runs); without those files
/// (a kernel built without `CONFIG_PROC_CHILDREN`) it reads every process's `stat` instead.
fn descendant_ticks(proc: &Path, pid: u32) -> u64 {
    walk_children(proc, pid).unwrap_or_else(|| scan_descendant_ticks(proc, pid))
}

/// The children-file walk of [`descendant_ticks`]; `None` when `pid` has no `children` files.
fn walk_children(proc: &Path, pid: u32) -> Option<u64> {
    let children_of = |p: u32| -> Option<Vec<u32>> {
        let tasks = std::fs::read_dir(proc.join(p.to_string()).join("task")).ok()?;
        let mut found = false;
        let mut out = Vec::new();
        for t in tasks.flatten() {
            // A thread that exits meanwhile has no file any more: its children are elsewhere.
            if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
                found = true;
                out.extend(
                    list.split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        found.then_some(out)
    };
    let mut queue = children_of(pid)?;
    let mut seen = std::collections::HashSet::from([pid]);
    let mut sum = 0;
    while let Some(c) = queue.pop() {
        if !seen.insert(c) {
            continue;
        }
        // A child that is reaped meanwhile moved its time into its parent's counters.
        if let Some(t) = std::fs::read_to_string(proc.join(c.to_string()).join("stat"))
            .ok()
            .and_then(|s| parse_proc_stat(&s))
        {
            sum += t.ticks;
            queue.extend(children_of(c).unwrap_or_default());
        }
    }
    Some(sum)
}

/// The whole-`/proc` scan of [`descendant_ticks`]: every process's `stat`, linked by ppid.
fn scan_descendant_ticks(proc: &Path, pid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return 0;
    };
    let mut children: std::collections::HashMap<u32, Vec<(u32, u64)>> =
        std::collections::HashMap::new();
    for e in entries.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if p == pid {
            continue;
        }
        // Processes come and go while we read: a vanished one simply is not counted.
        if let Some(t) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| parse_proc_stat(&s))
        {
            children.entry(t.ppid).or_default().push((p, t.ticks));
        }
    }
    let mut sum = 0;
    let mut queue = vec![pid];
    // A pid is visited once even if ppid links were read mid-change and form a loop.
    let mut seen = std::collections::HashSet::from([pid]);
    while let Some(p) = queue.pop() {
        for &(c, ticks) in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(c) {
                sum += ticks;
                queue.push(c);
            }
        }
    }
    sum
}

/// Whole physical disks: `/sys/block` entries backed by a device (no loop, ram, dm or md).
fn physical_disks(sys_block: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 1000 10 0 0 5 0 0\n\
cpu0 60 0 30 500 5 0 0 5 0 0\n\
cpu1 40 0 20 500 5 0 0 0 0 0\n\
intr 12345\nctxt 99\n";

    #[test]
    fn proc_parsers_read_the_documented_fields() {
        assert_eq!(
            parse_stat(STAT),
            vec![
                CpuTimes {
                    busy: 90,
                    idle: 500,
                    iowait: 5,
                    steal: 5
                },
                CpuTimes {
                    busy: 60,
                    idle: 500,
                    iowait: 5,
                    steal: 0
                }
            ]
        );
        assert_eq!(parse_stat("intr 1\n"), vec![]);
        let cases: &[(&str, (u64, u64))] = &[
            (
                "MemTotal:       16000 kB\nMemFree: 1 kB\nMemAvailable:    4000 kB\n",
                (16000 * 1024, 4000 * 1024),
            ),
            ("MemTotal: 8 kB\n", (8 * 1024, 0)),
            ("", (0, 0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_meminfo(text), *want, "{text:?}");
        }
        let disks = "   8       0 sda 100 0 2000 0 50 0 4000 0 0 0 0\n   8       1 sda1 90 0 1900 0 40 0 3900 0 0 0 0\n   7       0 loop0 5 0 10 0 0 0 0 0 0 0 0\n 253 0 vda 1 0 8 0 1 0 16 0 0 0 0\n";
        assert_eq!(parse_diskstats(disks, &["sda".into()]), (2000, 4000));
        assert_eq!(
            parse_diskstats(disks, &["sda".into(), "vda".into()]),
            (2008, 4016)
        );
        assert_eq!(
            parse_loadavg("0.50 1.25 2.00 3/456 789\n"),
            (0.5, 1.25, 2.0)
        );
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 11 22 33 44 20 0 1 0 100 200 300";
        assert_eq!(parse_self_ticks(stat), 11 + 22 + 33 + 44);
    }

    #[test]
    fn utilisation_is_computed_from_deltas() {
        let prev = Snapshot {
            cpus: parse_stat(STAT),
            ..Default::default()
        };
        let next_stat = "cpu0 110 0 30 540 5 0 0 5\ncpu1 40 0 20 580 5 0 0 20\n";
        let now = Snapshot {
            cpus: parse_stat(next_stat),
            mem_total: 100,
            mem_available: 40,
            ..Default::default()
        };
        let s = sample_between(&prev, &now, Duration::from_millis(250), 100.0);
        assert_eq!(
            s.cores,
            vec![
                CoreUsage {
                    busy: 50.0 / 90.0,
                    steal: 0.0,
                    iowait: 0.0
                },
                CoreUsage {
                    busy: 0.0,
                    steal: 20.0 / 100.0,
                    iowait: 0.0
                },
            ]
        );
        assert_eq!((s.mem_used_bytes, s.t_ms), (60, 250));
    }

    fn series(per_sample: &[(&[(f32, f32)], f64)]) -> SystemSeries {
        SystemSeries {
            interval_ms: 250,
            samples: per_sample
                .iter()
                .map(|(cores, own)| Sample {
                    cores: cores
                        .iter()
                        .map(|(busy, steal)| CoreUsage {
                            busy: *busy,
                            steal: *steal,
                            iowait: 0.0,
                        })
                        .collect(),
                    own_busy_cores: *own,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn noise_verdict_flags_steal_and_foreign_load() {
        // (series, noisy, reason keyword)
        let cases: Vec<(SystemSeries, bool, &str)> = vec![
            (series(&[(&[(0.9, 0.0), (0.1, 0.0)], 1.0)]), false, ""),
            (series(&[(&[(0.5, 0.2), (0.5, 0.2)], 1.0)]), true, "steal"),
            (
                series(&[
                    (&[(1.0, 0.0), (1.0, 0.0)], 1.0),
                    (&[(1.0, 0.0), (0.9, 0.0)], 1.0),
                ]),
                true,
                "other processes",
            ),
            (series(&[(&[(1.0, 0.0), (1.0, 0.0)], 2.0)]), false, ""),
            // Our CPU read late in one sample and early in the next cancels out.
            (
                series(&[
                    (&[(1.0, 0.0), (0.0, 0.0)], 0.0),
                    (&[(1.0, 0.0), (0.0, 0.0)], 2.0),
                ]),
                false,
                "",
            ),
            // Still flagged when the foreign load is real across the series.
            (
                series(&[
                    (&[(1.0, 0.0), (1.0, 0.0)], 0.0),
                    (&[(1.0, 0.0), (1.0, 0.0)], 2.0),
                ]),
                true,
                "other processes",
            ),
            (SystemSeries::default(), false, ""),
        ];
        for (s, noisy, keyword) in cases {
            let v = s.noisy();
            assert_eq!(v.noisy, noisy, "{v:?}");
            assert!(
                v.reasons.iter().any(|r| r.contains(keyword)) || !noisy,
                "{v:?}"
            );
            assert_eq!(v.reasons.is_empty(), !noisy);
        }
    }

    /// A fake `/proc` with `(pid, ppid, utime, stime, cutime, cstime)` entries; with
    /// `children_files`, each process also has one thread whose `children` file lists the
    /// processes whose ppid it is.
    fn fake_proc(
        name: &str,
        procs: &[(u32, u32, u64, u64, u64, u64)],
        children_files: bool,
    ) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("benchfleet-proc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, ppid, ut, st, cut, cst) in procs {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("stat"),
                format!(
                    "{pid} (a (b) c) R {ppid} 1 1 0 -1 0 0 0 0 0 {ut} {st} {cut} {cst} 20 0 1 0"
                ),
            )
            .unwrap();
            if children_files {
                let task = d.join("task").join(pid.to_string());
                std::fs::create_dir_all(&task).unwrap();
                let kids: Vec<String> = procs
                    .iter()
                    .filter(|p| p.1 == *pid)
                    .map(|p| format!("{} ", p.0))
                    .collect();
                std::fs::write(task.join("children"), kids.concat()).unwrap();
            }
        }
        std::fs::create_dir_all(dir.join("self")).unwrap();
        std::fs::write(dir.join("stat"), "cpu 1 2 3\n").unwrap();
        dir
    }

    #[test]
    fn own_cpu_counts_live_descendants_and_not_foreign_processes() {
        // Both ways of finding descendants: children files, and the ppid scan without them.
        for children_files in [true, false] {
            own_cpu_in_a_fake_tree(children_files);
        }
    }

    fn own_cpu_in_a_fake_tree(children_files: bool) {
        let dir = fake_proc(
            &format!("tree-{children_files}"),
            &[
                // us, having reaped children worth 5 ticks
                (10, 1, 100, 20, 4, 1),
                // a running benchmark and the compiler it started
                (11, 10, 300, 30, 0, 0),
                (12, 11, 50, 5, 7, 0),
                // a foreign busy process, and a daemon our child left behind (re-parented)
                (13, 1, 9000, 900, 0, 0),
                (14, 1, 70, 0, 0, 0),
            ],
            children_files,
        );
        let cases: &[(u32, u64)] = &[
            (10, 125 + 330 + 62),
            (11, 330 + 62),
            (12, 62),
            (14, 70),
            (99, 0),
        ];
        for &(pid, want) in cases {
            assert_eq!(
                own_tree_ticks(&dir, pid),
                want,
                "pid {pid}, children files {children_files}"
            );
        }
        assert_eq!(walk_children(&dir, 10).is_some(), children_files);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            parse_proc_stat("7 (x) S 3 1 1 0 -1 0 0 0 0 0 1 2 3 4 20"),
            Some(ProcTicks {
                ppid: 3,
                ticks: 10,
                reaped: 7
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    /// A CPU-bound child that has not been reaped yet, spinning until killed.
    struct Spinner(std::process::Child);

    impl Spinner {
        fn start() -> Spinner {
            Spinner(
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .unwrap(),
            )
        }

        fn ticks(&self) -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
            parse_self_ticks(&stat)
        }

        /// Wait (bounded) until the child has used at least `ticks` of CPU.
        fn wait_for_ticks(&self, ticks: u64) -> u64 {
            for _ in 0..4000 {
                let t = self.ticks();
                if t >= ticks {
                    return t;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            panic!("the spinning child never got {ticks} ticks of CPU");
        }
    }

    impl Drop for Spinner {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_running_child_counts_as_own_cpu_before_it_is_reaped() {
        let own = || parse_self_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap());
        let spinner = Spinner::start();
        let child = spinner.wait_for_ticks(30);
        let self_before = own();
        let tree = own_tree_ticks(Path::new("/proc"), std::process::id());
        assert!(
            tree >= self_before + child,
            "tree {tree} < self {self_before} + running child {child}"
        );
    }

    #[test]
    fn sampler_attributes_a_long_running_child_to_benchfleet() {
        // The child runs across many sampling intervals and is still running when sampling stops:
        // its CPU time must show up as ours, not as another process's.
        let interval = Duration::from_millis(20);
        let sampler = Sampler::start(interval).unwrap();
        let spinner = Spinner::start();
        let child_secs = spinner.wait_for_ticks(40) as f64 / ProcSource::new().ticks_per_sec;
        let series = sampler.stop();
        assert!(
            series.samples.len() >= 3,
            "{} samples",
            series.samples.len()
        );
        let mut prev_ms = 0;
        let own_secs: f64 = series
            .samples
            .iter()
            .map(|s| {
                let secs = s.t_ms.saturating_sub(prev_ms) as f64 / 1000.0;
                prev_ms = s.t_ms;
                s.own_busy_cores * secs
            })
            .sum();
        assert!(
            own_secs >= 0.5 * child_secs,
            "own CPU {own_secs:.3}s over the samples, but the running child alone used {child_secs:.3}s"
        );
        drop(spinner);
    }

    #[test]
    fn sampler_records_this_machine_and_round_trips() {
        assert!(matches!(
            Sampler::start(Duration::ZERO),
            Err(SamplerError::ZeroInterval)
        ));
        let sampler = Sampler::start(Duration::from_millis(10)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let series = sampler.stop();
        assert!(
            !series.samples.is_empty(),
            "stop always takes a final sample"
        );
        let cpus = parse_stat(&std::fs::read_to_string("/proc/stat").unwrap()).len();
        for s in &series.samples {
            assert_eq!(s.cores.len(), cpus);
            assert!(
                s.mem_total_bytes > 0 && s.mem_used_bytes <= s.mem_total_bytes,
                "{s:?}"
            );
            assert!(
                s.cores
                    .iter()
                    .all(|c| (0.0..=1.0).contains(&c.busy) && (0.0..=1.0).contains(&c.steal)),
                "{s:?}"
            );
        }
        let json = serde_json::to_string(&series).unwrap();
        let back: SystemSeries = serde_json::from_str(&json).unwrap();
        // serde_json's float parsing may differ in the last ulp; compare floats approximately.
        let approx = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        assert_eq!(back.samples.len(), series.samples.len());
        for (b, s) in back.samples.iter().zip(&series.samples) {
            assert_eq!(
                (
                    b.t_ms,
                    b.mem_used_bytes,
                    b.disk_read_bytes,
                    b.disk_write_bytes
                ),
                (
                    s.t_ms,
                    s.mem_used_bytes,
                    s.disk_read_bytes,
                    s.disk_write_bytes
                )
            );
            assert_eq!(b.cores.len(), s.cores.len());
            assert!(
                approx(b.own_busy_cores, s.own_busy_cores) && approx(b.load1, s.load1),
                "{b:?} vs {s:?}"
            );
        }
    }
}
