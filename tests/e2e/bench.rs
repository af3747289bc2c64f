//! `benchfleet bench`: hyperfine's flags, storage, exports, failures, timeouts, interleaving.
//! Orders are observed through commands appending to a log file; no timing is asserted.

use std::path::Path;

use crate::support::{Out, Workdir, result, stored_records};

fn json_file(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", path.display()))
}

fn bench(w: &Workdir, args: &[&str]) -> Out {
    let mut all = vec!["bench", "--no-sample"];
    all.extend_from_slice(args);
    w.run(&all)
}

fn log(w: &Workdir) -> Vec<String> {
    std::fs::read_to_string(w.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn append(tag: &str) -> String {
    format!("sh -c 'echo {tag} >> log'")
}

#[test]
fn runs_are_stored_exported_and_shown_like_suite_results() {
    let w = Workdir::with_fs_hot();
    let out = bench(
        &w,
        &[
            "-r",
            "3",
            "-n",
            "quick",
            "true",
            "sleep 0.001",
            "--export-json",
            "o.json",
            "--export-csv",
            "o.csv",
            "--export-markdown",
            "o.md",
            "--tag",
            "who=e2e",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().contains("quick"), "{out:?}");
    assert!(
        out.stdout().contains("times faster than"),
        "relative summary: {out:?}"
    );

    let json = json_file(&w.path().join("o.json"));
    for name in ["quick", "sleep 0.001"] {
        let r = result(&json, name);
        assert_eq!(r["runs"], 3, "{r}");
        assert_eq!(r["exit_codes"], serde_json::json!([0, 0, 0]), "{r}");
    }
    assert_eq!(
        result(&json, "quick")["command"],
        "quick",
        "hyperfine: the name"
    );
    assert_eq!(result(&json, "quick")["command_line"], "true");
    let csv = std::fs::read_to_string(w.path().join("o.csv")).unwrap();
    assert!(
        csv.starts_with("command,mean,stddev,median,user,system,min,max"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let md = std::fs::read_to_string(w.path().join("o.md")).unwrap();
    assert!(
        md.contains("`quick`") && md.contains("`sleep 0.001`"),
        "{md}"
    );

    // Stored like suite results: history lists it, show reads it back.
    let runs = w.json(&["history", "--format", "json"]);
    let run = &runs[0];
    assert_eq!(run["source"], "bench", "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["tags"]["bench.order"], "interleaved", "{run}");
    assert_eq!(run["tags"]["who"], "e2e", "{run}");
    assert!(
        run["tags"]["bench.seed"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "{run}"
    );
    let shown = w.json(&["show", "latest", "--format", "json"]);
    for name in ["quick", "sleep 0.001"] {
        let (live, stored) = (result(&json, name), result(&shown, name));
        assert_eq!(live["times"], stored["times"]);
        // bench's running statistics agree with those recomputed from the stored records.
        for field in ["min", "max", "median", "p95"] {
            assert_eq!(live[field], stored[field], "{field} of {name}");
        }
        for field in ["mean", "stddev"] {
            let (a, b) = (
                live[field].as_f64().unwrap(),
                stored[field].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1e-9),
                "{field} of {name}: {a} vs {b}"
            );
        }
    }
    // show prints the table bench printed.
    let table = w.run(&["show", "latest"]);
    assert_eq!(table.code(), 0, "{table:?}");
    assert!(
        out.stdout().starts_with(table.stdout().as_str()),
        "bench:\n{}\nshow:\n{}",
        out.stdout(),
        table.stdout()
    );

    // Every rusage field is stored per run; run alone (-j 1); no counters unless asked.
    let records = stored_records(&w);
    assert_eq!(records.len(), 6);
    for r in &records {
        let m = &r["measurement"];
        for field in [
            "wall_ns",
            "user_ns",
            "sys_ns",
            "max_rss_bytes",
            "minor_faults",
            "major_faults",
            "voluntary_context_switches",
            "involuntary_context_switches",
            "block_in",
            "block_out",
        ] {
            assert!(m[field].is_u64(), "{field} in {m}");
        }
        assert!(m["max_rss_bytes"].as_u64().unwrap() > 0, "{m}");
        assert_eq!(r["tags"]["run.concurrent"], "false", "{r}");
        assert!(r["tags"].get("hw.instructions").is_none(), "{r}");
    }
}

/// With -s/-c the order is hyperfine's, command by command: a setup is never separated from its
/// own runs. Without them, rounds interleave the commands.
#[test]
fn setup_and_cleanup_bracket_their_own_runs_and_rounds_interleave_without_them() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-w",
            "1",
            "-r",
            "2",
            "-s",
            &append("setup"),
            "-c",
            &append("cleanup"),
            "-p",
            &append("prep"),
            "-C",
            &append("done"),
            &append("A"),
            &append("B"),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let mut want: Vec<&str> = Vec::new();
    for c in ["A", "B"] {
        want.push("setup");
        for _ in 0..3 {
            want.extend(["prep", c, "done"]);
        }
        want.push("cleanup");
    }
    assert_eq!(log(&w), want);

    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-w",
            "1",
            "-r",
            "2",
            "-p",
            &append("prep"),
            "-C",
            &append("done"),
            &append("A"),
            &append("B"),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let mut want: Vec<&str> = Vec::new();
    for _ in 0..3 {
        want.extend(["prep", "A", "done", "prep", "B", "done"]);
    }
    assert_eq!(log(&w), want);
}

#[test]
fn per_command_prepare_and_a_seeded_shuffle_are_reproducible() {
    let order = |seed: &str| {
        let w = Workdir::new();
        let out = bench(
            &w,
            &[
                "-r",
                "12",
                "--shuffle",
                "--seed",
                seed,
                "-p",
                &append("pa"),
                "-p",
                &append("pb"),
                "-p",
                &append("pc"),
                &append("A"),
                &append("B"),
                &append("C"),
            ],
        );
        assert_eq!(out.code(), 0, "{out:?}");
        let runs = w.json(&["history", "--format", "json"]);
        assert_eq!(runs[0]["tags"]["bench.order"], "shuffled");
        assert_eq!(runs[0]["tags"]["bench.seed"], seed);
        let lines = log(&w);
        assert_eq!(lines.len(), 72, "{lines:?}");
        let runs: Vec<String> = lines
            .chunks(2)
            .map(|pair| {
                // Each command's own prepare runs right before it.
                assert_eq!(pair[0], format!("p{}", pair[1].to_lowercase()), "{lines:?}");
                pair[1].clone()
            })
            .collect();
        for round in runs.chunks(3) {
            let mut r = round.to_vec();
            r.sort();
            assert_eq!(
                r,
                ["A", "B", "C"],
                "every round runs each command once: {runs:?}"
            );
        }
        runs
    };
    let a = order("7");
    assert_eq!(a, order("7"), "same seed, same order");
    let rounds: std::collections::BTreeSet<&[String]> = a.chunks(3).collect();
    assert!(rounds.len() > 1, "rounds are shuffled: {a:?}");
}

#[test]
fn a_failure_stops_that_command_only_and_fails_the_exit_code() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-r",
            "3",
            "sh -c 'echo broken >&2; exit 3'",
            "true",
            "--export-json",
            "o.json",
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("FAILED"), "{out:?}");
    assert!(
        out.stderr().contains("exit 3") && out.stderr().contains("-i"),
        "{out:?}"
    );
    let json = json_file(&w.path().join("o.json"));
    let broken = result(&json, "sh -c 'echo broken >&2; exit 3'");
    assert_eq!(broken["exit_codes"], serde_json::json!([3]), "{broken}");
    assert_eq!(
        result(&json, "true")["runs"],
        3,
        "the other command continued"
    );
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs[0]["status"], "failed");
}

#[test]
fn with_ignore_failure_failed_runs_are_recorded_and_measuring_continues() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-i",
            "-r",
            "3",
            "sh -c 'exit 3'",
            "true",
            "--export-json",
            "o.json",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let json = json_file(&w.path().join("o.json"));
    let failing = result(&json, "sh -c 'exit 3'");
    assert_eq!(
        failing["exit_codes"],
        serde_json::json!([3, 3, 3]),
        "{failing}"
    );
    assert_eq!(result(&json, "true")["runs"], 3);
}

#[test]
fn with_ignore_failure_failed_warmups_are_not_counted_as_failed_runs() {
    let w = Workdir::new();
    let out = bench(&w, &["-i", "-w", "3", "-r", "2", "sh -c 'exit 3'"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains("2 of 2 runs failed"),
        "only measured runs count: {out:?}"
    );
}

#[test]
fn timeouts_kill_the_run_and_record_it_as_timed_out() {
    let w = Workdir::with_fs_hot();
    let out = bench(
        &w,
        &[
            "--timeout",
            "0.2",
            "-r",
            "2",
            "sleep 30",
            "true",
            "--export-json",
            "o.json",
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("timed out"), "{out:?}");
    let json = json_file(&w.path().join("o.json"));
    let slow = result(&json, "sleep 30");
    assert_eq!(slow["exit_codes"], serde_json::json!([null]), "{slow}");
    assert!(
        slow["failures"][0].as_str().unwrap().contains("timed out"),
        "{slow}"
    );
    let records = stored_records(&w);
    assert!(
        records
            .iter()
            .any(|r| r["outcome"]["status"] == "timed_out"),
        "{records:?}"
    );

    let w = Workdir::with_fs_hot();
    let out = bench(&w, &["-i", "--timeout", "0.1", "-r", "2", "sleep 30"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        stored_records(&w).len(),
        2,
        "with -i every timed-out run is recorded"
    );
}

#[test]
fn parameter_scans_and_lists_name_and_substitute() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-r",
            "1",
            "-P",
            "n",
            "1",
            "3",
            "-n",
            "n-{n}",
            "sh -c 'echo {n} >> log'",
            "--export-json",
            "o.json",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), ["1", "2", "3"]);
    let json = json_file(&w.path().join("o.json"));
    for n in ["1", "2", "3"] {
        assert_eq!(result(&json, &format!("n-{n}"))["parameters"]["n"], n);
    }

    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-r",
            "1",
            "-P",
            "t",
            "0",
            "1",
            "-D",
            "0.5",
            "sh -c 'echo {t} >> log'",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    // hyperfine prints MIN as written, the sums with the step's fraction digits.
    assert_eq!(log(&w), ["0", "0.5", "1.0"]);

    // Negative and hyphenated values, as hyperfine accepts them.
    let w = Workdir::new();
    let out = bench(
        &w,
        &["-r", "1", "-P", "n", "-2", "-1", "sh -c 'echo {n} >> log'"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), ["-2", "-1"]);
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-r",
            "1",
            "-L",
            "x",
            "-a,-b",
            "-L",
            "y",
            "-c",
            "sh -c 'echo {x}{y} >> log'",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(log(&w), ["-a-c", "-b-c"]);
}

#[test]
fn bad_flags_are_usage_errors() {
    let w = Workdir::new();
    for (args, needle) in [
        (
            &["-p", "a", "-p", "b", "x", "y", "z"][..],
            "once per benchmark",
        ),
        (&["-P", "n", "5", "1", "x"][..], "empty range"),
        (&["-P", "n", "1", "2", "-D", "0", "x"][..], "positive"),
        (&["-m", "9", "-M", "2", "x"][..], "smaller"),
        (&["-n", "a", "-n", "b", "x"][..], "at most one name"),
        (&["'unclosed"][..], "quotes"),
        // hyperfine refuses a scan combined with lists.
        (
            &["-P", "n", "1", "2", "-L", "m", "a,b", "x"][..],
            "cannot be used with",
        ),
    ] {
        let out = bench(&w, args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr().contains(needle), "{args:?}: {out:?}");
    }
}

#[test]
fn shell_mode_subtracts_the_shell_and_records_it() {
    let w = Workdir::new();
    let out = bench(&w, &["-S", "sh", "-r", "3", "echo hi | cat"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains("shell spawn time subtracted"),
        "{out:?}"
    );
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs[0]["tags"]["run.shell"], "sh");
    assert!(runs[0]["tags"]["run.shell_overhead_ns"].as_str().is_some());
}

#[test]
fn captured_output_is_stored_bounded() {
    let w = Workdir::with_fs_hot();
    let out = bench(
        &w,
        &[
            "-r",
            "2",
            "--output",
            "capture",
            "--output-limit",
            "5",
            "echo hello-world",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let records = stored_records(&w);
    assert_eq!(records.len(), 2);
    let digest = records[0]["tags"]["output.stdout"]
        .as_str()
        .expect("stdout digest")
        .to_owned();
    assert_eq!(records[0]["tags"]["output.truncated"], "true");
    let blob = w
        .path()
        .join(".benchfleet/blobs/output")
        .join(&digest[0..2])
        .join(&digest[2..4])
        .join(&digest);
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), "hello");
}

/// Outputs at or above `storage.policy.stream_threshold_bytes` (several MiB here, the threshold
/// lowered to 1 MiB explicitly) are streamed into the store from the file they were captured to,
/// below it put whole; either way the stored blob is byte for byte what the command printed, cut
/// at `--output-limit`, and named by the same record tags.
#[test]
fn big_captured_outputs_are_stored_byte_identical() {
    let w = Workdir::new();
    w.file(
        "benchfleet.toml",
        "[storage.hot]\nbackend = \"fs\"\n[storage.policy]\nstream_threshold_bytes = \"1MiB\"\n",
    );
    // Pseudo-random bytes (so no two chunks are alike), not a multiple of any buffer size.
    let size = 5 * 1024 * 1024 + 17;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(w.path().join("data.bin"), &data).unwrap();

    // (--output-limit, bytes kept, truncated)
    let cases = [
        (8 * 1024 * 1024, size, false), // all of it, streamed
        (3 * 1024 * 1024 + 5, 3 * 1024 * 1024 + 5, true), // cut, still streamed
        (1000, 1000, true),             // cut below the threshold: one put
    ];
    for (limit, kept, truncated) in cases {
        let out = bench(
            &w,
            &[
                "-N",
                "-r",
                "2",
                "--output",
                "capture",
                "--output-limit",
                &limit.to_string(),
                "-n",
                &format!("cat-{limit}"),
                "cat data.bin",
            ],
        );
        assert_eq!(out.code(), 0, "{out:?}");
        let records: Vec<_> = stored_records(&w)
            .into_iter()
            .filter(|r| r["name"] == format!("cat-{limit}"))
            .collect();
        assert_eq!(records.len(), 2, "limit {limit}");
        for r in &records {
            let digest = r["tags"]["output.stdout"]
                .as_str()
                .unwrap_or_else(|| panic!("limit {limit}: no stdout digest in {r}"));
            assert_eq!(
                r["tags"].get("output.truncated").and_then(|t| t.as_str()),
                truncated.then_some("true"),
                "limit {limit}"
            );
            let blob = w
                .path()
                .join(".benchfleet/blobs/output")
                .join(&digest[0..2])
                .join(&digest[2..4])
                .join(digest);
            let stored = std::fs::read(&blob)
                .unwrap_or_else(|e| panic!("limit {limit}: {}: {e}", blob.display()));
            assert_eq!(stored.len(), kept, "limit {limit}");
            assert!(stored == data[..kept], "limit {limit}: stored bytes differ");
        }
    }
    // Nothing is left behind beside the store (the capture files are unlinked).
    let mut names: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".benchfleet", "benchfleet.toml", "data.bin"]);
}

#[test]
fn parallel_jobs_are_pinned_and_say_they_ran_beside_others() {
    let w = Workdir::new();
    let out = bench(
        &w,
        &[
            "-j",
            "2",
            "-r",
            "2",
            "sh -c 'grep Cpus_allowed_list /proc/self/status >> log'",
            "sleep 0.05",
            "--export-json",
            "o.json",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr().contains("ran beside others"), "{out:?}");
    // The export says, per run, whether it ran beside others, and that no counters were taken.
    let json = json_file(&w.path().join("o.json"));
    for r in json["results"].as_array().unwrap() {
        let concurrent = r["concurrent"].as_array().expect("concurrent per run");
        assert_eq!(concurrent.len(), 2, "{r}");
        assert!(concurrent.iter().all(serde_json::Value::is_boolean), "{r}");
        assert_eq!(r["instructions"], serde_json::json!([null, null]), "{r}");
    }
    let allowed = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|s| s.trim().to_owned())
        })
        .unwrap();
    let multi = allowed.contains(',') || allowed.contains('-');
    for line in log(&w) {
        let cpus = line.split(':').nth(1).unwrap().trim().to_owned();
        if multi {
            assert!(
                !cpus.contains(',') && !cpus.contains('-'),
                "pinned to one CPU: {line}"
            );
        }
    }
    for r in stored_records(&w) {
        assert!(
            matches!(r["tags"]["run.concurrent"].as_str(), Some("true" | "false")),
            "{r}"
        );
    }
}

#[test]
fn more_jobs_than_physical_cores_are_warned_about() {
    let w = Workdir::new();
    // No machine running these tests has 512 physical cores.
    let out = bench(&w, &["-j", "512", "-r", "1", "true"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr()
            .contains("-j 512 runs more benchmarks at once than this machine has physical cores"),
        "{out:?}"
    );
    let out = bench(&w, &["-r", "1", "true"]);
    assert!(!out.stderr().contains("physical cores"), "{out:?}");
}

#[test]
fn system_samples_are_stored_with_the_run() {
    let w = Workdir::with_fs_hot();
    let out = w.run(&[
        "bench",
        "--sample-interval",
        "20ms",
        "-r",
        "3",
        "sleep 0.05",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr().contains("CPU busy on average"), "{out:?}");
    let runs = w.json(&["history", "--format", "json"]);
    let digest = runs[0]["tags"]["system.series"]
        .as_str()
        .expect("series digest")
        .to_owned();
    assert!(runs[0]["tags"]["system.noisy"].as_str().is_some());
    let blob = w
        .path()
        .join(".benchfleet/blobs/system")
        .join(&digest[0..2])
        .join(&digest[2..4])
        .join(&digest);
    let series = json_file(&blob);
    assert!(
        !series["samples"].as_array().unwrap().is_empty(),
        "{series}"
    );
}
