//! Acceptance of change-point detection (issue 7, item 3, minus the timing, which is measured by
//! `benches/change_points.rs`): on synthetic 10,000-point series with known shifts of 3–10% at
//! 1% noise, every shift is found within ±5 points with at most one spurious change.
//!
//! Issue 19, "change points that do not cry wolf": A/A series (no change) of 100–10,000 points
//! at 0.5–3% noise give no change point, short blips of noise are not reported, and 2% shifts
//! are still found. Rates over 100 seeds per case: `examples/change_point_rates.rs`.

mod sim;

use benchfleet_analysis::{ChangePointConfig, change_points};

#[test]
fn finds_every_known_shift_within_five_points() {
    for seed in 1..=5 {
        let (series, shifts) = sim::shifted_series(seed);
        let found = change_points(&series, &ChangePointConfig::default()).unwrap();
        for &s in &shifts {
            assert!(
                found.iter().any(|c| c.index.abs_diff(s) <= 5),
                "seed {seed}: shift at {s} not found; found {:?}",
                found.iter().map(|c| c.index).collect::<Vec<_>>()
            );
        }
        let spurious = found
            .iter()
            .filter(|c| shifts.iter().all(|&s| c.index.abs_diff(s) > 5))
            .count();
        println!(
            "seed {seed}: {} shifts, {} found, {spurious} spurious",
            shifts.len(),
            found.len()
        );
        assert!(spurious <= 1, "seed {seed}: {spurious} spurious changes");
        for c in &found {
            assert!(c.p_value < 0.001, "{c:?}");
            let pct = (c.after_mean - c.before_mean) / c.before_mean * 100.0;
            assert!(
                (pct - c.percent).abs() < 1e-9 && c.percent.abs() > 2.0,
                "{c:?}"
            );
        }
    }
}

#[test]
fn reports_magnitudes_of_a_simple_step() {
    // 300 points alternating 0.99/1.01 (mean 1.0), then 200 at 1.04/1.06 (mean 1.05).
    let series: Vec<f64> = (0..500)
        .map(|i| if i < 300 { 1.0 } else { 1.05 } + if i % 2 == 0 { -0.01 } else { 0.01 })
        .collect();
    let found = change_points(&series, &ChangePointConfig::default()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let c = found[0];
    assert_eq!(c.index, 300);
    assert!(
        (c.before_mean - 1.0).abs() < 1e-12 && (c.after_mean - 1.05).abs() < 1e-12,
        "{c:?}"
    );
    assert!((c.percent - 5.0).abs() < 1e-9, "{c:?}");
}

#[test]
fn quiet_series_have_no_changes_and_min_magnitude_filters() {
    for seed in 10..13 {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let series = sim::sample(&mut rng, 5_000, 1.0, 0.02);
        let found = change_points(&series, &ChangePointConfig::default()).unwrap();
        assert!(found.is_empty(), "seed {seed}: {found:?}");
    }
    let (series, shifts) = sim::shifted_series(1);
    let all = change_points(&series, &ChangePointConfig::default()).unwrap();
    let big = change_points(
        &series,
        &ChangePointConfig {
            min_magnitude: 0.06,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        big.len() < all.len() && big.iter().all(|c| c.percent.abs() >= 6.0),
        "{big:?}"
    );
    assert!(!shifts.is_empty());
    // Without the correction for the choice of position, noise blips pass (why it is on).
    let raw = change_points(
        &series,
        &ChangePointConfig {
            position_correction: false,
            ..Default::default()
        },
    )
    .unwrap();
    let spurious = raw
        .iter()
        .filter(|c| shifts.iter().all(|&s| c.index.abs_diff(s) > 5))
        .count();
    assert!(spurious > 1, "uncorrected: {spurious} spurious");
    assert!(
        change_points(&[], &ChangePointConfig::default())
            .unwrap()
            .is_empty()
    );
    assert!(
        change_points(&[1.0; 7], &ChangePointConfig::default())
            .unwrap()
            .is_empty()
    );
}

/// Indexes of `found`, for messages.
fn indexes(found: &[benchfleet_analysis::ChangePoint]) -> Vec<usize> {
    found.iter().map(|c| c.index).collect()
}

#[test]
fn aa_series_have_no_change_points() {
    // (length, noise, seeds): every case its own seeds (the detector is scale-invariant, so the
    // same seed at another noise level would be the same test).
    let cases: &[(usize, f64, u64)] = &[
        (100, 0.005, 20),
        (100, 0.01, 20),
        (100, 0.015, 20),
        (100, 0.03, 20),
        (1_000, 0.005, 8),
        (1_000, 0.01, 8),
        (1_000, 0.015, 8),
        (1_000, 0.03, 8),
        (10_000, 0.005, 3),
        (10_000, 0.01, 3),
        (10_000, 0.015, 3),
        (10_000, 0.03, 3),
    ];
    for (case, &(n, cv, seeds)) in cases.iter().enumerate() {
        for s in 0..seeds {
            let seed = 19_000 + 100 * case as u64 + s;
            let series = sim::stepped_series(seed, n, cv, &[]);
            let found = change_points(&series, &ChangePointConfig::default()).unwrap();
            assert!(
                found.is_empty(),
                "A/A, {n} points at {}% noise, seed {seed}: {found:?}",
                cv * 100.0
            );
        }
    }
}

#[test]
fn four_shifts_at_1_5_percent_noise_give_exactly_four_changes() {
    // Seeds 2003, 2013, 2027, 2033 and 2093 made the detector before issue 19 report blips of
    // 3–5 points as pairs of changes (p down to 1e-49); 2000–2002 are ordinary. The windowed
    // split misses the 3% shift at this noise in about 1 series of 100 (seed 2014): a recall
    // limit, not a false alarm, so it is not asserted here.
    for seed in [2000, 2001, 2002, 2003, 2013, 2027, 2033, 2093] {
        let series = sim::stepped_series(seed, 10_000, 0.015, &sim::FOUR_SHIFTS);
        let found = change_points(&series, &ChangePointConfig::default()).unwrap();
        assert_eq!(found.len(), 4, "seed {seed}: {:?}", indexes(&found));
        for (c, &(at, magnitude)) in found.iter().zip(&sim::FOUR_SHIFTS) {
            assert!(
                c.index.abs_diff(at) <= 5,
                "seed {seed}: shift at {at} found at {}: {:?}",
                c.index,
                indexes(&found)
            );
            assert!(
                (c.percent - magnitude * 100.0).abs() < 1.0,
                "seed {seed}: {magnitude} at {at}: {c:?}"
            );
        }
    }
}

#[test]
fn two_percent_shifts_are_still_found() {
    // 9 shifts of 2% (up, down, ...) every 1,000 points of 10,000; (noise, seeds, shifts that
    // may be missed over all seeds). At 1% noise the 50-point windows miss about 1 shift in 110
    // (before issue 19 too); at 1.5% noise and above a 2% shift is beyond the windowed split.
    let shifts: Vec<(usize, f64)> = (1..10)
        .map(|k| (k * 1_000, if k % 2 == 1 { 0.02 } else { -0.02 / 1.02 }))
        .collect();
    for &(cv, seeds, may_miss) in &[(0.005, 4, 0), (0.01, 8, 2)] {
        let mut missed = 0;
        for seed in 3_000..3_000 + seeds {
            let series = sim::stepped_series(seed, 10_000, cv, &shifts);
            let found = change_points(&series, &ChangePointConfig::default()).unwrap();
            let near = |at: usize, c: &benchfleet_analysis::ChangePoint| c.index.abs_diff(at) <= 10;
            let missed_here = shifts
                .iter()
                .filter(|s| !found.iter().any(|c| near(s.0, c)))
                .count();
            let spurious = found
                .iter()
                .filter(|c| shifts.iter().all(|s| !near(s.0, c)))
                .count();
            // A missed shift may leave a change of the merged segment elsewhere; nothing else.
            assert!(
                spurious <= missed_here,
                "{}% noise, seed {seed}: {:?}",
                cv * 100.0,
                indexes(&found)
            );
            missed += missed_here;
        }
        assert!(
            missed <= may_miss,
            "{}% noise: {missed} of {} shifts missed",
            cv * 100.0,
            shifts.len() * seeds as usize
        );
    }
}

/// Points, noise, shifts (index, magnitude), expected change indexes.
type ShortCase = (usize, f64, &'static [(usize, f64)], &'static [usize]);

#[test]
fn short_real_changes_are_still_reported() {
    // Issue 19 distrusts short sides, not short changes: the last 10 runs of 1,000 regressed by
    // 10% (a recent regression is a short segment), the first 8 runs 10% faster, and the CLI's
    // end-to-end history (24 runs, +30% after 12).
    let cases: &[ShortCase] = &[
        (1_000, 0.01, &[(990, 0.10)], &[990]),
        (1_000, 0.01, &[(0, -0.10), (8, 0.10 / 0.90)], &[8]),
        (24, 0.01, &[(12, 0.30)], &[12]),
    ];
    for (case, &(n, cv, shifts, want)) in cases.iter().enumerate() {
        for seed in 0..5 {
            let series = sim::stepped_series(seed, n, cv, shifts);
            let found = change_points(&series, &ChangePointConfig::default()).unwrap();
            assert_eq!(indexes(&found), want, "case {case}, seed {seed}: {found:?}");
        }
    }
}
