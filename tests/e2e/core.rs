//! The execution core's lifecycle, as a user sees it (issue 15): a refused suite registers no
//! run, shell facts are stored under one name, the metrics file is finalised when `bench` fails.

use crate::support::Workdir;

/// A suite refused because a node needs more than the host minus its reserve leaves no run
/// behind (exit 2, nothing in `history`).
#[test]
fn a_suite_refused_for_its_resources_leaves_no_run() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname = \"big\"\n[[job]]\nname = \"wide\"\ncommand = \"true\"\ncpus = 1\n",
    );
    let out = w
        .cmd(&["run", suite.to_str().unwrap()])
        // The budget is a tenth of a CPU: a 1-CPU job fits the host but not the budget.
        .env("BENCHFLEET_RUN__RESERVE_CPU", "0.95")
        .output()
        .unwrap();
    let out = crate::support::Out(out);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("`wide` needs"), "{out:?}");
    let history = w.json(&["history", "--format", "json"]);
    assert_eq!(history.as_array().map(Vec::len), Some(0), "{history}");
}

/// `bench -S` stores the shell under the one name suites use, `run.shell`.
#[test]
fn bench_stores_the_shell_under_the_run_tags() {
    let w = Workdir::new();
    let out = w.run(&["bench", "--no-sample", "-S", "sh", "-r", "2", "true"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs[0]["tags"]["run.shell"], "sh");
    assert!(runs[0]["tags"]["run.shell_overhead_ns"].as_str().is_some());
    assert!(runs[0]["tags"].get("bench.shell").is_none(), "{runs}");
}

/// A `bench` that fails (here: its shell cannot start) still writes the metrics file a last
/// time: the run counts as started and finished, and the run itself ends `failed`.
#[test]
fn a_failing_bench_finalises_its_metrics_file_and_its_run() {
    let w = Workdir::new();
    let out = w.run(&[
        "bench",
        "--no-sample",
        "-S",
        "/nonexistent/shell",
        "true",
        "--metrics-file",
        "m.prom",
        "--metrics-interval",
        "1h",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    let text = std::fs::read_to_string(w.path().join("m.prom")).unwrap();
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    assert_eq!(
        value("benchfleet_suite_runs_started_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("benchfleet_suite_runs_finished_total"),
        Some(1.0),
        "{text}"
    );
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs[0]["status"], "failed", "{runs}");
}
