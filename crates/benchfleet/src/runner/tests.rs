use std::path::Path;

use benchfleet_model::{Measurement, Outcome, Timestamp};

use super::*;

/// Run the suite in `text` with `opts` (sampling off, cache off), returning the outcome and
/// every event.
async fn run_text(dir: &Path, text: &str, opts: RunOptions) -> (RunOutcome, Vec<RunnerEvent>) {
    let path = dir.join("suite.toml");
    std::fs::write(&path, text).unwrap();
    let suite = crate::suite::load(&path, &dir.join("out")).unwrap();
    let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.join("db")))
        .await
        .unwrap();
    let opts = RunOptions {
        sample_interval: None,
        use_cache: false,
        base_dir: dir.to_owned(),
        ..opts
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = run_suite(&suite, &storage, &opts, tx).await.unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

/// The messages of every warning event.
fn warnings(events: &[RunnerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RunnerEvent::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Two jobs that wait (bounded) for each other, so they certainly run at the same time; each
/// writes the CPUs it may use and its address-space limit into its output directory.
fn rendezvous_suite(dir: &Path, wait: bool) -> String {
    let d = dir.display();
    let job = |me: &str, other: &str| {
        let wait = if wait {
            format!(
                "; i=0; while [ ! -e {d}/{other}.here ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done"
            )
        } else {
            String::new()
        };
        format!(
            r#"
[[job]]
name = "{me}"
shell = "sh"
memory = "256MiB"
command = "grep Cpus_allowed_list /proc/self/status | cut -f2 > $BENCHFLEET_OUT/cpus; ulimit -v > $BENCHFLEET_OUT/as; touch {d}/{me}.here{wait}"
"#
        )
    };
    format!(
        "[suite]\nname = \"iso\"\n{}{}",
        job("a", "b"),
        job("b", "a")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_are_pinned_memory_limited_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let text = rendezvous_suite(dir.path(), true);
    let (outcome, events) = run_text(
        dir.path(),
        &text,
        RunOptions {
            jobs: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome.failed_nodes(), 0, "{:?}", outcome.failures);
    assert_eq!(outcome.records.len(), 2);
    let method = benchfleet_metrics::memory_limit_method();
    let mut pinned = Vec::new();
    for r in &outcome.records {
        let out = dir.path().join("out/iso").join(&r.name);
        let read = |f: &str| {
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        // The CPUs the job could use are exactly the ones its record names.
        let cpus = r.tags.get(TAG_CPUS).expect("pinned");
        let allowed = read("cpus");
        let want: Vec<usize> = cpus.split(',').map(|c| c.parse().unwrap()).collect();
        // `Cpus_allowed_list` is like `0-2,5`.
        let got: Vec<usize> = allowed
            .split(',')
            .flat_map(|part| {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()
            })
            .collect();
        assert_eq!(got, want, "{}: {:?}", r.name, r.tags);
        pinned.push(want);
        assert_eq!(
            r.tags.get(RunRecord::TAG_CONCURRENT).map(String::as_str),
            Some("true"),
            "{:?}",
            r.tags
        );
        assert_eq!(
            r.tags.get(TAG_MEMORY_LIMIT).map(String::as_str),
            Some(method.as_str()),
            "{:?}",
            r.tags
        );
        if method == MemoryLimitVia::RlimitAs {
            assert_eq!(read("as"), (256 * 1024).to_string(), "ulimit -v in KiB");
        }
    }
    let allowed = benchfleet_metrics::allowed_cpus();
    if allowed.len() >= 2 {
        assert_ne!(pinned[0], pinned[1], "each running job has its own CPUs");
    }
    let w = warnings(&events);
    let physical = crate::cpus::physical_cores().unwrap_or(allowed.len());
    assert_eq!(
        w.iter().any(|m| m.contains("physical cores")),
        2 > physical,
        "{w:?}"
    );
    assert_eq!(
        w.iter().any(|m| m.contains("RLIMIT_AS")),
        method == MemoryLimitVia::RlimitAs,
        "{w:?}"
    );
}

#[tokio::test]
async fn one_job_at_a_time_is_neither_pinned_nor_limited_and_runs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text = rendezvous_suite(dir.path(), false);
    let (outcome, events) = run_text(
        dir.path(),
        &text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome.records.len(), 2);
    for r in &outcome.records {
        assert_eq!(
            r.tags.get(RunRecord::TAG_CONCURRENT).map(String::as_str),
            Some("false"),
            "{:?}",
            r.tags
        );
        assert!(!r.tags.contains_key(TAG_CPUS), "{:?}", r.tags);
        assert!(!r.tags.contains_key(TAG_MEMORY_LIMIT), "{:?}", r.tags);
        let out = dir.path().join("out/iso").join(&r.name);
        assert_eq!(
            std::fs::read_to_string(out.join("as")).unwrap().trim(),
            "unlimited"
        );
    }
    // No isolation, so no warning about it (a node may still be warned about its shell).
    let run_level: Vec<&RunnerEvent> = events
        .iter()
        .filter(|e| matches!(e, RunnerEvent::Warning { node: None, .. }))
        .collect();
    assert_eq!(run_level, Vec::<&RunnerEvent>::new());
}

#[tokio::test]
async fn shell_nodes_subtract_the_shells_spawn_cost_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[suite]
name = "sh"
[[benchmark]]
name = "through-sh"
shell = "sh"
command = "true"
runs = 5
[[benchmark]]
name = "direct"
command = "true"
runs = 2
[[benchmark]]
name = "bad-shell"
shell = "/nonexistent/benchfleet-shell"
command = "true"
runs = 2
"#;
    let (outcome, events) = run_text(
        dir.path(),
        text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    let of = |name: &str| -> Vec<&RunRecord> {
        outcome.records.iter().filter(|r| r.name == name).collect()
    };
    let sh = of("through-sh");
    assert_eq!(sh.len(), 5);
    for r in &sh {
        assert_eq!(r.tags.get(TAG_SHELL).map(String::as_str), Some("sh"));
        let overhead: u64 = r.tags[TAG_SHELL_OVERHEAD].parse().unwrap();
        assert!(overhead > 0, "{:?}", r.tags);
    }
    for r in of("direct") {
        assert!(!r.tags.contains_key(TAG_SHELL), "{:?}", r.tags);
        assert!(!r.tags.contains_key(TAG_SHELL_OVERHEAD), "{:?}", r.tags);
    }
    // The warning follows the stored (subtracted) times, whatever they were on this machine.
    let mean_ns = sh.iter().map(|r| r.measurement.wall_ns).sum::<u64>() / sh.len() as u64;
    let short = warnings(&events)
        .into_iter()
        .filter(|m| m.contains("`through-sh` took less than 5 ms"))
        .count();
    assert_eq!(short, usize::from(mean_ns < 5_000_000), "mean {mean_ns} ns");
    assert!(
        warnings(&events).iter().all(|m| !m.contains("`direct`")),
        "no shell, no shell warning"
    );
    // A shell that cannot run fails its node, naming the shell; the others still run.
    let (_, why) = outcome
        .failures
        .iter()
        .find(|(n, _)| n == "bad-shell")
        .expect("bad-shell failed");
    assert!(why.contains("/nonexistent/benchfleet-shell"), "{why}");
    assert!(of("bad-shell").is_empty());
}

fn record(name: &str, wall_ms: f64, outcome: Outcome) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: "01J00000000000000000000000".parse().unwrap(),
        suite: "s".into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        command: "x".into(),
        parameters: BTreeMap::new(),
        iteration: 0,
        started_at: Timestamp(0),
        measurement: Measurement {
            wall_ns: (wall_ms * 1e6) as u64,
            ..Default::default()
        },
        outcome,
        stderr_tail: None,
        tags: BTreeMap::new(),
    }
}

#[test]
fn outliers_are_reported_by_tukey_fences_and_modified_z() {
    let times = |ms: &[f64]| -> Vec<RunRecord> {
        ms.iter()
            .map(|t| record("n", *t, Outcome::Success))
            .collect()
    };
    let steady = [
        10.0, 10.2, 9.9, 10.1, 10.0, 10.3, 9.8, 10.1, 10.0, 10.2, 9.9,
    ];
    let mut spiked = steady.to_vec();
    spiked.push(300.0);
    let (runs, severe, _mild, z) = outliers_of(&times(&spiked)).expect("a 30x run is an outlier");
    assert_eq!((runs, severe >= 1, z >= 1), (12, true, true));
    assert_eq!(outliers_of(&times(&steady)), None);
    // Too few runs to classify.
    assert_eq!(outliers_of(&times(&[10.0, 10.0, 300.0])), None);
    // Failed runs are not classified.
    let mut with_failure = times(&steady);
    with_failure.push(record(
        "n",
        300.0,
        Outcome::Failed {
            exit_code: Some(1),
            signal: None,
        },
    ));
    assert_eq!(outliers_of(&with_failure), None);
}

#[tokio::test]
async fn a_benchmark_with_outliers_gets_an_outlier_event_and_keeps_every_run() {
    let dir = tempfile::tempdir().unwrap();
    // The sixth run sleeps: far slower than the others, whatever the machine.
    let text = r#"
[suite]
name = "out"
[[benchmark]]
name = "spiky"
shell = "sh"
command = "n=$(cat $BENCHFLEET_OUT/n 2>/dev/null || echo 0); echo $((n+1)) > $BENCHFLEET_OUT/n; if [ $n -eq 5 ]; then sleep 0.5; fi"
runs = 12
[[job]]
name = "once"
command = "true"
"#;
    let (outcome, events) = run_text(
        dir.path(),
        text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    let spiky: Vec<RunRecord> = outcome
        .records
        .iter()
        .filter(|r| r.name == "spiky")
        .cloned()
        .collect();
    assert_eq!(spiky.len(), 12, "outliers are never dropped");
    let got: Vec<&RunnerEvent> = events
        .iter()
        .filter(|e| matches!(e, RunnerEvent::Outliers { .. }))
        .collect();
    let node = outcome
        .states
        .iter()
        .position(|(n, _)| n == "spiky")
        .unwrap();
    let want = outliers_of(&spiky).map(|(runs, severe, mild, z_outliers)| RunnerEvent::Outliers {
        node,
        name: "spiky".into(),
        runs,
        severe,
        mild,
        z_outliers,
    });
    assert!(want.is_some(), "{spiky:?}");
    assert_eq!(got, want.iter().collect::<Vec<_>>());
    let line = got[0].warning().unwrap();
    assert!(
        line.starts_with("warning: `spiky`: statistical outliers in 12 runs"),
        "{line}"
    );
}

#[test]
fn running_jobs_get_their_declared_cpus_or_a_share_least_used_first() {
    let pool = CpuPool::new(vec![0, 1, 2, 3, 6, 7], 3);
    // Undeclared: an even share (6 CPUs / 3 jobs); declared: rounded up.
    let a = pool.take(0.0);
    let b = pool.take(1.5);
    assert_eq!((a.cpus(), b.cpus()), (vec![0, 1], vec![2, 3]));
    let c = pool.take(0.5);
    assert_eq!(c.cpus(), vec![6]);
    // Only CPU 7 is free: the rest is shared with the least busy.
    let d = pool.take(3.0);
    assert_eq!(d.cpus(), vec![0, 1, 7]);
    drop(b);
    // Given back: CPUs 2 and 3 are the least used again.
    assert_eq!(pool.take(0.0).cpus(), vec![2, 3]);
    // Never more than there are.
    assert_eq!(pool.take(64.0).cpus(), vec![0, 1, 2, 3, 6, 7]);
    drop((a, c, d));
    let one = CpuPool::new(vec![5], 4);
    assert_eq!(
        (one.take(0.0).cpus(), one.take(2.0).cpus()),
        (vec![5], vec![5])
    );
}
