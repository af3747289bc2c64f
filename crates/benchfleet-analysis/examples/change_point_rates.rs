//! False changes on A/A series and recall of known shifts of the change-point detector, over
//! a grid of lengths, noise levels and seeds (the figures of docs/STATISTICS.md).
//!
//! `cargo run -p benchfleet-analysis --example change_point_rates --release`

#[path = "../tests/sim/mod.rs"]
mod sim;

use benchfleet_analysis::{ChangePointConfig, change_points};

fn main() {
    let cfg = ChangePointConfig::default();
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("A/A series, {seeds} seeds each: series with any change, total false changes");
    for n in [100, 1_000, 10_000] {
        for (k, cv) in [0.005, 0.01, 0.015, 0.02, 0.03].into_iter().enumerate() {
            let (mut series_hit, mut total, mut min_p) = (0, 0, 1.0f64);
            for seed in 0..seeds {
                // Other seeds at each noise level: the detector is scale-invariant.
                let xs = sim::stepped_series(100_000 * (k as u64 + 1) + seed, n, cv, &[]);
                let found = change_points(&xs, &cfg).unwrap();
                series_hit += usize::from(!found.is_empty());
                total += found.len();
                for c in &found {
                    min_p = min_p.min(c.p_value);
                }
            }
            println!(
                "n {n:>6} cv {:>4.1}%: {series_hit}/{seeds} series, {total} changes, smallest p {min_p:.1e}",
                cv * 100.0
            );
        }
    }
    println!("Four shifts of 3-8% in 10,000 points at 1.5% noise: found within 5 / spurious");
    let (mut hit, mut spurious) = (0, 0);
    for seed in 0..seeds {
        let xs = sim::stepped_series(2_000 + seed, 10_000, 0.015, &sim::FOUR_SHIFTS);
        let found = change_points(&xs, &cfg).unwrap();
        let near = |at: usize| found.iter().any(|c| c.index.abs_diff(at) <= 5);
        hit += sim::FOUR_SHIFTS.iter().filter(|s| near(s.0)).count();
        let bad: Vec<_> = found
            .iter()
            .filter(|c| sim::FOUR_SHIFTS.iter().all(|s| c.index.abs_diff(s.0) > 5))
            .map(|c| (c.index, c.p_value))
            .collect();
        if !bad.is_empty() {
            println!("  seed {}: spurious {bad:?}", 2_000 + seed);
        }
        spurious += bad.len();
    }
    println!("  {hit}/{} found, {spurious} spurious", 4 * seeds);
    println!("Shifts of 2% (+2%, -2% alternating every 1,000 points of 10,000): found within 10");
    let twos: Vec<(usize, f64)> = (1..10)
        .map(|k| (k * 1_000, if k % 2 == 1 { 0.02 } else { -0.02 / 1.02 }))
        .collect();
    for cv in [0.005, 0.01, 0.015, 0.02, 0.03] {
        let (mut hit, mut spurious) = (0, 0);
        for seed in 0..seeds {
            let xs = sim::stepped_series(3_000 + seed, 10_000, cv, &twos);
            let found = change_points(&xs, &cfg).unwrap();
            hit += twos
                .iter()
                .filter(|s| found.iter().any(|c| c.index.abs_diff(s.0) <= 10))
                .count();
            spurious += found
                .iter()
                .filter(|c| twos.iter().all(|s| c.index.abs_diff(s.0) > 10))
                .count();
        }
        println!(
            "  cv {:>4.1}%: {hit}/{} found, {spurious} spurious",
            cv * 100.0,
            twos.len() * seeds as usize
        );
    }
}
