//! Acceptance of change-point detection (issue 7, item 3, minus the timing, which is measured by
//! `benches/change_points.rs`): on synthetic 10,000-point series with known shifts of 3–10% at
//! 1% noise, every shift is found within ±5 points with at most one spurious change.

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
        assert!(found.len() <= 1, "seed {seed}: {found:?}");
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
