use std::path::Path;

use benchfleet_model::{Measurement, Outcome, SCHEMA_VERSION, Timestamp};

use super::*;

/// Run the suite in `text` with `opts` (sampling off, cache off), returning the outcome, every
/// event and the records stored for the nodes of `outcome.results`, read back.
async fn run_text(
    dir: &Path,
    text: &str,
    opts: RunOptions,
) -> (RunOutcome, Vec<RunnerEvent>, Vec<RunRecord>) {
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
    let records = stored(&storage, &outcome).await;
    (outcome, events, records)
}

/// The records behind `outcome.results`, read back from storage (load nodes' are not there).
async fn stored(storage: &Storage, outcome: &RunOutcome) -> Vec<RunRecord> {
    let names: std::collections::HashSet<&str> = outcome
        .results
        .iter()
        .map(|r| r.node.name.as_str())
        .collect();
    let records = crate::load_records(storage, &outcome.run.run_id)
        .await
        .unwrap();
    let records: Vec<RunRecord> = records
        .into_iter()
        .filter(|r| names.contains(r.name.as_str()))
        .collect();
    assert_eq!(
        records.len(),
        outcome.records(),
        "results count every record"
    );
    records
}

/// The messages of every warning event.
fn warnings(events: &[RunnerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RunnerEvent::Warning { warning, .. } => Some(warning.to_string()),
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
    let (outcome, events, records) = run_text(
        dir.path(),
        &text,
        RunOptions {
            jobs: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome.failed_nodes(), 0, "{:?}", outcome.failures);
    assert_eq!(records.len(), 2);
    let method = benchfleet_metrics::memory_limit_method();
    let mut pinned = Vec::new();
    for r in &records {
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

/// A benchmark runs alone (exclusive by default), so at `-j 2` it gets every CPU and no memory
/// limit, as at `-j 1`; the job beside it in the suite is pinned.
#[tokio::test]
async fn an_exclusive_benchmark_at_j2_is_neither_pinned_nor_limited() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[suite]
name = "alone"
[[job]]
name = "job"
shell = "sh"
command = "grep Cpus_allowed_list /proc/self/status | cut -f2 > $BENCHFLEET_OUT/cpus"
[[benchmark]]
name = "bench"
shell = "sh"
memory = "256MiB"
runs = 1
command = "grep Cpus_allowed_list /proc/self/status | cut -f2 > $BENCHFLEET_OUT/cpus; ulimit -v > $BENCHFLEET_OUT/as"
"#;
    let (outcome, _, records) = run_text(
        dir.path(),
        text,
        RunOptions {
            jobs: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome.failed_nodes(), 0, "{:?}", outcome.failures);
    let of = |name: &str| records.iter().find(|r| r.name == name).unwrap();
    let bench = of("bench");
    assert_eq!(bench.tags.get(TAG_CPUS), None, "{:?}", bench.tags);
    assert_eq!(bench.tags.get(TAG_MEMORY_LIMIT), None, "{:?}", bench.tags);
    assert_eq!(
        bench
            .tags
            .get(RunRecord::TAG_CONCURRENT)
            .map(String::as_str),
        Some("false")
    );
    let out = dir.path().join("out/alone");
    let read = |node: &str, f: &str| {
        std::fs::read_to_string(out.join(node).join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("bench", "as"), "unlimited");
    let allowed = benchfleet_metrics::allowed_cpus();
    if allowed.len() >= 2 {
        assert!(
            of("job").tags.contains_key(TAG_CPUS),
            "{:?}",
            of("job").tags
        );
        assert_ne!(read("bench", "cpus"), read("job", "cpus"));
    }
}

#[tokio::test]
async fn one_job_at_a_time_is_neither_pinned_nor_limited_and_runs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text = rendezvous_suite(dir.path(), false);
    let (_, events, records) = run_text(
        dir.path(),
        &text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(records.len(), 2);
    for r in &records {
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
    let (outcome, events, records) = run_text(
        dir.path(),
        text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    let of =
        |name: &str| -> Vec<&RunRecord> { records.iter().filter(|r| r.name == name).collect() };
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
    let (outcome, events, records) = run_text(
        dir.path(),
        text,
        RunOptions {
            jobs: 1,
            ..Default::default()
        },
    )
    .await;
    let spiky: Vec<RunRecord> = records
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
        .position(|(n, _)| n.name == "spiky")
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

// Suite nodes with a `load` table (the load engine inside a suite's run).
mod load_nodes {
    use super::*;
    use crate::loadgen::{TAG_PROFILE, TAG_STEP, TAG_WINDOW};

    /// A suite node with a `load` table runs through [`drive`] inside the suite's run: every run
    /// is reported started and measured, its records carry the step tags, and the outcome holds
    /// the per-step summary instead of the records.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_node_runs_inside_the_suites_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            r#"
    [suite]
    name = "loaded"
    [[benchmark]]
    name = "plain"
    command = "true"
    runs = 2
    [[benchmark]]
    name = "ramp"
    command = "true"
    load = { profile = "stress", steps = 2, step_duration = "250ms", max_concurrency = 2, window = "100ms" }
    "#,
        )
        .unwrap();
        let suite = crate::suite::load(&path, &dir.path().join("out")).unwrap();
        let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = crate::runner::RunOptions {
            jobs: 1,
            sample_interval: None,
            ..Default::default()
        };
        let outcome = crate::runner::run_suite(&suite, &storage, &opts, tx)
            .await
            .unwrap();
        let (mut started, mut measured) = (0usize, 0usize);
        while let Some(e) = rx.recv().await {
            match e {
                RunnerEvent::RunStarted { node: 1, .. } => started += 1,
                RunnerEvent::Measured { node: 1, .. } => measured += 1,
                _ => {}
            }
        }
        assert_eq!(outcome.run.status, benchfleet_model::RunStatus::Succeeded);
        assert_eq!(
            outcome.records(),
            2,
            "only the plain node's records are held"
        );
        assert_eq!(outcome.loads.len(), 1);
        let load = &outcome.loads[0];
        assert_eq!(load.name, "ramp");
        let steps: Vec<(&str, u32)> = load
            .report
            .steps
            .iter()
            .map(|s| (s.label.as_str(), s.concurrency))
            .collect();
        assert_eq!(steps, [("step 1", 1), ("step 2", 2)]);

        let stored = crate::load_records(&storage, &outcome.run.run_id)
            .await
            .unwrap();
        let ramp: Vec<&RunRecord> = stored.iter().filter(|r| r.name == "ramp").collect();
        assert_eq!(ramp.len(), load.report.records);
        assert_eq!((started, measured), (ramp.len(), ramp.len()));
        for step in ["0", "1"] {
            assert!(
                ramp.iter().any(|r| r.tags[TAG_STEP] == step),
                "no run of step {step}"
            );
        }
        assert!(ramp.iter().all(|r| r.tags.contains_key(TAG_WINDOW)
            && r.tags[TAG_PROFILE] == "stress"
            && r.suite == "loaded"));
    }

    /// On resume, a load node that completed in the earlier run is kept; one that was
    /// interrupted (its records are stored as it runs) runs again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resume_keeps_a_completed_load_and_reruns_an_interrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            r#"
    [suite]
    name = "resumed"
    [[benchmark]]
    name = "short"
    command = "true"
    load = { duration = "200ms" }
    [[benchmark]]
    name = "long"
    command = "true"
    load = { duration = "1h" }
    needs = ["short"]
    "#,
        )
        .unwrap();
        let suite = Arc::new(crate::suite::load(&path, &dir.path().join("out")).unwrap());
        let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
            .await
            .unwrap();
        // Runs the suite and cancels it once `long` has a successful run (stored, so the
        // interrupted node has all-successful records); which nodes started runs.
        let run = |resume: Option<RunInfo>| {
            let (suite, storage) = (suite.clone(), storage.clone());
            async move {
                let opts = crate::runner::RunOptions {
                    jobs: 1,
                    sample_interval: None,
                    resume,
                    ..Default::default()
                };
                let cancel = opts.cancel.clone();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let task = tokio::spawn(async move {
                    crate::runner::run_suite(&suite, &storage, &opts, tx)
                        .await
                        .unwrap()
                });
                let mut started = std::collections::BTreeSet::new();
                while let Some(e) = rx.recv().await {
                    match e {
                        RunnerEvent::RunStarted { node, .. } => {
                            started.insert(node);
                        }
                        RunnerEvent::Measured {
                            node: 1, ok: true, ..
                        } => cancel.cancel(),
                        _ => {}
                    }
                }
                (task.await.unwrap(), started)
            }
        };
        let (first, started) = run(None).await;
        assert_eq!(first.run.status, benchfleet_model::RunStatus::Interrupted);
        let long = crate::load_records(&storage, &first.run.run_id)
            .await
            .unwrap();
        assert!(
            long.iter().any(|r| r.name == "long") && long.iter().all(|r| r.outcome.is_success()),
            "the interrupted load left successful records"
        );
        assert_eq!(started, [0, 1].into());
        let (second, started) = run(Some(first.run.clone())).await;
        assert_eq!(second.run.run_id, first.run.run_id);
        assert_eq!(started, [1].into(), "only the interrupted load runs again");
        assert!(second.reused.iter().all(|r| r.node.name == "short"));
        assert!(!second.reused.is_empty());
    }
}

// The suite loop over a fake executor: no real processes, in-memory storage.
mod with_a_fake_executor {
    use super::*;
    use crate::exec::mock::{Mock, Scripted};
    use crate::testing::{mem_storage, runs};

    async fn run_mock(
        dir: &Path,
        text: &str,
        mock: Arc<Mock>,
        storage: &Storage,
        opts: RunOptions,
    ) -> Result<(RunOutcome, Vec<RunnerEvent>), Error> {
        let path = dir.join("suite.toml");
        std::fs::write(&path, text).unwrap();
        let suite = crate::suite::load(&path, &dir.join("out")).unwrap();
        let opts = RunOptions {
            jobs: 1,
            sample_interval: None,
            use_cache: false,
            base_dir: dir.to_owned(),
            ..opts
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = run_suite_with(&suite, storage, &opts, tx, mock).await?;
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        Ok((outcome, events))
    }

    const HOOKED: &str = r#"
[suite]
name = "hooked"
[[benchmark]]
name = "b"
command = "main"
setup = "setup"
prepare = "prep"
conclude = "conc"
cleanup = "clean"
warmup = 1
runs = 2
"#;

    #[tokio::test]
    async fn hooks_run_in_order_around_warmups_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mock = Arc::new(Mock::ok(4_000_000));
        let storage = mem_storage();
        let (outcome, events) = run_mock(
            dir.path(),
            HOOKED,
            mock.clone(),
            &storage,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            mock.log(),
            [
                "setup", "prep", "main", "conc", "prep", "main", "conc", "prep", "main", "conc",
                "clean"
            ]
        );
        assert_eq!(outcome.run.status, RunStatus::Succeeded);
        assert_eq!(stored(&storage, &outcome).await.len(), 2);
        let started = events
            .iter()
            .filter(|e| matches!(e, RunnerEvent::RunStarted { .. }))
            .count();
        assert_eq!(started, 2, "warmups are not announced");
    }

    #[tokio::test]
    async fn a_failing_hook_fails_the_node_naming_it_and_cleanup_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mock = Arc::new(Mock::new(|cmd, before| match (cmd, before) {
            ("conc", 1) => Scripted::fails(4, "x\ny\n"),
            _ => Scripted::ok(1_000),
        }));
        let storage = mem_storage();
        let (outcome, _) = run_mock(
            dir.path(),
            HOOKED,
            mock.clone(),
            &storage,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            outcome.failures,
            [(
                "b".to_owned(),
                "`conclude` command exit 4: x | y".to_owned()
            )]
        );
        // The warmup's conclude passed; the first measured run's failed: one record kept.
        assert_eq!(stored(&storage, &outcome).await.len(), 1);
        assert_eq!(mock.log().last().map(String::as_str), Some("clean"));
        assert_eq!(outcome.run.status, RunStatus::Failed);
    }

    #[tokio::test]
    async fn the_shells_cost_is_subtracted_and_tagged() {
        let dir = tempfile::tempdir().unwrap();
        let mock = Arc::new(Mock {
            shell_cost_ns: 1_000_000,
            ..Mock::ok(7_000_000)
        });
        let storage = mem_storage();
        let text = "[suite]\nname = \"t\"\n[[benchmark]]\nname = \"s\"\ncommand = \"main\"\nshell = \"sh\"\nruns = 3\n";
        let (outcome, events) = run_mock(dir.path(), text, mock, &storage, Default::default())
            .await
            .unwrap();
        let records = stored(&storage, &outcome).await;
        assert_eq!(records.len(), 3);
        for r in &records {
            assert_eq!(r.measurement.wall_ns, 6_000_000);
            assert_eq!(r.tags[TAG_SHELL], "sh");
            assert_eq!(r.tags[TAG_SHELL_OVERHEAD], "1000000");
        }
        assert!(events.iter().all(|e| !matches!(
            e,
            RunnerEvent::Warning {
                warning: Warning::ShortWithShell { .. },
                ..
            }
        )));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancellation_stops_the_node_and_the_run_ends_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions::default();
        let mock = Arc::new(Mock {
            cancel_on: Some(("main".into(), opts.cancel.clone())),
            ..Mock::ok(1_000)
        });
        let storage = mem_storage();
        let text =
            "[suite]\nname = \"t\"\n[[benchmark]]\nname = \"c\"\ncommand = \"main\"\nruns = 50\n";
        let (outcome, _) = run_mock(dir.path(), text, mock.clone(), &storage, opts)
            .await
            .unwrap();
        assert_eq!(outcome.run.status, RunStatus::Interrupted);
        assert!(
            stored(&storage, &outcome).await.is_empty(),
            "the killed run is not a measurement"
        );
        assert_eq!(mock.log(), ["main"]);
        assert_eq!(runs(&storage).await[0].status, RunStatus::Interrupted);
    }

    /// A suite refused for a node larger than the budget registers no run.
    #[tokio::test]
    async fn a_refused_suite_leaves_no_run_row() {
        let dir = tempfile::tempdir().unwrap();
        let storage = mem_storage();
        let mock = Arc::new(Mock::ok(1_000));
        let text = "[suite]\nname = \"t\"\n[[job]]\nname = \"big\"\ncommand = \"main\"\ncpus = 2\n";
        let err = run_mock(
            dir.path(),
            text,
            mock.clone(),
            &storage,
            RunOptions {
                budget: Some(Resources::new(1000, 1 << 30)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("`big` needs"), "{err}");
        assert!(err.is_user_input());
        assert!(runs(&storage).await.is_empty());
        assert!(mock.log().is_empty());
    }
}

// The runner's events feed the Prometheus exposition (a consumer) during a real suite run.
mod metrics_of_a_suite {
    use super::*;
    use crate::prom::{PromOptions, RunnerMetrics, parse_exposition, start, tee};

    fn value(text: &str, series: &str) -> f64 {
        let parsed = parse_exposition(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        *parsed
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_match_a_real_suite_run_and_are_served_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let suite_path = dir.path().join("s.toml");
        std::fs::write(
            &suite_path,
            r#"
    [suite]
    name = "prom"
    [defaults]
    warmup = 0
    [[benchmark]]
    name = "ok"
    command = "true"
    runs = 3
    [[benchmark]]
    name = "bad"
    command = "false"
    runs = 2
    [[job]]
    name = "after-bad"
    command = "true"
    needs = ["bad"]
    "#,
        )
        .unwrap();
        let suite = crate::suite::load(&suite_path, &dir.path().join("out")).unwrap();
        let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
            .await
            .unwrap();
        let metrics = Arc::new(RunnerMetrics::new());
        let file = dir.path().join("metrics.prom");
        let expo = start(
            metrics.clone(),
            &PromOptions {
                file: Some(file.clone()),
                interval: Duration::from_millis(50),
            },
        )
        .await
        .unwrap();

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (fwd, mut forwarded) = tokio::sync::mpsc::unbounded_channel();
        let teed = tee(rx, metrics.clone(), fwd);
        let opts = crate::runner::RunOptions {
            jobs: 1,
            sample_interval: None,
            use_cache: false,
            ..Default::default()
        };
        let outcome = crate::runner::run_suite(&suite, &storage, &opts, tx)
            .await
            .unwrap();
        teed.await.unwrap();
        let mut n_forwarded = 0;
        while forwarded.recv().await.is_some() {
            n_forwarded += 1;
        }
        assert!(n_forwarded > 0, "events reach the progress display");

        // What a scrape gets (the HTTP side is `benchfleet-serve`'s `metrics::listen`, tested
        // there and end to end).
        let served = metrics.encode();
        expo.finish().await.unwrap();
        let written = std::fs::read_to_string(&file).unwrap();

        let failed_runs = outcome
            .results
            .iter()
            .flat_map(|r| &r.runs.points)
            .filter(|p| p.exit_code() != Some(0))
            .count();
        let states = |s: NodeState| outcome.states.iter().filter(|(_, st)| *st == s).count() as f64;
        for text in [served.as_str(), written.as_str()] {
            assert_eq!(
                value(text, "benchfleet_runs_finished_total"),
                outcome.records() as f64
            );
            assert_eq!(
                value(text, "benchfleet_runs_failed_total"),
                failed_runs as f64
            );
            assert_eq!(
                value(text, "benchfleet_records_stored_total"),
                outcome.records() as f64
            );
            assert_eq!(
                value(text, "benchfleet_nodes{state=\"done\"}"),
                states(NodeState::Succeeded)
            );
            assert_eq!(
                value(text, "benchfleet_nodes{state=\"skipped\"}"),
                states(NodeState::Skipped)
            );
            assert_eq!(value(text, "benchfleet_queue_depth"), 0.0);
            assert_eq!(value(text, "benchfleet_running_jobs"), 0.0);
            assert_eq!(value(text, "benchfleet_suite_runs_finished_total"), 1.0);
        }
        assert!(
            failed_runs > 0 && states(NodeState::Skipped) == 1.0,
            "{:?}",
            outcome.states
        );
    }

    /// `runs_started` counts a run when it starts: while one is in flight, more runs have started
    /// than finished. The long run waits for a file the test creates only after looking, so no timing
    /// is involved; warmups are not counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_in_flight_is_started_but_not_finished() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        let suite_path = dir.path().join("s.toml");
        std::fs::write(
            &suite_path,
            format!(
                r#"
    [suite]
    name = "inflight"
    [[benchmark]]
    name = "quick"
    command = "true"
    warmup = 2
    runs = 2
    [[benchmark]]
    name = "wait"
    shell = "sh"
    command = "while [ ! -e '{}' ]; do sleep 0.01; done"
    runs = 1
    needs = ["quick"]
    "#,
                release.display()
            ),
        )
        .unwrap();
        let suite = crate::suite::load(&suite_path, &dir.path().join("out")).unwrap();
        let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
            .await
            .unwrap();
        let metrics = Arc::new(RunnerMetrics::new());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (fwd, mut forwarded) = tokio::sync::mpsc::unbounded_channel();
        let teed = tee(rx, metrics.clone(), fwd);
        let opts = crate::runner::RunOptions {
            jobs: 1,
            sample_interval: None,
            use_cache: false,
            ..Default::default()
        };
        let run = tokio::spawn(async move {
            crate::runner::run_suite(&suite, &storage, &opts, tx)
                .await
                .unwrap()
        });

        // The tee applies an event before forwarding it.
        loop {
            let e = forwarded
                .recv()
                .await
                .expect("the run reports the waiting run");
            if matches!(e, RunnerEvent::RunStarted { node: 1, .. }) {
                break;
            }
        }
        let text = metrics.encode();
        assert_eq!(value(&text, "benchfleet_runs_started_total"), 3.0, "{text}");
        assert_eq!(
            value(&text, "benchfleet_runs_finished_total"),
            2.0,
            "{text}"
        );

        std::fs::write(&release, "").unwrap();
        let outcome = run.await.unwrap();
        while forwarded.recv().await.is_some() {}
        teed.await.unwrap();
        assert_eq!(outcome.records(), 3, "warmups are not records");
        let text = metrics.encode();
        assert_eq!(value(&text, "benchfleet_runs_started_total"), 3.0, "{text}");
        assert_eq!(
            value(&text, "benchfleet_runs_finished_total"),
            3.0,
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_node_requiring_a_missing_program_is_skipped_with_its_dependents_and_the_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
        [suite]
        name = "req"
        [[job]]
        name = "present"
        command = "true"
        requires = ["sh"]
        [[job]]
        name = "prep"
        command = "true"
        requires = ["sh", "benchfleet-test-no-such-tool"]
        [[benchmark]]
        name = "op"
        command = "true"
        needs = ["prep"]
        runs = 2
    "#;
    let (outcome, events, records) = run_text(dir.path(), text, RunOptions::default()).await;
    assert_eq!(outcome.run.status, benchfleet_model::RunStatus::Succeeded);
    let states: Vec<(&str, NodeState)> = outcome
        .states
        .iter()
        .map(|(n, s)| (n.name.as_str(), *s))
        .collect();
    assert_eq!(states, [("present", NodeState::Succeeded)]);
    assert_eq!(outcome.skipped_nodes(), 0);
    let unavailable: Vec<(&str, &str)> = outcome
        .unavailable
        .iter()
        .map(|(n, r)| (n.name.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        unavailable,
        [
            (
                "prep",
                "requires `benchfleet-test-no-such-tool`, which is not on PATH"
            ),
            ("op", "needs `prep`, which is skipped"),
        ]
    );
    assert_eq!(records.len(), 1, "only `present` ran");
    let told: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            RunnerEvent::NodeUnavailable { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(told, ["prep", "op"]);
    // The stored run says what was missing and how many nodes it cost.
    let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
        .await
        .unwrap();
    let run = crate::find_run(&storage, &outcome.run.run_id.to_string())
        .await
        .unwrap();
    assert_eq!(
        run.tags.get(TAG_REQUIRES_MISSING).map(String::as_str),
        Some("benchfleet-test-no-such-tool")
    );
    assert_eq!(
        run.tags.get(TAG_REQUIRES_SKIPPED).map(String::as_str),
        Some("2")
    );
}
