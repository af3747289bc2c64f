//! Scheduling from the CLI: caching, resume after SIGKILL, plan, resources.

use crate::support::{Workdir, result};

fn stored_names(w: &Workdir, run: &str) -> Vec<String> {
    let shown = w.json(&["show", run, "--format", "json"]);
    let mut names: Vec<String> = shown["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A chain input -> a -> b plus an independent c, each appending to a log so reruns are visible.
const CACHED: &str = r#"
[suite]
name = "cache"
[defaults]
shell = "sh"
[[job]]
name = "a"
command = "echo a >> ../log; cat input.txt > {out}/a"
inputs = ["input.txt"]
cwd = "work"
[[job]]
name = "b"
command = "echo b >> ../log; cat {out.a}/a > {out}/b"
needs = ["a"]
cwd = "work"
[[job]]
name = "c"
command = "echo c >> ../log"
cwd = "work"
"#;

fn log(w: &Workdir) -> Vec<String> {
    let text = std::fs::read_to_string(w.path().join("log")).unwrap_or_default();
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn unchanged_jobs_are_not_run_again_and_inputs_invalidate_downstream() {
    let w = Workdir::new();
    std::fs::create_dir(w.path().join("work")).unwrap();
    w.file("work/input.txt", "one\n");
    let suite = w.file("s.toml", CACHED);
    let s = suite.to_str().unwrap();

    assert_eq!(w.run(&["run", s]).code(), 0);
    assert_eq!(log(&w), ["a", "b", "c"]);

    // Unchanged: nothing runs.
    std::fs::remove_file(w.path().join("log")).unwrap();
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), Vec::<String>::new(), "{out:?}");
    assert!(out.stderr().contains("cached"), "{out:?}");

    // Touching a's input reruns a and its dependent b, not c.
    w.file("work/input.txt", "two\n");
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), ["a", "b"]);
    assert_eq!(
        std::fs::read_to_string(w.path().join(".benchfleet/out/cache/b/b")).unwrap(),
        "two\n"
    );

    // --no-cache runs everything.
    std::fs::remove_file(w.path().join("log")).unwrap();
    assert_eq!(w.run(&["run", s, "--no-cache"]).code(), 0);
    assert_eq!(log(&w), ["a", "b", "c"]);

    // A missing input is an error naming it.
    std::fs::remove_file(w.path().join("work/input.txt")).unwrap();
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("input.txt"), "{out:?}");
}

#[test]
fn resume_after_sigkill_records_every_job_exactly_once() {
    let w = Workdir::new();
    let mut text = String::from("[suite]\nname='resume'\n[defaults]\nshell='sh'\n");
    for i in 0..12 {
        text.push_str(&format!(
            "[[job]]\nname='j{i:02}'\ncommand='sleep 0.2; touch done.{i}'\ncache=false\n"
        ));
    }
    let suite = w.file("s.toml", &text);
    let s = suite.to_str().unwrap();
    let mut child = w.cmd(&["run", s, "-j", "2"]).spawn().unwrap();
    // Records are committed in batches (group commit) right after a job's end, and a job starts only after
    // the records of what it needs are durable. Once a third job has finished its command and a
    // moment has passed for its commit, the first jobs are durably recorded. Then the
    // CLI dies without warning.
    let done = || {
        std::fs::read_dir(w.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("done."))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while done() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let history = w.json(&["history", "--format", "json"]);
    assert_eq!(
        history[0]["status"], "running",
        "a killed run stays `running`"
    );
    let run_id = history[0]["run_id"].as_str().unwrap().to_owned();
    let before = stored_names(&w, &run_id);
    assert!(!before.is_empty() && before.len() < 12, "{before:?}");

    let out = w.run(&["run", s, "--resume"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains(&run_id),
        "resumes the same run: {out:?}"
    );
    let after = w.json(&["show", &run_id, "--format", "json"]);
    let results = after["results"].as_array().unwrap();
    assert_eq!(results.len(), 12, "{after}");
    for r in results {
        assert_eq!(
            r["times"].as_array().unwrap().len(),
            1,
            "exactly one record for {}",
            r["name"]
        );
    }
    for name in &before {
        // What finished before the kill was kept, not run again.
        assert_eq!(
            result(&after, name)["times"],
            result(&w.json(&["show", &run_id, "--format", "json"]), name)["times"]
        );
    }
    let history = w.json(&["history", "--format", "json"]);
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "no second run was created"
    );
    assert_eq!(history[0]["status"], "succeeded");
}

#[test]
fn plan_describes_the_dag_without_running_it() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        r#"
        [suite]
        name = "p"
        [[job]]
        name = "gen"
        command = "true"
        [[benchmark]]
        name = "b-{n}"
        command = "true"
        needs = ["gen"]
        matrix = { n = [1, 2, 3] }
        [[job]]
        name = "final"
        command = "true"
        needs = ["b-{n}"]
        "#,
    );
    let out = w.run(&["plan", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = out.stdout();
    assert!(text.contains("5 nodes, 6 edges"), "{text}");
    assert!(text.contains("critical path: 3 nodes"), "{text}");
    assert!(text.contains("gen -> b-1 -> final"), "{text}");
    assert!(text.contains("maximum width: 3"), "{text}");
    assert!(text.contains("small"), "{text}");
    assert!(
        !w.path().join(".benchfleet").exists(),
        "plan runs nothing and stores nothing"
    );
}

#[test]
fn plan_estimates_each_node_from_its_newest_stored_run() {
    let w = Workdir::new();
    let body = r#"
        [suite]
        name = "p"
        [[job]]
        name = "gen"
        command = ["sleep", "0.3"]
        [[benchmark]]
        name = "b-{n}"
        command = "true"
        needs = ["gen"]
        matrix = { n = [1, 2] }
        runs = 2
        "#;
    let suite = w.file("s.toml", body);
    let out = w.run(&["run", suite.to_str().unwrap(), "--progress", "none"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = w.run(&["plan", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = out.stdout();
    assert!(
        text.contains("3 of 3 nodes estimated from stored history"),
        "{text}"
    );
    // The critical path holds the 0.3 s job, so its estimate is at least that long.
    let line = text
        .lines()
        .find(|l| l.starts_with("critical path:"))
        .unwrap();
    assert!(line.contains("gen -> b-"), "{line}");
    let estimate = line
        .split('~')
        .nth(1)
        .and_then(|t| t.split(':').next())
        .unwrap();
    let (value, unit) = estimate.split_once(' ').unwrap();
    let seconds = value.parse::<f64>().unwrap()
        * match unit {
            "s" => 1.0,
            "ms" => 1e-3,
            other => panic!("unexpected unit {other} in {line}"),
        };
    assert!(seconds >= 0.3, "{line}");

    // A node added since the last run has no history; the others keep theirs.
    let suite = w.file(
        "s.toml",
        &format!("{body}\n[[job]]\nname = \"new\"\ncommand = \"true\"\n"),
    );
    let out = w.run(&["plan", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .contains("3 of 4 nodes estimated from stored history"),
        "{}",
        out.stdout()
    );
}

#[test]
fn a_job_larger_than_the_host_is_refused_before_anything_runs() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname='big'\n[[job]]\nname='huge'\ncommand='true'\ncpus=100000\n",
    );
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("huge"), "{out:?}");
    assert!(out.stderr().contains("needs"), "{out:?}");
}

#[test]
fn retries_are_attempted_and_recorded() {
    let w = Workdir::new();
    // Fails on the first attempt, succeeds on the second (a marker file remembers the attempt).
    let suite = w.file(
        "s.toml",
        "[suite]\nname='retry'\n[[job]]\nname='flaky'\nshell='sh'\ncommand='if [ -e marker ]; then exit 0; else touch marker; exit 7; fi'\nretries=2\ncache=false\n",
    );
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let shown = w.json(&["show", "latest", "--format", "json"]);
    assert_eq!(
        result(&shown, "flaky")["exit_codes"],
        serde_json::json!([7, 0]),
        "both attempts are recorded"
    );
}
