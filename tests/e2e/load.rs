//! `benchfleet load`: soak and stress structure, records stored with their step and window,
//! open-loop starts accounted for. No timing is asserted: only structure and counts.

use crate::support::{Out, Workdir, stored_records};

fn load(w: &Workdir, args: &[&str]) -> Out {
    let mut all = vec!["load", "--no-sample", "--export-json", "load.json"];
    all.extend_from_slice(args);
    w.run(&all)
}

fn export(w: &Workdir) -> serde_json::Value {
    let text = std::fs::read_to_string(w.path().join("load.json")).expect("load.json written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn tag<'a>(r: &'a serde_json::Value, key: &str) -> &'a str {
    r["tags"][key]
        .as_str()
        .unwrap_or_else(|| panic!("record without tag {key}: {r}"))
}

#[test]
fn a_soak_reports_windows_and_stores_every_run() {
    let w = Workdir::with_fs_hot();
    let out = load(
        &w,
        &[
            "--duration",
            "1s",
            "--concurrency",
            "2",
            "--window",
            "250ms",
            "-n",
            "noop",
            "true",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    for needle in ["noop", "steady", "ops/s", "p99 ms", "total"] {
        assert!(out.stdout().contains(needle), "{needle}: {out:?}");
    }
    let j = export(&w);
    assert_eq!(j["profile"]["kind"], "soak");
    let steps = j["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{j}");
    assert_eq!(steps[0]["concurrency"], 2);
    let windows = j["windows"].as_array().unwrap();
    assert!(windows.len() >= 4, "1 s in 250 ms windows: {j}");
    let total = &j["total"];
    assert!(u(&total["completed"]) > 0, "{j}");
    assert_eq!(u(&total["failed"]), 0);
    let by_window: u64 = windows.iter().map(|w| u(&w["completed"])).sum();
    assert_eq!(
        by_window,
        u(&total["completed"]),
        "windows partition the runs"
    );
    assert_eq!(u(&steps[0]["completed"]), u(&total["completed"]));

    let records = stored_records(&w);
    assert_eq!(
        records.len() as u64,
        u(&j["records"]),
        "every run is stored"
    );
    assert_eq!(records.len() as u64, u(&total["completed"]));
    for r in &records {
        assert_eq!(r["name"], "noop");
        assert_eq!(tag(r, "load.profile"), "soak");
        assert_eq!(tag(r, "load.step"), "0");
        let window: usize = tag(r, "load.window").parse().unwrap();
        assert!(window < windows.len(), "{r}");
        let in_flight: u32 = tag(r, "load.in_flight").parse().unwrap();
        assert!((1..=2).contains(&in_flight), "{r}");
    }
    let show = w.json(&["show", "latest", "--format", "json"]);
    assert_eq!(show["results"][0]["name"], "noop", "{show}");
}

#[test]
fn a_stress_ramps_concurrency_per_step_and_tags_records_with_their_step() {
    let w = Workdir::with_fs_hot();
    let out = load(
        &w,
        &[
            "--profile",
            "stress",
            "--steps",
            "3",
            "--step-duration",
            "300ms",
            "--max-concurrency",
            "3",
            "--no-windows",
            "true",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    for label in ["step 1", "step 2", "step 3"] {
        assert!(out.stdout().contains(label), "{label}: {out:?}");
    }
    let j = export(&w);
    let steps = j["steps"].as_array().unwrap();
    let got: Vec<(String, u64)> = steps
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_owned(),
                u(&s["concurrency"]),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("step 1".into(), 1),
            ("step 2".into(), 2),
            ("step 3".into(), 3)
        ]
    );
    let per_step: Vec<u64> = steps.iter().map(|s| u(&s["completed"])).collect();
    assert!(
        per_step.iter().all(|n| *n > 0),
        "every step ran: {per_step:?}"
    );

    let records = stored_records(&w);
    assert_eq!(records.len() as u64, per_step.iter().sum::<u64>());
    for (i, n) in per_step.iter().enumerate() {
        let stored = records
            .iter()
            .filter(|r| tag(r, "load.step") == i.to_string())
            .count() as u64;
        assert_eq!(stored, *n, "records of step {i}");
    }
    for r in &records {
        let step: usize = tag(r, "load.step").parse().unwrap();
        let in_flight: usize = tag(r, "load.in_flight").parse().unwrap();
        assert!(
            in_flight <= step + 1,
            "never more in flight than the step allows: {r}"
        );
        assert_eq!(tag(r, "load.profile"), "stress");
    }
}

#[test]
fn open_loop_starts_are_either_made_or_counted_as_missed() {
    let w = Workdir::new();
    // 20 starts per second for 0.5 s (10 tokens), one slot, each run 200 ms.
    let out = load(&w, &["--rate", "20", "--duration", "500ms", "sleep 0.2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let j = export(&w);
    let total = &j["total"];
    assert_eq!(u(&total["completed"]) + u(&total["missed"]), 10, "{j}");
    assert!(u(&total["missed"]) > 0, "{j}");
    assert!(out.stderr().contains("could not keep up"), "{out:?}");
    for r in stored_records(&w) {
        assert_eq!(tag(&r, "load.rate"), "20");
        assert!(tag(&r, "load.lag_ns").parse::<u64>().is_ok());
    }
}

#[test]
fn bad_profiles_are_usage_errors() {
    let w = Workdir::new();
    for (args, needle) in [
        (
            &[
                "--profile",
                "stress",
                "--concurrency",
                "3",
                "--max-concurrency",
                "2",
                "true",
            ][..],
            "--max-concurrency",
        ),
        (&["--rate", "0", "true"][..], "--rate"),
        (
            &[
                "--profile",
                "spike",
                "--duration",
                "1s",
                "--burst-duration",
                "1s",
                "true",
            ][..],
            "--burst-duration",
        ),
    ] {
        let out = load(&w, args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr().contains(needle), "{args:?}: {out:?}");
    }
}

/// A suite with a two-step stress node beside a normal node: the stress node's records land in
/// the suite's run with their step and window tags, `run` prints its step table, and the node is
/// cached on the next run unless its load parameters change.
#[test]
fn a_suite_node_with_a_load_table_runs_its_profile_and_is_cached() {
    let w = Workdir::with_fs_hot();
    let suite_text = |step: &str| {
        format!(
            r#"
[suite]
name = "loadsuite"
[[benchmark]]
name = "plain"
command = "true"
runs = 3
[[benchmark]]
name = "ramp"
command = "true"
load = {{ profile = "stress", concurrency = 1, max_concurrency = 2, steps = 2, step_duration = "{step}", window = "100ms" }}
"#
        )
    };
    let suite = w.file("s.toml", &suite_text("300ms"));
    let s = suite.to_str().unwrap();
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 0, "{out:?}");
    for needle in ["ramp (load: stress profile", "step 1", "step 2", "p99 ms"] {
        assert!(out.stdout().contains(needle), "{needle}: {out:?}");
    }

    let records = stored_records(&w);
    let ramp = |records: &[serde_json::Value]| -> Vec<serde_json::Value> {
        records
            .iter()
            .filter(|r| r["name"] == "ramp")
            .cloned()
            .collect()
    };
    let first = ramp(&records);
    let plain = records.iter().filter(|r| r["name"] == "plain").count();
    assert_eq!(plain, 3, "the normal node beside it runs as usual");
    assert!(!first.is_empty());
    let run_id = &first[0]["run_id"];
    for r in &first {
        assert_eq!(&r["run_id"], run_id, "one run: the suite's");
        assert_eq!(r["suite"], "loadsuite");
        assert_eq!(tag(r, "load.profile"), "stress");
        let step: usize = tag(r, "load.step").parse().unwrap();
        assert!(step < 2, "{r}");
        assert_eq!(tag(r, "load.step_label"), format!("step {}", step + 1));
        assert!(tag(r, "load.window").parse::<u64>().is_ok(), "{r}");
        let in_flight: usize = tag(r, "load.in_flight").parse().unwrap();
        assert!(in_flight <= step + 1, "{r}");
    }
    for step in ["0", "1"] {
        assert!(
            first.iter().any(|r| tag(r, "load.step") == step),
            "no record of step {step}"
        );
    }
    // The footer counts the load node's records too.
    let footer = format!("{} records stored", records.len());
    assert!(out.stderr().contains(&footer), "{footer}: {out:?}");

    // Unchanged: cached, nothing new stored.
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr()
            .contains("cached (unchanged, not run again): plain, ramp")
            || out
                .stderr()
                .contains("cached (unchanged, not run again): ramp, plain"),
        "{out:?}"
    );
    assert_eq!(stored_records(&w).len(), records.len(), "{out:?}");

    // A changed load parameter runs the load node again, and only it.
    w.file("s.toml", &suite_text("250ms"));
    let out = w.run(&["run", s]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr()
            .contains("cached (unchanged, not run again): plain\n"),
        "{out:?}"
    );
    let now = stored_records(&w);
    let second = ramp(&now);
    assert!(second.len() > first.len(), "{out:?}");
    assert!(second.iter().any(|r| &r["run_id"] != run_id));
    assert_eq!(
        now.iter().filter(|r| r["name"] == "plain").count(),
        3,
        "the unchanged node stayed cached"
    );
}

#[test]
fn a_bad_load_table_is_a_usage_error_naming_file_node_and_key() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname='bad'\n[[benchmark]]\nname='api'\ncommand='true'\nload={ profile='soak', concurrency=0, duration='1s' }\n",
    );
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
    for needle in [
        "s.toml",
        "benchmark `api`",
        "`load.concurrency` must be at least 1",
    ] {
        assert!(out.stderr().contains(needle), "{needle}: {out:?}");
    }
}
