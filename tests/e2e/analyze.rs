//! `compare`, `history --benchmark`, `report`, `import` and `scale`, end to end.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Out, Workdir};

/// A one-benchmark suite whose command sleeps `$DELAY` seconds (the same benchmark name for
/// every delay, as two versions of one program would be). `sh -c` is the command itself, not
/// shell mode: shell mode subtracts the shell's mean spawn cost, and the tests below rely on a
/// run of `sleep D` never being measured under D.
fn sleep_suite(w: &Workdir, file: &str, delay: &str, runs: u32) -> PathBuf {
    w.file(
        file,
        &format!(
            r#"
            [suite]
            name = "cmp"
            [[benchmark]]
            name = "work"
            command = ["sh", "-c", "sleep $DELAY"]
            env = {{ DELAY = "{delay}" }}
            runs = {runs}
            "#
        ),
    )
}

fn ok(out: Out) -> Out {
    assert_eq!(out.code(), 0, "{out:?}");
    out
}

/// A hyperfine `--export-json` file with one result per `(command, times)`.
fn hyperfine_file(w: &Workdir, file: &str, results: &[(&str, &[f64])]) -> PathBuf {
    let results: Vec<Value> = results
        .iter()
        .map(|(cmd, times)| {
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            json!({
                "command": cmd, "mean": mean, "stddev": 0.0, "median": mean,
                "user": 0.001, "system": 0.002,
                "min": times.iter().copied().fold(f64::INFINITY, f64::min),
                "max": times.iter().copied().fold(0.0, f64::max),
                "times": times, "exit_codes": vec![0; times.len()],
                "memory_usage_byte": vec![3_000_000; times.len()],
                "parameters": {}
            })
        })
        .collect();
    w.file(file, &json!({ "results": results }).to_string())
}

/// Deterministic small noise (±1%) around `base`.
fn noisy(base: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| base * (1.0 + 0.01 * (((i * 7) % 11) as f64 - 5.0) / 5.0))
        .collect()
}

#[test]
fn compare_of_two_runs_by_tag_reports_each_benchmark_and_gates_on_regression() {
    let w = Workdir::new();
    let fast = sleep_suite(&w, "fast.toml", "0.02", 10);
    let slow = sleep_suite(&w, "slow.toml", "0.06", 10);
    ok(w.run(&[
        "run",
        fast.to_str().unwrap(),
        "--tag",
        "commit=aaaa1111bbbb",
    ]));
    ok(w.run(&[
        "run",
        slow.to_str().unwrap(),
        "--tag",
        "commit=cccc2222dddd",
    ]));

    // Tags (an abbreviated value finds the run too), JSON output.
    let out = w.run(&[
        "compare",
        "commit=aaaa1111bbbb",
        "commit=cccc2222",
        "--format",
        "json",
        "--fail-on",
        "regression",
    ]);
    let v: Value = serde_json::from_slice(&out.0.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["baseline"]["spec"], "commit=aaaa1111bbbb");
    assert_eq!(v["candidate"]["spec"], "commit=cccc2222");
    assert_ne!(v["baseline"]["run_id"], v["candidate"]["run_id"]);
    let c = &v["comparisons"][0];
    assert_eq!(c["name"], "work");
    // Physically guaranteed: a run of `sleep 0.06` takes at least 60 ms.
    assert!(c["candidate"]["min"].as_f64().unwrap() >= 0.06, "{c}");
    assert!(c["baseline"]["min"].as_f64().unwrap() >= 0.02, "{c}");
    for field in [
        "mean_ratio",
        "median_ratio",
        "ratio_ci",
        "welch",
        "mann_whitney",
        "verdict",
        "change_percent",
    ] {
        assert!(c.get(field).is_some(), "missing {field} in {c}");
    }
    // The exit code follows the verdict (the verdict itself depends on the machine's noise).
    let regressed = c["verdict"] == "regressed";
    assert_eq!(v["regressed"], regressed);
    assert_eq!(out.code(), if regressed { 1 } else { 0 }, "{out:?}");

    // A run against itself never regresses; the table names both sides. (`unchanged`, or on a
    // machine too noisy to resolve a 20% change, `inconclusive`: issue 21.)
    let same = ok(w.run(&["compare", "latest", "latest", "--fail-on", "regression"]));
    assert!(
        same.stdout().contains("work")
            && (same.stdout().contains("unchanged") || same.stdout().contains("inconclusive"))
            && !same.stdout().contains("regressed"),
        "{same:?}"
    );
    assert!(
        same.stderr().contains("baseline:") && same.stderr().contains("candidate:"),
        "{same:?}"
    );

    // Markdown for a PR comment.
    let md = ok(w.run(&[
        "compare",
        "commit=aaaa1111bbbb",
        "latest",
        "--format",
        "markdown",
    ]));
    assert!(
        md.stdout().contains("| Benchmark |") && md.stdout().contains("`work`"),
        "{md:?}"
    );
}

#[test]
fn compare_of_exported_files_fails_on_an_injected_regression() {
    let w = Workdir::new();
    let base = hyperfine_file(
        &w,
        "base.json",
        &[("work", &noisy(0.020, 12)), ("same", &noisy(0.5, 12))],
    );
    let slow = hyperfine_file(
        &w,
        "slow.json",
        &[("work", &noisy(0.030, 12)), ("same", &noisy(0.5, 12))],
    );
    let out = w.run(&[
        "compare",
        "base.json",
        "slow.json",
        "--fail-on",
        "regression",
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    let v: Value = serde_json::from_slice(&out.0.stdout).unwrap();
    let verdict = |name: &str| {
        v["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("work"), "regressed");
    assert_eq!(verdict("same"), "unchanged");
    assert!(
        v["baseline"]["file"]
            .as_str()
            .unwrap()
            .ends_with("base.json")
    );
    // Without --fail-on the comparison is only reported.
    ok(w.run(&["compare", base.to_str().unwrap(), slow.to_str().unwrap()]));
    // Reversed, it is an improvement: nothing fails.
    let rev = ok(w.run(&[
        "compare",
        "slow.json",
        "base.json",
        "--fail-on",
        "regression",
    ]));
    assert!(rev.stdout().contains("improved"), "{rev:?}");
    // A larger noise band swallows the change.
    ok(w.run(&[
        "compare",
        "base.json",
        "slow.json",
        "--fail-on",
        "regression",
        "--noise",
        "0.6",
    ]));
    assert!(
        !w.path().join(".benchfleet").exists(),
        "comparing files needs no storage"
    );
}

#[test]
fn compare_input_errors_exit_2_with_what_is_wrong() {
    let w = Workdir::new();
    w.file(
        "bad.json",
        r#"{"results": [{"command": "x", "times": [0.1, "slow"]}]}"#,
    );
    hyperfine_file(&w, "good.json", &[("x", &[0.1, 0.2])]);
    let cases: [(&[&str], &str); 5] = [
        (
            &["compare", "bad.json", "good.json"],
            "$.results[0].times[1]",
        ),
        (
            &["compare", "good.json", "no-such-run"],
            "`no-such-run` is not a file, a run id",
        ),
        (
            &["compare", "good.json", "branch=nope"],
            "no stored run has the tag `branch=nope`",
        ),
        (
            &["compare", "good.json", "good.json", "--alpha", "2"],
            "--alpha 2",
        ),
        (
            &["history", "--benchmark", "x", "--metric", "speed"],
            "unknown metric `speed`",
        ),
    ];
    for (args, needle) in cases {
        let out = w.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(
            out.stderr().contains(needle),
            "{args:?} should say {needle:?}: {out:?}"
        );
    }
}

/// `n` BMF files `dir/NN.json` for benchmark `parse`: 10 ms (±1%) before `shift_at`, 13 ms after;
/// peak RSS 1 MiB.
fn bmf_history(w: &Workdir, dir: &str, n: usize, shift_at: usize) -> PathBuf {
    let d = w.path().join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let values = noisy(1.0, n);
    for (i, noise) in values.iter().enumerate() {
        let base = if i < shift_at { 10e6 } else { 13e6 };
        let v = json!({"parse": {
            "latency": {"value": base * noise, "lower_value": base * noise * 0.99, "upper_value": base * noise * 1.01},
            "max-rss-bytes": {"value": 1048576.0}
        }});
        std::fs::write(d.join(format!("{i:02}.json")), v.to_string()).unwrap();
    }
    d
}

#[test]
fn history_of_a_benchmark_lists_its_series_and_change_points() {
    let w = Workdir::new();
    bmf_history(&w, "bmf", 24, 12);
    let out = ok(w.run(&["import", "bmf", "--format", "bmf", "--suite", "parser"]));
    assert_eq!(
        out.stdout().lines().count(),
        24,
        "one run per file: {out:?}"
    );

    let v = w.json(&[
        "history",
        "--benchmark",
        "parse",
        "--changes",
        "--format",
        "json",
    ]);
    assert_eq!(
        (
            v["benchmark"].as_str(),
            v["metric"].as_str(),
            v["unit"].as_str()
        ),
        (Some("parse"), Some("wall"), Some("s"))
    );
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    // One value per run (BMF: the latency itself), oldest first.
    assert!((points[0]["value"].as_f64().unwrap() - 0.010 * noisy(1.0, 1)[0]).abs() < 1e-9);
    assert!(
        points
            .windows(2)
            .all(|p| p[0]["time_ns"].as_i64() <= p[1]["time_ns"].as_i64())
    );
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    let c = &changes[0];
    assert_eq!(c["index"], 12);
    assert_eq!(c["run_id"], points[12]["run_id"]);
    assert!(c["time"].as_str().unwrap().ends_with('Z'), "{c}");
    let (before, after) = (
        c["before_mean"].as_f64().unwrap(),
        c["after_mean"].as_f64().unwrap(),
    );
    assert!(
        (before - 0.010).abs() < 2e-4 && (after - 0.013).abs() < 2e-4,
        "{c}"
    );
    assert!((c["percent"].as_f64().unwrap() - 30.0).abs() < 1.5, "{c}");
    assert!(c["p_value"].as_f64().unwrap() < 0.001, "{c}");

    // Without --changes there is no `changes` key; other metrics work.
    let rss = w.json(&[
        "history",
        "--benchmark",
        "parse",
        "--metric",
        "rss",
        "--format",
        "json",
    ]);
    assert!(rss.get("changes").is_none());
    assert!(
        rss["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["value"] == 1048576.0)
    );

    let table = ok(w.run(&["history", "--benchmark", "parse", "--changes"]));
    assert!(table.stdout().contains("change at #12"), "{table:?}");
    assert!(table.stdout().contains("◆ +"), "{table:?}");
    let md = ok(w.run(&[
        "history",
        "--benchmark",
        "parse",
        "--format",
        "markdown",
        "--suite",
        "parser",
    ]));
    assert!(md.stdout().starts_with("History of `parse`"), "{md:?}");
    // The plain run list still works and shows the imports.
    let runs = ok(w.run(&["history", "--limit", "3"]));
    assert_eq!(runs.stdout().matches("parser").count(), 3, "{runs:?}");
    let unknown = w.run(&["history", "--benchmark", "nope"]);
    assert_eq!(unknown.code(), 2, "{unknown:?}");
}

#[test]
fn hyperfine_import_enters_history_like_a_native_run() {
    let w = Workdir::new();
    let times = [0.101, 0.103, 0.102, 0.104];
    let file = w.file(
        "hf.json",
        &json!({"results": [
            {"command": "sleep 0.1", "mean": 0.1025, "stddev": 0.0013, "median": 0.1025, "user": 0.0008,
             "system": 0.0012, "min": 0.101, "max": 0.104, "times": times, "exit_codes": [0, 0, 0, 0],
             "memory_usage_byte": [2000000, 2000000, 2100000, 2000000]},
            {"command": "gzip -{level} data", "mean": 0.5, "stddev": null, "median": 0.5, "user": 0.45,
             "system": 0.04, "min": 0.5, "max": 0.6, "times": [0.5, 0.6], "exit_codes": [0, 1],
             "parameters": {"level": "9"}}
        ]})
        .to_string(),
    );
    let out = ok(w.run(&[
        "import",
        file.to_str().unwrap(),
        "--format",
        "hyperfine",
        "--tag",
        "branch=main",
    ]));
    assert!(out.stdout().contains("import:hyperfine:"), "{out:?}");

    let shown = w.json(&["show", "latest", "--format", "json"]);
    let sleep = crate::support::result(&shown, "sleep 0.1");
    assert_eq!(crate::support::f64s(&sleep["times"]), times);
    assert_eq!(sleep["memory_usage_byte"][2], 2100000);
    assert!(
        (sleep["user"].as_f64().unwrap() - 0.0008).abs() < 1e-12,
        "{sleep}"
    );
    let gzip = crate::support::result(&shown, "gzip -{level} data");
    assert_eq!(gzip["exit_codes"], json!([0, 1]));
    assert_eq!(gzip["parameters"]["level"], "9");

    // The run carries its source and tag, and compares with the original file as unchanged.
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs[0]["tags"]["branch"], "main");
    assert!(
        runs[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("import:hyperfine:")
    );
    let same = ok(w.run(&[
        "compare",
        "hf.json",
        "branch=main",
        "--fail-on",
        "regression",
    ]));
    assert!(same.stdout().contains("unchanged"), "{same:?}");
    let h = w.json(&["history", "--benchmark", "sleep 0.1", "--format", "json"]);
    assert!(
        (h["points"][0]["value"].as_f64().unwrap() - 0.1025).abs() < 1e-12,
        "{h}"
    );
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn criterion_directory_import_uses_per_iteration_sample_times() {
    let w = Workdir::new();
    let root = w.path().join("target/criterion");
    // Realistic layout: new/, base/ and report/ per benchmark, plus the top-level report.
    write(
        &root,
        "parse/small/new/benchmark.json",
        r#"{"group_id":"parse","function_id":"small","value_str":null,"throughput":null,"full_id":"parse/small","directory_name":"parse/small","title":"parse/small"}"#,
    );
    write(
        &root,
        "parse/small/new/sample.json",
        r#"{"sampling_mode":"Linear","iters":[100.0,200.0,300.0],"times":[120000.0,250000.0,360000.0]}"#,
    );
    write(
        &root,
        "parse/small/new/estimates.json",
        r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1190.0,"upper_bound":1250.0},"point_estimate":1216.7,"standard_error":10.0}}"#,
    );
    write(
        &root,
        "parse/small/base/sample.json",
        r#"{"sampling_mode":"Linear","iters":[1.0],"times":[99999.0]}"#,
    );
    write(&root, "parse/small/report/index.html", "<html></html>");
    write(
        &root,
        "fib 20/new/estimates.json",
        r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":10.0,"upper_bound":12.0},"point_estimate":11.0,"standard_error":0.5}}"#,
    );
    write(&root, "report/index.html", "<html></html>");
    let out = ok(w.run(&["import", "target/criterion", "--format", "criterion"]));
    assert!(out.stdout().contains("2 benchmarks, 4 records"), "{out:?}");

    let shown = w.json(&["show", "latest", "--format", "json"]);
    let parse = crate::support::result(&shown, "parse/small");
    // 120000/100, 250000/200, 360000/300 ns per iteration.
    let got = crate::support::f64s(&parse["times"]);
    assert_eq!(got.len(), 3);
    for (g, want) in got.iter().zip([1.2e-6, 1.25e-6, 1.2e-6]) {
        assert!((g - want).abs() < 1e-15, "{got:?}");
    }
    let fib = crate::support::result(&shown, "fib 20");
    assert_eq!(crate::support::f64s(&fib["times"]), [11e-9]);
    let h = w.json(&["history", "--benchmark", "parse/small", "--format", "json"]);
    assert_eq!(h["suite"], Value::Null);
    assert_eq!(h["points"].as_array().unwrap().len(), 1);
}

#[test]
fn malformed_imports_name_the_file_and_json_path_and_store_nothing() {
    let w = Workdir::new();
    let dir = w.path().join("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.json"), r#"{"ok": {"latency": {"value": 5}}}"#).unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"bad": {"latency": {"value": "fast"}}}"#,
    )
    .unwrap();
    w.file("trunc.json", r#"{"results": [{"command": "#);
    w.file("crit.json", r#"{"iters": [1, 2], "times": [5]}"#);
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["import", "mixed", "--format", "bmf"],
            &["b.json", "$.bad.latency.value", "the string \"fast\""],
        ),
        (
            &["import", "trunc.json", "--format", "hyperfine"],
            &["trunc.json", "not valid JSON", "line 1"],
        ),
        (
            &["import", "crit.json", "--format", "criterion"],
            &["crit.json", "$.times", "1 entries"],
        ),
        (
            &["import", "missing.json", "--format", "bmf"],
            &["missing.json", "cannot read"],
        ),
    ];
    for (args, needles) in cases {
        let out = w.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        for n in needles {
            assert!(
                out.stderr().contains(n),
                "{args:?} should mention {n:?}: {out:?}"
            );
        }
    }
    // Nothing was stored, not even the valid file of the directory.
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs, json!([]));
}

/// A suite of quick benchmarks, run twice (different env so nothing is reused from a cache).
fn two_runs(w: &Workdir) {
    for i in ["1", "2"] {
        let suite = w.file(
            &format!("r{i}.toml"),
            &format!(
                r#"
                [suite]
                name = "rep"
                [defaults]
                env = {{ ROUND = "{i}" }}
                [[benchmark]]
                name = "true"
                command = "true"
                runs = 5
                [[benchmark]]
                name = "sleep"
                command = "sleep 0.01"
                runs = 4
                "#
            ),
        );
        ok(w.run(&["run", suite.to_str().unwrap()]));
    }
}

#[test]
fn report_renders_every_format() {
    let w = Workdir::new();
    two_runs(&w);
    let check = |format: &str, file: &str| -> String {
        let out = ok(w.run(&["report", "latest", "--format", format, "-o", file]));
        assert!(out.stderr().contains(file), "{out:?}");
        std::fs::read_to_string(w.path().join(file)).unwrap()
    };
    let html = check("html", "r.html");
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "html"
    );
    assert!(
        html.contains("<h2>History</h2>") && html.contains("sleep (wall)"),
        "history of each benchmark"
    );
    assert!(
        !html.contains("<script") && !html.contains("http://") || html.contains("xmlns"),
        "self-contained"
    );
    let md = check("markdown", "r.md");
    assert!(md.contains("| Benchmark |") && md.contains("sleep"), "{md}");
    let js: Value = serde_json::from_str(&check("json", "r.json")).unwrap();
    assert_eq!(js["results"].as_array().unwrap().len(), 2);
    let csv = check("csv", "r.csv");
    assert!(csv.starts_with("command,mean,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let junit = check("junit", "r.xml");
    assert!(
        junit.contains("<testsuites tests=\"2\" failures=\"0\">"),
        "{junit}"
    );
    let bmf: Value = serde_json::from_str(&check("bmf", "r.bmf.json")).unwrap();
    assert!(
        bmf["sleep"]["latency"]["value"].as_f64().unwrap() >= 1e7,
        "{bmf}"
    );
    // Default format is HTML, to standard output.
    let out = ok(w.run(&["report", "latest"]));
    assert!(out.stdout().starts_with("<!DOCTYPE html>"));
    // A baseline adds a comparison section.
    let runs = w.json(&["history", "--format", "json"]);
    let first = runs[1]["run_id"].as_str().unwrap();
    let with = ok(w.run(&[
        "report",
        "latest",
        "--baseline",
        first,
        "--format",
        "markdown",
    ]));
    assert!(with.stdout().contains("compared benchmarks"), "{with:?}");
    let missing = w.run(&["report", "NOPE"]);
    assert_eq!(missing.code(), 2, "{missing:?}");
}

#[test]
fn scale_runs_the_suite_at_each_level_and_prints_speedup_and_efficiency() {
    let w = Workdir::new();
    let suite = w.file(
        "par.toml",
        r#"
        [suite]
        name = "par"
        [[job]]
        name = "a"
        command = "sleep 0.1"
        [[job]]
        name = "b"
        shell = "sh"
        command = "sleep 0.1; echo $BENCHFLEET_SCALE_JOBS >> {out}/levels"
        "#,
    );
    let v = w.json(&[
        "scale",
        suite.to_str().unwrap(),
        "--jobs",
        "2,1",
        "--format",
        "json",
    ]);
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(
        (levels[0]["jobs"].as_u64(), levels[1]["jobs"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(levels[0]["speedup"], 1.0);
    assert_eq!(levels[0]["efficiency"], 1.0);
    // Physical lower bounds: one job at a time sleeps twice, two at a time at least once.
    assert!(levels[0]["time"].as_f64().unwrap() >= 0.2, "{v}");
    assert!(levels[1]["time"].as_f64().unwrap() >= 0.1, "{v}");
    let (t1, t2) = (
        levels[0]["time"].as_f64().unwrap(),
        levels[1]["time"].as_f64().unwrap(),
    );
    assert!((levels[1]["speedup"].as_f64().unwrap() - t1 / t2).abs() < 1e-9);
    assert!((levels[1]["efficiency"].as_f64().unwrap() - t1 / t2 / 2.0).abs() < 1e-9);
    // Every level is a stored run, tagged with its concurrency.
    let runs = w.json(&["history", "--format", "json"]);
    let mut tagged: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["tags"]["scale.jobs"].as_str())
        .collect();
    tagged.sort_unstable();
    assert_eq!(tagged, ["1", "2"]);

    // The commands see their level.
    let seen = std::fs::read_to_string(w.path().join(".benchfleet/out/par/b/levels")).unwrap();
    assert_eq!(seen.lines().collect::<Vec<_>>(), ["1", "2"]);

    // A second scale runs everything again (nothing reused), in every format.
    let table = ok(w.run(&["scale", suite.to_str().unwrap(), "--jobs", "1,2"]));
    assert!(
        table.stdout().contains("speedup") && table.stdout().contains("efficiency"),
        "{table:?}"
    );
    assert!(
        table.stdout().contains("1.00×") && table.stdout().contains("100%"),
        "{table:?}"
    );
    let seen = std::fs::read_to_string(w.path().join(".benchfleet/out/par/b/levels")).unwrap();
    assert_eq!(seen.lines().count(), 4, "every level ran again: {seen:?}");
    let bad = w.run(&["scale", suite.to_str().unwrap(), "--jobs", "0"]);
    assert_eq!(bad.code(), 2, "{bad:?}");
}

// ---------------------------------------------------------------------------------------------
// HTML acceptance: headless Chromium

const CHROMIUM: &str = "/usr/bin/chromium";

/// Pixels of a PNG screenshot as RGB(A) rows: (distinct colours, share of non-white pixels).
fn png_stats(path: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG screenshot");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "colour screenshot expected, got {:?}",
        info.color_type
    );
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    let pixels = bytes.chunks_exact(channels);
    let total = pixels.len();
    for p in pixels {
        colours.insert((p[0], p[1], p[2]));
        if p[0] < 240 || p[1] < 240 || p[2] < 240 {
            non_white += 1;
        }
    }
    (colours.len(), non_white as f64 / total.max(1) as f64)
}

#[test]
fn html_report_opens_in_headless_chromium_without_console_errors() {
    if !Path::new(CHROMIUM).exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{CHROMIUM} is missing on CI: install it with `apt-get install -y chromium`"
        );
        eprintln!(
            "note: {CHROMIUM} not found; skipping the browser check (apt-get install -y chromium)"
        );
        return;
    }
    let w = Workdir::new();
    two_runs(&w);
    let runs = w.json(&["history", "--format", "json"]);
    let first = runs[1]["run_id"].as_str().unwrap().to_owned();
    let html = w.path().join("report.html");
    ok(w.run(&[
        "report",
        "latest",
        "--baseline",
        &first,
        "-o",
        html.to_str().unwrap(),
    ]));

    let profile = tempfile::tempdir().unwrap();
    let shot = w.path().join("shot.png");
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    // The report has no scripts: any console message at all is a problem.
    for bad in [
        "Uncaught",
        ":CONSOLE",
        "Failed to load resource",
        "Refused to",
    ] {
        assert!(
            !log.contains(bad),
            "console error {bad:?} while loading the report:\n{log}"
        );
    }
    assert!(shot.is_file(), "no screenshot written: {log}");
    let (colours, ink) = png_stats(&shot);
    // A blank page is one colour; text, tables and plots give many and cover part of the page.
    assert!(
        colours >= 16,
        "screenshot looks blank: {colours} distinct colours"
    );
    assert!(
        ink > 0.02,
        "screenshot looks blank: {:.2}% non-white",
        ink * 100.0
    );
}

#[test]
fn the_html_report_shows_system_utilisation_sampled_during_the_run() {
    let w = Workdir::new();
    // Long enough for several 250 ms samples.
    let suite = w.file(
        "u.toml",
        "[suite]\nname='util'\n[[benchmark]]\nname='nap'\ncommand='sleep 0.3'\nruns=3\n",
    );
    assert_eq!(w.run(&["run", suite.to_str().unwrap()]).code(), 0);
    let out = w.run(&["report", "latest", "--format", "html", "-o", "r.html"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let html = std::fs::read_to_string(w.path().join("r.html")).unwrap();
    let section = &html[html
        .find("<h2>System utilisation</h2>")
        .expect("utilisation section")..];
    assert!(section.contains("Mean over "), "{section}");
    assert!(
        section.contains("System utilisation during the run"),
        "the plot is drawn"
    );
}

/// Issue 21: the way to gate a change is head-to-head, both versions measured interleaved in
/// one invocation. A slowdown injected into the candidate (`sleep 0.25` against `sleep 0.05`,
/// physically at least 0.2 s slower, beyond the noise of even a machine busy compiling, where a
/// 20 ms difference was not always significant in 8 runs) fails the gate, with the
/// `compare` verdict printed and exported; the reverse passes.
#[test]
fn head_to_head_bench_gates_on_an_injected_slowdown() {
    let w = Workdir::new();
    let out = w.run(&[
        "bench",
        "-r",
        "10",
        "--reference",
        "sleep 0.05",
        "--reference-name",
        "main",
        "-n",
        "pr",
        "sleep 0.25",
        "--fail-on",
        "regression",
        "--export-json",
        "gate.json",
        "--style",
        "none",
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("regressed: pr"), "{out:?}");
    assert!(
        out.stderr().contains("verdict pr vs main: regressed")
            && out.stderr().contains("head-to-head"),
        "{out:?}"
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("gate.json")).unwrap())
            .unwrap();
    let pr = crate::support::result(&v, "pr");
    let c = &pr["comparison"];
    assert_eq!(c["verdict"], "regressed", "{c}");
    assert_eq!(c["reference"], "main", "{c}");
    assert_eq!(c["assessment"]["mode"], "head_to_head", "{c}");
    assert!(
        c["assessment"]["min_detectable"].as_f64().unwrap() > 0.0,
        "{c}"
    );
    assert!(c["change_percent"].as_f64().unwrap() > 20.0, "{c}");
    // hyperfine's fields stay as they were; the reference has no comparison.
    assert!(pr["mean"].as_f64().unwrap() >= 0.25, "{pr}");
    assert_eq!(pr["times"].as_array().unwrap().len(), 10);
    assert!(
        crate::support::result(&v, "main")
            .get("comparison")
            .is_none()
    );

    // The other way round it is an improvement, and the gate passes.
    let faster = ok(w.run(&[
        "bench",
        "-r",
        "10",
        "--reference",
        "sleep 0.25",
        "sleep 0.05",
        "--fail-on",
        "regression",
        "--style",
        "none",
    ]));
    assert!(
        faster
            .stderr()
            .contains("verdict sleep 0.05 vs sleep 0.25: improved"),
        "{faster:?}"
    );
    // Bad thresholds are usage errors naming the flag.
    let bad = w.run(&["bench", "--reference", "true", "true", "--noise=-1"]);
    assert_eq!(bad.code(), 2, "{bad:?}");
    assert!(bad.stderr().contains("--noise -1"), "{bad:?}");
}

/// Issue 21: `--detect` sizes a head-to-head gate from the noise it sees. Runs that vary by
/// ±80% (sleeps of 10–90 ms, by iteration) are measured past the 10 runs planned, both
/// commands alike, until a 50% change could be seen (≈ 40 runs; or -M stops them); bad values
/// are usage errors.
#[test]
fn head_to_head_detect_measures_until_the_change_could_be_seen() {
    let w = Workdir::new();
    let noisy = "sleep 0.0$(( (HYPERFINE_ITERATION * 7) % 9 + 1 ))";
    let out = ok(w.run(&[
        "bench",
        "--reference",
        noisy,
        "--reference-name",
        "main",
        "-n",
        "pr",
        noisy,
        "--detect",
        "0.5",
        "--min-benchmarking-time",
        "0.05",
        "-M",
        "120",
        "--export-json",
        "gate.json",
        "--style",
        "none",
    ]));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("gate.json")).unwrap())
            .unwrap();
    let runs = |name: &str| {
        crate::support::result(&v, name)["times"]
            .as_array()
            .unwrap()
            .len()
    };
    let (main, pr) = (runs("main"), runs("pr"));
    assert_eq!(main, pr, "measured alike: {out:?}");
    assert!(main > 10 && main <= 120, "{main} runs: {out:?}");
    let a = &crate::support::result(&v, "pr")["comparison"]["assessment"];
    let mdc = a["min_detectable"].as_f64().unwrap();
    assert!(
        mdc <= 0.55 || main == 120,
        "{main} runs, detectable {mdc}: {a}"
    );

    for (args, says) in [
        (vec!["--detect", "0.01"], "--detect 0.01"),
        (vec!["--detect", "0.1", "-r", "5"], "--runs"),
        (vec!["--detect", "0.1", "--order", "sequential"], "rounds"),
    ] {
        let mut all = vec!["bench", "--reference", "true", "true"];
        all.extend(args);
        let bad = w.run(&all);
        assert_eq!(bad.code(), 2, "{bad:?}");
        assert!(bad.stderr().contains(says), "{says}: {bad:?}");
    }
    let alone = w.run(&["bench", "--detect", "0.1", "true"]);
    assert_eq!(alone.code(), 2, "--detect needs a reference: {alone:?}");
}

/// Issue 21: separate invocations are compared on their invocation means when each side has
/// several (comma-separated), and with one a side the report says the between-invocation noise
/// was not measured; every verdict states its mode.
#[test]
fn compare_states_its_mode_and_uses_several_invocations() {
    let w = Workdir::new();
    let side = |prefix: &str, base: f64| -> Vec<String> {
        (0..3)
            .map(|i| {
                // Invocations differ by up to ±1% of level, runs by ±1%.
                let level = base * (1.0 + 0.01 * (i as f64 - 1.0));
                let f = format!("{prefix}{i}.json");
                hyperfine_file(&w, &f, &[("work", &noisy(level, 10))]);
                f
            })
            .collect()
    };
    let (a, b) = (side("a", 0.020), side("b", 0.030));
    let multi = w.run(&[
        "compare",
        &a.join(","),
        &b.join(","),
        "--format",
        "json",
        "--fail-on",
        "regression",
    ]);
    assert_eq!(multi.code(), 1, "{multi:?}");
    let v: Value = serde_json::from_slice(&multi.0.stdout).unwrap();
    let c = &v["comparisons"][0];
    assert_eq!(c["verdict"], "regressed", "{c}");
    assert_eq!(c["assessment"]["mode"], "multi_invocation", "{c}");
    assert_eq!(c["assessment"]["invocations"], json!([3, 3]), "{c}");
    assert_eq!(v["baseline"].as_array().unwrap().len(), 3, "{v}");
    // A/A over several invocations: no alarm.
    ok(w.run(&[
        "compare",
        &a.join(","),
        &a.join(","),
        "--fail-on",
        "regression",
    ]));
    // One invocation a side: the table says what was not measured.
    let single = ok(w.run(&["compare", &a[0], &a[1]]));
    assert!(
        single.stdout().contains("single invocation")
            && single.stdout().contains("between invocations not measured"),
        "{single:?}"
    );
    let bad = w.run(&["compare", &a[0], &a[1], "--assume-between=-0.1"]);
    assert_eq!(bad.code(), 2, "{bad:?}");
    assert!(bad.stderr().contains("--assume-between -0.1"), "{bad:?}");
}

/// Issue 21: one stored run a side, with enough history of the suite on this machine class,
/// learns its band from that history and says so.
#[test]
fn compare_of_stored_runs_learns_its_band_from_history() {
    let w = Workdir::new();
    let suite = sleep_suite(&w, "s.toml", "0.01", 3);
    for _ in 0..7 {
        ok(w.run(&["run", suite.to_str().unwrap(), "--no-cache"]));
    }
    let runs = w.json(&["history", "--format", "json"]);
    let oldest = runs.as_array().unwrap().last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = ok(w.run(&["compare", &oldest, "latest", "--format", "json"]));
    let v: Value = serde_json::from_slice(&out.0.stdout).unwrap();
    let a = &v["comparisons"][0]["assessment"];
    assert_eq!(a["mode"], "history_band", "{v}");
    assert_eq!(v["history_runs"], 5, "{v}");
    assert!(a["between_cv"].as_f64().is_some(), "{v}");
    assert!(a["band"].as_f64().unwrap() >= 0.02, "{v}");
    let table = ok(w.run(&["compare", &oldest, "latest"]));
    assert!(
        table
            .stderr()
            .contains("noise bands learned from 5 earlier runs")
            && table.stdout().contains("history band"),
        "{table:?}"
    );
}
