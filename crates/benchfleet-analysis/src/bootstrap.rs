//! Bootstrap confidence intervals, parallel and deterministic.
//!
//! Resamples are split into fixed chunks of [`CHUNK`]; chunk `k` draws from a ChaCha8 generator
//! seeded with the configured seed on stream `k`. The result therefore depends on the seed and
//! the number of resamples only, never on the number of threads or on scheduling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, check_open_unit, invalid, need};
use crate::summary::{mean, percentile, sorted_finite};

/// Resamples drawn from one generator stream.
pub const CHUNK: usize = 256;

/// How to bootstrap.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples (criterion uses 100,000; 10,000 gives intervals stable to ~1%).
    pub resamples: usize,
    /// Confidence level of the intervals, strictly between 0 and 1.
    pub confidence: f64,
    /// Seed of the resampling generators: same seed, same intervals.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            resamples: 10_000,
            confidence: 0.95,
            seed: 0x6265_6e63_6866_6c74,
        }
    }
}

impl BootstrapConfig {
    fn validate(&self) -> Result<(), AnalysisError> {
        check_open_unit("confidence", self.confidence)?;
        if self.resamples < 2 {
            return Err(invalid(
                "resamples",
                self.resamples,
                "expected at least 2 bootstrap resamples",
            ));
        }
        Ok(())
    }
}

/// A point estimate with a confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The statistic on the original sample(s).
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

impl ConfidenceInterval {
    /// Whether `x` lies inside the interval (bounds included).
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// Bootstrap intervals of the mean and the median of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanMedianCi {
    pub mean: ConfidenceInterval,
    pub median: ConfidenceInterval,
}

/// Percentile-bootstrap intervals for the mean and the median of `xs` (non-finite values
/// dropped; at least two finite samples needed).
///
/// ```
/// use benchfleet_analysis::{bootstrap_mean_median, BootstrapConfig};
/// let xs: Vec<f64> = (0..50).map(|i| 1.0 + (i % 7) as f64 * 0.01).collect();
/// let cfg = BootstrapConfig { resamples: 2_000, ..Default::default() };
/// let ci = bootstrap_mean_median(&xs, &cfg).unwrap();
/// assert!(ci.mean.lower <= ci.mean.estimate && ci.mean.estimate <= ci.mean.upper);
/// assert_eq!(ci, bootstrap_mean_median(&xs, &cfg).unwrap()); // deterministic
/// ```
pub fn bootstrap_mean_median(
    xs: &[f64],
    cfg: &BootstrapConfig,
) -> Result<MeanMedianCi, AnalysisError> {
    cfg.validate()?;
    let xs = sorted_finite(xs);
    need("a bootstrap interval", 2, xs.len())?;
    let stat = |s: &mut Vec<f64>| {
        s.sort_by(f64::total_cmp);
        [mean(s), percentile(s, 50.0)]
    };
    let point = stat(&mut xs.clone());
    let dist = resample(cfg, |rng, buf: &mut Vec<f64>| {
        draw(rng, &xs, buf);
        stat(buf)
    });
    let [m, med] = intervals(point, dist, cfg.confidence);
    Ok(MeanMedianCi {
        mean: m,
        median: med,
    })
}

/// Bootstrap intervals of `mean(b)/mean(a)` and `median(b)/median(a)`, resampling both samples
/// independently.
pub fn bootstrap_ratios(
    a: &[f64],
    b: &[f64],
    cfg: &BootstrapConfig,
) -> Result<MeanMedianCi, AnalysisError> {
    cfg.validate()?;
    let (a, b) = (sorted_finite(a), sorted_finite(b));
    need("a bootstrap ratio (baseline)", 2, a.len())?;
    need("a bootstrap ratio (candidate)", 2, b.len())?;
    let ratios = |ra: &mut Vec<f64>, rb: &mut Vec<f64>| {
        ra.sort_by(f64::total_cmp);
        rb.sort_by(f64::total_cmp);
        [
            mean(rb) / mean(ra),
            percentile(rb, 50.0) / percentile(ra, 50.0),
        ]
    };
    let point = ratios(&mut a.clone(), &mut b.clone());
    let dist = resample(cfg, |rng, buf: &mut Vec<f64>| {
        draw(rng, &a, buf);
        let mut rb = Vec::with_capacity(b.len());
        draw(rng, &b, &mut rb);
        ratios(buf, &mut rb)
    });
    let [m, med] = intervals(point, dist, cfg.confidence);
    Ok(MeanMedianCi {
        mean: m,
        median: med,
    })
}

fn draw(rng: &mut ChaCha8Rng, from: &[f64], into: &mut Vec<f64>) {
    into.clear();
    into.extend((0..from.len()).map(|_| from[rng.random_range(0..from.len())]));
}

/// Run `one` for every resample in parallel, deterministically; returns one row per resample.
fn resample<const K: usize>(
    cfg: &BootstrapConfig,
    one: impl Fn(&mut ChaCha8Rng, &mut Vec<f64>) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let chunks = cfg.resamples.div_ceil(CHUNK);
    (0..chunks)
        .into_par_iter()
        .flat_map_iter(|k| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(k as u64);
            let len = CHUNK.min(cfg.resamples - k * CHUNK);
            let mut buf = Vec::new();
            (0..len)
                .map(|_| one(&mut rng, &mut buf))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn intervals<const K: usize>(
    point: [f64; K],
    dist: Vec<[f64; K]>,
    confidence: f64,
) -> [ConfidenceInterval; K] {
    let lo = (1.0 - confidence) / 2.0 * 100.0;
    let hi = (1.0 + confidence) / 2.0 * 100.0;
    std::array::from_fn(|k| {
        let col = sorted_finite(&dist.iter().map(|row| row[k]).collect::<Vec<_>>());
        ConfidenceInterval {
            estimate: point[k],
            lower: percentile(&col, lo),
            upper: percentile(&col, hi),
            confidence,
        }
    })
}
