use crate::support::{Workdir, f64s, result};

const SLEEP_SUITE: &str = r#"
[suite]
name = "e2e"

[[job]]
name = "prepare"
shell = "sh"
command = "printf 'hello\n' > {out}/greeting"

[[benchmark]]
name = "sleep"
command = "sleep 0.05"
runs = 5

[[benchmark]]
name = "cat-{n}"
command = "cat {out.prepare}/greeting"
needs = ["prepare"]
matrix = { n = [1, 2] }
runs = 3
"#;

#[test]
fn a_suite_runs_is_stored_exported_and_shown_identically() {
    let w = Workdir::new();
    let suite = w.file("suite.toml", SLEEP_SUITE);
    let out = w.run(&[
        "run",
        suite.to_str().unwrap(),
        "--export-json",
        "out.json",
        "--export-markdown",
        "out.md",
        "--tag",
        "branch=test",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout().contains("sleep") && out.stdout().contains("cat-1"),
        "{out:?}"
    );

    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("out.json")).unwrap()).unwrap();
    let sleep = result(&exported, "sleep");
    let times = f64s(&sleep["times"]);
    assert_eq!(times.len(), 5);
    // Physical lower bound; the upper bound is a unit/plausibility check, not a performance claim.
    assert!(times.iter().all(|&t| t >= 0.05), "{times:?}");
    let median = sleep["median"].as_f64().unwrap();
    assert!((0.05..0.08).contains(&median), "median {median}");
    let mean = sleep["mean"].as_f64().unwrap();
    assert!((mean - times.iter().sum::<f64>() / 5.0).abs() < 1e-9);
    for field in [
        "command",
        "mean",
        "stddev",
        "median",
        "user",
        "system",
        "min",
        "max",
        "times",
        "exit_codes",
        "parameters",
        "name",
        "p95",
        "p99",
        "max_rss_bytes",
        "run_id",
        "schema_version",
    ] {
        assert!(
            sleep.get(field).is_some(),
            "missing field {field} in {sleep}"
        );
    }
    let rss = sleep["max_rss_bytes"].as_array().unwrap();
    assert_eq!(rss.len(), 5);
    assert!(rss.iter().all(|r| r.as_u64().unwrap() > 0), "{rss:?}");
    assert_eq!(sleep["exit_codes"], serde_json::json!([0, 0, 0, 0, 0]));
    assert_eq!(
        result(&exported, "cat-2")["parameters"],
        serde_json::json!({"n": "2"})
    );
    assert!(
        std::fs::read_to_string(w.path().join("out.md"))
            .unwrap()
            .contains("`sleep`")
    );

    // Read back from storage: the same numbers, field for field.
    let run_id = sleep["run_id"].as_str().unwrap().to_owned();
    let shown = w.json(&["show", &run_id, "--format", "json"]);
    assert_eq!(shown, exported);
    let by_prefix = w.json(&["show", &run_id[..10], "--format", "json"]);
    assert_eq!(by_prefix, exported);

    // The table printed by `run` and by `show` are identical too.
    let table = w.run(&["show", "latest"]).stdout();
    assert_eq!(table.trim(), out.stdout().trim());

    // Every run record is in the hot tier: 1 job run + 5 + 3 + 3 (system samples are kept in
    // their own namespace).
    let status = w.json(&["tier", "status", "--json"]);
    assert_eq!(status["tiers"][0]["records"], 12, "{status}");

    let history = w.json(&["history", "--format", "json"]);
    assert_eq!(history[0]["run_id"], run_id.as_str());
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[0]["tags"]["branch"], "test");
}

#[test]
fn history_is_newest_first() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname='h'\n[[job]]\nname='t'\ncommand='true'\n",
    );
    for _ in 0..3 {
        assert_eq!(w.run(&["run", suite.to_str().unwrap()]).code(), 0);
    }
    let h = w.json(&["history", "--format", "json"]);
    let ids: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    let limited = w.json(&["history", "--format", "json", "--limit", "1"]);
    assert_eq!(limited.as_array().unwrap().len(), 1);
}

#[test]
fn configuration_layers_reach_the_runner() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname='c'\n[[job]]\nname='t'\ncommand='true'\n",
    );
    w.file("benchfleet.toml", "[storage]\nroot = 'from-project-file'\n");
    assert_eq!(w.run(&["run", suite.to_str().unwrap()]).code(), 0);
    assert!(w.path().join("from-project-file/catalog.redb").is_file());

    let mut c = w.cmd(&["run", suite.to_str().unwrap()]);
    c.env("BENCHFLEET_STORAGE__ROOT", "from-env");
    assert!(c.status().unwrap().success());
    assert!(w.path().join("from-env/catalog.redb").is_file());

    let shown = w.run(&["config", "show"]).stdout();
    assert!(
        shown.contains("storage.root = \"from-project-file\""),
        "{shown}"
    );
    assert!(shown.contains("benchfleet.toml"), "{shown}");
}

/// Suite files take hyperfine's run controls: `setup` once, `prepare`/`conclude` around every
/// run (warmups too), `cleanup` once at the end, also after a failure. Each hook appends its name
/// to a log in the node's output directory; the log is the order in which they ran.
#[test]
fn suite_hooks_run_in_hyperfines_order_and_their_failures_fail_the_node() {
    struct Case {
        name: &'static str,
        /// Extra lines for the benchmark (after `command`).
        extra: &'static str,
        code: i32,
        log: &'static [&'static str],
    }
    let all = "setup = \"echo setup >> {out}/log\"\nprepare = \"echo prepare >> {out}/log\"\n\
               conclude = \"echo conclude >> {out}/log\"\ncleanup = \"echo cleanup >> {out}/log\"\n";
    let cases = [
        Case {
            name: "all hooks, one warmup, two runs",
            extra: "",
            code: 0,
            log: &[
                "setup", "prepare", "run", "conclude", // warmup
                "prepare", "run", "conclude", "prepare", "run", "conclude", "cleanup",
            ],
        },
        Case {
            name: "a failing prepare fails the node before its run; cleanup still runs",
            extra: "prepare = \"sh -c 'echo prepare >> {out}/log; exit 3'\"\n",
            code: 1,
            log: &["setup", "prepare", "cleanup"],
        },
        Case {
            name: "a failing setup runs nothing else",
            extra: "setup = \"false\"\n",
            code: 1,
            log: &[],
        },
    ];
    for case in cases {
        let w = Workdir::new();
        // Hooks of the node override the defaults; the defaults give every hook.
        let suite = format!(
            "[suite]\nname = \"hooks\"\n[defaults]\nshell = \"sh\"\n{all}\n[[benchmark]]\nname = \"b\"\n\
             command = \"echo run >> {{out}}/log\"\nwarmup = 1\nruns = 2\n{}",
            case.extra
        );
        let path = w.file("suite.toml", &suite);
        let out = w.run(&["run", path.to_str().unwrap()]);
        assert_eq!(out.code(), case.code, "{}: {out:?}", case.name);
        let log = std::fs::read_to_string(w.path().join(".benchfleet/out/hooks/b/log"))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines, case.log, "{}", case.name);
        if case.code != 0 {
            let field = if case.extra.starts_with("prepare") {
                "prepare"
            } else {
                "setup"
            };
            assert!(
                out.stderr().contains(&format!("`{field}` command"))
                    || out.stdout().contains(&format!("`{field}` command")),
                "{}: the failure names the hook: {out:?}",
                case.name
            );
        }
    }
}

/// The system series stored with the run (the one JSON blob with `interval_ms`), from a
/// [`Workdir::with_fs_hot`] directory.
fn stored_series(w: &Workdir) -> Vec<serde_json::Value> {
    fn walk(dir: &std::path::Path, out: &mut Vec<serde_json::Value>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(bytes) = std::fs::read(&p)
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && v.get("interval_ms").is_some()
            {
                out.push(v);
            }
        }
    }
    let mut out = Vec::new();
    walk(&w.path().join(".benchfleet"), &mut out);
    out
}

const ONE_JOB: &str = "[suite]\nname = \"s\"\n[[job]]\nname = \"nap\"\ncommand = \"sleep 0.1\"\n";

#[test]
fn the_sampling_interval_comes_from_the_flag_or_the_config_and_is_checked() {
    let w = Workdir::with_fs_hot();
    let suite = w.file("suite.toml", ONE_JOB);
    let out = w.run(&["run", suite.to_str().unwrap(), "--sample-interval", "20ms"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let series = stored_series(&w);
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["interval_ms"], 20);

    let w = Workdir::new();
    w.file(
        "benchfleet.toml",
        "[storage.hot]\nbackend = \"fs\"\n[run]\nsample_interval = \"30ms\"\n",
    );
    let suite = w.file("suite.toml", ONE_JOB);
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(stored_series(&w)[0]["interval_ms"], 30);

    let out = w.run(&["run", suite.to_str().unwrap(), "--sample-interval", "1ms"]);
    assert_eq!(out.code(), 2, "{out:?}");
    let err = out.stderr();
    assert!(
        err.contains("run.sample_interval")
            && err.contains("1ms")
            && err.contains("command-line flag"),
        "{err}"
    );
}

#[test]
fn concurrent_suite_runs_are_pinned_tagged_and_warned_about() {
    let w = Workdir::with_fs_hot();
    let d = w.path().display();
    // Two jobs that wait (bounded) for each other, so they certainly overlap.
    let job = |me: &str, other: &str| {
        format!(
            "[[job]]\nname = \"{me}\"\nshell = \"sh\"\nmemory = \"256MiB\"\ncommand = \"touch {d}/{me}.here; i=0; while [ ! -e {d}/{other}.here ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\"\n"
        )
    };
    let suite = w.file(
        "suite.toml",
        &format!(
            "[suite]\nname = \"iso\"\n{}{}",
            job("a", "b"),
            job("b", "a")
        ),
    );
    let out = w.run(&["run", suite.to_str().unwrap(), "-j", "2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let records = crate::support::stored_records(&w);
    assert_eq!(records.len(), 2);
    let mut methods = Vec::new();
    for r in &records {
        let tags = &r["tags"];
        assert_eq!(tags["run.concurrent"], "true", "{r}");
        assert!(
            tags["run.cpus"].as_str().is_some_and(|c| !c.is_empty()),
            "{r}"
        );
        let method = tags["run.memory_limit"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(["cgroup", "rlimit"].contains(&method.as_str()), "{r}");
        methods.push(method);
    }
    // The fallback to RLIMIT_AS is said out loud.
    assert_eq!(
        out.stderr()
            .contains("warning: memory limits of jobs are enforced with RLIMIT_AS"),
        methods.iter().any(|m| m == "rlimit"),
        "{out:?}"
    );
}
