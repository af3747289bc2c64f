//! Splitting this machine's CPUs between concurrent runs: shared by `bench -j` and suite runs.

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
