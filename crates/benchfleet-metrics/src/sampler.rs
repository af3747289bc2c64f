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
    /// CPUs' worth of time used by this process and the children it reaped during the interval.
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
    /// CPUs' worth of busy time outside this process and its children (default 0.5).
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

    pub fn noisy_with(&self, t: &NoiseThresholds) -> NoiseVerdict {
        let (mut steal, mut busy, mut cells, mut foreign) = (0.0, 0.0, 0usize, 0.0);
        for s in &self.samples {
            let total_busy: f64 = s.cores.iter().map(|c| f64::from(c.busy)).sum();
            steal += s.cores.iter().map(|c| f64::from(c.steal)).sum::<f64>();
            busy += total_busy;
            cells += s.cores.len();
            foreign += (total_busy - s.own_busy_cores).max(0.0);
        }
        if cells == 0 {
            return NoiseVerdict::default();
        }
        let mean_steal = steal / cells as f64;
        let foreign_busy_cores = foreign / self.samples.len() as f64;
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
    /// utime + stime + cutime + cstime of this process, in ticks.
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
        let own_ticks = std::fs::read_to_string("/proc/self/stat")
            .map(|s| parse_self_ticks(&s))
            .unwrap_or_default();
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
pub(crate) fn parse_self_ticks(text: &str) -> u64 {
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0;
    };
    // `rest` starts at field 3 (state).
    rest.split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse::<i64>().unwrap_or(0).max(0) as u64)
        .sum()
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
