//! The fleet end to end: `submit`, several `benchfleet worker` processes in separate working
//! directories (standing in for machines), `fleet status` and `fleet cancel`, against the real
//! PostgreSQL cluster and loopback S3 server of `cargo xtask test`. Faults: a worker SIGKILLed
//! mid-benchmark, PostgreSQL restarted mid-run, S3 failing for a while; machine-class pinning
//! with two overridden classes; failures skipping dependents; bad input.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::servers::{
    FaultyS3, SHARED_POSTGRES, Stopped, pg_catalog, s3_tier, server_env, shared_postgres, unique,
};
use crate::support::{Out, Workdir};

/// The machine-class override a test gives a worker (`benchfleet::machine::CLASS_ENV`).
const CLASS_ENV: &str = "BENCHFLEET_MACHINE_CLASS";

/// Working directories sharing one fleet: a PostgreSQL catalog (and hot tier, unless `extra`
/// puts it elsewhere) in a schema of the test's own.
struct Fleet {
    schema: String,
    dirs: Vec<Workdir>,
}

impl Fleet {
    fn new(url: &str, extra: &str, machines: usize) -> Fleet {
        let schema = unique("bffleet");
        let config = format!(
            "{}retry_attempts = 40\nconnect_timeout_secs = 5\n{extra}",
            pg_catalog(url, &schema)
        );
        let dirs = (0..machines)
            .map(|_| {
                let w = Workdir::new();
                w.file("benchfleet.toml", &config);
                w
            })
            .collect();
        Fleet { schema, dirs }
    }

    fn dir(&self, i: usize) -> &Workdir {
        &self.dirs[i]
    }

    /// `submit FILE`: the run id.
    fn submit(&self, suite: &str, extra: &[&str]) -> String {
        let w = self.dir(0);
        w.file("suite.toml", suite);
        let mut args = vec!["submit", "suite.toml"];
        args.extend_from_slice(extra);
        let out = w.run(&args);
        assert_eq!(out.code(), 0, "submit: {out:?}");
        let id = out.stdout().trim().to_owned();
        assert_eq!(id.len(), 26, "a run id on stdout: {out:?}");
        id
    }

    fn show(&self, run: &str) -> serde_json::Value {
        self.dir(0).json(&["show", run, "--format", "json"])
    }
}

/// A `benchfleet worker` process, its stderr read line by line.
struct Worker {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Worker {
    fn start(w: &Workdir, args: &[&str], class: &str) -> Worker {
        let mut all = vec!["worker"];
        all.extend_from_slice(args);
        let mut child = w
            .cmd(&all)
            .env(CLASS_ENV, class)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a worker");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let keep = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = keep.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
                let _ = tx.send(line);
            }
        });
        Worker {
            child,
            lines,
            log,
            reader: Some(reader),
        }
    }

    /// Wait for a line of its stderr that satisfies `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("worker never printed {what}:\n{}", self.log())
                }
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for it to exit: its exit code and everything it printed.
    fn finish(mut self) -> (i32, String) {
        let status = wait_timeout(&mut self.child, Duration::from_secs(180))
            .unwrap_or_else(|| panic!("worker did not exit:\n{}", self.log()));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.log())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn signal(pid: i32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Runs per result name in `show --format json`.
fn runs_by_name(show: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    show["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_owned(),
                r["times"].as_array().map_or(0, |t| t.len() as u64),
            )
        })
        .collect()
}

/// The nodes a worker claimed (from its `RUN NODE: claimed[ (attempt N)]` lines).
fn claimed(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(": claimed").map(|(head, _)| head))
        .filter_map(|l| l.split_once(' ').map(|(_, n)| n.to_owned()))
        .collect()
}

fn history_status(w: &Workdir, run: &str) -> String {
    let h = w.json(&["history", "--format", "json"]);
    h.as_array()
        .expect("runs")
        .iter()
        .find(|r| r["run_id"] == run)
        .and_then(|r| r["status"].as_str())
        .unwrap_or_else(|| panic!("run {run} not in history: {h}"))
        .to_owned()
}

/// Lines `begin NAME` / `end NAME` appended by the nodes, as indexes per event.
fn order_of(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_before(events: &[String], first: &str, then: &str) {
    let a = events.iter().position(|e| e == first);
    let b = events.iter().position(|e| e == then);
    match (a, b) {
        (Some(a), Some(b)) => assert!(a < b, "`{first}` must come before `{then}`: {events:?}"),
        _ => panic!("`{first}` or `{then}` missing: {events:?}"),
    }
}

/// Two workers in separate working directories finish a submitted suite with the hot tier on
/// an S3 server that fails for a while: `needs` order holds across machines, a node's outputs
/// reach a dependent on the other worker through the blob store (and stay local when it runs
/// on the same one), every node is recorded exactly once, and `submit --wait` exits 0.
#[test]
fn two_workers_finish_a_suite_once_in_needs_order_through_failing_s3() {
    const TEST: &str = "two_workers_finish_a_suite_once_in_needs_order_through_failing_s3";
    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let Some(bin) = server_env("BENCHFLEET_TEST_S3_SERVER_BIN", TEST) else {
        return;
    };
    let mut s3 = FaultyS3::start(&bin);
    let fleet = Fleet::new(&url, &s3_tier("hot", &s3.s3, "hot"), 2);
    let shared = tempfile::tempdir().expect("tempdir");
    let log = shared.path().join("order.log");
    let gate = shared.path().join("gate");
    let (log_s, gate_s) = (log.display().to_string(), gate.display().to_string());
    // The three producers wait at a gate until both workers hold one, so producers run on both
    // machines and some consumer needs outputs from the other one.
    let suite = format!(
        r#"
[suite]
name = "fleet-order"

[defaults]
warmup = 0

[[job]]
name = "gen-{{k}}"
matrix = {{ k = ["1", "2", "3"] }}
shell = "sh"
command = '''echo "begin gen-{{k}}" >> {log_s}; while [ ! -f {gate_s} ]; do sleep 0.02; done; echo {{k}} > {{out}}/v.txt; echo "end gen-{{k}}" >> {log_s}'''
timeout = "120s"

[[benchmark]]
name = "use-{{k}}"
matrix = {{ k = ["1", "2", "3"] }}
runs = 3
shell = "sh"
needs = ["gen-{{k}}", "gen-1"]
command = '''echo "begin use-{{k}}" >> {log_s}; test "$(cat {{out.gen-{{k}}}}/v.txt)" = {{k}} && test "$(cat {{out.gen-1}}/v.txt)" = 1'''

[[job]]
name = "final"
needs = ["use-1", "use-2", "use-3"]
shell = "sh"
command = '''echo "begin final" >> {log_s}'''
"#
    );
    fleet.dir(0).file("suite.toml", &suite);
    let mut wait = fleet
        .dir(0)
        .cmd(&["submit", "suite.toml", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("submit --wait");
    let mut first = String::new();
    BufReader::new(wait.stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("run id");
    let run = first.trim().to_owned();
    assert_eq!(run.len(), 26, "run id first: {first:?}");

    assert_eq!(s3.command("fail 4"), "ok");
    let a = Worker::start(fleet.dir(0), &["--until-idle"], "mc-one");
    let b = Worker::start(fleet.dir(1), &["--until-idle"], "mc-one");
    a.wait_for("a claim", |l| l.contains(": claimed"));
    b.wait_for("a claim", |l| l.contains(": claimed"));
    std::fs::write(&gate, "").expect("open the gate");

    let (code_a, log_a) = a.finish();
    let (code_b, log_b) = b.finish();
    assert_eq!((code_a, code_b), (0, 0), "workers:\n{log_a}\n{log_b}");
    let waited = wait_timeout(&mut wait, Duration::from_secs(60)).expect("submit --wait ends");
    assert_eq!(waited, 0, "submit --wait follows the run to success");
    assert_eq!(
        s3.injected(),
        4,
        "every injected S3 fault was hit and retried"
    );

    // Every node exactly once: by the workers' claims and by the stored records.
    let mut all = claimed(&log_a);
    all.extend(claimed(&log_b));
    all.sort();
    let want = [
        "final", "gen-1", "gen-2", "gen-3", "use-1", "use-2", "use-3",
    ];
    assert_eq!(all, want, "claims:\n{log_a}\n{log_b}");
    assert!(
        !claimed(&log_a).is_empty() && !claimed(&log_b).is_empty(),
        "both workers ran nodes"
    );
    let runs = runs_by_name(&fleet.show(&run));
    let expect: std::collections::BTreeMap<String, u64> = [
        ("final", 1),
        ("gen-1", 1),
        ("gen-2", 1),
        ("gen-3", 1),
        ("use-1", 3),
        ("use-2", 3),
        ("use-3", 3),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_owned(), c))
    .collect();
    assert_eq!(runs, expect);
    // Each consumer fetched exactly the outputs it needed that were neither produced on its
    // worker nor fetched there by an earlier consumer (shipping), and nothing else (affinity);
    // `final` uses no outputs and fetches none. gen-1 and another gen ran on different
    // workers, so something was shipped.
    let (on_a, on_b) = (claimed(&log_a), claimed(&log_b));
    let mut shipped = 0;
    for (log, here) in [(&log_a, &on_a), (&log_b, &on_b)] {
        let mut local: Vec<String> = here
            .iter()
            .filter(|n| n.starts_with("gen-"))
            .cloned()
            .collect();
        for line in log.lines().filter(|l| l.contains(": succeeded")) {
            let Some(k) = line
                .split_once(" use-")
                .and_then(|(_, rest)| rest.split(':').next())
            else {
                continue;
            };
            let mut deps = vec![format!("gen-{k}"), "gen-1".to_owned()];
            deps.dedup();
            let missing: Vec<String> = deps.into_iter().filter(|d| !local.contains(d)).collect();
            let got = line
                .split("outputs of ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .map_or(0, |n| n.parse::<usize>().expect("a count"));
            assert_eq!(
                got,
                missing.len(),
                "use-{k} lacked {missing:?} on a worker that ran {here:?}: {line}"
            );
            shipped += got;
            local.extend(missing);
        }
        let fin = log.lines().find(|l| l.contains(" final: succeeded"));
        assert!(fin.is_none_or(|l| !l.contains("fetched")), "{fin:?}");
    }
    assert!(shipped >= 1, "no outputs shipped:\n{log_a}\n{log_b}");

    let events = order_of(&log);
    for k in ["1", "2", "3"] {
        assert_before(&events, &format!("end gen-{k}"), &format!("begin use-{k}"));
        assert_before(&events, "end gen-1", &format!("begin use-{k}"));
    }
    let last_use = events
        .iter()
        .rposition(|e| e.starts_with("begin use-"))
        .expect("use ran");
    let fin = events
        .iter()
        .position(|e| e == "begin final")
        .expect("final ran");
    assert!(last_use < fin, "final after every use: {events:?}");
    assert_eq!(history_status(fleet.dir(1), &run), "succeeded");
}

/// A worker is SIGKILLed in the middle of a 10-run benchmark: another worker re-runs the node
/// (attempt 2), the run succeeds, the benchmark has exactly its 10 runs and its dependent one;
/// `fleet status` names the killed worker as lost.
#[test]
fn a_sigkilled_worker_s_node_reruns_elsewhere_and_nothing_is_duplicated() {
    const TEST: &str = "a_sigkilled_worker_s_node_reruns_elsewhere_and_nothing_is_duplicated";
    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "", 2);
    let marks = tempfile::tempdir().expect("tempdir");
    let m = marks.path().display().to_string();
    let run = fleet.submit(
        &format!(
            r#"
[suite]
name = "fleet-kill"

[[benchmark]]
name = "slow"
runs = 10
warmup = 0
shell = "sh"
command = "touch {m}/$$; sleep 0.1"

[[job]]
name = "after"
needs = ["slow"]
command = "true"
"#
        ),
        &[],
    );
    let victim = Worker::start(fleet.dir(0), &[], "mc-one");
    victim.wait_for("the claim of slow", |l| l.ends_with("slow: claimed"));
    // Let it measure a few of the 10 runs, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(marks.path()).map_or(0, |d| d.count()) < 4 {
        assert!(
            Instant::now() < deadline,
            "slow never ran:\n{}",
            victim.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let victim_id = victim
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("worker "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the worker's id")
        .to_owned();
    signal(victim.pid(), "-KILL");
    let (code, victim_log) = victim.finish();
    assert_eq!(code, -1, "killed by a signal");
    assert!(!victim_log.contains("slow: succeeded"), "{victim_log}");

    let rescuer = Worker::start(fleet.dir(1), &["--until-idle"], "mc-one");
    let (code, log) = rescuer.finish();
    assert_eq!(code, 0, "{log}");
    assert!(claimed(&log).contains(&"slow".to_owned()), "{log}");
    let runs = runs_by_name(&fleet.show(&run));
    assert_eq!(
        runs.get("slow"),
        Some(&10),
        "exactly the benchmark's runs: {runs:?}"
    );
    assert_eq!(runs.get("after"), Some(&1));
    assert_eq!(history_status(fleet.dir(0), &run), "succeeded");

    let status = fleet.dir(1).json(&["fleet", "status", "--format", "json"]);
    let killed = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["id"] == victim_id.as_str())
        .unwrap_or_else(|| panic!("{victim_id} not listed: {status}"));
    assert_eq!(killed["state"], "lost", "{status}");
    let text = fleet.dir(1).run(&["fleet", "status"]);
    assert!(
        text.stdout().contains("went silent") && text.stdout().contains(&victim_id),
        "{text:?}"
    );
}

/// PostgreSQL restarts while two workers hold claims: they reconnect (heartbeats, completions
/// and record writes retried), the run finishes, and every node is recorded exactly once.
#[test]
fn workers_ride_out_a_postgres_restart() {
    const TEST: &str = "workers_ride_out_a_postgres_restart";
    let _cluster = SHARED_POSTGRES.write().unwrap_or_else(|e| e.into_inner());
    let Some(url) = server_env("BENCHFLEET_TEST_POSTGRES_URL", TEST) else {
        return;
    };
    let Some(ctl) = server_env("BENCHFLEET_TEST_PG_CTL", TEST) else {
        return;
    };
    let Some(data) = server_env("BENCHFLEET_TEST_PG_DATA", TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "", 2);
    let shared = tempfile::tempdir().expect("tempdir");
    let gate = shared.path().join("stopped").display().to_string();
    let run = fleet.submit(
        &format!(
            r#"
[suite]
name = "fleet-restart"

[defaults]
warmup = 0
runs = 2

[[benchmark]]
name = "gate-{{n}}"
matrix = {{ n = [1, 2] }}
shell = "sh"
command = "while [ ! -f {gate} ]; do sleep 0.05; done"
timeout = "120s"

[[benchmark]]
name = "after-{{n}}"
matrix = {{ n = [1, 2, 3] }}
command = "true {{n}}"
needs = ["gate-1", "gate-2"]
"#
        ),
        &[],
    );
    let a = Worker::start(fleet.dir(0), &["--until-idle"], "mc-one");
    let b = Worker::start(fleet.dir(1), &["--until-idle"], "mc-one");
    a.wait_for("a claim", |l| l.contains(": claimed"));
    let mut stopped = Stopped::stop(Path::new(&ctl), Path::new(&data));
    std::fs::write(&gate, "").expect("open the gate");
    std::thread::sleep(Duration::from_secs(2));
    stopped.start();
    let (ca, la) = a.finish();
    let (cb, lb) = b.finish();
    assert_eq!((ca, cb), (0, 0), "workers:\n{la}\n{lb}");
    let runs = runs_by_name(&fleet.show(&run));
    assert_eq!(runs.len(), 5, "{runs:?}");
    assert!(
        runs.values().all(|n| *n == 2),
        "each node's 2 runs, once: {runs:?}"
    );
    assert_eq!(history_status(fleet.dir(0), &run), "succeeded");
}

/// `fleet cancel` stops a submitted run: the running node is killed, its dependent never
/// starts, the run ends cancelled (stored interrupted), `submit --wait` exits 130, and a second
/// cancel says the run already ended (exit 2).
#[test]
fn cancel_stops_a_submitted_run() {
    const TEST: &str = "cancel_stops_a_submitted_run";
    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "", 1);
    let w = fleet.dir(0);
    w.file(
        "suite.toml",
        r#"
[suite]
name = "fleet-cancel"

[[job]]
name = "long"
command = "sleep 60"

[[job]]
name = "next"
needs = ["long"]
command = "true"
"#,
    );
    let mut wait = w
        .cmd(&["submit", "suite.toml", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("submit --wait");
    let mut first = String::new();
    BufReader::new(wait.stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("run id");
    let run = first.trim().to_owned();
    let worker = Worker::start(w, &["--until-idle"], "mc-one");
    worker.wait_for("the claim of long", |l| l.ends_with("long: claimed"));
    let out = w.run(&["fleet", "cancel", &run]);
    assert_eq!(out.code(), 0, "{out:?}");
    let (code, log) = worker.finish();
    assert_eq!(code, 0, "{log}");
    assert!(!claimed(&log).contains(&"next".to_owned()), "{log}");
    let waited = wait_timeout(&mut wait, Duration::from_secs(60)).expect("submit --wait ends");
    assert_eq!(waited, 130, "cancelled");
    assert_eq!(history_status(w, &run), "interrupted");
    let again = w.run(&["fleet", "cancel", &run]);
    assert_eq!(again.code(), 2, "{again:?}");
    assert!(again.stderr().contains("already ended"), "{again:?}");
}

/// Two workers of different (overridden) machine classes: every benchmark of the run is
/// measured on the one class that claimed first, jobs run on either; a failing job skips its
/// dependent (nothing recorded for it) and the run ends failed (`submit --wait` exits 1).
#[test]
fn benchmarks_stay_on_one_machine_class_and_failures_skip_dependents() {
    const TEST: &str = "benchmarks_stay_on_one_machine_class_and_failures_skip_dependents";
    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "[run]\nkeep_going = true\n", 2);
    let run = fleet.submit(
        r#"
[suite]
name = "fleet-classes"

[defaults]
warmup = 0

[[benchmark]]
name = "b-{n}"
matrix = { n = [1, 2, 3, 4] }
runs = 3
command = "sleep 0.05"

[[job]]
name = "j-{n}"
matrix = { n = [1, 2, 3, 4] }
command = "sleep 0.3"

[[job]]
name = "broken"
command = "false"

[[job]]
name = "after-broken"
needs = ["broken"]
command = "true"
"#,
        &[],
    );
    let left = Worker::start(
        fleet.dir(0),
        &[
            "--until-idle",
            "--jobs",
            "2",
            "--metrics-file",
            "worker.prom",
        ],
        "mc-left",
    );
    let right = Worker::start(fleet.dir(1), &["--until-idle", "--jobs", "2"], "mc-right");
    let (cl, ll) = left.finish();
    let (cr, lr) = right.finish();
    assert_eq!((cl, cr), (0, 0), "workers:\n{ll}\n{lr}");
    // The worker's metrics: the queue per pool and state, live workers, what it completed.
    let prom = std::fs::read_to_string(fleet.dir(0).path().join("worker.prom")).expect("metrics");
    for name in [
        "benchfleet_fleet_queue_nodes{",
        "benchfleet_fleet_live_workers{",
        "benchfleet_fleet_worker_concurrency 2",
        "benchfleet_fleet_worker_completed_total{state=\"succeeded\"}",
    ] {
        assert!(prom.contains(name), "{name} missing:\n{prom}");
    }
    let show = fleet.show(&run);
    let mut bench_classes = std::collections::BTreeSet::new();
    for r in show["results"].as_array().expect("results") {
        let name = r["name"].as_str().unwrap_or_default();
        let classes: Vec<&str> = r["machine_classes"]
            .as_array()
            .expect("machine_classes")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert_eq!(classes.len(), 1, "{name}: {classes:?}");
        if r["kind"] == "benchmark" {
            bench_classes.insert(classes[0].to_owned());
        }
    }
    assert_eq!(
        bench_classes.len(),
        1,
        "benchmarks on one class: {bench_classes:?}"
    );
    let runs = runs_by_name(&show);
    assert_eq!(runs.get("after-broken"), None, "skipped: {runs:?}");
    assert_eq!(runs.get("broken"), Some(&1));
    assert_eq!(
        (1..=4)
            .filter(|n| runs.get(&format!("b-{n}")) == Some(&3))
            .count(),
        4
    );
    assert_eq!(history_status(fleet.dir(0), &run), "failed");
    let pinned = bench_classes.into_iter().next().unwrap_or_default();
    let h = fleet.dir(0).json(&["history", "--format", "json"]);
    let row = h
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["run_id"] == run.as_str()))
        .expect("the run in history");
    assert_eq!(
        row["tags"]["machine.class"],
        pinned.as_str(),
        "the run row names its class: {row}"
    );
    let other_log = if pinned == "mc-left" { &lr } else { &ll };
    assert!(
        claimed(other_log).iter().all(|n| !n.starts_with("b-")),
        "no benchmark on the other class:\n{other_log}"
    );
}

/// Bad input: the fleet commands on the embedded default say what to configure (exit 2); an
/// unreachable PostgreSQL is reported naming host and port (exit 3), not a hang; a node that
/// fits no live worker is refused at submit (exit 2) naming it; nothing is queued.
#[test]
fn fleet_commands_refuse_bad_input_clearly() {
    const TEST: &str = "fleet_commands_refuse_bad_input_clearly";
    let embedded = Workdir::new();
    embedded.file(
        "suite.toml",
        "[suite]\nname = \"x\"\n[[job]]\nname = \"j\"\ncommand = \"true\"\n",
    );
    for args in [
        &["submit", "suite.toml"][..],
        &["worker", "--until-idle"][..],
        &["fleet", "status"][..],
    ] {
        let out = embedded.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        let text = out.stderr();
        assert!(
            text.contains("PostgreSQL") && text.contains("storage.catalog"),
            "{args:?} says what to configure: {text}"
        );
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let nowhere = Workdir::new();
    nowhere.file(
        "suite.toml",
        "[suite]\nname = \"x\"\n[[job]]\nname = \"j\"\ncommand = \"true\"\n",
    );
    nowhere.file(
        "benchfleet.toml",
        &format!(
            "[storage.catalog]\nbackend = \"postgres\"\nurl = \"postgres://b@127.0.0.1:{port}/b\"\n\
             connect_timeout_secs = 1\nretry_attempts = 1\n"
        ),
    );
    for args in [
        &["submit", "suite.toml"][..],
        &["worker", "--until-idle"][..],
    ] {
        let out: Out = nowhere.run(args);
        assert_eq!(out.code(), 3, "{args:?}: {out:?}");
        assert!(
            out.stderr().contains(&format!("127.0.0.1:{port}")),
            "{out:?}"
        );
    }

    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "", 1);
    let worker = Worker::start(fleet.dir(0), &[], "mc-one");
    worker.wait_for("its start", |l| l.contains("serving pool"));
    fleet.dir(0).file(
        "suite.toml",
        "[suite]\nname = \"huge\"\n[[job]]\nname = \"greedy\"\ncommand = \"true\"\ncpus = 4096\n",
    );
    let out = fleet.dir(0).run(&["submit", "suite.toml"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("greedy"), "{out:?}");
    let status = fleet.dir(0).json(&["fleet", "status", "--format", "json"]);
    assert_eq!(status["runs"].as_array().map(Vec::len), Some(0), "{status}");
    signal(worker.pid(), "-TERM");
    let (code, log) = worker.finish();
    assert_eq!(code, 0, "SIGTERM drains and exits cleanly: {log}");
    assert!(log.contains("draining"), "{log}");

    // A hot tier on this machine's disk is named: other machines could not read its records.
    let local = Fleet::new(&url, "[storage.hot]\nbackend = \"fs\"\n", 1);
    let out = local.dir(0).run(&["worker", "--until-idle"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains("the hot tier is files under"),
        "{out:?}"
    );
}

/// The documents of a YAML file under deploy/k8s.
fn manifests(file: &str) -> Vec<yaml_rust2::Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/k8s")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read a manifest");
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

/// deploy/: the image builds the CLI and starts a worker that drains on SIGTERM; the worker
/// Deployment, its configuration, secret, and KEDA's ScaledObject refer to each other by the
/// names they define; the configuration is valid (`config show`); and KEDA's query, run on a
/// real queue, counts the ready and running nodes of the pool.
#[test]
fn deploy_files_agree_and_the_keda_query_counts_the_queue() {
    const TEST: &str = "deploy_files_agree_and_the_keda_query_counts_the_queue";
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docker = std::fs::read_to_string(root.join("deploy/Dockerfile")).expect("Dockerfile");
    for line in [
        "cargo build --release --locked -p benchfleet-cli --bin benchfleet",
        "STOPSIGNAL SIGTERM",
        "ENTRYPOINT [\"benchfleet\"]",
        "CMD [\"worker\"",
    ] {
        assert!(docker.contains(line), "Dockerfile lacks {line:?}");
    }

    let mut docs = manifests("worker.yaml");
    docs.extend(manifests("keda.yaml"));
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(k))
            .unwrap_or_else(|| panic!("no {k} in deploy/k8s"))
            .clone()
    };
    let (secret, config, deploy) = (kind("Secret"), kind("ConfigMap"), kind("Deployment"));
    let (auth, scaled) = (kind("TriggerAuthentication"), kind("ScaledObject"));
    let secret_name = secret["metadata"]["name"].as_str().expect("secret name");
    let pod = &deploy["spec"]["template"]["spec"];
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(0) >= 60,
        "time to drain"
    );
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(args.first(), Some(&"worker"), "{args:?}");
    let env = c["env"].as_vec().expect("env");
    let url = env
        .iter()
        .find(|e| e["name"].as_str() == Some("BENCHFLEET_STORAGE__CATALOG__URL"))
        .expect("the catalog URL from the environment");
    let key_ref = &url["valueFrom"]["secretKeyRef"];
    assert_eq!(key_ref["name"].as_str(), Some(secret_name));
    let key = key_ref["key"].as_str().expect("key");
    assert!(!secret["stringData"][key].is_badvalue(), "secret has {key}");
    // The config file the worker is given is the ConfigMap's, mounted where --config points.
    let config_arg = args
        .iter()
        .position(|a| *a == "--config")
        .and_then(|i| args.get(i + 1))
        .expect("--config");
    let volume = pod["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == config["metadata"]["name"].as_str())
        .expect("the ConfigMap mounted");
    let mount = c["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| m["name"].as_str() == volume["name"].as_str())
        .expect("mounted");
    let (dir, file) = config_arg.rsplit_once('/').expect("a path");
    assert_eq!(Some(dir), mount["mountPath"].as_str());
    let toml = config["data"][file]
        .as_str()
        .expect("the config file in the ConfigMap");
    let w = Workdir::new();
    w.file("k8s.toml", toml);
    let shown = Out(w
        .cmd(&["--config", "k8s.toml", "config", "show"])
        .env(
            "BENCHFLEET_STORAGE__CATALOG__URL",
            "postgres://b@127.0.0.1:1/b",
        )
        .output()
        .expect("config show"));
    assert_eq!(
        shown.code(),
        0,
        "the ConfigMap's configuration is valid: {shown:?}"
    );
    assert!(shown.stdout().contains("postgres"), "{shown:?}");

    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"].as_str(),
        deploy["metadata"]["name"].as_str()
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("postgresql"));
    assert_eq!(
        trigger["authenticationRef"]["name"].as_str(),
        auth["metadata"]["name"].as_str()
    );
    let target = &auth["spec"]["secretTargetRef"][0];
    assert_eq!(target["parameter"].as_str(), Some("connection"));
    assert_eq!(target["name"].as_str(), Some(secret_name));
    assert_eq!(target["key"].as_str(), Some(key));
    let query = trigger["metadata"]["query"].as_str().expect("query");
    assert!(
        query.contains("benchfleet.bf_fleet_nodes") && toml.contains("schema = \"benchfleet\""),
        "the query reads the configured schema: {query}"
    );

    let Some((_cluster, url)) = shared_postgres(TEST) else {
        return;
    };
    let Some(ctl) = server_env("BENCHFLEET_TEST_PG_CTL", TEST) else {
        return;
    };
    let fleet = Fleet::new(&url, "", 1);
    fleet.submit(
        "[suite]\nname = \"k\"\n[[job]]\nname = \"a-{n}\"\nmatrix = { n = [1, 2, 3] }\ncommand = \"true\"\n\
         [[job]]\nname = \"later\"\nneeds = [\"a-1\"]\ncommand = \"true\"\n",
        &[],
    );
    let psql = Path::new(&ctl).with_file_name("psql");
    let out = std::process::Command::new(&psql)
        .args([url.as_str(), "-X", "-A", "-t", "-c"])
        .arg(query.replace("benchfleet.", &format!("\"{}\".", fleet.schema)))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3",
        "three ready nodes, one waiting"
    );
}
