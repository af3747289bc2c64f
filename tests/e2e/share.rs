//! The embedded store shared by concurrent processes (issue 17's first part): while a `run`
//! writes to `.benchfleet/catalog.redb`, `history`, `show` and a second `run` in the same
//! directory work, nothing is lost, and a holder killed with SIGKILL leaves a store that the
//! others keep using.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::Workdir;

const LONG: &str = r#"
[suite]
name = "long"
[[benchmark]]
name = "tick"
command = ["sleep", "0.05"]
runs = 40
"#;

const SHORT: &str = r#"
[suite]
name = "short"
[[benchmark]]
name = "quick"
command = "true"
runs = 5
"#;

fn start(w: &Workdir, suite: &str) -> Child {
    w.cmd(&["run", suite])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start benchfleet run")
}

/// Wait until the run of suite `name` is in the catalog (asked through `history`, which shares
/// the store with the writer).
fn wait_for_run(w: &Workdir, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = w.run(&["history", "--format", "json"]);
        assert_eq!(out.code(), 0, "history while a run writes: {out:?}");
        let runs: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        if runs.as_array().unwrap().iter().any(|r| r["suite"] == name) {
            return;
        }
        assert!(Instant::now() < deadline, "the run never appeared: {runs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn commands_share_the_store_with_a_running_suite() {
    let w = Workdir::new();
    w.file("long.toml", LONG);
    w.file("short.toml", SHORT);
    let mut long = start(&w, "long.toml");
    wait_for_run(&w, "long");

    // While `long` runs: reads, and a second run, in the same directory.
    let show = w.run(&["show", "latest"]);
    assert_eq!(show.code(), 0, "{show:?}");
    let second = w.run(&["run", "short.toml"]);
    assert_eq!(second.code(), 0, "{second:?}");
    assert!(
        !second.stderr().contains("locked"),
        "no lock error: {second:?}"
    );
    assert!(long.try_wait().unwrap().is_none(), "long still runs");

    let out = long.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let runs = w.json(&["history", "--format", "json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    // Every run of both suites was stored.
    let long = w.json(&["show", "--format", "json", &runs_of(runs, "long")]);
    assert_eq!(first_result(&long)["times"].as_array().unwrap().len(), 40);
    let short = w.json(&["show", "--format", "json", &runs_of(runs, "short")]);
    assert_eq!(first_result(&short)["times"].as_array().unwrap().len(), 5);
}

#[test]
fn a_holder_killed_with_sigkill_leaves_a_store_the_others_use() {
    let w = Workdir::new();
    w.file("long.toml", LONG);
    w.file("short.toml", SHORT);
    let mut long = start(&w, "long.toml");
    wait_for_run(&w, "long");
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(long.id() as i32, libc::SIGKILL) };
    long.wait().unwrap();

    let started = Instant::now();
    let second = w.run(&["run", "short.toml"]);
    assert_eq!(second.code(), 0, "{second:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no wait for a dead holder"
    );
    let runs = w.json(&["history", "--format", "json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // The killed run keeps what it stored, and `--resume` completes it.
    let killed = runs_of(runs, "long");
    let resumed = w.run(&["run", "long.toml", "--resume"]);
    assert_eq!(resumed.code(), 0, "{resumed:?}");
    assert!(
        resumed.stderr().contains(&format!("resuming run {killed}")),
        "{resumed:?}"
    );
    let long = w.json(&["show", "--format", "json", &killed]);
    assert_eq!(first_result(&long)["times"].as_array().unwrap().len(), 40);
}

fn runs_of(runs: &[serde_json::Value], suite: &str) -> String {
    runs.iter()
        .find(|r| r["suite"] == suite)
        .and_then(|r| r["run_id"].as_str())
        .unwrap_or_else(|| panic!("no run of {suite}: {runs:?}"))
        .to_owned()
}

fn first_result(show: &serde_json::Value) -> &serde_json::Value {
    &show["results"][0]
}
