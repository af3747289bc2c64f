//! Splitting this machine's CPUs between concurrent runs, and telling whether a run ran alone:
//! shared by `bench -j` and suite runs.

/// Physical cores of this machine (unique core/package pairs in sysfs); `None` when unknown.
pub fn physical_cores() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    let mut cores = std::collections::BTreeSet::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name
            .strip_prefix("cpu")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(e.path().join("topology").join(f)).ok();
        if let (Some(core), Some(pkg)) = (read("core_id"), read("physical_package_id")) {
            cores.insert((pkg.trim().to_owned(), core.trim().to_owned()));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// CPU sets for `jobs` workers out of `allowed`, `per_job` each (wrapping around, so sets overlap
/// when there are not enough CPUs).
pub fn cpu_sets(allowed: &[usize], jobs: usize, per_job: Option<usize>) -> Vec<Vec<usize>> {
    if allowed.is_empty() || jobs == 0 {
        return vec![Vec::new(); jobs];
    }
    let per = per_job.unwrap_or(allowed.len() / jobs).max(1);
    (0..jobs)
        .map(|j| {
            (0..per)
                .map(|k| allowed[(j * per + k) % allowed.len()])
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .collect()
}

/// Tracks overlapping runs (of `bench -j` or of a suite's jobs): a run is alone when nothing
/// else ran when it started and nothing started before it ended.
#[derive(Debug, Default)]
pub struct Overlap {
    /// (runs in flight, runs started so far)
    state: std::sync::Mutex<(u32, u64)>,
}

impl Overlap {
    /// A run starts; give the token to [`Overlap::end`].
    pub fn start(&self) -> (bool, u64) {
        let mut s = self.state.lock().expect("overlap lock");
        let busy = s.0 > 0;
        s.0 += 1;
        s.1 += 1;
        (busy, s.1)
    }

    /// Runs in flight now.
    pub fn running(&self) -> u32 {
        self.state.lock().expect("overlap lock").0
    }

    /// Whether the run that got `started` overlapped another.
    pub fn end(&self, started: (bool, u64)) -> bool {
        let mut s = self.state.lock().expect("overlap lock");
        s.0 -= 1;
        started.0 || s.1 != started.1
    }
}
