use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const HYPERFINE: &str = r#"{
  "results": [
    {
      "command": "sleep 0.1",
      "mean": 0.1025, "stddev": 0.0005, "median": 0.1025,
      "user": 0.0010, "system": 0.0020, "min": 0.102, "max": 0.103,
      "times": [0.102, 0.103],
      "memory_usage_byte": [2000000, 2100000],
      "exit_codes": [0, 0]
    },
    {
      "command": "gzip -{level} big",
      "mean": 0.5, "stddev": null, "median": 0.5, "user": 0.4, "system": 0.05,
      "min": 0.5, "max": 0.5,
      "times": [0.5, 0.6, 0.7],
      "exit_codes": [0, 2, null],
      "parameters": {"level": "9"}
    }
  ]
}"#;

fn hyperfine(text: &str) -> Result<ImportedSet, ImportError> {
    parse_hyperfine(Path::new("hf.json"), text.as_bytes())
}

#[test]
fn hyperfine_runs_are_synthesized_from_times() {
    let set = hyperfine(HYPERFINE).unwrap();
    assert_eq!(set.benchmarks.len(), 2);
    let a = &set.benchmarks[0];
    assert_eq!(a.name, "sleep 0.1");
    let walls: Vec<u64> = a.runs.iter().map(|r| r.measurement.wall_ns).collect();
    assert_eq!(walls, [102_000_000, 103_000_000]);
    // hyperfine only has mean CPU times: every run gets them.
    assert!(
        a.runs
            .iter()
            .all(|r| r.measurement.user_ns == 1_000_000 && r.measurement.sys_ns == 2_000_000)
    );
    assert_eq!(a.runs[1].measurement.max_rss_bytes, 2_100_000);
    let b = &set.benchmarks[1];
    assert_eq!(b.parameters["level"], "9");
    let outcomes: Vec<Option<i32>> = b.runs.iter().map(|r| r.outcome.exit_code()).collect();
    assert_eq!(outcomes, [Some(0), Some(2), None]);
    assert!(!b.runs[2].outcome.is_success());
}

#[test]
fn hyperfine_without_times_uses_the_mean_and_names_are_deduplicated() {
    let set = hyperfine(
        r#"{"results": [{"command": "a", "mean": 0.25}, {"command": "a", "times": [1, 2]}]}"#,
    )
    .unwrap();
    assert_eq!(set.benchmarks[0].runs.len(), 1);
    assert_eq!(set.benchmarks[0].runs[0].measurement.wall_ns, 250_000_000);
    assert_eq!(set.benchmarks[1].name, "a#2");
    assert_eq!(set.notes.len(), 1, "{:?}", set.notes);
}

#[test]
fn benchfleet_export_round_trips_through_the_hyperfine_importer() {
    use benchfleet_report::{group_records, hyperfine_json};
    let run: RunId = "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap();
    let set = hyperfine(HYPERFINE).unwrap();
    let records = to_records(&set, &run, "s", Timestamp(5), &BTreeMap::new());
    let exported = serde_json::to_vec(&hyperfine_json(&group_records(&records))).unwrap();
    let back = parse_hyperfine(Path::new("x.json"), &exported).unwrap();
    assert_eq!(back.benchmarks, set.benchmarks);
}

/// `text` must fail with an error naming `json_path` and containing `needle`.
fn check_shape(
    parse: fn(&Path, &[u8]) -> Result<ImportedSet, ImportError>,
    text: &str,
    json_path: &str,
    needle: &str,
) {
    match parse(Path::new("bad.json"), text.as_bytes()) {
        Err(e @ ImportError::Shape { .. }) => {
            let ImportError::Shape { json_path: p, .. } = &e else {
                unreachable!()
            };
            assert_eq!(p, json_path, "{e}");
            let msg = e.to_string();
            assert!(msg.contains("bad.json") && msg.contains(needle), "{msg}");
        }
        other => panic!("{text}: expected a shape error at {json_path}, got {other:?}"),
    }
}

#[test]
fn malformed_hyperfine_files_name_the_json_path() {
    let cases = [
        (r#"[1]"#, "$", "expected an object"),
        (r#"{"x": 1}"#, "$", "missing `results`"),
        (r#"{"results": {}}"#, "$.results", "expected an array"),
        (
            r#"{"results": [3]}"#,
            "$.results[0]",
            "expected a result object",
        ),
        (
            r#"{"results": [{"mean": 1}]}"#,
            "$.results[0]",
            "missing `command`",
        ),
        (
            r#"{"results": [{"command": 5, "mean": 1}]}"#,
            "$.results[0].command",
            "expected a string",
        ),
        (
            r#"{"results": [{"command": "a"}]}"#,
            "$.results[0]",
            "neither `times` nor `mean`",
        ),
        (
            r#"{"results": [{"command": "a", "times": [0.1, "x"]}]}"#,
            "$.results[0].times[1]",
            "\"x\"",
        ),
        (
            r#"{"results": [{"command": "a", "times": [-1]}]}"#,
            "$.results[0].times[0]",
            "≥ 0",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1e300]}]}"#,
            "$.results[0].times[0]",
            "out of range",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "exit_codes": [0, 1]}]}"#,
            "$.results[0].exit_codes",
            "2 entries",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "exit_codes": [1.5]}]}"#,
            "$.results[0].exit_codes[0]",
            "exit code",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "memory_usage_byte": [-3]}]}"#,
            "$.results[0].memory_usage_byte[0]",
            "byte count",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "user": "fast"}]}"#,
            "$.results[0].user",
            "a time in seconds",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "parameters": {"n": [1]}}]}"#,
            "$.results[0].parameters.n",
            "parameter value",
        ),
        (
            r#"{"results": [{"command": "a", "times": [1], "parameters": {"odd key": {}}}]}"#,
            "$.results[0].parameters[\"odd key\"]",
            "parameter value",
        ),
    ];
    for (text, path, needle) in cases {
        check_shape(parse_hyperfine, text, path, needle);
    }
}

#[test]
fn invalid_json_and_empty_files_are_errors_naming_the_file() {
    let e = hyperfine("{\"results\": [").unwrap_err();
    assert!(matches!(e, ImportError::Json { line: 1, .. }), "{e}");
    assert!(e.to_string().contains("hf.json"), "{e}");
    let e = hyperfine(r#"{"results": []}"#).unwrap_err();
    assert!(matches!(e, ImportError::Empty { .. }), "{e}");
    let e = parse_bmf(Path::new("b.json"), b"{}").unwrap_err();
    assert!(matches!(e, ImportError::Empty { .. }), "{e}");
}

#[test]
fn bmf_latency_becomes_one_run_and_other_measures_are_noted() {
    let text = json!({
        "parse/small": {"latency": {"value": 1500.0, "lower_value": 1400.0, "upper_value": 1600.0},
                         "max-rss-bytes": {"value": 4096.0}},
        "throughput-only": {"throughput": {"value": 10.0}},
    })
    .to_string();
    let set = parse_bmf(Path::new("b.json"), text.as_bytes()).unwrap();
    assert_eq!(set.benchmarks.len(), 1);
    let b = &set.benchmarks[0];
    assert_eq!((b.name.as_str(), b.runs.len()), ("parse/small", 1));
    assert_eq!(b.runs[0].measurement.wall_ns, 1500);
    assert_eq!(b.runs[0].measurement.max_rss_bytes, 4096);
    assert!(
        set.notes.iter().any(|n| n.contains("throughput")),
        "{:?}",
        set.notes
    );
}

#[test]
fn malformed_bmf_files_name_the_json_path() {
    let cases = [
        ("[]", "$", "expected an object"),
        (r#"{"a": 1}"#, "$.a", "object of measures"),
        (
            r#"{"a b": {"latency": 3}}"#,
            "$[\"a b\"].latency",
            "metric object",
        ),
        (
            r#"{"a": {"latency": {}}}"#,
            "$.a.latency",
            "missing `value`",
        ),
        (
            r#"{"a": {"latency": {"value": "1"}}}"#,
            "$.a.latency.value",
            "expected a number",
        ),
        (
            r#"{"a": {"latency": {"value": -1}}}"#,
            "$.a.latency.value",
            "≥ 0",
        ),
        (
            r#"{"a": {"latency": {"value": 1, "lower_value": "x"}}}"#,
            "$.a.latency.lower_value",
            "number or null",
        ),
        (
            r#"{"a": {"max-rss-bytes": {"value": true}}}"#,
            "$.a[\"max-rss-bytes\"].value",
            "expected a number",
        ),
    ];
    for (text, path, needle) in cases {
        check_shape(parse_bmf, text, path, needle);
    }
}

#[test]
fn criterion_samples_become_per_iteration_times() {
    let b = parse_criterion_sample(
        Path::new("sample.json"),
        br#"{"sampling_mode":"Linear","iters":[10.0,20.0],"times":[1000.0,3000.0]}"#,
        "g/f",
    )
    .unwrap();
    let walls: Vec<u64> = b.runs.iter().map(|r| r.measurement.wall_ns).collect();
    assert_eq!(walls, [100, 150]);
    let e = parse_criterion_estimates(
        Path::new("estimates.json"),
        br#"{"mean":{"point_estimate":123.4,"standard_error":1.0}}"#,
        "g/f",
    )
    .unwrap();
    assert_eq!(e.runs[0].measurement.wall_ns, 123);
    for (text, path) in [
        (r#"{"iters":[1],"times":[1,2]}"#, "$.times"),
        (r#"{"iters":[0],"times":[1]}"#, "$.iters[0]"),
        (r#"{"iters":[1],"times":["a"]}"#, "$.times[0]"),
        (r#"{"times":[1]}"#, "$"),
    ] {
        let err = parse_criterion_sample(Path::new("s.json"), text.as_bytes(), "x").unwrap_err();
        assert!(
            matches!(&err, ImportError::Shape { json_path, .. } if json_path == path),
            "{text}: {err}"
        );
    }
    let err = parse_criterion_estimates(
        Path::new("e.json"),
        br#"{"mean":{"point_estimate":null}}"#,
        "x",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ImportError::Shape { json_path, .. } if json_path == "$.mean.point_estimate"),
        "{err}"
    );
}

#[test]
fn criterion_directories_are_walked_and_named_by_full_id() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "parse/small/new/sample.json",
        r#"{"iters":[1,2],"times":[10,40]}"#,
    );
    write(
        "parse/small/new/benchmark.json",
        r#"{"full_id":"parse/small"}"#,
    );
    write(
        "parse/small/base/sample.json",
        r#"{"iters":[1],"times":[999]}"#,
    );
    write(
        "fib/new/estimates.json",
        r#"{"mean":{"point_estimate":7.0}}"#,
    );
    write("report/index.html", "<html></html>");
    let sets = read(dir.path(), ImportFormat::Criterion).unwrap();
    assert_eq!(sets.len(), 1);
    let names: Vec<&str> = sets[0].benchmarks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["fib", "parse/small"]);
    assert_eq!(sets[0].benchmarks[1].runs.len(), 2);
    // One file on its own is named after its benchmark directory.
    let one = read(
        &dir.path().join("fib/new/estimates.json"),
        ImportFormat::Criterion,
    )
    .unwrap();
    assert_eq!(one[0].benchmarks[0].name, "fib");
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        read(empty.path(), ImportFormat::Criterion),
        Err(ImportError::Empty { .. })
    ));
}

#[test]
fn formats_parse_case_insensitively() {
    for f in ImportFormat::ALL {
        assert_eq!(f.as_str().to_uppercase().parse::<ImportFormat>(), Ok(f));
    }
    assert!(
        "csv"
            .parse::<ImportFormat>()
            .unwrap_err()
            .contains("hyperfine")
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("latency".to_string()),
            Just("results".to_string()),
            ".{0,8}".prop_map(String::from)
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("results".to_string()),
            Just("command".to_string()),
            Just("times".to_string()),
            Just("mean".to_string()),
            Just("exit_codes".to_string()),
            Just("memory_usage_byte".to_string()),
            Just("parameters".to_string()),
            Just("user".to_string()),
            Just("latency".to_string()),
            Just("value".to_string()),
            Just("lower_value".to_string()),
            Just("max-rss-bytes".to_string()),
            Just("iters".to_string()),
            Just("point_estimate".to_string()),
            ".{0,6}".prop_map(String::from),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn parse_all(bytes: &[u8]) {
    let p = Path::new("fuzz.json");
    let _ = parse_hyperfine(p, bytes);
    let _ = parse_bmf(p, bytes);
    let _ = parse_criterion_sample(p, bytes, "x");
    let _ = parse_criterion_estimates(p, bytes, "x");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn importers_never_panic_on_arbitrary_json(v in arb_json()) {
        parse_all(&serde_json::to_vec(&v).unwrap());
        // Wrapped where the importers look, to get past the first checks.
        parse_all(&serde_json::to_vec(&json!({"results": [v.clone()]})).unwrap());
        parse_all(&serde_json::to_vec(&json!({"b": {"latency": v.clone()}})).unwrap());
        parse_all(&serde_json::to_vec(&json!({"mean": v})).unwrap());
    }

    #[test]
    fn importers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_all(&bytes);
    }

    #[test]
    fn importers_never_panic_on_truncated_valid_files(cut in 0usize..HYPERFINE.len()) {
        parse_all(&HYPERFINE.as_bytes()[..cut]);
    }
}
