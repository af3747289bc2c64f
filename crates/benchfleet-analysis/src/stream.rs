//! Statistics that stay small: Welford running mean/variance and an HDR histogram per benchmark
//! (constant memory for millions of samples), summarised as the one [`Summary`].
//!
//! ```
//! use benchfleet_analysis::BenchStats;
//!
//! let mut s = BenchStats::new();
//! for ns in [1_000_000, 1_010_000, 990_000, 5_000_000] {
//!     s.record(ns);
//! }
//! let summary = s.summary();
//! assert_eq!((summary.count, summary.max), (4, 5_000_000.0));
//! ```

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::summary::Summary;

/// Welford's online mean and variance, plus min and max. Mergeable (Chan et al.), so per-thread
/// or per-shard accumulators can be combined exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl RunningStats {
    pub fn new() -> Self {
        RunningStats::default()
    }

    pub fn push(&mut self, x: f64) {
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combine with another accumulator as if all its samples had been pushed here.
    pub fn merge(&mut self, other: &RunningStats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean += delta * other.count as f64 / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `None` before the first sample.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Sample variance (n − 1); `None` with fewer than two samples.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.m2 / (self.count - 1) as f64)
    }

    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
}

/// Per-benchmark accumulator of nanosecond samples: exact running moments plus an auto-resizing
/// HDR histogram (3 significant digits) for quantiles.
#[derive(Clone, Debug)]
pub struct BenchStats {
    running: RunningStats,
    histogram: Histogram<u64>,
}

impl Default for BenchStats {
    fn default() -> Self {
        BenchStats::new()
    }
}

impl BenchStats {
    pub fn new() -> Self {
        // 3 significant digits is a valid configuration; `new` only fails for sigfig > 5.
        let histogram = Histogram::new(3).unwrap_or_else(|_| unreachable!("sigfig 3 is valid"));
        BenchStats {
            running: RunningStats::new(),
            histogram,
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.running.push(ns as f64);
        // Auto-resizing `record` grows the range; `saturating_record` would clamp instead.
        if self.histogram.record(ns).is_err() {
            self.histogram.saturating_record(ns);
        }
    }

    /// Combine two benchmarks' accumulators (e.g. from parallel workers).
    pub fn merge(&mut self, other: &BenchStats) {
        self.running.merge(&other.running);
        // Both histograms auto-resize, so adding cannot go out of range.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn running(&self) -> &RunningStats {
        &self.running
    }

    /// Value at quantile `q` in `[0, 1]`; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        self.histogram.value_at_quantile(q.clamp(0.0, 1.0))
    }

    /// The summary of everything recorded: count, mean, σ, min and max exact (from the running
    /// moments), quantiles and MAD within the histogram's precision (0.1 %). All zeros (σ
    /// `None`) when nothing was recorded.
    pub fn summary(&self) -> Summary {
        let r = &self.running;
        if r.count() == 0 {
            return Summary::default();
        }
        let median = self.quantile(0.5) as f64;
        Summary {
            count: usize::try_from(r.count()).unwrap_or(usize::MAX),
            mean: r.mean().unwrap_or(0.0),
            stddev: r.std_dev(),
            median,
            min: r.min().unwrap_or(0.0),
            max: r.max().unwrap_or(0.0),
            p90: self.quantile(0.9) as f64,
            p95: self.quantile(0.95) as f64,
            p99: self.quantile(0.99) as f64,
            mad: self.mad(median),
        }
    }

    /// Median absolute deviation from `median`, from the histogram (each recorded value stands
    /// for its bucket).
    fn mad(&self, median: f64) -> f64 {
        let mut deviations: Vec<(f64, u64)> = self
            .histogram
            .iter_recorded()
            .map(|v| {
                let x = self.histogram.median_equivalent(v.value_iterated_to()) as f64;
                ((x - median).abs(), v.count_at_value())
            })
            .collect();
        deviations.sort_by(|a, b| a.0.total_cmp(&b.0));
        let half = self.histogram.len().div_ceil(2);
        let mut seen = 0;
        for (d, n) in deviations {
            seen += n;
            if seen >= half {
                return d;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    const DATASETS: &[&[f64]] = &[
        &[1.0, 2.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0],
        &[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0, 1e9 + 4.0],
        &[5.0, 5.0, 5.0],
        &[0.001, 1000.0, 3.5, -7.25, 42.0, 42.0, 0.0],
    ];

    #[test]
    fn welford_matches_two_pass_and_merges_exactly() {
        for xs in DATASETS {
            let mut s = RunningStats::new();
            xs.iter().for_each(|x| s.push(*x));
            let (mean, var) = naive(xs);
            assert!(close(s.mean().unwrap(), mean), "{xs:?}");
            assert!(
                close(s.variance().unwrap(), var),
                "{xs:?}: {} vs {var}",
                s.variance().unwrap()
            );
            assert_eq!(s.min(), xs.iter().copied().reduce(f64::min));
            assert_eq!(s.max(), xs.iter().copied().reduce(f64::max));
            for split in 0..=xs.len() {
                let (a, b) = xs.split_at(split);
                let (mut sa, mut sb) = (RunningStats::new(), RunningStats::new());
                a.iter().for_each(|x| sa.push(*x));
                b.iter().for_each(|x| sb.push(*x));
                sa.merge(&sb);
                assert_eq!(sa.count(), s.count());
                assert!(
                    close(sa.mean().unwrap(), mean) && close(sa.variance().unwrap(), var),
                    "{xs:?} split {split}"
                );
            }
        }
        let empty = RunningStats::new();
        assert_eq!(
            (empty.mean(), empty.variance(), empty.min()),
            (None, None, None)
        );
    }

    #[test]
    fn histogram_quantiles_are_within_precision() {
        let mut s = BenchStats::new();
        let values: Vec<u64> = (1..=10_000u64).map(|i| i * 1_000).collect();
        values.iter().for_each(|v| s.record(*v));
        let summary = s.summary();
        assert_eq!(summary.count, 10_000);
        assert_eq!((summary.min, summary.max), (1_000.0, 10_000_000.0));
        let quantiles = [
            (0.5, summary.median),
            (0.9, summary.p90),
            (0.95, summary.p95),
            (0.99, summary.p99),
        ];
        for (q, got) in quantiles {
            let exact = values[((q * values.len() as f64) as usize).saturating_sub(1)] as f64;
            assert!(
                (got - exact).abs() / exact < 0.002,
                "q{q}: {got} vs {exact}"
            );
        }
        // Uniform on 1..=10⁷: half of the values lie within 2.5·10⁶ of the median.
        assert!(
            (summary.mad - 2_500_000.0).abs() / 2_500_000.0 < 0.002,
            "{}",
            summary.mad
        );
        let exact =
            Summary::from_samples(&values.iter().map(|v| *v as f64).collect::<Vec<_>>()).unwrap();
        assert!(close(summary.mean, exact.mean), "{summary:?}");
        assert!(close(summary.stddev.unwrap(), exact.stddev.unwrap()));
        let mut other = BenchStats::new();
        other.record(20_000_000);
        s.merge(&other);
        assert_eq!(s.summary().count, 10_001);
        assert_eq!(s.summary().max, 20_000_000.0);
        assert_eq!(BenchStats::new().summary(), Summary::default());
    }
}
