//! Issue 21's random-effects simulation: runs of one invocation share its level, which varies
//! between invocations (between-CV), the runs around it by a within-CV of 3%. For each mode of
//! [`compare_levels`], the A/A alarm rate ("regressed" or "improved") and how often a +10%
//! slowdown is "regressed", 1,000 seeded trials per cell, 30 runs per invocation.
//!
//! `cargo run -p benchfleet-analysis --example two_level_rates --release`

#[path = "../tests/sim/mod.rs"]
mod sim;

use benchfleet_analysis::{CompareConfig, LevelsConfig, Verdict, compare_levels};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const TRIALS: usize = 1000;
const RUNS: usize = 30;
const WITHIN: f64 = 0.03;

/// `(A/A alarms, +10% regressed)` for `k` invocations a side (0: head-to-head, one shared level).
fn rates(k: usize, between: f64, cfg: &LevelsConfig) -> (f64, f64) {
    let mut alarms = 0;
    let mut caught = 0;
    for t in 0..TRIALS {
        for (shift, hit) in [(0.0, &mut alarms), (0.10, &mut caught)] {
            let mut rng = ChaCha8Rng::seed_from_u64(21);
            rng.set_stream(t as u64);
            let (a, b) = if k == 0 {
                let level = sim::two_level(&mut rng, 1, 1, 1.0, between, 0.0)[0][0];
                (
                    vec![sim::sample(&mut rng, RUNS, level, WITHIN)],
                    vec![sim::sample(&mut rng, RUNS, level * (1.0 + shift), WITHIN)],
                )
            } else {
                (
                    sim::two_level(&mut rng, k, RUNS / k, 1.0, between, WITHIN),
                    sim::two_level(&mut rng, k, RUNS / k, 1.0 + shift, between, WITHIN),
                )
            };
            let v = compare_levels(&a, &b, cfg).unwrap().verdict;
            let counted = if shift == 0.0 {
                matches!(v, Verdict::Regressed | Verdict::Improved)
            } else {
                v == Verdict::Regressed
            };
            *hit += usize::from(counted);
        }
    }
    (alarms as f64 / TRIALS as f64, caught as f64 / TRIALS as f64)
}

fn main() {
    let base = LevelsConfig {
        compare: CompareConfig {
            bootstrap: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let modes: [(&str, usize, LevelsConfig); 5] = [
        (
            "runs only (before issue 21)",
            1,
            LevelsConfig {
                assumed_between_cv: 0.0,
                ..base
            },
        ),
        ("single invocation, assumed 2%", 1, base),
        ("multi-invocation, 3 a side", 3, base),
        ("multi-invocation, 5 a side", 5, base),
        (
            "head-to-head",
            0,
            LevelsConfig {
                head_to_head: true,
                ..base
            },
        ),
    ];
    println!(
        "within-invocation CV {}%, {RUNS} runs per side (multi: 10 per invocation at 3, 6 at 5), {TRIALS} trials",
        WITHIN * 100.0
    );
    println!("| mode | between-CV | A/A alarms | +10% regressed |");
    println!("|---|---:|---:|---:|");
    for (name, k, cfg) in &modes {
        for between in [0.0, 0.01, 0.02, 0.03, 0.05] {
            let (aa, ab) = rates(*k, between, cfg);
            println!(
                "| {name} | {:.0}% | {:.1}% | {:.1}% |",
                between * 100.0,
                aa * 100.0,
                ab * 100.0
            );
        }
    }
}
