//! Simulated benchmark samples for the acceptance tests and the `verdict_rates` example.
#![allow(dead_code)]

use benchfleet_analysis::{CompareConfig, Verdict, compare};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard normal deviate (Box–Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `n` run times around `mean` with coefficient of variation `cv` (normal noise).
pub fn sample(rng: &mut ChaCha8Rng, n: usize, mean: f64, cv: f64) -> Vec<f64> {
    (0..n).map(|_| mean * (1.0 + cv * normal(rng))).collect()
}

/// Fraction of `trials` comparisons of baseline (mean 1) with candidate (mean `1 + shift`)
/// whose verdict is `want`. Deterministic: trial `k` uses stream `k` of `seed`.
pub fn rate(
    seed: u64,
    trials: usize,
    n: usize,
    cv: f64,
    shift: f64,
    want: Verdict,
    cfg: &CompareConfig,
) -> f64 {
    let hits = (0..trials)
        .filter(|&k| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(k as u64);
            let a = sample(&mut rng, n, 1.0, cv);
            let b = sample(&mut rng, n, 1.0 + shift, cv);
            compare(&a, &b, cfg)
                .map(|c| c.verdict == want)
                .unwrap_or(false)
        })
        .count();
    hits as f64 / trials as f64
}

/// A 10,000-point history at 1% CV with known level shifts of 3–10% (alternating direction),
/// segments 400–1,400 points long. Returns the series and the indexes of the shifts.
pub fn shifted_series(seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut shifts = Vec::new();
    let mut at = 0usize;
    loop {
        at += rng.random_range(400..1400);
        if at >= 9_600 {
            break;
        }
        shifts.push(at);
    }
    let mut level = 1.0;
    let mut next = shifts.iter().peekable();
    let mut sign = 1.0;
    let series = (0..10_000)
        .map(|i| {
            if next.peek() == Some(&&i) {
                next.next();
                let magnitude = rng.random_range(0.03..=0.10);
                level *= 1.0 + sign * magnitude;
                sign = -sign;
            }
            level * (1.0 + 0.01 * normal(&mut rng))
        })
        .collect();
    (series, shifts)
}

/// A history of `n` points at level 1 with relative normal noise `cv`, multiplied by
/// `1 + magnitude` from each `(index, magnitude)` of `shifts` on (cumulative, so a shift is
/// relative to the level before it). Deterministic in `seed`. No shifts: an A/A series.
pub fn stepped_series(seed: u64, n: usize, cv: f64, shifts: &[(usize, f64)]) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut level = 1.0;
    let mut next = shifts.iter().peekable();
    (0..n)
        .map(|i| {
            while let Some(&&(at, magnitude)) = next.peek() {
                if at > i {
                    break;
                }
                level *= 1.0 + magnitude;
                next.next();
            }
            level * (1.0 + cv * normal(&mut rng))
        })
        .collect()
}

/// The four shifts of 3–8% (alternating in direction) of issue 19's clean 10,000-point series.
pub const FOUR_SHIFTS: [(usize, f64); 4] =
    [(1_800, 0.05), (4_100, -0.03), (6_300, 0.08), (8_200, -0.04)];

/// Two-level (random-effects) samples: `k` invocations of `n` runs, invocation `i` at level
/// `mean · (1 + between · u_i)`, its runs at that level `· (1 + within · e_ij)`, `u` and `e`
/// standard normal. The model of separate invocations on a real machine (issue 21).
pub fn two_level(
    rng: &mut ChaCha8Rng,
    k: usize,
    n: usize,
    mean: f64,
    between: f64,
    within: f64,
) -> Vec<Vec<f64>> {
    (0..k)
        .map(|_| {
            let level = mean * (1.0 + between * normal(rng));
            sample(rng, n, level, within)
        })
        .collect()
}
