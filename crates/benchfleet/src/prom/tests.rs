use super::*;
use benchfleet_model::NodeKind;

fn value(text: &str, series: &str) -> f64 {
    let parsed = parse_exposition(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    *parsed
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn started(node: usize) -> RunnerEvent {
    RunnerEvent::NodeStarted {
        node,
        name: format!("n{node}"),
        kind: NodeKind::Benchmark,
    }
}

fn finished(node: usize, state: NodeState, runs: usize) -> RunnerEvent {
    RunnerEvent::NodeFinished {
        node,
        name: format!("n{node}"),
        state,
        runs,
        failure: None,
    }
}

fn measured(ok: bool) -> RunnerEvent {
    RunnerEvent::Measured {
        node: 0,
        iteration: 0,
        planned: 1,
        wall: Duration::from_millis(1),
        ok,
    }
}

#[test]
fn events_drive_the_counters_and_node_gauges() {
    // (events, expected series values)
    let start = RunnerEvent::Started {
        run_id: "01J00000000000000000000000".parse().unwrap(),
        nodes: 4,
    };
    type Case = (Vec<RunnerEvent>, Vec<(&'static str, f64)>);
    let cases: Vec<Case> = vec![
        (
            vec![start.clone()],
            vec![
                ("benchfleet_queue_depth", 4.0),
                ("benchfleet_running_jobs", 0.0),
                ("benchfleet_nodes{state=\"queued\"}", 4.0),
                ("benchfleet_suite_runs_started_total", 1.0),
            ],
        ),
        (
            vec![
                start.clone(),
                started(0),
                started(1),
                measured(true),
                measured(false),
            ],
            vec![
                ("benchfleet_queue_depth", 2.0),
                ("benchfleet_running_jobs", 2.0),
                ("benchfleet_runs_finished_total", 2.0),
                ("benchfleet_runs_failed_total", 1.0),
            ],
        ),
        (
            // Runs count as started when they start, as finished when they end.
            vec![
                start.clone(),
                started(0),
                RunnerEvent::RunStarted {
                    node: 0,
                    iteration: 0,
                },
                measured(true),
                RunnerEvent::RunStarted {
                    node: 0,
                    iteration: 1,
                },
            ],
            vec![
                ("benchfleet_runs_started_total", 2.0),
                ("benchfleet_runs_finished_total", 1.0),
                ("benchfleet_runs_failed_total", 0.0),
            ],
        ),
        (
            vec![
                start.clone(),
                started(0),
                finished(0, NodeState::Succeeded, 3),
                started(1),
                finished(1, NodeState::Failed, 2),
                started(2),
                finished(2, NodeState::Cached, 5),
                RunnerEvent::NodeSkipped {
                    node: 3,
                    name: "n3".into(),
                    because: "n1".into(),
                },
            ],
            vec![
                ("benchfleet_queue_depth", 0.0),
                ("benchfleet_running_jobs", 0.0),
                ("benchfleet_nodes{state=\"done\"}", 1.0),
                ("benchfleet_nodes{state=\"failed\"}", 1.0),
                ("benchfleet_nodes{state=\"cached\"}", 1.0),
                ("benchfleet_nodes{state=\"skipped\"}", 1.0),
                ("benchfleet_records_stored_total", 5.0),
            ],
        ),
        (
            // A retried node: failed, then started again and succeeded.
            vec![
                start,
                started(0),
                finished(0, NodeState::Failed, 0),
                started(0),
                finished(0, NodeState::Succeeded, 1),
            ],
            vec![
                ("benchfleet_nodes{state=\"failed\"}", 0.0),
                ("benchfleet_nodes{state=\"done\"}", 1.0),
                ("benchfleet_queue_depth", 3.0),
            ],
        ),
    ];
    for (events, want) in cases {
        let m = RunnerMetrics::new();
        for e in &events {
            m.apply(e);
        }
        let text = m.encode();
        for (series, v) in want {
            assert_eq!(value(&text, series), v, "{series} after {events:?}");
        }
    }
}

fn run_started(node: usize, iteration: u32) -> RunnerEvent {
    RunnerEvent::RunStarted { node, iteration }
}

fn measured_of(node: usize, iteration: u32, ok: bool) -> RunnerEvent {
    RunnerEvent::Measured {
        node,
        iteration,
        planned: 2,
        wall: Duration::from_millis(1),
        ok,
    }
}

/// Apply `events` and compare series after each prefix that has expectations: `(after how many
/// events, series, value)`.
fn check(events: &[RunnerEvent], want: &[(usize, &str, f64)]) -> RunnerMetrics {
    let m = RunnerMetrics::new();
    for (i, e) in events.iter().enumerate() {
        m.apply(e);
        for (_, series, v) in want.iter().filter(|(after, ..)| *after == i + 1) {
            assert_eq!(
                value(&m.encode(), series),
                *v,
                "{series} after {:?}",
                &events[..=i]
            );
        }
    }
    m
}

/// `bench` with two commands measured side by side (`-j 2`), two runs each, one failing, records
/// stored in batches as they go: the counts its direct updates gave (runs started/finished/failed,
/// records stored, running jobs, suite runs), from its events alone.
#[test]
fn a_bench_event_stream_gives_the_counts_of_bench() {
    let start = RunnerEvent::Started {
        run_id: "01J00000000000000000000000".parse().unwrap(),
        nodes: 2,
    };
    let events = vec![
        start,                   // 1
        started(0),              // 2
        started(1),              // 3
        run_started(0, 0),       // 4
        run_started(1, 0),       // 5
        measured_of(0, 0, true), // 6
        measured_of(1, 0, true), // 7
        RunnerEvent::Stored {
            node: 0,
            records: 1,
        }, // 8
        RunnerEvent::Stored {
            node: 1,
            records: 1,
        }, // 9
        run_started(0, 1),       // 10
        run_started(1, 1),       // 11
        measured_of(0, 1, true), // 12
        measured_of(1, 1, false), // 13
        RunnerEvent::Stored {
            node: 0,
            records: 1,
        }, // 14
        RunnerEvent::Stored {
            node: 1,
            records: 1,
        }, // 15
        finished(0, NodeState::Succeeded, 2), // 16
        finished(1, NodeState::Failed, 2), // 17
    ];
    let m = check(
        &events,
        &[
            (1, "benchfleet_queue_depth", 2.0),
            (1, "benchfleet_suite_runs_started_total", 1.0),
            (5, "benchfleet_runs_started_total", 2.0),
            (8, "benchfleet_records_stored_total", 1.0),
            (13, "benchfleet_runs_finished_total", 4.0),
            (13, "benchfleet_runs_failed_total", 1.0),
            (15, "benchfleet_records_stored_total", 4.0),
            // The records announced while measuring are not counted again at the end.
            (17, "benchfleet_records_stored_total", 4.0),
            (17, "benchfleet_runs_started_total", 4.0),
            (17, "benchfleet_running_jobs", 0.0),
            (17, "benchfleet_queue_depth", 0.0),
            (17, "benchfleet_nodes{state=\"done\"}", 1.0),
            (17, "benchfleet_nodes{state=\"failed\"}", 1.0),
            (17, "benchfleet_suite_runs_finished_total", 0.0),
        ],
    );
    // The stream's end finishes the run.
    m.suite_finished();
    assert_eq!(
        value(&m.encode(), "benchfleet_suite_runs_finished_total"),
        1.0
    );
}

/// `load`: one node whose runs overlap. Running jobs are its runs in flight, missed starts and
/// stored batches count, and the node's end does not count its records twice.
#[test]
fn a_load_event_stream_gives_the_counts_of_load() {
    let start = RunnerEvent::Started {
        run_id: "01J00000000000000000000000".parse().unwrap(),
        nodes: 1,
    };
    let events = vec![
        start,                                         // 1
        started(0),                                    // 2
        run_started(0, 0),                             // 3
        run_started(0, 1),                             // 4
        run_started(0, 2),                             // 5
        measured_of(0, 0, true),                       // 6
        RunnerEvent::MissedStart { node: 0, step: 0 }, // 7
        measured_of(0, 2, false),                      // 8
        RunnerEvent::Stored {
            node: 0,
            records: 2,
        }, // 9
        measured_of(0, 1, true),                       // 10
        RunnerEvent::Stored {
            node: 0,
            records: 1,
        }, // 11
        finished(0, NodeState::Failed, 3),             // 12
    ];
    let m = check(
        &events,
        &[
            (1, "benchfleet_queue_depth", 1.0),
            (2, "benchfleet_queue_depth", 0.0),
            (2, "benchfleet_running_jobs", 1.0),
            (5, "benchfleet_running_jobs", 3.0),
            (5, "benchfleet_runs_started_total", 3.0),
            (6, "benchfleet_running_jobs", 2.0),
            (7, "benchfleet_missed_starts_total", 1.0),
            (8, "benchfleet_runs_failed_total", 1.0),
            (9, "benchfleet_records_stored_total", 2.0),
            (12, "benchfleet_records_stored_total", 3.0),
            (12, "benchfleet_runs_finished_total", 3.0),
            (12, "benchfleet_running_jobs", 0.0),
            (12, "benchfleet_queue_depth", 0.0),
            (12, "benchfleet_suite_runs_started_total", 1.0),
        ],
    );
    m.suite_finished();
    assert_eq!(
        value(&m.encode(), "benchfleet_suite_runs_finished_total"),
        1.0
    );
}

/// A stream that ends before its run started (e.g. the command could not be set up) counts no
/// run as finished; one that started counts once.
#[test]
fn only_a_started_run_counts_as_finished() {
    let m = RunnerMetrics::new();
    m.suite_finished();
    assert_eq!(
        value(&m.encode(), "benchfleet_suite_runs_finished_total"),
        0.0
    );
    m.apply(&RunnerEvent::Started {
        run_id: "01J00000000000000000000000".parse().unwrap(),
        nodes: 1,
    });
    m.suite_finished();
    m.suite_finished();
    let text = m.encode();
    assert_eq!(value(&text, "benchfleet_suite_runs_started_total"), 1.0);
    assert_eq!(value(&text, "benchfleet_suite_runs_finished_total"), 1.0);
}

#[test]
fn cpu_utilisation_is_the_mean_busy_fraction_of_all_cores() {
    let m = RunnerMetrics::new();
    assert_eq!(value(&m.encode(), "benchfleet_cpu_utilisation"), 0.0);
    let core = |busy: f32| benchfleet_metrics::CoreUsage {
        busy,
        steal: 0.0,
        iowait: 0.0,
    };
    m.set_system(&benchfleet_metrics::Sample {
        t_ms: 0,
        cores: vec![core(0.25), core(0.75), core(1.0), core(0.0)],
        mem_total_bytes: 4096,
        mem_used_bytes: 1024,
        disk_read_bytes: 0,
        disk_write_bytes: 0,
        load1: 1.5,
        load5: 0.0,
        load15: 0.0,
        own_busy_cores: 0.5,
    });
    let text = m.encode();
    for (series, v) in [
        ("benchfleet_cpu_utilisation", 0.5),
        ("benchfleet_own_cpu_cores", 0.5),
        ("benchfleet_memory_used_bytes", 1024.0),
        ("benchfleet_load1", 1.5),
    ] {
        assert_eq!(value(&text, series), v, "{series}");
    }
    // A reading without cores (unreadable /proc/stat) keeps the last utilisation.
    m.set_system(&benchfleet_metrics::Sample::default());
    assert_eq!(value(&m.encode(), "benchfleet_cpu_utilisation"), 0.5);
}

#[tokio::test]
async fn finish_takes_a_last_system_reading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.prom");
    let metrics = Arc::new(RunnerMetrics::new());
    // The interval never elapses: only `finish` can read the machine.
    let expo = start(
        metrics.clone(),
        &PromOptions {
            file: Some(file.clone()),
            interval: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&before, "benchfleet_memory_used_bytes"), 0.0);
    expo.finish().await.unwrap();
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        value(&after, "benchfleet_memory_used_bytes") > 0.0,
        "the final reading is written: {after}"
    );
}

#[test]
fn exposition_parser_rejects_malformed_text() {
    for (text, needle) in [
        ("x 1\n", "EOF"),
        ("x one\n# EOF\n", "not a number"),
        ("# EOF\nx 1\n", "after # EOF"),
        ("x{a=\"b\" 1\n# EOF\n", "unclosed"),
        ("x 1\nx 2\n# EOF\n", "duplicate"),
        ("# hello\n# EOF\n", "unknown comment"),
        ("9x 1\n# EOF\n", "bad metric name"),
    ] {
        let e = parse_exposition(text).unwrap_err();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    assert_eq!(
        parse_exposition("x{a=\"1\"} 2.5\n# EOF\n").unwrap().len(),
        1
    );
}

#[test]
fn only_loopback_addresses_are_accepted() {
    for (addr, ok) in [
        ("127.0.0.1:9464", true),
        ("127.0.0.1:0", true),
        ("[::1]:9464", true),
        ("0.0.0.0:9464", false),
        ("192.168.1.10:9464", false),
        ("[::]:9464", false),
        ("localhost:9464", false),
        ("9464", false),
    ] {
        assert_eq!(loopback_addr(addr).is_ok(), ok, "{addr}");
    }
    assert!(matches!(
        loopback_addr("0.0.0.0:1"),
        Err(PromError::NotLoopback { .. })
    ));
}
