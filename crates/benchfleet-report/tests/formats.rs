use benchfleet_analysis::{ChangePointConfig, CompareConfig, Verdict, change_points, scaling};
use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, SCHEMA_VERSION, Timestamp};
use benchfleet_report::*;

const RUN: &str = "01HZY3K4MZ8Q6X2V1B0C9D7E5F";

fn rec(name: &str, iteration: u32, wall_us: u64, outcome: Outcome) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: RUN.parse().unwrap(),
        suite: "s".into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        command: format!("run \"{name}\", fast"),
        parameters: [(
            "level".to_string(),
            iteration.to_string().chars().take(0).collect::<String>() + "9",
        )]
        .into(),
        iteration,
        started_at: Timestamp(0),
        measurement: Measurement {
            wall_ns: wall_us * 1000,
            max_rss_bytes: 1000 + u64::from(iteration),
            ..Default::default()
        },
        outcome,
        stderr_tail: None,
        tags: Default::default(),
    }
}

/// `n` runs of `name` around `base_us` microseconds (deterministic ±1% wiggle).
fn bench(name: &str, n: u32, base_us: u64) -> Vec<RunRecord> {
    (0..n)
        .map(|i| {
            rec(
                name,
                i,
                base_us + base_us * u64::from(i * 7 % 5) / 200,
                Outcome::Success,
            )
        })
        .collect()
}

fn results(specs: &[(&str, u64)]) -> Vec<BenchmarkResult> {
    group_records(
        &specs
            .iter()
            .flat_map(|(n, us)| bench(n, 30, *us))
            .collect::<Vec<_>>(),
    )
}

/// Split one CSV line into fields (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn csv_has_one_row_per_benchmark_and_quotes() {
    let r = results(&[("a", 1000), ("b", 2000)]);
    let text = csv(&r);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let header = csv_fields(lines[0]);
    assert_eq!(
        &header[..8],
        [
            "command", "mean", "stddev", "median", "user", "system", "min", "max"
        ]
    );
    // hyperfine's position of the parameter columns: right after `max`.
    assert_eq!(header[8], "parameter_level");
    assert_eq!(header[9], "command_line");
    for (line, res) in lines[1..].iter().zip(&r) {
        let f = csv_fields(line);
        assert_eq!(f.len(), header.len(), "{line}");
        // hyperfine's `command` is the benchmark's name.
        assert_eq!(f[0], res.name);
        assert_eq!(f[1].parse::<f64>().unwrap(), res.wall().unwrap().mean);
        assert_eq!(f[8], "9");
        assert_eq!(f[9], res.command);
        assert_eq!(
            f[header.iter().position(|h| h == "name").unwrap()],
            res.name
        );
    }
}

#[test]
fn bmf_reports_nanoseconds() {
    let r = results(&[("a", 1000)]);
    let j = bmf_json(&r);
    let s = r[0].wall().unwrap();
    assert_eq!(j["a"]["latency"]["value"], s.mean * 1e9);
    assert_eq!(j["a"]["latency"]["lower_value"], s.min * 1e9);
    assert_eq!(j["a"]["latency"]["upper_value"], s.max * 1e9);
    assert_eq!(j["a"]["max-rss-bytes"]["upper_value"], 1029.0);
    let failed = group_records(&[rec(
        "f",
        0,
        5,
        Outcome::Failed {
            exit_code: Some(1),
            signal: None,
        },
    )]);
    assert!(bmf_json(&failed).as_object().unwrap().is_empty());
}

fn comparison() -> ComparisonSet {
    let base = results(&[
        ("same", 1000),
        ("slower", 1000),
        ("faster", 1000),
        ("gone", 10),
    ]);
    let cand = results(&[
        ("same", 1000),
        ("slower", 1100),
        ("faster", 900),
        ("new", 10),
    ]);
    let cfg = CompareConfig {
        bootstrap: Some(benchfleet_analysis::BootstrapConfig {
            resamples: 500,
            ..Default::default()
        }),
        ..Default::default()
    };
    compare_results(&base, &cand, &cfg)
}

#[test]
fn comparison_matches_by_name_and_reports_verdicts() {
    let set = comparison();
    let verdicts: Vec<(&str, Verdict)> = set
        .compared
        .iter()
        .map(|c| (c.name.as_str(), c.comparison.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("same", Verdict::Unchanged),
            ("slower", Verdict::Regressed),
            ("faster", Verdict::Improved)
        ]
    );
    let skipped: Vec<&str> = set.skipped.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(skipped, ["new", "gone"]);
    assert!(set.any_regressed());

    let md = comparison_markdown(&set);
    assert!(
        md.starts_with("**1 regressed, 1 improved, 1 unchanged, 0 inconclusive** of 3"),
        "{md}"
    );
    assert!(
        md.contains("| `slower` |") && md.contains("**regressed**"),
        "{md}"
    );
    let t = comparison_table(&set);
    assert!(
        t.contains("+10.0%") && t.contains("skipped new: not in the baseline"),
        "{t}"
    );
    let j = comparison_json(&set);
    assert_eq!(j["regressed"], true);
    assert_eq!(j["comparisons"][1]["name"], "slower");
    assert_eq!(j["comparisons"][1]["verdict"], "regressed");
    assert!((j["comparisons"][1]["change_percent"].as_f64().unwrap() - 10.0).abs() < 0.5);
    assert!(
        j["comparisons"][1]["ratio_ci"]["mean"]["lower"]
            .as_f64()
            .unwrap()
            > 1.0
    );
}

#[test]
fn junit_fails_regressions_and_failed_runs() {
    let set = comparison();
    let mut r = results(&[("same", 1000), ("slower", 1100)]);
    r.extend(group_records(&[rec(
        "crash<&>",
        0,
        5,
        Outcome::Failed {
            exit_code: Some(2),
            signal: None,
        },
    )]));
    let xml = junit_xml("suite \"x\"", &r, &set.compared);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<testsuite name=\"suite &quot;x&quot;\" tests=\"3\" failures=\"2\""),
        "{xml}"
    );
    assert!(
        xml.contains("type=\"regression\"") && xml.contains("regressed by +9.98%"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"crash&lt;&amp;&gt;\"") && xml.contains("type=\"run-failed\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(xml.matches("</testcase>").count(), 3);
    // The unchanged benchmark's test case has no failure.
    let same = &xml[xml.find("name=\"same\"").unwrap()..];
    assert!(
        same[..same.find("</testcase>").unwrap()]
            .find("<failure")
            .is_none(),
        "{xml}"
    );
}

#[test]
fn html_is_self_contained_and_has_every_plot() {
    let r = results(&[("alpha", 1000), ("beta", 2500)]);
    let set = comparison();
    let series: Vec<f64> = (0..120)
        .map(|i| if i < 70 { 10.0 } else { 11.0 } + f64::from(i % 3) * 0.05)
        .collect();
    let changes = change_points(&series, &ChangePointConfig::default()).unwrap();
    assert_eq!(changes.len(), 1);
    let history = [HistorySeries {
        name: "alpha wall time".into(),
        unit: "ms".into(),
        values: series,
        changes,
    }];
    let scale = scaling(&[(1, 10.0), (2, 5.5), (4, 3.2)]).unwrap();
    let util = benchfleet_report::plots::Utilisation {
        t_s: vec![0.25, 0.5, 0.75],
        cpu_busy_pct: vec![50.0, 70.0, 60.0],
        own_busy_pct: vec![40.0, 50.0, 45.0],
        mem_used_pct: vec![10.0, 10.0, 11.0],
        note: Some("other processes were busy".into()),
    };
    let html = html_report(&HtmlReport {
        title: "Report <1>".into(),
        results: &r,
        comparison: Some(&set),
        history: &history,
        scaling: &scale,
        utilisation: Some(&util),
    })
    .unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>Report &lt;1&gt;</title>"));
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "distribution, comparison, history, utilisation, scaling"
    );
    assert!(
        html.contains(
            "Mean over 3 samples: CPU 60.0% (benchfleet and its commands 45.0%), memory 10.3%"
        ),
        "utilisation summary shown"
    );
    assert!(html.contains("other processes were busy"));
    for forbidden in ["<script", "src=", "href=", "url(", "@import", "https://"] {
        assert!(
            !html.contains(forbidden),
            "found {forbidden:?}: the report must make no requests"
        );
    }
    // The only http URL allowed is the SVG namespace (an identifier, never fetched).
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    // Raw points: one circle per successful run in the distribution plot.
    let dist = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert_eq!(dist.matches("<circle").count(), 60);
    assert!(
        html.contains("+10.00%") || html.contains("+10.0"),
        "change point percent shown"
    );
    assert!(
        html.contains("2.00×") || html.contains("1.82×"),
        "scaling table shown"
    );
}

#[test]
fn html_with_only_failures_still_renders() {
    let r = group_records(&[rec("f", 0, 5, Outcome::TimedOut { timeout_ns: 1 })]);
    let html = html_report(&HtmlReport {
        title: "t".into(),
        results: &r,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(html.matches("<svg").count(), 0);
    assert!(html.contains("timed out"));
}
