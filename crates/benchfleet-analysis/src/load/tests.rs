use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn stress(
    start: u32,
    max: u32,
    steps: u32,
    rate: Option<f64>,
    max_rate: Option<f64>,
) -> LoadProfile {
    LoadProfile::stress(&StressSpec {
        start_concurrency: start,
        max_concurrency: max,
        steps,
        step_duration: ms(1000),
        rate,
        max_rate,
    })
    .unwrap()
}

fn spike(
    duration: u64,
    burst_duration: u64,
    rate: Option<f64>,
    burst_rate: Option<f64>,
) -> LoadProfile {
    LoadProfile::spike(&SpikeSpec {
        duration: ms(duration),
        baseline: 2,
        burst: 8,
        burst_duration: ms(burst_duration),
        rate,
        burst_rate,
    })
    .unwrap()
}

fn soak(duration: u64, concurrency: u32, rate: Option<f64>) -> LoadProfile {
    LoadProfile::soak(&SoakSpec {
        duration: ms(duration),
        concurrency,
        rate,
    })
    .unwrap()
}

/// `(t in ms, expected (step, concurrency, rate))` for every case.
/// (step index, concurrency, rate) in force.
type InForce = Option<(usize, u32, Option<f64>)>;

fn check_at(p: &LoadProfile, cases: &[(u64, InForce)]) {
    for &(t, want) in cases {
        let got = p.step_at(ms(t)).map(|s| (s.index, s.concurrency, s.rate));
        assert_eq!(got, want, "{:?} at {t} ms", p.kind);
    }
}

#[test]
fn soak_is_one_fixed_step() {
    let p = soak(3000, 4, None);
    check_at(
        &p,
        &[
            (0, Some((0, 4, None))),
            (2999, Some((0, 4, None))),
            (3000, None),
            (9999, None),
        ],
    );
    assert_eq!(p.duration(), ms(3000));
    assert!(!p.open_loop());
    let p = soak(1000, 2, Some(50.0));
    check_at(&p, &[(500, Some((0, 2, Some(50.0))))]);
    assert!(p.open_loop());
}

#[test]
fn stress_ramps_linearly_in_equal_steps() {
    let cases: &[(u32, u32, u32, &[u32])] = &[
        (1, 4, 4, &[1, 2, 3, 4]),
        (1, 8, 4, &[1, 3, 6, 8]),
        (2, 2, 3, &[2, 2, 2]),
        (1, 10, 1, &[10]),
        (1, 3, 5, &[1, 2, 2, 3, 3]),
    ];
    for &(start, max, n, want) in cases {
        let p = stress(start, max, n, None, None);
        let got: Vec<u32> = p.steps.iter().map(|s| s.concurrency).collect();
        assert_eq!(got, want, "stress {start}..{max} in {n}");
        assert_eq!(p.duration(), ms(1000 * u64::from(n)));
        for (i, c) in want.iter().enumerate() {
            let t = 1000 * i as u64;
            check_at(
                &p,
                &[(t, Some((i, *c, None))), (t + 999, Some((i, *c, None)))],
            );
        }
        check_at(&p, &[(1000 * u64::from(n), None)]);
    }
    let p = stress(1, 3, 3, Some(10.0), Some(30.0));
    let rates: Vec<Option<f64>> = p.steps.iter().map(|s| s.rate).collect();
    assert_eq!(rates, [Some(10.0), Some(20.0), Some(30.0)]);
    let p = stress(1, 3, 3, Some(10.0), None);
    assert!(p.steps.iter().all(|s| s.rate == Some(10.0)));
}

#[test]
fn spike_puts_the_burst_in_the_middle() {
    let p = spike(10_000, 2000, None, None);
    let got: Vec<(&str, Duration, Duration, u32)> = p
        .steps
        .iter()
        .map(|s| (s.label.as_str(), s.start, s.duration, s.concurrency))
        .collect();
    assert_eq!(
        got,
        [
            ("baseline", ms(0), ms(4000), 2),
            ("burst", ms(4000), ms(2000), 8),
            ("recovery", ms(6000), ms(4000), 2),
        ]
    );
    check_at(
        &p,
        &[
            (3999, Some((0, 2, None))),
            (4000, Some((1, 8, None))),
            (5999, Some((1, 8, None))),
            (6000, Some((2, 2, None))),
            (10_000, None),
        ],
    );
    let rates = |p: &LoadProfile| p.steps.iter().map(|s| s.rate).collect::<Vec<_>>();
    assert_eq!(
        rates(&spike(3000, 1000, Some(5.0), None)),
        [Some(5.0), Some(20.0), Some(5.0)],
        "burst rate scales with burst / baseline"
    );
    assert_eq!(
        rates(&spike(3000, 1000, Some(5.0), Some(7.0))),
        [Some(5.0), Some(7.0), Some(5.0)]
    );
}

#[test]
fn bad_parameters_are_refused_with_the_flag_named() {
    let cases: Vec<(Result<LoadProfile, LoadError>, &str)> = vec![
        (
            LoadProfile::soak(&SoakSpec {
                duration: ms(0),
                concurrency: 1,
                rate: None,
            }),
            "--duration",
        ),
        (
            LoadProfile::soak(&SoakSpec {
                duration: ms(10),
                concurrency: 0,
                rate: None,
            }),
            "--concurrency",
        ),
        (
            LoadProfile::soak(&SoakSpec {
                duration: ms(10),
                concurrency: 1,
                rate: Some(0.0),
            }),
            "--rate",
        ),
        (
            LoadProfile::soak(&SoakSpec {
                duration: ms(10),
                concurrency: 1,
                rate: Some(f64::NAN),
            }),
            "--rate",
        ),
        (
            LoadProfile::stress(&StressSpec {
                start_concurrency: 4,
                max_concurrency: 2,
                steps: 2,
                step_duration: ms(10),
                rate: None,
                max_rate: None,
            }),
            "--max-concurrency",
        ),
        (
            LoadProfile::stress(&StressSpec {
                start_concurrency: 1,
                max_concurrency: 2,
                steps: 0,
                step_duration: ms(10),
                rate: None,
                max_rate: None,
            }),
            "--steps",
        ),
        (
            LoadProfile::stress(&StressSpec {
                start_concurrency: 1,
                max_concurrency: 2,
                steps: 2,
                step_duration: ms(10),
                rate: None,
                max_rate: Some(3.0),
            }),
            "--max-rate needs --rate",
        ),
        (
            LoadProfile::spike(&SpikeSpec {
                duration: ms(10),
                baseline: 1,
                burst: 2,
                burst_duration: ms(10),
                rate: None,
                burst_rate: None,
            }),
            "--burst-duration",
        ),
    ];
    for (result, flag) in cases {
        match result {
            Err(e) => assert!(e.0.contains(flag), "{flag}: {e}"),
            Ok(p) => panic!("{flag}: accepted {p:?}"),
        }
    }
    assert!("burst".parse::<ProfileKind>().is_err());
    assert_eq!("stress".parse::<ProfileKind>(), Ok(ProfileKind::Stress));
}

#[test]
fn token_schedule_follows_the_rate_of_each_step() {
    // (profile, expected (step, at ms, deadline ms))
    let p = soak(500, 1, Some(4.0));
    let got: Vec<(usize, u128, u128)> = p
        .tokens()
        .map(|t| (t.step, t.at.as_millis(), t.deadline.as_millis()))
        .collect();
    assert_eq!(got, [(0, 0, 250), (0, 250, 500)]);

    let p = stress(1, 2, 2, Some(2.0), Some(4.0));
    let got: Vec<(usize, u128, u128)> = p
        .tokens()
        .map(|t| (t.step, t.at.as_millis(), t.deadline.as_millis()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 0, 500),
            (0, 500, 1000),
            (1, 1000, 1250),
            (1, 1250, 1500),
            (1, 1500, 1750),
            (1, 1750, 2000)
        ]
    );

    assert_eq!(
        soak(1000, 1, None).tokens().count(),
        0,
        "closed loop: no schedule"
    );

    // Long, fast schedules do not drift: the last token is still inside the step.
    let p = soak(10_000, 1, Some(3.0));
    let tokens: Vec<Token> = p.tokens().collect();
    assert_eq!(tokens.len(), 30);
    assert!(
        tokens
            .windows(2)
            .all(|w| w[0].at < w[1].at && w[0].deadline == w[1].at)
    );
    assert_eq!(tokens.last().map(|t| t.deadline), Some(ms(10_000)));
}

fn done(step: usize, start: u64, end: u64, ok: bool) -> Completion {
    Completion {
        step,
        start: ms(start),
        end: ms(end),
        latency_ns: (end - start) * 1_000_000,
        ok,
    }
}

#[test]
fn completions_fall_into_windows_by_end_and_steps_by_start() {
    let p = stress(1, 2, 2, None, None); // steps [0,1000) c=1, [1000,2000) c=2
    let mut s = LoadStats::new(&p, ms(500)).unwrap();
    for (t, want) in [(0, 0), (499, 0), (500, 1), (1999, 3), (2000, 4)] {
        assert_eq!(s.window_of(ms(t)), want, "window of {t} ms");
    }
    let runs = [
        done(0, 0, 100, true),
        done(0, 100, 300, true),
        done(0, 300, 700, true),   // window 1
        done(0, 900, 1100, false), // window 2, failed, step 0
        done(1, 1000, 1400, true), // window 2
        done(1, 1900, 2300, true), // after the end: drain window 4
    ];
    for r in &runs {
        s.record(r);
    }
    s.missed(1, ms(1600));

    let w = s.windows();
    let got: Vec<(usize, u64, u64, u64, &str, u32)> = w
        .iter()
        .map(|p| {
            (
                p.index,
                p.completed,
                p.failed,
                p.missed,
                p.label.as_str(),
                p.concurrency,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 2, 0, 0, "step 1", 1),
            (1, 1, 0, 0, "step 1", 1),
            (2, 1, 1, 0, "step 2", 2),
            (3, 0, 0, 1, "step 2", 2),
            (4, 1, 0, 0, "drain", 0),
        ]
    );
    assert_eq!(w[0].throughput, 4.0, "2 runs in 0.5 s");
    assert_eq!(w[4].end, ms(2300), "the last window ends with the last run");
    assert_eq!(w[4].throughput, 1.0 / 0.3);

    let st = s.steps();
    let got: Vec<(u64, u64, u64)> = st
        .iter()
        .map(|p| (p.completed, p.failed, p.missed))
        .collect();
    assert_eq!(got, [(3, 1, 0), (2, 0, 1)]);
    assert_eq!(st[1].throughput, 2.0, "2 runs over a 1 s step");

    let t = s.total();
    assert_eq!((t.completed, t.failed, t.missed), (5, 1, 1));
    assert_eq!(t.end, ms(2300));
}

#[test]
fn percentiles_per_window_come_from_that_window_only() {
    let p = soak(2000, 4, None);
    let mut s = LoadStats::new(&p, ms(1000)).unwrap();
    // Window 0: latencies 1..=100 ms; window 1: 500 ms each.
    for i in 1..=100u64 {
        s.record(&Completion {
            step: 0,
            start: ms(0),
            end: ms(900),
            latency_ns: i * 1_000_000,
            ok: true,
        });
    }
    for _ in 0..10 {
        s.record(&Completion {
            step: 0,
            start: ms(1000),
            end: ms(1500),
            latency_ns: 500_000_000,
            ok: true,
        });
    }
    let w = s.windows();
    let close = |got: f64, want_ms: u64| {
        let want = want_ms as f64 * 1e6;
        assert!((got - want).abs() <= want * 0.002, "{got} vs {want_ms} ms");
    };
    close(w[0].latency.median, 50);
    close(w[0].latency.p90, 90);
    close(w[0].latency.p99, 99);
    assert_eq!(w[0].latency.max, 100_000_000.0);
    close(w[1].latency.median, 500);
    assert_eq!(w[1].latency.max, 500_000_000.0);
    let total = s.total();
    assert_eq!(total.completed, 110);
    close(total.latency.p99, 500);
}

/// A period's latency is written as load exports always wrote it (integer nanoseconds, `p50`,
/// `std_dev`), and read back.
#[test]
fn period_latency_keeps_its_export_shape() {
    let p = LoadProfile::soak(&SoakSpec {
        concurrency: 1,
        duration: ms(1000),
        rate: None,
    })
    .unwrap();
    let mut s = LoadStats::new(&p, ms(1000)).unwrap();
    for latency_ms in [10, 20, 30] {
        s.record(&Completion {
            step: 0,
            start: ms(0),
            end: ms(500),
            latency_ns: latency_ms * 1_000_000,
            ok: true,
        });
    }
    let total = s.total();
    let json = serde_json::to_value(&total).unwrap();
    assert_eq!(
        json["latency"],
        serde_json::json!({
            "count": 3, "mean": 20_000_000.0, "std_dev": 10_000_000.0, "min": 10_000_000,
            "p50": 20_004_863, "p90": 30_015_487, "p99": 30_015_487, "max": 30_000_000,
        })
    );
    let back: Period = serde_json::from_value(json).unwrap();
    assert_eq!(
        (back.latency.median, back.latency.p90, back.latency.max),
        (total.latency.median, total.latency.p90, total.latency.max)
    );
    let empty = serde_json::to_value(LoadStats::new(&p, ms(1000)).unwrap().total()).unwrap();
    assert_eq!(empty["latency"]["std_dev"], 0.0);
    assert_eq!(empty["latency"]["p50"], 0);
}
