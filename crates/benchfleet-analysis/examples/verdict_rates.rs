//! Measures how often `compare` raises no alarm (neither "regressed" nor "improved") for A/A samples and "regressed" for a 5%
//! slowdown, over a grid of run counts and noise levels (1,000 seeded trials each).
//!
//! `cargo run -p benchfleet-analysis --example verdict_rates --release`

#[path = "../tests/sim/mod.rs"]
mod sim;

use benchfleet_analysis::{CompareConfig, Verdict};

fn main() {
    let cfg = CompareConfig {
        bootstrap: None,
        ..Default::default()
    };
    println!(
        "alpha {} (Welch and Mann-Whitney), noise threshold {}%",
        cfg.alpha,
        cfg.noise_threshold * 100.0
    );
    println!(
        "{:>4} {:>5} {:>14} {:>20}",
        "runs", "CV", "A/A no alarm", "+5% regressed"
    );
    for n in [10, 20, 30, 50] {
        for cv in [0.01, 0.02, 0.03] {
            let aa = 1.0
                - sim::rate(1, 1000, n, cv, 0.0, Verdict::Regressed, &cfg)
                - sim::rate(1, 1000, n, cv, 0.0, Verdict::Improved, &cfg);
            let ab = sim::rate(2, 1000, n, cv, 0.05, Verdict::Regressed, &cfg);
            println!(
                "{n:>4} {:>4}% {:>13.1}% {:>19.1}%",
                cv * 100.0,
                aa * 100.0,
                ab * 100.0
            );
        }
    }
}
