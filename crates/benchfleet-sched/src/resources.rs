//! CPU and memory amounts: what a task holds while running, and the budget admission respects.

use std::fmt;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Default share of host CPU kept free by [`Resources::host_budget_default`].
pub const DEFAULT_RESERVE_CPU: f64 = 0.20;
/// Default share of host memory kept free by [`Resources::host_budget_default`].
pub const DEFAULT_RESERVE_MEM: f64 = 0.25;

/// The named resource profiles, smallest first: name, CPU in millicores, memory in bytes.
pub const PROFILES: [(&str, u64, u64); 5] = [
    ("micro", 500, 512 * MIB),
    ("small", 1000, GIB),
    ("medium", 2000, 2 * GIB),
    ("large", 4000, 4 * GIB),
    ("xlarge", 8000, 8 * GIB),
];

/// An amount of CPU (millicores: 1000 = one core) and memory (bytes). `Default` is 0/0: a task
/// needing nothing but a concurrency slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// Errors building resource amounts.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// An unknown profile name.
    #[error(
        "unknown resource profile `{value}`: expected one of micro, small, medium, large, xlarge"
    )]
    UnknownProfile {
        /// The name given.
        value: String,
    },
    /// A reserve fraction outside `[0, 1)`.
    #[error("invalid {what} reserve fraction `{value}`: expected a number in [0, 1), e.g. 0.2")]
    BadReserve {
        /// `cpu` or `memory`.
        what: &'static str,
        /// The value given.
        value: f64,
    },
    /// A CPU count that is negative, not finite, or too large.
    #[error("invalid CPU amount `{value}`: expected a finite number >= 0, e.g. 0.5 or 2")]
    BadCpus {
        /// The value given.
        value: f64,
    },
    /// The host's memory could not be read.
    #[error("cannot read host memory from {path}: {reason}; pass an explicit budget instead")]
    HostMemory {
        /// The file read.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl Resources {
    /// Nothing: only a concurrency slot.
    pub const ZERO: Resources = Resources {
        cpu_millis: 0,
        memory_bytes: 0,
    };

    /// `cpu_millis` millicores and `memory_bytes` bytes.
    pub const fn new(cpu_millis: u64, memory_bytes: u64) -> Self {
        Resources {
            cpu_millis,
            memory_bytes,
        }
    }

    /// `cpus` cores (fractions allowed, rounded to the nearest millicore) and `memory_bytes`.
    pub fn from_cpus(cpus: f64, memory_bytes: u64) -> Result<Self, ResourceError> {
        if !(0.0..=1e12).contains(&cpus) {
            return Err(ResourceError::BadCpus { value: cpus });
        }
        Ok(Resources {
            cpu_millis: (cpus * 1000.0).round() as u64,
            memory_bytes,
        })
    }

    /// A named profile: `micro` 0.5 CPU / 512 MiB, `small` 1 / 1 GiB, `medium` 2 / 2 GiB,
    /// `large` 4 / 4 GiB, `xlarge` 8 / 8 GiB. Names are case-sensitive.
    pub fn profile(name: &str) -> Result<Self, ResourceError> {
        PROFILES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(_, c, m)| Resources::new(c, m))
            .ok_or_else(|| ResourceError::UnknownProfile {
                value: name.to_owned(),
            })
    }

    /// CPU in cores.
    pub fn cpus(&self) -> f64 {
        self.cpu_millis as f64 / 1000.0
    }

    /// True if `self` is at most `budget` in both dimensions.
    pub fn fits_in(&self, budget: Resources) -> bool {
        self.cpu_millis <= budget.cpu_millis && self.memory_bytes <= budget.memory_bytes
    }

    /// Component-wise sum, saturating.
    pub fn saturating_add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
        }
    }

    /// Component-wise difference, saturating at zero.
    pub fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
        }
    }

    /// This host's total: available cores (`std::thread::available_parallelism`, which honours
    /// CPU affinity and cgroup quotas) and memory (`MemTotal` of `/proc/meminfo`, lowered to the
    /// cgroup v2 `memory.max` limit when one is set).
    pub fn host() -> Result<Self, ResourceError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let path = "/proc/meminfo";
        let text = std::fs::read_to_string(path).map_err(|e| ResourceError::HostMemory {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let mut mem = parse_meminfo_total(&text).map_err(|reason| ResourceError::HostMemory {
            path: path.into(),
            reason,
        })?;
        if let Ok(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            && let Ok(limit) = limit.trim().parse::<u64>()
        {
            mem = mem.min(limit);
        }
        Ok(Resources {
            cpu_millis: cores * 1000,
            memory_bytes: mem,
        })
    }

    /// The host total minus a reserve: `reserve_cpu_frac` of the CPU and `reserve_mem_frac` of the
    /// memory are kept free for the system and the measuring process. Fractions must be in `[0, 1)`.
    pub fn host_budget(
        reserve_cpu_frac: f64,
        reserve_mem_frac: f64,
    ) -> Result<Self, ResourceError> {
        Self::host()?.minus_reserve(reserve_cpu_frac, reserve_mem_frac)
    }

    /// [`Resources::host_budget`] with the default reserve (20% CPU, 25% memory).
    pub fn host_budget_default() -> Result<Self, ResourceError> {
        Self::host_budget(DEFAULT_RESERVE_CPU, DEFAULT_RESERVE_MEM)
    }

    /// `self` with the given fractions removed (rounded down), e.g. a host total to a budget.
    pub fn minus_reserve(
        self,
        reserve_cpu_frac: f64,
        reserve_mem_frac: f64,
    ) -> Result<Self, ResourceError> {
        let check = |what, value: f64| {
            if (0.0..1.0).contains(&value) {
                Ok(value)
            } else {
                Err(ResourceError::BadReserve { what, value })
            }
        };
        let c = check("cpu", reserve_cpu_frac)?;
        let m = check("memory", reserve_mem_frac)?;
        Ok(Resources {
            cpu_millis: (self.cpu_millis as f64 * (1.0 - c)).floor() as u64,
            memory_bytes: (self.memory_bytes as f64 * (1.0 - m)).floor() as u64,
        })
    }
}

impl std::str::FromStr for Resources {
    type Err = ResourceError;

    /// Parses a profile name (see [`Resources::profile`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resources::profile(s.trim())
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mem = self.memory_bytes;
        write!(f, "{} CPU / ", self.cpus())?;
        if mem >= GIB && mem.is_multiple_of(GIB) {
            write!(f, "{} GiB", mem / GIB)
        } else if mem >= MIB && mem.is_multiple_of(MIB) {
            write!(f, "{} MiB", mem / MIB)
        } else {
            write!(f, "{mem} bytes")
        }
    }
}

/// How many copies of `profile` run at once within `budget`: the lesser of the CPU-bound and the
/// memory-bound counts. A zero dimension of `profile` does not bound; `u64::MAX` if both are zero.
pub fn fits_replicas(profile: Resources, budget: Resources) -> u64 {
    let by = |need: u64, have: u64| have.checked_div(need).unwrap_or(u64::MAX);
    by(profile.cpu_millis, budget.cpu_millis).min(by(profile.memory_bytes, budget.memory_bytes))
}

/// [`fits_replicas`] for every named profile, smallest first: `(name, profile, replicas)`.
pub fn replicas_per_profile(budget: Resources) -> Vec<(&'static str, Resources, u64)> {
    PROFILES
        .iter()
        .map(|&(name, c, m)| {
            let p = Resources::new(c, m);
            (name, p, fits_replicas(p, budget))
        })
        .collect()
}

/// The `MemTotal` line of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo_total(text: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .ok_or_else(|| "no `MemTotal:` line".to_owned())?;
    let rest = line["MemTotal:".len()..].trim();
    let (num, unit) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let value: u64 = num
        .parse()
        .map_err(|_| format!("bad MemTotal value `{rest}`"))?;
    let mult = match unit.trim() {
        "kB" | "KB" | "KiB" => 1024,
        "" | "B" => 1,
        other => return Err(format!("unknown MemTotal unit `{other}`")),
    };
    value
        .checked_mul(mult)
        .ok_or_else(|| format!("MemTotal `{rest}` overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        let check = |name: &str, cpu: u64, mem: u64| {
            assert_eq!(
                Resources::profile(name),
                Ok(Resources::new(cpu, mem)),
                "{name}"
            );
            assert_eq!(
                name.parse::<Resources>(),
                Ok(Resources::new(cpu, mem)),
                "{name}"
            );
        };
        check("micro", 500, 512 * MIB);
        check("small", 1000, GIB);
        check("medium", 2000, 2 * GIB);
        check("large", 4000, 4 * GIB);
        check("xlarge", 8000, 8 * GIB);
    }

    #[test]
    fn unknown_profile_names_the_value() {
        for bad in ["", "huge", "Micro", "small "] {
            let err = Resources::profile(bad).unwrap_err();
            assert_eq!(err, ResourceError::UnknownProfile { value: bad.into() });
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn replicas_take_the_lesser_bound() {
        let check = |profile: &str, cpu: u64, mem: u64, expect: u64| {
            let p = Resources::profile(profile).unwrap();
            assert_eq!(
                fits_replicas(p, Resources::new(cpu, mem)),
                expect,
                "{profile} in {cpu}m/{mem}"
            );
        };
        check("micro", 4000, 16 * GIB, 8); // CPU-bound
        check("micro", 64000, GIB, 2); // memory-bound
        check("small", 999, 16 * GIB, 0);
        check("xlarge", 16000, 16 * GIB, 2);
        check("large", 6400, 12 * GIB, 1);
        assert_eq!(
            fits_replicas(Resources::ZERO, Resources::new(1, 1)),
            u64::MAX
        );
        assert_eq!(
            fits_replicas(Resources::new(0, GIB), Resources::new(0, 3 * GIB)),
            3
        );
    }

    #[test]
    fn replicas_for_every_profile() {
        let rows = replicas_per_profile(Resources::new(6400, 12 * GIB));
        let got: Vec<(&str, u64)> = rows.iter().map(|(n, _, k)| (*n, *k)).collect();
        assert_eq!(
            got,
            [
                ("micro", 12),
                ("small", 6),
                ("medium", 3),
                ("large", 1),
                ("xlarge", 0)
            ]
        );
    }

    #[test]
    fn reserve() {
        let host = Resources::new(10_000, 8 * GIB);
        assert_eq!(
            host.minus_reserve(0.2, 0.25),
            Ok(Resources::new(8000, 6 * GIB))
        );
        assert_eq!(host.minus_reserve(0.0, 0.0), Ok(host));
        for (c, m, what) in [
            (1.0, 0.1, "cpu"),
            (-0.1, 0.1, "cpu"),
            (0.1, f64::NAN, "memory"),
            (0.1, 2.0, "memory"),
        ] {
            match host.minus_reserve(c, m) {
                Err(ResourceError::BadReserve { what: w, .. }) => assert_eq!(w, what, "{c} {m}"),
                other => panic!("{c} {m}: {other:?}"),
            }
        }
    }

    #[test]
    fn meminfo() {
        let check = |text: &str, expect: Result<u64, ()>| {
            assert_eq!(
                parse_meminfo_total(text).map_err(|_| ()),
                expect,
                "{text:?}"
            );
        };
        check(
            "MemTotal:       16318412 kB\nMemFree:  1 kB\n",
            Ok(16318412 * 1024),
        );
        check("MemFree:  1 kB\nMemTotal: 2048 kB", Ok(2048 * 1024));
        check("MemFree:  1 kB\n", Err(()));
        check("MemTotal: lots kB\n", Err(()));
        check("MemTotal: 12 TB\n", Err(()));
    }

    #[test]
    fn host_budget_is_below_host() {
        // Linux CI has /proc/meminfo; elsewhere the error must name the file.
        match (Resources::host(), Resources::host_budget_default()) {
            (Ok(h), Ok(b)) => {
                assert!(b.fits_in(h) && b != h, "{b} vs {h}");
                assert!(h.cpu_millis >= 1000 && h.memory_bytes > 0);
            }
            (Err(e), _) | (_, Err(e)) => assert!(e.to_string().contains("meminfo"), "{e}"),
        }
    }

    #[test]
    fn from_cpus() {
        assert_eq!(Resources::from_cpus(0.5, 3), Ok(Resources::new(500, 3)));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(Resources::from_cpus(bad, 0).is_err(), "{bad}");
        }
    }
}
