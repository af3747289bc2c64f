//! `run --resume` after Ctrl-C (issue 15): a benchmark interrupted part-way is completed to its
//! planned number of runs, none counted twice and none deleted; a finished one is kept.
//! When to interrupt is observed through the commands' log files; no timing is asserted.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{Out, Workdir, result, stored_records};

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Wait until `ready()` (or a minute), then interrupt `child` as a terminal's Ctrl-C would.
fn interrupt_when(child: Child, ready: impl Fn() -> bool) -> Out {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    Out(child.wait_with_output().expect("wait for benchfleet"))
}

fn spawn_run(w: &Workdir, suite: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["run", suite.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start benchfleet")
}

/// The iterations of `name`'s stored records in `run`, sorted.
fn iterations(w: &Workdir, run: &str, name: &str) -> Vec<u64> {
    let mut its: Vec<u64> = stored_records(w)
        .iter()
        .filter(|r| r["run_id"] == run && r["name"] == name)
        .map(|r| r["iteration"].as_u64().expect("iteration"))
        .collect();
    its.sort_unstable();
    its
}

fn times(w: &Workdir, run: &str, name: &str) -> Vec<serde_json::Value> {
    let shown = w.json(&["show", run, "--format", "json"]);
    result(&shown, name)["times"].as_array().unwrap().clone()
}

fn only_run(w: &Workdir) -> (String, String) {
    let h = w.json(&["history", "--format", "json"]);
    assert_eq!(h.as_array().unwrap().len(), 1, "one run: {h}");
    (
        h[0]["run_id"].as_str().unwrap().to_owned(),
        h[0]["status"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn an_interrupted_benchmark_is_completed_to_its_planned_runs() {
    let w = Workdir::with_fs_hot();
    let suite = w.file(
        "s.toml",
        r#"
        [suite]
        name = "resume-partial"
        [[benchmark]]
        name = "a"
        shell = "sh"
        command = "sleep 0.3; echo a >> log.a"
        runs = 10
        [[benchmark]]
        name = "b"
        needs = ["a"]
        shell = "sh"
        command = "echo b >> log.b"
        runs = 2
        "#,
    );
    let log_a = w.path().join("log.a");
    let out = interrupt_when(spawn_run(&w, &suite, &["-j", "1"]), || lines(&log_a) >= 7);
    assert_eq!(out.code(), 130, "{out:?}");
    let (run_id, status) = only_run(&w);
    assert_eq!(status, "interrupted");
    let before = iterations(&w, &run_id, "a");
    assert!(
        !before.is_empty() && before.len() < 10,
        "interrupted part-way: {before:?}"
    );
    assert!(iterations(&w, &run_id, "b").is_empty(), "b waits for a");
    let kept = times(&w, &run_id, "a");

    let out = w.run(&["run", suite.to_str().unwrap(), "--resume", "-j", "1"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr().contains(&run_id), "same run: {out:?}");
    let (again, status) = only_run(&w);
    assert_eq!(
        (again.as_str(), status.as_str()),
        (run_id.as_str(), "succeeded")
    );

    // Exactly the planned runs, each iteration once, the first ones those stored before.
    assert_eq!(iterations(&w, &run_id, "a"), (0..10).collect::<Vec<u64>>());
    let all = times(&w, &run_id, "a");
    assert_eq!(all.len(), 10, "{all:?}");
    for t in &kept {
        assert!(all.contains(t), "stored run {t} kept: {all:?}");
    }
    assert_eq!(
        iterations(&w, &run_id, "b"),
        [0, 1],
        "b ran after a completed"
    );
    // Only the missing runs were measured (the killed run logged nothing or is the one extra).
    let measured = lines(&log_a);
    assert!((10..=11).contains(&measured), "{measured} runs of a");
}

#[test]
fn a_finished_benchmark_is_kept_and_the_rest_runs() {
    let w = Workdir::with_fs_hot();
    let suite = w.file(
        "s.toml",
        r#"
        [suite]
        name = "resume-finished"
        [defaults]
        shell = "sh"
        [[benchmark]]
        name = "a"
        command = "echo a >> log.a"
        runs = 3
        [[benchmark]]
        name = "b"
        needs = ["a"]
        command = "echo b >> log.b; test -e go || sleep 30"
        runs = 2
        "#,
    );
    let log_b = w.path().join("log.b");
    let out = interrupt_when(spawn_run(&w, &suite, &["-j", "1"]), || lines(&log_b) >= 1);
    assert_eq!(out.code(), 130, "{out:?}");
    let (run_id, _) = only_run(&w);
    assert_eq!(iterations(&w, &run_id, "a"), [0, 1, 2]);
    assert!(
        iterations(&w, &run_id, "b").is_empty(),
        "the killed run is no measurement"
    );
    let kept = times(&w, &run_id, "a");

    std::fs::write(w.path().join("go"), "").unwrap();
    let out = w.run(&["run", suite.to_str().unwrap(), "--resume", "-j", "1"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(lines(&w.path().join("log.a")), 3, "a is not run again");
    assert_eq!(times(&w, &run_id, "a"), kept);
    assert_eq!(iterations(&w, &run_id, "b"), [0, 1]);
    assert_eq!(only_run(&w), (run_id, "succeeded".to_owned()));
}
