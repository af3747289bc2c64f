use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, SCHEMA_VERSION, Timestamp};
use benchfleet_report::{group_records, hyperfine_json, markdown, terminal_table};

const RUN_A: &str = "01HZY3K4MZ8Q6X2V1B0C9D7E5F";
const RUN_B: &str = "01HZY3K4MZ8Q6X2V1B0C9D7E5G";

fn rec(run: &str, name: &str, iteration: u32, wall_ms: u64, outcome: Outcome) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run.parse().unwrap(),
        suite: "s".into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        command: format!("cmd {name}"),
        parameters: [("level".to_string(), "9".to_string())].into(),
        iteration,
        started_at: Timestamp(i64::from(iteration)),
        measurement: Measurement {
            wall_ns: wall_ms * 1_000_000,
            user_ns: wall_ms * 500_000,
            sys_ns: wall_ms * 100_000,
            max_rss_bytes: 1 << 20 | u64::from(iteration),
            ..Default::default()
        },
        outcome,
        stderr_tail: None,
        tags: Default::default(),
    }
}

fn ok(name: &str, i: u32, ms: u64) -> RunRecord {
    rec(RUN_A, name, i, ms, Outcome::Success)
}

#[test]
fn groups_by_first_appearance_and_orders_runs_by_iteration() {
    let records = [
        ok("b", 1, 20),
        ok("a", 0, 5),
        ok("b", 0, 10),
        rec(RUN_B, "b", 0, 7, Outcome::Success),
    ];
    let got: Vec<(String, String, Vec<f64>)> = group_records(&records)
        .into_iter()
        .map(|r| (r.run_id.to_string(), r.name, r.times))
        .collect();
    let want = [
        (RUN_A, "b", vec![0.010, 0.020]),
        (RUN_A, "a", vec![0.005]),
        (RUN_B, "b", vec![0.007]),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), &g.2), (w.0, w.1, &w.2));
    }
}

#[test]
fn failed_runs_are_listed_but_not_summarised() {
    let records = [
        ok("x", 0, 10),
        rec(
            RUN_A,
            "x",
            1,
            999,
            Outcome::Failed {
                exit_code: Some(3),
                signal: None,
            },
        ),
        ok("x", 2, 20),
        rec(
            RUN_A,
            "x",
            3,
            5,
            Outcome::TimedOut {
                timeout_ns: 2_000_000_000,
            },
        ),
    ];
    let r = &group_records(&records)[0];
    assert_eq!(r.exit_codes, [Some(0), Some(3), Some(0), None]);
    assert_eq!(r.failures, ["exit 3", "timed out after 2.000s"]);
    assert_eq!((r.runs(), r.successes(), r.failed()), (4, 2, 2));
    let s = r.wall().unwrap();
    assert_eq!((s.count, s.min, s.max), (2, 0.010, 0.020));
    assert_eq!(r.status(), "2 failed: exit 3, timed out after 2.000s");

    let j = hyperfine_json(std::slice::from_ref(r));
    let j = &j["results"][0];
    assert_eq!(j["times"].as_array().unwrap().len(), 4);
    assert_eq!(j["exit_codes"], serde_json::json!([0, 3, 0, null]));
    assert_eq!(j["mean"], 0.015);
    assert_eq!(j["max"], 0.020);
    assert!(terminal_table(std::slice::from_ref(r)).contains("2/4"));
}

#[test]
fn json_has_hyperfine_fields_with_hyperfine_types() {
    let r = group_records(&[ok("one", 0, 10)]);
    let j = &hyperfine_json(&r)["results"][0];
    for key in [
        "command", "median", "user", "system", "min", "max", "name", "kind", "run_id", "p95",
        "p99", "mad",
    ] {
        assert!(!j[key].is_null(), "{key} missing in {j}");
    }
    assert!(
        j["stddev"].is_null(),
        "stddev must be null for one run: {j}"
    );
    assert_eq!(j["parameters"], serde_json::json!({"level": "9"}));
    assert_eq!(j["memory_usage_byte"], serde_json::json!([1 << 20]));
    assert_eq!(j["max_rss_bytes"], j["memory_usage_byte"]);
    assert_eq!(j["user"], 0.005);
    assert_eq!(j["kind"], "benchmark");
    assert_eq!(j["schema_version"], 1);
}

#[test]
fn all_failed_gives_null_statistics_and_dashes() {
    let r = group_records(&[rec(
        RUN_A,
        "f",
        0,
        1,
        Outcome::SpawnFailed {
            message: "nope".into(),
        },
    )]);
    let j = &hyperfine_json(&r)["results"][0];
    for key in [
        "mean", "stddev", "median", "min", "max", "user", "system", "p95",
    ] {
        assert!(j[key].is_null(), "{key} should be null: {j}");
    }
    let t = terminal_table(&r);
    assert!(
        t.contains("0/1") && t.contains("could not start: nope"),
        "{t}"
    );
}

#[test]
fn output_does_not_depend_on_record_order() {
    let mut records: Vec<RunRecord> = (0..7)
        .map(|i| ok("z", i, 10 + u64::from(i * i % 5)))
        .collect();
    let forward = group_records(&records);
    records.reverse();
    let backward = group_records(&records);
    assert_eq!(forward, backward);
    assert_eq!(terminal_table(&forward), terminal_table(&backward));
    assert_eq!(hyperfine_json(&forward), hyperfine_json(&backward));
}

#[test]
fn markdown_is_a_table_and_escapes_pipes() {
    let r = group_records(&[ok("a|b", 0, 10), ok("a|b", 1, 12)]);
    let md = markdown(&r);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines.len(), 3, "{md}");
    assert!(lines[1].starts_with("| :--- | ---: |"), "{md}");
    assert!(
        lines[2].starts_with("| `a\\|b` | 11.00 ms ± 1.414 ms |"),
        "{md}"
    );
    // Every row has the header's number of unescaped separators.
    let seps = |l: &str| l.replace("\\|", "").matches('|').count();
    assert!(lines.iter().all(|l| seps(l) == seps(lines[0])), "{md}");
}

#[test]
fn terminal_table_shows_human_units() {
    let r = group_records(&[ok("t", 0, 1500), ok("t", 1, 1500)]);
    let t = terminal_table(&r);
    for want in [
        "1.500 s ± 0.000 s",
        "1.500 s … 1.500 s",
        "750.0 ms",
        "150.0 ms",
        "1.000 MiB",
        "ok",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    assert!(!t.contains('\u{1b}'), "no escape codes");
}
