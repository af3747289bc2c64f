//! Statistics that stay small: Welford running mean/variance and an HDR histogram per benchmark
//! (constant memory for millions of samples), and outlier classification that reports, never
//! drops.
//!
//! ```
//! use benchfleet_metrics::stats::{BenchStats, classify_outliers};
//!
//! let mut s = BenchStats::new();
//! for ns in [1_000_000, 1_010_000, 990_000, 5_000_000] {
//!     s.record(ns);
//! }
//! let summary = s.summary();
//! assert_eq!(summary.count, 4);
//! let report = classify_outliers(&[1.0, 1.01, 0.99, 1.0, 5.0]);
//! assert_eq!(report.severe_high(), vec![4]);
//! ```

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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

/// Quantiles and moments of one benchmark, in nanoseconds (quantiles within 0.1 %).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    /// Sample standard deviation; 0 with fewer than two samples.
    pub std_dev: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
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

    pub fn summary(&self) -> Summary {
        if self.running.count() == 0 {
            return Summary::default();
        }
        Summary {
            count: self.running.count(),
            mean: self.running.mean().unwrap_or(0.0),
            std_dev: self.running.std_dev().unwrap_or(0.0),
            min: self.running.min().unwrap_or(0.0) as u64,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.running.max().unwrap_or(0.0) as u64,
        }
    }

    /// Tukey fences and how many recorded samples fall beyond them, from the histogram alone
    /// (constant memory; quartiles within the histogram's precision).
    pub fn tukey_counts(&self) -> TukeyCounts {
        let fences =
            TukeyFences::from_quartiles(self.quantile(0.25) as f64, self.quantile(0.75) as f64);
        let mut counts = TukeyCounts {
            fences,
            ..Default::default()
        };
        for v in self.histogram.iter_recorded() {
            let x = self.histogram.median_equivalent(v.value_iterated_to()) as f64;
            let n = v.count_at_value();
            match fences.classify(x) {
                TukeyClass::LowSevere => counts.low_severe += n,
                TukeyClass::LowMild => counts.low_mild += n,
                TukeyClass::Normal => {}
                TukeyClass::HighMild => counts.high_mild += n,
                TukeyClass::HighSevere => counts.high_severe += n,
            }
        }
        counts
    }
}

/// Where a sample lies relative to Tukey's fences (1.5 and 3 IQR beyond the quartiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TukeyClass {
    LowSevere,
    LowMild,
    Normal,
    HighMild,
    HighSevere,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TukeyFences {
    pub q1: f64,
    pub q3: f64,
    pub low_severe: f64,
    pub low_mild: f64,
    pub high_mild: f64,
    pub high_severe: f64,
}

impl TukeyFences {
    pub fn from_quartiles(q1: f64, q3: f64) -> Self {
        let iqr = q3 - q1;
        TukeyFences {
            q1,
            q3,
            low_severe: q1 - 3.0 * iqr,
            low_mild: q1 - 1.5 * iqr,
            high_mild: q3 + 1.5 * iqr,
            high_severe: q3 + 3.0 * iqr,
        }
    }

    pub fn classify(&self, x: f64) -> TukeyClass {
        if x < self.low_severe {
            TukeyClass::LowSevere
        } else if x < self.low_mild {
            TukeyClass::LowMild
        } else if x > self.high_severe {
            TukeyClass::HighSevere
        } else if x > self.high_mild {
            TukeyClass::HighMild
        } else {
            TukeyClass::Normal
        }
    }
}

/// Outlier counts per Tukey class, from [`BenchStats::tukey_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TukeyCounts {
    pub fences: TukeyFences,
    pub low_severe: u64,
    pub low_mild: u64,
    pub high_mild: u64,
    pub high_severe: u64,
}

/// Iglewicz–Hoaglin threshold on |modified z-score| above which a sample is an outlier.
pub const MODIFIED_Z_THRESHOLD: f64 = 3.5;

/// Per-sample outlier classification of a complete sample set. Samples are never removed: this
/// only says which ones to warn about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutlierReport {
    pub median: f64,
    /// Median absolute deviation from the median.
    pub mad: f64,
    pub fences: TukeyFences,
    /// Tukey class of each sample, in input order.
    pub tukey: Vec<TukeyClass>,
    /// Modified z-score of each sample, `0.6745 (x − median) / MAD` (with MAD = 0, the mean
    /// absolute deviation × 1.2533 is used instead; all-equal samples score 0).
    pub modified_z: Vec<f64>,
}

impl OutlierReport {
    fn indexes(&self, class: TukeyClass) -> Vec<usize> {
        self.tukey
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == class)
            .map(|(i, _)| i)
            .collect()
    }

    pub fn severe_high(&self) -> Vec<usize> {
        self.indexes(TukeyClass::HighSevere)
    }

    pub fn mild_high(&self) -> Vec<usize> {
        self.indexes(TukeyClass::HighMild)
    }

    pub fn severe_low(&self) -> Vec<usize> {
        self.indexes(TukeyClass::LowSevere)
    }

    pub fn mild_low(&self) -> Vec<usize> {
        self.indexes(TukeyClass::LowMild)
    }

    /// Indexes whose |modified z| exceeds `threshold` ([`MODIFIED_Z_THRESHOLD`] is standard;
    /// hyperfine warns above 14).
    pub fn z_outliers(&self, threshold: f64) -> Vec<usize> {
        self.modified_z
            .iter()
            .enumerate()
            .filter(|(_, z)| z.abs() > threshold)
            .map(|(i, _)| i)
            .collect()
    }
}

/// Outlier counts of one sample set that deserves a warning ([`outliers_to_warn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlierWarning {
    pub samples: usize,
    /// Beyond Tukey's severe fences (3 IQR).
    pub severe: usize,
    /// Between the mild and the severe fences.
    pub mild: usize,
    /// |modified z| above [`MODIFIED_Z_THRESHOLD`].
    pub z: usize,
}

/// The one rule `bench` and suite runs warn by (samples are never dropped): at least 4 samples,
/// and a run beyond Tukey's severe fences, or a run beyond a fence that is also a modified-z
/// outlier, or modified-z outliers in at least a tenth of the runs.
pub fn outliers_to_warn(samples: &[f64]) -> Option<OutlierWarning> {
    if samples.len() < 4 {
        return None;
    }
    let rep = classify_outliers(samples);
    let severe = rep.severe_high().len() + rep.severe_low().len();
    let mild = rep.mild_high().len() + rep.mild_low().len();
    let z_idx = rep.z_outliers(MODIFIED_Z_THRESHOLD);
    let both = z_idx
        .iter()
        .filter(|i| rep.tukey[**i] != TukeyClass::Normal)
        .count();
    let z = z_idx.len();
    (severe > 0 || both > 0 || z * 10 >= samples.len()).then_some(OutlierWarning {
        samples: samples.len(),
        severe,
        mild,
        z,
    })
}

/// Linear-interpolation quantile (type 7, as numpy's default) of sorted data.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Classify every sample by Tukey fences and modified z-score. NaNs are classified as normal with
/// a z-score of 0 and ignored for the statistics.
pub fn classify_outliers(samples: &[f64]) -> OutlierReport {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return OutlierReport {
            tukey: vec![TukeyClass::Normal; samples.len()],
            modified_z: vec![0.0; samples.len()],
            ..Default::default()
        };
    }
    sorted.sort_by(f64::total_cmp);
    let median = quantile_sorted(&sorted, 0.5);
    let fences = TukeyFences::from_quartiles(
        quantile_sorted(&sorted, 0.25),
        quantile_sorted(&sorted, 0.75),
    );
    let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = quantile_sorted(&deviations, 0.5);
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
    let score = |x: f64| -> f64 {
        if x.is_nan() {
            0.0
        } else if mad > 0.0 {
            0.6745 * (x - median) / mad
        } else if mean_ad > 0.0 {
            (x - median) / (1.253_314 * mean_ad)
        } else {
            0.0
        }
    };
    OutlierReport {
        median,
        mad,
        fences,
        tukey: samples
            .iter()
            .map(|x| {
                if x.is_nan() {
                    TukeyClass::Normal
                } else {
                    fences.classify(*x)
                }
            })
            .collect(),
        modified_z: samples.iter().map(|x| score(*x)).collect(),
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
        assert_eq!((summary.min, summary.max), (1_000, 10_000_000));
        for (q, got) in [(0.5, summary.p50), (0.9, summary.p90), (0.99, summary.p99)] {
            let exact = values[((q * values.len() as f64) as usize).saturating_sub(1)] as f64;
            assert!(
                (got as f64 - exact).abs() / exact < 0.002,
                "q{q}: {got} vs {exact}"
            );
        }
        let mut other = BenchStats::new();
        other.record(20_000_000);
        s.merge(&other);
        assert_eq!(s.summary().count, 10_001);
        assert_eq!(s.summary().max, 20_000_000);
        assert_eq!(BenchStats::new().summary(), Summary::default());
    }

    #[test]
    fn outliers_are_classified_not_dropped() {
        // (samples, severe high, mild high, severe low, z-outliers at 3.5)
        type Case<'a> = (
            &'a [f64],
            &'a [usize],
            &'a [usize],
            &'a [usize],
            &'a [usize],
        );
        let cases: &[Case] = &[
            (
                &[10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 100.0],
                &[7],
                &[],
                &[],
                &[7],
            ),
            (
                &[10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 10.55],
                &[],
                &[7],
                &[],
                &[7],
            ),
            (
                &[10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 1.0],
                &[],
                &[],
                &[7],
                &[7],
            ),
            (&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[], &[], &[], &[]),
            // MAD is 0 here: the mean absolute deviation fallback still flags the odd one.
            (&[5.0, 5.0, 5.0, 5.0, 5.0, 9.0], &[5], &[], &[], &[5]),
            (&[7.0, 7.0, 7.0], &[], &[], &[], &[]),
        ];
        for (xs, severe, mild, low, z) in cases {
            let r = classify_outliers(xs);
            assert_eq!(r.tukey.len(), xs.len(), "never drops");
            assert_eq!(r.severe_high(), *severe, "{xs:?}");
            assert_eq!(r.mild_high(), *mild, "{xs:?}");
            assert_eq!(
                r.severe_low()
                    .iter()
                    .chain(&r.mild_low())
                    .copied()
                    .collect::<Vec<_>>(),
                *low,
                "{xs:?}"
            );
            assert_eq!(
                r.z_outliers(MODIFIED_Z_THRESHOLD),
                *z,
                "{xs:?}: {:?}",
                r.modified_z
            );
        }
        assert!(classify_outliers(&[]).tukey.is_empty());
    }

    #[test]
    fn histogram_tukey_counts_agree_with_exact_classification() {
        let xs: Vec<u64> = (0..1000u64)
            .map(|i| 1_000_000 + (i % 50) * 1_000)
            .chain([50_000_000, 1_090_000])
            .collect();
        let mut s = BenchStats::new();
        xs.iter().for_each(|x| s.record(*x));
        let counts = s.tukey_counts();
        let exact = classify_outliers(&xs.iter().map(|x| *x as f64).collect::<Vec<_>>());
        assert_eq!(counts.high_severe, exact.severe_high().len() as u64);
        assert_eq!(counts.high_mild, exact.mild_high().len() as u64);
        assert_eq!(counts.high_severe, 1);
    }
}
