use super::*;
use benchfleet_model::SCHEMA_VERSION;

/// An events sender nobody listens to.
fn no_events() -> UnboundedSender<RunnerEvent> {
    tokio::sync::mpsc::unbounded_channel().0
}

fn scan(min: &str, max: &str, step: Option<&str>) -> Result<Vec<String>, String> {
    scan_values(&ParameterScan {
        name: "x".into(),
        min: min.into(),
        max: max.into(),
        step: step.map(Into::into),
    })
    .map_err(|e| e.to_string())
}

#[test]
fn parameter_scans_follow_hyperfine() {
    let ok = |min, max, step, want: &[&str]| {
        assert_eq!(scan(min, max, step).unwrap(), want, "{min} {max} {step:?}");
    };
    ok("1", "5", None, &["1", "2", "3", "4", "5"]);
    ok("-2", "1", None, &["-2", "-1", "0", "1"]);
    ok("3", "3", None, &["3"]);
    ok("0", "10", Some("5"), &["0", "5", "10"]);
    ok("0", "9", Some("4"), &["0", "4", "8"]);
    ok("0.3", "0.7", Some("0.2"), &["0.3", "0.5", "0.7"]);
    // Printed as hyperfine prints its exact decimals: MIN as written, the sums with the larger
    // number of fraction digits of MIN and STEP.
    ok(
        "0",
        "1",
        Some("0.25"),
        &["0", "0.25", "0.50", "0.75", "1.00"],
    );
    ok("0", "0.3", Some("0.1"), &["0", "0.1", "0.2", "0.3"]);
    ok("1", "2", Some("0.5"), &["1", "1.5", "2.0"]);
    ok("0.10", "0.3", Some("0.1"), &["0.10", "0.20", "0.30"]);
    ok("1", "3", Some("1.0"), &["1", "2.0", "3.0"]);
    // Decimal steps are exact: 0.1 added ten times reaches 1.0 (floats would stop at 0.9).
    assert_eq!(scan("0", "1", Some("0.1")).unwrap().len(), 11);
    ok("1.5", "2", Some("0.5"), &["1.5", "2.0"]);

    let err = |min, max, step, needle: &str| {
        let e = scan(min, max, step).unwrap_err();
        assert!(e.contains(needle), "{min} {max} {step:?}: {e}");
    };
    err("5", "1", None, "empty range");
    err("1", "5", Some("0"), "must be positive");
    err("1", "5", Some("-1"), "must be positive");
    err("0.5", "2", None, "must be integers");
    err("a", "2", None, "not a number");
    err("1", "2", Some("x"), "not a number");
    err("0", "1000000", None, "more than");
}

fn input(commands: &[&str]) -> BenchInput {
    BenchInput {
        commands: commands.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn lists_give_a_cross_product_and_the_commands_vary_fastest() {
    let mut i = input(&["a {n} {m}", "b {n}"]);
    i.parameter_lists = vec![
        ("n".into(), vec!["1".into(), "2".into()]),
        ("m".into(), vec!["x".into(), "y".into()]),
    ];
    let got: Vec<(String, String)> = expand(&i)
        .unwrap()
        .into_iter()
        .map(|c| (c.command, c.name))
        .collect();
    // hyperfine's order: the commands, then the first list, vary fastest. A parameter the
    // command does not use is shown in its name.
    let want = [
        ("a 1 x", "a 1 x"),
        ("b 1", "b 1 (m = x)"),
        ("a 2 x", "a 2 x"),
        ("b 2", "b 2 (m = x)"),
        ("a 1 y", "a 1 y"),
        ("b 1", "b 1 (m = y)"),
        ("a 2 y", "a 2 y"),
        ("b 2", "b 2 (m = y)"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn list_values_split_at_unescaped_commas_like_hyperfine() {
    let check = |text: &str, want: &[&str]| assert_eq!(split_list(text), want, "{text:?}");
    check("a,b,c", &["a", "b", "c"]);
    check(r"x\,y,z", &["x,y", "z"]);
    check(r"\,", &[","]);
    check(r"a\\,b", &[r"a\", "b"]);
    check(r"a\b", &[r"a\b"]);
    check(r"a\", &[r"a\"]);
    check("", &[""]);
    check("a,", &["a", ""]);
}

#[test]
fn names_per_benchmark_and_lists_counting_the_reference_follow_hyperfine() {
    let names = |i: &BenchInput| -> Result<Vec<String>, String> {
        expand(i)
            .map(|c| c.into_iter().map(|c| c.name).collect())
            .map_err(|e| e.to_string())
    };
    let mut i = input(&["e {v}"]);
    i.parameter_lists = vec![("v".into(), vec!["a".into(), "b".into()])];
    i.names = vec!["first".into(), "second".into()];
    assert_eq!(names(&i).unwrap(), ["first", "second"]);
    i.names = vec!["n-{v}".into()];
    assert_eq!(names(&i).unwrap(), ["n-a", "n-b"]);
    i.names = vec!["1".into(), "2".into(), "3".into()];
    assert!(names(&i).unwrap_err().contains("once per benchmark"));

    // --reference counts as a command for -p/-C lists; --reference-name names it.
    let mut i = input(&["a", "b"]);
    i.reference = Some("r".into());
    i.reference_name = Some("base".into());
    i.prepare = vec!["pr".into(), "pa".into(), "pb".into()];
    let got = expand(&i).unwrap();
    let view: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|c| (c.name.as_str(), c.prepare.as_deref()))
        .collect();
    assert_eq!(
        view,
        [("base", Some("pr")), ("a", Some("pa")), ("b", Some("pb"))]
    );
    i.prepare = vec!["pa".into(), "pb".into()];
    let e = expand(&i).unwrap_err().to_string();
    assert!(
        e.contains("-p/--prepare is given 2 times for 3 benchmarks"),
        "{e}"
    );
    assert!(e.contains("--reference included"), "{e}");
    i.prepare.clear();
    i.conclude = vec!["ca".into(), "cb".into()];
    assert!(
        expand(&i)
            .unwrap_err()
            .to_string()
            .contains("-C/--conclude")
    );
    let mut i = input(&["a"]);
    i.reference_name = Some("x".into());
    assert!(
        expand(&i)
            .unwrap_err()
            .to_string()
            .contains("--reference CMD")
    );
}

#[test]
fn parameters_substitute_in_one_pass_like_hyperfine() {
    let check = |text: &str, params: &[(&str, &str)], want: &str| {
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(substitute(text, &params), want, "{text:?} with {params:?}");
    };
    // A value is never scanned again, whichever parameter comes first.
    check("echo {a}", &[("a", "{b}"), ("b", "x")], "echo {b}");
    check("echo {b}", &[("a", "x"), ("b", "{a}")], "echo {a}");
    check("{a}{b}", &[("a", "{b}"), ("b", "{a}")], "{b}{a}");
    check("{a}", &[("a", "{a}")], "{a}");
    // Other braces stay as written.
    check("{", &[("a", "1")], "{");
    check("}{", &[("a", "1")], "}{");
    check("{{a}}", &[("a", "1")], "{1}");
    check("{c} {a", &[("a", "1")], "{c} {a");
    check("{ab} {a}", &[("a", "1")], "{ab} 1");
    check("{ab} {a}", &[("a", "1"), ("ab", "2")], "2 1");
    check("é{a}ü", &[("a", "ß")], "éßü");
    check("", &[("a", "1")], "");
    check("{a}", &[], "{a}");
}

#[test]
fn names_prepare_and_reference_expand_like_hyperfine() {
    let mut i = input(&["sleep {t}", "true"]);
    i.parameter_scan = Some(ParameterScan {
        name: "t".into(),
        min: "1".into(),
        max: "2".into(),
        step: None,
    });
    i.names = vec!["sleep-{t}".into(), "t".into()];
    i.prepare = vec!["echo {t}".into()];
    i.setup = Some("mkdir d{t}".into());
    i.reference = Some("ref".into());
    let got = expand(&i).unwrap();
    type View<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, bool);
    let view: Vec<View> = got
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.command.as_str(),
                c.prepare.as_deref(),
                c.setup.as_deref(),
                c.reference,
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("ref", "ref", Some("echo {t}"), Some("mkdir d{t}"), true),
            (
                "sleep-1",
                "sleep 1",
                Some("echo 1"),
                Some("mkdir d1"),
                false
            ),
            ("t (t = 1)", "true", Some("echo 1"), Some("mkdir d1"), false),
            (
                "sleep-2",
                "sleep 2",
                Some("echo 2"),
                Some("mkdir d2"),
                false
            ),
            ("t (t = 2)", "true", Some("echo 2"), Some("mkdir d2"), false),
        ]
    );
    assert_eq!(got[1].parameters["t"], "1");
}

#[test]
fn bad_inputs_are_usage_errors_that_say_what_to_do() {
    let check = |i: BenchInput, needle: &str| {
        let e = expand(&i).unwrap_err();
        assert!(e.is_user_input(), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    };
    check(input(&[]), "at least one");
    check(input(&["  "]), "empty");
    let mut i = input(&["a", "b", "c"]);
    i.prepare = vec!["p1".into(), "p2".into()];
    check(i, "once per benchmark");
    let mut i = input(&["a"]);
    i.names = vec!["x".into(), "y".into()];
    check(i, "at most one name");
    let mut i = input(&["a"]);
    i.parameter_lists = vec![("n".into(), vec![]), ("m".into(), vec!["1".into()])];
    check(i, "no values");
    let mut i = input(&["a"]);
    i.parameter_lists = vec![
        ("n".into(), vec!["1".into()]),
        ("n".into(), vec!["2".into()]),
    ];
    check(i, "twice");
}

#[test]
fn direct_and_shell_specs() {
    let s = command_spec("echo 'a b' c", None).unwrap();
    assert_eq!(
        (s.program.as_str(), s.args.clone()),
        ("echo", vec!["a b".to_string(), "c".into()])
    );
    let s = command_spec("echo 'a b' | wc", Some("bash")).unwrap();
    assert_eq!(
        (s.program.as_str(), s.args.clone()),
        ("bash", vec!["-c".to_string(), "echo 'a b' | wc".into()])
    );
    assert!(
        command_spec("echo 'unclosed", None)
            .unwrap_err()
            .is_user_input()
    );
}

#[test]
fn round_orders_are_round_robin_or_seeded_permutations() {
    for r in 0..5 {
        assert_eq!(round_order(Order::Interleaved, 7, r, 4), [0, 1, 2, 3]);
    }
    let rounds: Vec<Vec<usize>> = (0..20)
        .map(|r| round_order(Order::Shuffled, 42, r, 4))
        .collect();
    for o in &rounds {
        let mut sorted = o.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3], "a permutation: {o:?}");
    }
    let distinct: std::collections::BTreeSet<_> = rounds.iter().collect();
    assert!(distinct.len() > 1, "rounds differ: {rounds:?}");
    let again: Vec<Vec<usize>> = (0..20)
        .map(|r| round_order(Order::Shuffled, 42, r, 4))
        .collect();
    assert_eq!(rounds, again, "same seed, same order");
    let other: Vec<Vec<usize>> = (0..20)
        .map(|r| round_order(Order::Shuffled, 43, r, 4))
        .collect();
    assert_ne!(rounds, other, "another seed, another order");
}

#[test]
fn cpu_sets_split_the_allowed_cpus() {
    let check = |allowed: &[usize], jobs, per, want: &[&[usize]]| {
        let got = cpu_sets(allowed, jobs, per);
        let want: Vec<Vec<usize>> = want.iter().map(|w| w.to_vec()).collect();
        assert_eq!(got, want, "{allowed:?} {jobs} {per:?}");
    };
    check(&[0, 1, 2, 3], 2, None, &[&[0, 1], &[2, 3]]);
    check(&[0, 1, 2, 3], 4, None, &[&[0], &[1], &[2], &[3]]);
    check(&[0, 1], 3, None, &[&[0], &[1], &[0]]);
    check(&[4, 5, 6, 7], 2, Some(1), &[&[4], &[5]]);
    check(&[0, 1], 2, Some(2), &[&[0, 1], &[0, 1]]);
}

#[test]
fn overlap_says_whether_a_run_was_alone() {
    let o = Overlap::default();
    let a = o.start();
    assert!(!o.end(a), "alone");
    let a = o.start();
    let b = o.start();
    assert!(o.end(b), "b started while a ran");
    assert!(o.end(a), "b started while a ran");
    let a = o.start();
    assert!(!o.end(a), "alone again");
}

#[test]
fn outliers_are_warned_about_per_command() {
    let rec = |name: &str, i: u32, ms: u64| RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
        suite: "bench".into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        command: name.into(),
        parameters: Default::default(),
        iteration: i,
        started_at: Timestamp(0),
        measurement: Measurement {
            wall_ns: ms * 1_000_000,
            ..Default::default()
        },
        outcome: benchfleet_model::Outcome::Success,
        stderr_tail: None,
        tags: Default::default(),
    };
    let mut records: Vec<RunRecord> = (0..20)
        .map(|i| rec("steady", i, 10 + u64::from(i % 2)))
        .collect();
    records
        .extend((0..20).map(|i| rec("spiky", i, if i == 7 { 100 } else { 10 + u64::from(i % 2) })));
    let w = outlier_warnings(&benchfleet_report::group_records(&records));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("`spiky`") && w[0].contains("kept"), "{w:?}");
}

/// Successful runs of one command with these wall times (tenths of a millisecond).
fn result_of(name: &str, tenths_ms: &[u64], tags: &[(&str, &str)]) -> BenchmarkResult {
    let records: Vec<RunRecord> = tenths_ms
        .iter()
        .enumerate()
        .map(|(i, t)| RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
            suite: "bench".into(),
            name: name.into(),
            kind: NodeKind::Benchmark,
            command: name.into(),
            parameters: Default::default(),
            iteration: i as u32,
            started_at: Timestamp(0),
            measurement: Measurement {
                wall_ns: t * 100_000,
                ..Default::default()
            },
            outcome: benchfleet_model::Outcome::Success,
            stderr_tail: None,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .collect();
    benchfleet_report::group_records(&records).remove(0)
}

#[test]
fn a_run_both_classifications_flag_is_warned_about() {
    let base: Vec<u64> = (0..20).map(|i| 100 + i % 5).collect();
    let with = |spike: u64| {
        let mut v = base.clone();
        v.push(spike);
        outlier_warnings(&[result_of("c", &v, &[])])
    };
    // 10.8 ms is beyond the mild Tukey fence and has |modified z| ≈ 4: one run in 21.
    let w = with(108);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("1 mild") && w[0].contains("1 with |modified z|"),
        "{w:?}"
    );
    // 10.7 ms is only a mild Tukey outlier (z ≈ 3.4): no warning.
    assert!(with(107).is_empty(), "{:?}", with(107));
    // 11.0 ms is beyond the severe fence.
    assert!(with(110)[0].contains("1 severe"));
}

#[test]
fn missing_hardware_counters_are_warned_about_with_the_reason() {
    let counted = [("hw.instructions", "1000")];
    let all = result_of("all", &[10, 11], &counted);
    let none = result_of("none", &[10, 11], &[]);
    let reason = Some("instructions: Permission denied".to_string());
    assert!(counter_warnings(std::slice::from_ref(&all), &[None]).is_empty());

    let w = counter_warnings(std::slice::from_ref(&none), std::slice::from_ref(&reason));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("unavailable here (instructions: Permission denied)"),
        "{w:?}"
    );

    // Some runs lacked them: said per command, with the count and the reason.
    let mut some = all.clone();
    some.name = "some".into();
    some.push(&RunRecord {
        iteration: 2,
        tags: Default::default(),
        ..sample_record()
    });
    let w = counter_warnings(&[all, some], &[None, reason]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(
            "`some`: 1 of 3 runs have no hardware counters (instructions: Permission denied)"
        ),
        "{w:?}"
    );
}

fn sample_record() -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
        suite: "bench".into(),
        name: "some".into(),
        kind: NodeKind::Benchmark,
        command: "some".into(),
        parameters: Default::default(),
        iteration: 0,
        started_at: Timestamp(0),
        measurement: Measurement {
            wall_ns: 1_000_000,
            ..Default::default()
        },
        outcome: benchfleet_model::Outcome::Success,
        stderr_tail: None,
        tags: Default::default(),
    }
}

/// Benchmarks in this process pin their measuring thread and move the others, so the tests that
/// measure take turns (as two `bench` commands would, being separate processes).
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn quick_settings(runs: u32) -> BenchSettings {
    BenchSettings {
        policy: RunPolicy {
            runs: Some(runs),
            min_runs: runs,
            max_runs: Some(runs),
            min_time: Duration::ZERO,
            ..RunPolicy::BENCHMARK
        },
        sample_interval: None,
        ..Default::default()
    }
}

/// Records reach storage while the benchmark is still measuring (a crash mid-bench keeps what
/// was measured), and the compact results with their running statistics agree with the stored
/// records. Synchronised on files: the second run waits for `release`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_while_measuring_and_the_running_statistics_match_them() {
    let _turn = MEASURING.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
        .await
        .unwrap();
    let cmd = format!(
        "sh -c 'if [ -e {d}/first ]; then while [ ! -e {d}/release ]; do sleep 0.01; done; else touch {d}/first; fi'"
    );
    let commands = expand(&input(&[&cmd])).unwrap();
    let settings = quick_settings(3);
    let task = {
        let (storage, commands, settings) = (storage.clone(), commands.clone(), settings.clone());
        tokio::spawn(async move { run_bench(&commands, &settings, &storage, no_events()).await })
    };

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stored_while_running = loop {
        let runs = storage
            .catalog
            .find_runs(&benchfleet_store::RunFilter::default())
            .await
            .unwrap();
        if let Some(run) = runs.first() {
            let stored = crate::load_records(&storage, &run.run_id).await.unwrap();
            if !stored.is_empty() {
                break stored;
            }
        }
        assert!(
            std::time::Instant::now() < deadline && !task.is_finished(),
            "no record was stored while the second run was still going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stored_while_running.len(), 1, "the first run only");
    assert!(
        !task.is_finished(),
        "the second run waits for the release file"
    );
    std::fs::write(dir.path().join("release"), "").unwrap();
    let outcome = task.await.unwrap().unwrap();

    assert_eq!(outcome.records_stored, 3);
    let stored = crate::load_records(&storage, &outcome.run.run_id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    let exact = benchfleet_report::group_records(&stored).remove(0);
    let live = &outcome.results[0];
    assert_eq!(
        live.times, exact.times,
        "the compact times are the stored ones"
    );
    assert_eq!(live.exit_codes, exact.exit_codes);
    let running = live.running.expect("running statistics were kept");
    assert_eq!(running.count, 3);
    let (a, b) = (live.wall().unwrap(), exact.wall().unwrap());
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs().max(1e-9);
    assert!(close(a.mean, b.mean), "{a:?} vs {b:?}");
    assert!(
        close(a.stddev.unwrap(), b.stddev.unwrap()),
        "{a:?} vs {b:?}"
    );
    assert_eq!((a.min, a.max, a.median), (b.min, b.max, b.median));
    assert_eq!(
        benchfleet_report::terminal_table(std::slice::from_ref(live)),
        benchfleet_report::terminal_table(&[exact]),
        "bench prints what show prints"
    );
}

#[test]
fn oversubscribing_physical_cores_or_cpus_is_warned_about() {
    assert!(concurrency_warnings(2, 1, 2, 4).is_empty());
    let w = concurrency_warnings(4, 1, 2, 4);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("-j 4") && w[0].contains("physical cores (2)"),
        "{w:?}"
    );
    let w = concurrency_warnings(2, 3, 4, 4);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("2 jobs × 3 CPUs") && w[0].contains("share CPUs"),
        "{w:?}"
    );
    assert_eq!(concurrency_warnings(8, 2, 2, 4).len(), 2);
}

#[test]
fn commands_under_5_ms_through_a_shell_are_told_to_use_no_shell() {
    let shell = Measurement {
        wall_ns: 2_500_000,
        ..Default::default()
    };
    let stats = |ns: &[u64]| {
        let mut s = BenchStats::new();
        ns.iter().for_each(|n| s.record(*n));
        s
    };
    let w = short_with_shell_warning("quick", &stats(&[1_000_000, 6_000_000]), &shell)
        .expect("a 3.5 ms mean is under 5 ms");
    assert!(
        w.contains("`quick`") && w.contains("(-N)") && w.contains("2.50 ms"),
        "{w}"
    );
    assert_eq!(
        short_with_shell_warning("slow", &stats(&[5_000_000, 6_000_000]), &shell),
        None
    );
    assert_eq!(short_with_shell_warning("none", &stats(&[]), &shell), None);
}

/// With `-j 1` a run shares the measuring thread's CPU when its command's previous run used little
/// CPU time (or it is the first), and may use every CPU after a CPU-heavy one; the CPU is
/// recorded on the run.
/// `pin_measuring: false` leaves the mask alone. Either way the process's threads get their whole
/// mask back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_runs_get_the_measuring_cpu_and_it_is_recorded() {
    let _turn = MEASURING.lock().await;
    let allowed = benchfleet_metrics::allowed_cpus();
    let list = |cpus: &[usize]| {
        cpus.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let parse = |l: &str| {
        // The kernel prints ranges (`0-1`); one CPU per entry is easier to compare.
        let mut cpus = Vec::new();
        for part in l.trim().split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
        }
        list(&cpus)
    };
    for pin in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::open_storage(&crate::StorageSettings::embedded(dir.path().join("db")))
            .await
            .unwrap();
        // A light command, one that sleeps, and one that computes for longer than
        // PIN_CPU_BELOW, each logging its CPU mask.
        let cmd = |name: &str, pause: &str| {
            format!(
                "sh -c '{pause} taskset -cp $$ | sed \"s/.*: //\" >> {}'",
                dir.path().join(name).display()
            )
        };
        let cmds = [
            cmd("light", ""),
            cmd("sleeps", "sleep 0.02;"),
            cmd(
                "computes",
                "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done;",
            ),
        ];
        let settings = BenchSettings {
            pin_measuring: pin,
            ..quick_settings(3)
        };
        let outcome = run_bench(
            &expand(&input(&[&cmds[0], &cmds[1], &cmds[2]])).unwrap(),
            &settings,
            &storage,
            no_events(),
        )
        .await
        .unwrap();
        assert_eq!(outcome.records_stored, 9);
        let records = crate::load_records(&storage, &outcome.run.run_id)
            .await
            .unwrap();
        let tag = outcome.run.tags.get(TAG_MEASURING_CPU).cloned();
        let pinned_cpu = (pin && allowed.len() >= 2).then(|| {
            tag.clone()
                .expect("pinned runs are tagged")
                .parse::<usize>()
                .unwrap()
        });
        if pinned_cpu.is_none() {
            assert_eq!(tag, None);
        }
        let mut freed = 0;
        for (file, command) in [
            ("light", &cmds[0]),
            ("sleeps", &cmds[1]),
            ("computes", &cmds[2]),
        ] {
            let seen: Vec<String> = std::fs::read_to_string(dir.path().join(file))
                .unwrap()
                .lines()
                .map(parse)
                .collect();
            let mut cpu: Vec<(u32, u64)> = records
                .iter()
                .filter(|r| r.command == *command)
                .map(|r| (r.iteration, r.measurement.user_ns + r.measurement.sys_ns))
                .collect();
            cpu.sort();
            assert_eq!(seen.len(), 3, "{file}: {seen:?}");
            assert_eq!(cpu.len(), 3, "{file}: {cpu:?}");
            for (k, mask) in seen.iter().enumerate() {
                let light_before = k == 0 || cpu[k - 1].1 < PIN_CPU_BELOW.as_nanos() as u64;
                freed += usize::from(!light_before);
                let want = match pinned_cpu {
                    Some(cpu) if light_before => cpu.to_string(),
                    _ => list(&allowed),
                };
                assert_eq!(*mask, want, "{file} run {k}: {cpu:?}");
            }
        }
        assert!(
            freed >= 1,
            "the computing command's later runs were CPU-heavy"
        );
        assert_eq!(benchfleet_metrics::allowed_cpus(), allowed, "mask restored");
    }
}

// The bench loop over a fake executor: no real processes, in-memory storage.
mod with_a_fake_executor {
    use std::sync::Arc;

    use super::*;
    use crate::exec::mock::{Mock, Scripted};
    use crate::testing::{failing_storage, mem_storage, runs};
    use benchfleet_model::RunStatus;

    /// hyperfine's order, which -s/-c need.
    fn settings(runs: u32) -> BenchSettings {
        BenchSettings {
            idle_harness: false,
            pin_measuring: false,
            order: Order::Sequential,
            ..quick_settings(runs)
        }
    }

    fn two_commands_with_hooks() -> Vec<BenchCommand> {
        expand(&BenchInput {
            commands: vec!["a".into(), "b".into()],
            setup: Some("setup".into()),
            prepare: vec!["prep".into()],
            conclude: vec!["conc".into()],
            cleanup: Some("clean".into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hooks_run_in_hyperfines_order_command_by_command() {
        let storage = mem_storage();
        let mock = Arc::new(Mock::ok(3_000_000));
        let outcome = run_bench_with(
            &two_commands_with_hooks(),
            &settings(2),
            &storage,
            no_events(),
            mock.clone(),
        )
        .await
        .unwrap();
        let mut want = Vec::new();
        for c in ["a", "b"] {
            want.push("setup");
            for _ in 0..2 {
                want.extend(["prep", c, "conc"]);
            }
            want.push("clean");
        }
        assert_eq!(mock.log(), want);
        assert_eq!(outcome.records_stored, 4);
        assert_eq!(outcome.run.status, RunStatus::Succeeded);
        let stored = crate::load_records(&storage, &outcome.run.run_id)
            .await
            .unwrap();
        assert!(stored.iter().all(|r| r.measurement.wall_ns == 3_000_000));
    }

    #[tokio::test]
    async fn a_setup_is_never_separated_from_its_runs_and_rounds_interleave_without_one() {
        let storage = mem_storage();
        for order in [Order::Interleaved, Order::Shuffled] {
            let e = run_bench_with(
                &two_commands_with_hooks(),
                &BenchSettings {
                    order,
                    ..settings(2)
                },
                &storage,
                no_events(),
                Arc::new(Mock::ok(1_000)),
            )
            .await
            .unwrap_err();
            assert!(e.is_user_input(), "{e}");
            assert!(e.to_string().contains("--order sequential"), "{e}");
        }
        let mut commands = two_commands_with_hooks();
        for c in &mut commands {
            (c.setup, c.cleanup) = (None, None);
        }
        let mock = Arc::new(Mock::ok(1_000));
        let interleaved = BenchSettings {
            order: Order::Interleaved,
            ..settings(2)
        };
        run_bench_with(&commands, &interleaved, &storage, no_events(), mock.clone())
            .await
            .unwrap();
        let round = ["prep", "a", "conc", "prep", "b", "conc"];
        assert_eq!(mock.log(), [round, round].concat());
    }

    /// `--detect`: a noisy pair (runs ±30%) is measured past its planned runs until the runs
    /// say a 10% change could be detected, every command alike; a quiet pair stops at its plan;
    /// `max_runs` bounds the extension.
    #[tokio::test]
    async fn detect_measures_a_noisy_pair_until_the_change_could_be_seen() {
        // Deterministic noise: a hash of the run number, uniform in ±`spread`.
        fn noisy(base_ms: f64, spread: f64) -> impl Fn(&str, usize) -> Scripted {
            move |cmd, n| {
                let h = (n as u64 ^ cmd.len() as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17)
                    .wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let u = (h >> 11) as f64 / (1u64 << 53) as f64;
                let scale = if cmd.starts_with("cand") { 1.1 } else { 1.0 };
                Scripted::ok((base_ms * scale * (1.0 + spread * (2.0 * u - 1.0)) * 1e6) as u64)
            }
        }
        let commands = expand(&BenchInput {
            commands: vec!["cand".into()],
            reference: Some("ref".into()),
            ..Default::default()
        })
        .unwrap();
        let levels = benchfleet_analysis::LevelsConfig {
            head_to_head: true,
            ..Default::default()
        };
        let detect = |max_runs| BenchSettings {
            order: Order::Interleaved,
            policy: RunPolicy {
                runs: None,
                min_runs: 10,
                max_runs,
                min_time: Duration::ZERO,
                ..RunPolicy::BENCHMARK
            },
            detect: Some(Detect {
                change: 0.10,
                levels,
                max_time: Duration::from_secs(60),
            }),
            ..settings(1)
        };
        let walls = |records: &[RunRecord], cmd: &str| -> Vec<f64> {
            let mut v: Vec<(u32, f64)> = records
                .iter()
                .filter(|r| r.command == cmd)
                .map(|r| (r.iteration, r.measurement.wall_secs()))
                .collect();
            v.sort_by_key(|x| x.0);
            v.into_iter().map(|x| x.1).collect()
        };
        for (spread, max_runs) in [(0.5, None), (0.5, Some(40)), (0.01, None)] {
            let storage = mem_storage();
            let mock = Arc::new(Mock::new(noisy(10.0, spread)));
            let outcome = run_bench_with(&commands, &detect(max_runs), &storage, no_events(), mock)
                .await
                .unwrap();
            let records = crate::load_records(&storage, &outcome.run.run_id)
                .await
                .unwrap();
            let (r, c) = (walls(&records, "ref"), walls(&records, "cand"));
            assert_eq!(r.len(), c.len(), "measured alike: {spread} {max_runs:?}");
            let need = benchfleet_analysis::head_to_head_runs_to_detect(&r, &c, 0.10, &levels)
                .expect("sized");
            match (spread, max_runs) {
                (0.01, _) => assert_eq!(r.len(), 10, "a quiet pair keeps its plan"),
                (_, Some(max)) => assert_eq!(r.len(), max as usize, "bounded by max_runs"),
                _ => {
                    // ±50% uniform is a CV of ≈ 29%: a few hundred runs a side.
                    assert!(r.len() > 100, "extended: {}", r.len());
                    assert!(
                        need <= r.len(),
                        "enough runs: need {need}, have {}",
                        r.len()
                    );
                    let verdict = benchfleet_analysis::compare_levels(&[r], &[c], &levels)
                        .unwrap()
                        .assessment
                        .min_detectable;
                    assert!(verdict <= 0.105, "detectable change {verdict}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_failed_run_stops_its_command_with_the_described_failure() {
        let storage = mem_storage();
        let mock = Arc::new(Mock::new(|cmd, before| match (cmd, before) {
            ("b", 1) => Scripted::fails(1, "first\nboom\n"),
            _ => Scripted::ok(1_000_000),
        }));
        let outcome = run_bench_with(
            &two_commands_with_hooks(),
            &settings(3),
            &storage,
            no_events(),
            mock,
        )
        .await
        .unwrap();
        let b = &outcome.commands[1];
        assert_eq!(
            b.failure.as_deref(),
            Some("run exit 1: first | boom; use -i/--ignore-failure to keep measuring")
        );
        assert_eq!((outcome.commands[0].runs, b.runs, b.failed_runs), (3, 2, 1));
        assert_eq!(outcome.run.status, RunStatus::Failed);
    }

    #[tokio::test]
    async fn a_failing_prepare_names_the_command() {
        let storage = mem_storage();
        let mock = Arc::new(Mock::new(|cmd, _| match cmd {
            "prep" => Scripted::fails(2, "no disk\n"),
            _ => Scripted::ok(1_000_000),
        }));
        let outcome = run_bench_with(
            &two_commands_with_hooks(),
            &settings(3),
            &storage,
            no_events(),
            mock,
        )
        .await
        .unwrap();
        assert_eq!(
            outcome.commands[0].failure.as_deref(),
            Some("prepare command `prep` exit 2: no disk")
        );
        assert_eq!(outcome.records_stored, 0);
    }

    #[tokio::test]
    async fn the_shell_cost_is_subtracted_and_stored_under_the_run_tags() {
        let storage = mem_storage();
        let mock = Arc::new(Mock {
            shell_cost_ns: 2_000_000,
            ..Mock::ok(10_000_000)
        });
        let commands = expand(&input(&["a"])).unwrap();
        let s = BenchSettings {
            shell: Some("sh".into()),
            ..settings(2)
        };
        let outcome = run_bench_with(&commands, &s, &storage, no_events(), mock)
            .await
            .unwrap();
        let stored = crate::load_records(&storage, &outcome.run.run_id)
            .await
            .unwrap();
        assert!(stored.iter().all(|r| r.measurement.wall_ns == 8_000_000));
        assert_eq!(outcome.shell_overhead.unwrap().wall_ns, 2_000_000);
        let run = &runs(&storage).await[0];
        assert_eq!(crate::exec::shell_of(&run.tags), Some("sh"));
        assert_eq!(run.tags[crate::exec::TAG_SHELL_OVERHEAD], "2000000");
        assert!(!run.tags.contains_key(crate::exec::LEGACY_TAG_SHELL));
    }

    /// Without -S, a command line with shell syntax runs through `sh` with its cost subtracted
    /// (never as literal arguments), the others directly; with -N it is refused.
    #[tokio::test]
    async fn shell_syntax_goes_through_sh_and_only_that_command_pays_for_it() {
        let storage = mem_storage();
        let mock = Arc::new(Mock {
            shell_cost_ns: 2_000_000,
            ..Mock::ok(10_000_000)
        });
        let commands = expand(&input(&["a && b", "c"])).unwrap();
        let outcome = run_bench_with(&commands, &settings(1), &storage, no_events(), mock.clone())
            .await
            .unwrap();
        assert_eq!(
            outcome.through_shell,
            [("a && b".to_string(), "`&&`".to_string())]
        );
        assert_eq!(
            mock.log(),
            ["a && b", "c"],
            "sh -c 'a && b', then c directly"
        );
        let stored = crate::load_records(&storage, &outcome.run.run_id)
            .await
            .unwrap();
        let wall = |name: &str| {
            let r = stored.iter().find(|r| r.name == name).unwrap();
            (
                r.measurement.wall_ns,
                crate::exec::shell_of(&r.tags).map(str::to_owned),
            )
        };
        assert_eq!(wall("a && b"), (8_000_000, Some("sh".into())));
        assert_eq!(wall("c"), (10_000_000, None));
        let run = &runs(&storage).await[0];
        assert_eq!(crate::exec::shell_of(&run.tags), None, "not every command");

        let refused = BenchSettings {
            syntax_shell: None,
            ..settings(1)
        };
        let e = run_bench_with(&commands, &refused, &storage, no_events(), mock)
            .await
            .unwrap_err();
        assert!(e.is_user_input(), "{e}");
        assert!(e.to_string().contains("-S sh"), "{e}");
    }

    /// `-i=CODES` keeps measuring only through those exit codes.
    #[tokio::test]
    async fn ignore_failure_can_be_limited_to_exit_codes() {
        let storage = mem_storage();
        for (code, codes, runs) in [(1, vec![1, 2], 3), (3, vec![1, 2], 1), (3, vec![], 3)] {
            let mock = Arc::new(Mock::new(move |_, _| Scripted::fails(code, "")));
            let s = BenchSettings {
                ignore_failure: true,
                ignore_exit_codes: codes.clone(),
                ..settings(3)
            };
            let outcome = run_bench_with(
                &expand(&input(&["a"])).unwrap(),
                &s,
                &storage,
                no_events(),
                mock,
            )
            .await
            .unwrap();
            let c = &outcome.commands[0];
            assert_eq!(c.runs, runs, "exit {code} with -i={codes:?}");
            assert_eq!(
                c.failure.is_some(),
                runs == 1,
                "exit {code} with -i={codes:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancellation_stops_measuring_and_the_run_ends_interrupted() {
        let storage = mem_storage();
        let s = settings(1_000);
        let mock = Arc::new(Mock {
            cancel_on: Some(("a".into(), s.cancel.clone())),
            ..Mock::ok(1_000_000)
        });
        let commands = expand(&input(&["a"])).unwrap();
        let outcome = run_bench_with(&commands, &s, &storage, no_events(), mock.clone())
            .await
            .unwrap();
        assert_eq!(outcome.run.status, RunStatus::Interrupted);
        // The killed run is not a measurement; nothing ran after it.
        assert_eq!(outcome.records_stored, 0);
        assert_eq!(mock.log(), ["a"]);
        assert_eq!(runs(&storage).await[0].status, RunStatus::Interrupted);
    }

    /// Run the benchmark and collect the events it told (the channel closes when it is over).
    async fn with_events(
        commands: &[BenchCommand],
        settings: &BenchSettings,
        storage: &Storage,
        mock: Arc<Mock>,
    ) -> (Result<BenchOutcome, BenchError>, Vec<RunnerEvent>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = run_bench_with(commands, settings, storage, tx, mock).await;
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (outcome, events)
    }

    /// The Prometheus exposition after applying `events` and ending the stream, as `tee` does.
    fn exposition(events: &[RunnerEvent]) -> BTreeMap<String, f64> {
        let m = crate::prom::RunnerMetrics::new();
        for e in events {
            m.apply(e);
        }
        m.suite_finished();
        crate::prom::parse_exposition(&m.encode()).unwrap()
    }

    fn count(events: &[RunnerEvent], what: impl Fn(&RunnerEvent) -> bool) -> usize {
        events.iter().filter(|e| what(e)).count()
    }

    fn stored_of(events: &[RunnerEvent], node: usize) -> usize {
        events
            .iter()
            .map(|e| match e {
                RunnerEvent::Stored { node: n, records } if *n == node => *records,
                _ => 0,
            })
            .sum()
    }

    /// The commands are the run's nodes: `Started` and a `NodeStarted` each, every measured run
    /// told when it starts and when it ended (warmups are not), its records as they are stored,
    /// and a `NodeFinished` each at the end.
    #[tokio::test]
    async fn bench_tells_its_commands_and_measured_runs_as_events() {
        let storage = mem_storage();
        let mock = Arc::new(Mock::ok(3_000_000));
        let mut s = settings(2);
        s.policy.warmup = 1;
        let (outcome, events) =
            with_events(&two_commands_with_hooks(), &s, &storage, mock.clone()).await;
        let outcome = outcome.unwrap();
        assert_eq!(
            mock.log().iter().filter(|l| *l == "a").count(),
            3,
            "a warmup ran"
        );

        assert_eq!(
            events[0],
            RunnerEvent::Started {
                run_id: outcome.run.run_id.clone(),
                nodes: 2
            }
        );
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            assert_eq!(
                events[1 + i],
                RunnerEvent::NodeStarted {
                    node: i,
                    name: name.into(),
                    kind: NodeKind::Benchmark
                }
            );
            for iteration in 0..2 {
                let started = events
                    .iter()
                    .position(|e| *e == RunnerEvent::RunStarted { node: i, iteration })
                    .unwrap_or_else(|| panic!("no RunStarted {i}/{iteration}: {events:?}"));
                let ended = events
                    .iter()
                    .position(|e| {
                        matches!(e, RunnerEvent::Measured { node, iteration: k, planned: 2, wall, ok: true }
                            if *node == i && *k == iteration && *wall == Duration::from_millis(3))
                    })
                    .unwrap_or_else(|| panic!("no Measured {i}/{iteration}: {events:?}"));
                assert!(started < ended, "{events:?}");
            }
            assert_eq!(stored_of(&events, i), 2, "{events:?}");
        }
        // Warmups are not measured runs.
        assert_eq!(
            count(&events, |e| matches!(e, RunnerEvent::RunStarted { .. })),
            4
        );
        assert_eq!(
            count(&events, |e| matches!(e, RunnerEvent::Measured { .. })),
            4
        );
        let n = events.len();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            assert_eq!(
                events[n - 2 + i],
                RunnerEvent::NodeFinished {
                    node: i,
                    name: name.into(),
                    state: NodeState::Succeeded,
                    runs: 2,
                    failure: None
                }
            );
        }

        // What Prometheus makes of them: the counts `bench` reported before.
        let p = exposition(&events);
        for (series, v) in [
            ("benchfleet_runs_started_total", 4.0),
            ("benchfleet_runs_finished_total", 4.0),
            ("benchfleet_runs_failed_total", 0.0),
            (
                "benchfleet_records_stored_total",
                outcome.records_stored as f64,
            ),
            ("benchfleet_suite_runs_started_total", 1.0),
            ("benchfleet_suite_runs_finished_total", 1.0),
            ("benchfleet_running_jobs", 0.0),
            ("benchfleet_queue_depth", 0.0),
            ("benchfleet_nodes{state=\"done\"}", 2.0),
        ] {
            assert_eq!(p[series], v, "{series}");
        }
        assert_eq!(outcome.records_stored, 4);
    }

    /// A command stopped by a failed run ends `Failed` with the reason; the failed run counts as
    /// failed and, like every measured run, as a stored record.
    #[tokio::test]
    async fn a_failed_command_ends_failed_in_the_events() {
        let storage = mem_storage();
        let mock = Arc::new(Mock::new(|cmd, before| match (cmd, before) {
            ("b", 1) => Scripted::fails(1, "boom\n"),
            _ => Scripted::ok(1_000_000),
        }));
        let (outcome, events) =
            with_events(&two_commands_with_hooks(), &settings(3), &storage, mock).await;
        let outcome = outcome.unwrap();
        let finished: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                RunnerEvent::NodeFinished {
                    node,
                    state,
                    runs,
                    failure,
                    ..
                } => Some((*node, *state, *runs, failure.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            finished,
            [
                (0, NodeState::Succeeded, 3, None),
                (1, NodeState::Failed, 2, outcome.commands[1].failure.clone()),
            ]
        );
        assert!(outcome.commands[1].failure.is_some());
        assert_eq!(
            count(&events, |e| matches!(
                e,
                RunnerEvent::Measured { ok: false, .. }
            )),
            1
        );
        let p = exposition(&events);
        for (series, v) in [
            ("benchfleet_runs_started_total", 5.0),
            ("benchfleet_runs_finished_total", 5.0),
            ("benchfleet_runs_failed_total", 1.0),
            ("benchfleet_records_stored_total", 5.0),
            ("benchfleet_nodes{state=\"failed\"}", 1.0),
            ("benchfleet_running_jobs", 0.0),
        ] {
            assert_eq!(p[series], v, "{series}");
        }
        assert_eq!(outcome.records_stored, 5);
    }

    /// A store that fails still ends every command (failed, nothing stored), so the metrics
    /// show nothing running or queued once the benchmark gave up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_error_ends_every_command_in_the_events() {
        let storage = failing_storage();
        let commands = expand(&input(&["a", "b"])).unwrap();
        let (outcome, events) =
            with_events(&commands, &settings(3), &storage, Arc::new(Mock::ok(1_000))).await;
        assert!(matches!(outcome, Err(BenchError::Store(_))));
        for node in 0..2 {
            assert!(
                events.iter().any(|e| matches!(e,
                    RunnerEvent::NodeFinished { node: n, state: NodeState::Failed, runs: 0, failure: Some(_), .. }
                    if *n == node)),
                "{events:?}"
            );
        }
        let p = exposition(&events);
        assert_eq!(p["benchfleet_records_stored_total"], 0.0);
        assert_eq!(p["benchfleet_running_jobs"], 0.0);
        assert_eq!(p["benchfleet_queue_depth"], 0.0);
        assert_eq!(p["benchfleet_suite_runs_finished_total"], 1.0);
    }

    /// A store that fails ends the run `failed`, not `running`, and gives the lease back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_error_ends_the_run_failed() {
        let storage = failing_storage();
        let commands = expand(&input(&["a"])).unwrap();
        let err = run_bench_with(
            &commands,
            &settings(3),
            &storage,
            no_events(),
            Arc::new(Mock::ok(1_000)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BenchError::Store(_)), "{err}");
        let runs = runs(&storage).await;
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunStatus::Failed);
        assert!(runs[0].finished_at.is_some());
    }
}
