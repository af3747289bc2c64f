//! Descriptive statistics of one sample.

use serde::{Deserialize, Serialize};

/// Descriptive statistics of one sample (for benchfleet: the wall times, in seconds, of the
/// successful runs of one benchmark).
///
/// Built by [`Summary::from_samples`]: every field is computed from the same sorted copy of the
/// finite samples, so the same input always gives bit-identical output. The one summary type of
/// the workspace: [`crate::BenchStats::summary`] gives the same from constant memory (quantiles
/// and MAD within its histogram's precision), e.g. for the latency of a load's periods. The
/// default is the summary of nothing: all zeros, no σ.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of finite samples the statistics were computed from.
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (divisor `n - 1`); `None` when `count < 2`.
    pub stddev: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// 90th percentile, linear interpolation (see [`percentile`]).
    pub p90: f64,
    /// 95th percentile, linear interpolation (see [`percentile`]).
    pub p95: f64,
    /// 99th percentile, linear interpolation (see [`percentile`]).
    pub p99: f64,
    /// Median absolute deviation from the median, unscaled (multiply by 1.4826 to estimate σ of
    /// normal data).
    pub mad: f64,
}

impl Summary {
    /// Summarise `xs`.
    ///
    /// **NaN safety:** non-finite values (NaN, +∞, −∞) are not measurements; they are dropped
    /// before anything is computed and `count` says how many values were used. Returns `None` when
    /// no finite value remains (including for an empty slice). The input order does not matter.
    ///
    /// ```
    /// use benchfleet_analysis::Summary;
    /// let s = Summary::from_samples(&[3.0, 1.0, f64::NAN, 2.0]).unwrap();
    /// assert_eq!((s.count, s.mean, s.median, s.stddev), (3, 2.0, 2.0, Some(1.0)));
    /// assert!(Summary::from_samples(&[f64::NAN]).is_none());
    /// ```
    pub fn from_samples(xs: &[f64]) -> Option<Summary> {
        let sorted = sorted_finite(xs);
        Summary::from_sorted(&sorted)
    }

    /// Like [`Summary::from_samples`] for input that is already sorted ascending and finite
    /// (as returned by [`sorted_finite`]). Returns `None` when empty.
    pub fn from_sorted(sorted: &[f64]) -> Option<Summary> {
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let mean = mean(sorted);
        let stddev = sample_variance(sorted, mean).map(f64::sqrt);
        let median = percentile(sorted, 50.0);
        let mut dev: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        Some(Summary {
            count: n,
            mean,
            stddev,
            median,
            min: sorted[0],
            max: sorted[n - 1],
            p90: percentile(sorted, 90.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            mad: percentile(&dev, 50.0),
        })
    }

    /// Coefficient of variation (σ / mean), when both are defined and the mean is not zero.
    pub fn cv(&self) -> Option<f64> {
        self.stddev
            .filter(|_| self.mean != 0.0)
            .map(|s| s / self.mean.abs())
    }
}

/// The finite values of `xs`, sorted ascending (NaN and ±∞ dropped).
pub fn sorted_finite(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (divisor `n - 1`) around `mean`; `None` when fewer than two values.
pub fn sample_variance(xs: &[f64], mean: f64) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    Some(ss / (xs.len() - 1) as f64)
}

/// The `p`-th percentile (`p` in 0–100) of `sorted` (ascending), interpolating linearly between
/// the two nearest ranks: numpy's default (`method="linear"`, Hyndman & Fan type 7).
///
/// `p` is clamped to 0–100. Returns NaN for an empty slice or a NaN `p`; never panics.
///
/// ```
/// use benchfleet_analysis::percentile;
/// assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
/// assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || p.is_nan() {
        return f64::NAN;
    }
    let (lo, hi, t) = ranks(n, p);
    lerp(sorted[lo], sorted[hi], t)
}

/// The two ranks [`percentile`] interpolates between in a sample of `n`, and the weight.
pub(crate) fn ranks(n: usize, p: f64) -> (usize, usize, f64) {
    let rank = p.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, rank - lo as f64)
}

/// numpy's lerp: exact at both ends, symmetric around t = 0.5.
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// [`percentile`] of `xs` in any order (reordered in place), without sorting it: the two ranks
/// are selected (`select_nth_unstable`, linear time). Equal to `percentile` of `xs` sorted by
/// `f64::total_cmp`; NaN for an empty slice or a NaN `p`.
pub(crate) fn percentile_unsorted(xs: &mut [f64], p: f64) -> f64 {
    let n = xs.len();
    if n == 0 || p.is_nan() {
        return f64::NAN;
    }
    let (lo, hi, t) = ranks(n, p);
    let (_, &mut a, right) = xs.select_nth_unstable_by(lo, f64::total_cmp);
    let b = if hi == lo {
        a
    } else {
        // The next rank is the smallest of what lies above `lo`.
        right.iter().copied().min_by(f64::total_cmp).unwrap_or(a)
    };
    lerp(a, b, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    // Expected values computed with numpy 2.4 (tests/data/summary.py in this crate):
    //   np.percentile(x, p)  (default linear method)
    #[test]
    fn percentile_matches_numpy() {
        let x = [0.12, 0.5, 0.51, 0.7, 1.3, 2.2, 2.25, 9.0];
        let cases = [
            (0.0, 0.12),
            (10.0, 0.386),
            (25.0, 0.5075000000000001),
            (50.0, 1.0),
            (90.0, 4.274999999999999),
            (95.0, 6.637499999999997),
            (99.0, 8.527499999999998),
            (100.0, 9.0),
        ];
        for (p, want) in cases {
            let got = percentile(&x, p);
            assert!(close(got, want), "p{p}: got {got}, numpy {want}");
        }
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&x, 150.0), 9.0);
        assert_eq!(percentile(&x, -3.0), 0.12);
    }

    // numpy: mean, std(ddof=1), median, min, max, percentile 95/99,
    //        median(abs(x - median(x)))  (scipy.stats.median_abs_deviation(x) agrees)
    #[test]
    fn summary_matches_numpy() {
        let x = [1.02, 0.98, 1.10, 1.01, 0.97, 1.05, 1.00, 0.99, 1.30, 1.03];
        let s = Summary::from_samples(&x).unwrap();
        let want = [
            ("mean", s.mean, 1.0450000000000002),
            ("std", s.stddev.unwrap(), 0.09721111047611793),
            ("median", s.median, 1.0150000000000001),
            ("min", s.min, 0.97),
            ("max", s.max, 1.30),
            ("p90", s.p90, 1.12), // by hand: 1.10 + 0.1 · (1.30 − 1.10)
            ("p95", s.p95, 1.21),
            ("p99", s.p99, 1.282),
            ("mad", s.mad, 0.030000000000000027),
        ];
        for (name, got, exp) in want {
            assert!(close(got, exp), "{name}: got {got}, numpy {exp}");
        }
        assert_eq!(s.count, 10);
    }

    #[test]
    fn non_finite_values_are_dropped_and_counted() {
        let s =
            Summary::from_samples(&[f64::NAN, 2.0, f64::INFINITY, 4.0, f64::NEG_INFINITY]).unwrap();
        assert_eq!((s.count, s.mean, s.min, s.max), (2, 3.0, 2.0, 4.0));
        assert!(Summary::from_samples(&[]).is_none());
        assert!(Summary::from_samples(&[f64::NAN, f64::INFINITY]).is_none());
    }

    #[test]
    fn single_sample_has_no_stddev() {
        let s = Summary::from_samples(&[0.5]).unwrap();
        assert_eq!(
            (s.count, s.stddev, s.median, s.p99, s.mad),
            (1, None, 0.5, 0.5, 0.0)
        );
        assert_eq!(s.cv(), None);
    }

    #[test]
    fn order_does_not_change_any_bit() {
        let a = [0.3, 0.1, 0.2, 0.7, 0.11];
        let mut b = a;
        b.reverse();
        assert_eq!(Summary::from_samples(&a), Summary::from_samples(&b));
    }
}
