//! Runner metrics: `--metrics-listen` serves GET /metrics over loopback while a suite runs,
//! `--metrics-file` holds the final counts, non-loopback addresses are refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use benchfleet::prom::parse_exposition;

use crate::support::Workdir;

const SUITE: &str = r#"
[suite]
name = "metrics"
[defaults]
warmup = 0
[[benchmark]]
name = "quick"
command = "true"
runs = 3
[[benchmark]]
name = "nap"
command = "sleep 2"
runs = 1
"#;

fn get_metrics(addr: &str) -> String {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text"),
        "{head}"
    );
    body.to_owned()
}

#[test]
fn metrics_are_served_over_loopback_while_a_suite_runs() {
    let w = Workdir::new();
    let suite = w.file("s.toml", SUITE);
    let mut child = w
        .cmd(&[
            "run",
            suite.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let addr = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("no `serving metrics on` line; stderr: {seen:?}");
        }
        if let Some(rest) = line.trim().strip_prefix("serving metrics on http://") {
            break rest.trim_end_matches("/metrics").to_owned();
        }
        seen.push(line);
    };
    let body = get_metrics(&addr);
    let series = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    for name in [
        "benchfleet_runs_finished_total",
        "benchfleet_queue_depth",
        "benchfleet_running_jobs",
        "benchfleet_nodes{state=\"queued\"}",
        "benchfleet_records_stored_total",
    ] {
        assert!(series.contains_key(name), "{name} missing:\n{body}");
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
}

#[test]
fn the_metrics_file_holds_the_final_counts_of_a_run() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        &SUITE
            .replace("sleep 2", "false")
            .replace("runs = 1", "runs = 2"),
    );
    let out = w.run(&[
        "run",
        suite.to_str().unwrap(),
        "--metrics-file",
        "m.prom",
        "--metrics-interval",
        "50ms",
    ]);
    assert_eq!(out.code(), 1, "one benchmark fails: {out:?}");
    // The footer says how many records the run stored: "run ID (failed): N records stored in …".
    let stored: f64 = out
        .stderr()
        .lines()
        .find_map(|l| {
            l.split("): ")
                .nth(1)?
                .split(" records stored")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no footer: {out:?}"));
    let text = std::fs::read_to_string(w.path().join("m.prom")).unwrap();
    let series = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let v = |k: &str| {
        *series
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing:\n{text}"))
    };
    assert_eq!(v("benchfleet_runs_finished_total"), stored, "{text}");
    assert_eq!(v("benchfleet_records_stored_total"), stored, "{text}");
    assert!(v("benchfleet_runs_failed_total") >= 1.0, "{text}");
    assert_eq!(v("benchfleet_nodes{state=\"done\"}"), 1.0);
    assert_eq!(v("benchfleet_nodes{state=\"failed\"}"), 1.0);
    assert_eq!(v("benchfleet_queue_depth"), 0.0);
    assert_eq!(v("benchfleet_running_jobs"), 0.0);

    let out = w.run(&[
        "bench",
        "--no-sample",
        "-r",
        "4",
        "true",
        "--metrics-file",
        "b.prom",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = std::fs::read_to_string(w.path().join("b.prom")).unwrap();
    let series = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(series["benchfleet_runs_finished_total"], 4.0, "{text}");
    assert_eq!(series["benchfleet_records_stored_total"], 4.0, "{text}");
}

/// `load` feeds the metrics file from its events like `run` and `bench`: every run started and
/// finished, every record stored (as many as the export counts), one run started and finished,
/// nothing running or queued at the end.
#[test]
fn the_metrics_file_holds_the_final_counts_of_a_load() {
    let w = Workdir::new();
    let out = w.run(&[
        "load",
        "--no-sample",
        "--duration",
        "300ms",
        "--concurrency",
        "2",
        "--export-json",
        "load.json",
        "--metrics-file",
        "l.prom",
        "true",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("load.json")).unwrap())
            .unwrap();
    let records = export["records"].as_u64().expect("records") as f64;
    assert!(records > 0.0, "{export}");
    let text = std::fs::read_to_string(w.path().join("l.prom")).unwrap();
    let series = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (name, v) in [
        ("benchfleet_runs_started_total", records),
        ("benchfleet_runs_finished_total", records),
        ("benchfleet_runs_failed_total", 0.0),
        ("benchfleet_records_stored_total", records),
        ("benchfleet_suite_runs_started_total", 1.0),
        ("benchfleet_suite_runs_finished_total", 1.0),
        ("benchfleet_running_jobs", 0.0),
        ("benchfleet_queue_depth", 0.0),
    ] {
        assert_eq!(series[name], v, "{name}:\n{text}");
    }
}

#[test]
fn non_loopback_listen_addresses_are_refused() {
    let w = Workdir::new();
    let suite = w.file("s.toml", SUITE);
    for addr in ["0.0.0.0:9464", "192.0.2.1:9464"] {
        let out = w.run(&["run", suite.to_str().unwrap(), "--metrics-listen", addr]);
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(out.stderr().contains("loopback"), "{out:?}");
    }
}
