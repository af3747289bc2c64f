//! Bootstrap confidence intervals, parallel and deterministic.
//!
//! Resamples are split into fixed chunks of [`CHUNK`]; chunk `k` draws from a ChaCha8 generator
//! seeded with the configured seed on stream `k`. The result therefore depends on the seed and
//! the number of resamples only, never on the number of threads or on scheduling.
//!
//! A resample is drawn as indexes into the sorted sample and laid out by counting them (no
//! comparison sort, no allocation per resample), and the interval's percentiles are selected
//! from the resampled statistics rather than sorted: the same numbers as drawing, sorting and
//! sorting again, at a fraction of the cost (a compare of 1,000 benchmarks bootstraps 1,000
//! ratios).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, check_open_unit, invalid, need};
use crate::summary::{lerp, mean, percentile, percentile_unsorted, ranks, sorted_finite};

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
    let stat = |s: &[f64]| [mean(s), percentile(s, 50.0)];
    let point = stat(&xs);
    let dist = resampled(cfg, [&xs], |[s]| {
        let (mean, median) = s.mean_and_percentile(50.0);
        [mean, median]
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
    let ratios = |ra: &[f64], rb: &[f64]| {
        [
            mean(rb) / mean(ra),
            percentile(rb, 50.0) / percentile(ra, 50.0),
        ]
    };
    let point = ratios(&a, &b);
    let dist = resampled(cfg, [&a, &b], |[ra, rb]| {
        let ((ma, pa), (mb, pb)) = (ra.mean_and_percentile(50.0), rb.mean_and_percentile(50.0));
        [mb / ma, pb / pa]
    });
    let [m, med] = intervals(point, dist, cfg.confidence);
    Ok(MeanMedianCi {
        mean: m,
        median: med,
    })
}

/// Draw one resample's index counts: for each sample of `sizes` in turn, as many indexes as it
/// has values, each counted in `counts` (one slot per value, the samples' slots one after the
/// other). The generator calls are those of drawing the values themselves, in the same order.
fn draw_counts(rng: &mut ChaCha8Rng, sizes: &[usize], counts: &mut [u32]) {
    counts.fill(0);
    let mut at = 0;
    for &n in sizes {
        let slots = &mut counts[at..at + n];
        for _ in 0..n {
            slots[rng.random_range(0..n)] += 1;
        }
        at += n;
    }
}

/// One resample of a sample sorted by `f64::total_cmp`: how often each of its values was drawn.
/// Its statistics are those of the drawn values sorted ([`mean`], [`percentile`]), bit for bit
/// (values equal under `total_cmp` are identical, and the sums run in the same order), without
/// laying the values out or sorting them.
#[derive(Clone, Copy)]
struct Drawn<'a> {
    from: &'a [f64],
    counts: &'a [u32],
}

impl Drawn<'_> {
    #[cfg(test)]
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.from
            .iter()
            .zip(self.counts)
            .flat_map(|(x, &c)| std::iter::repeat_n(*x, c as usize))
    }

    /// [`mean`] of the drawn values in sorted order.
    fn mean(&self) -> f64 {
        if self.from.is_empty() {
            return f64::NAN;
        }
        // As `Iterator::sum` of the values one by one: the same additions in the same order.
        let mut sum = -0.0;
        for (x, &c) in self.from.iter().zip(self.counts) {
            for _ in 0..c {
                sum += *x;
            }
        }
        sum / self.from.len() as f64
    }

    /// The drawn value of rank `r` (from 0) in sorted order.
    #[cfg(test)]
    fn at_rank(&self, r: usize) -> f64 {
        let mut seen = 0;
        for (x, &c) in self.from.iter().zip(self.counts) {
            seen += c as usize;
            if r < seen {
                return *x;
            }
        }
        f64::NAN
    }

    /// [`percentile`] of the drawn values in sorted order.
    #[cfg(test)]
    fn percentile(&self, p: f64) -> f64 {
        let n = self.from.len();
        if n == 0 || p.is_nan() {
            return f64::NAN;
        }
        let (lo, hi, t) = ranks(n, p);
        lerp(self.at_rank(lo), self.at_rank(hi), t)
    }

    /// `(`[`Drawn::mean`]`, `[`percentile`]`(p))` in one pass over the counts.
    fn mean_and_percentile(&self, p: f64) -> (f64, f64) {
        let n = self.from.len();
        if n == 0 || p.is_nan() {
            return (self.mean(), f64::NAN);
        }
        let (lo, hi, t) = ranks(n, p);
        let (mut a, mut b) = (f64::NAN, f64::NAN);
        let mut seen = 0;
        let mut sum = -0.0;
        for (x, &c) in self.from.iter().zip(self.counts) {
            let c = c as usize;
            if c == 0 {
                continue;
            }
            for _ in 0..c {
                sum += *x;
            }
            if (seen..seen + c).contains(&lo) {
                a = *x;
            }
            if (seen..seen + c).contains(&hi) {
                b = *x;
            }
            seen += c;
        }
        (sum / n as f64, lerp(a, b, t))
    }
}

/// Every resample's index counts for samples of `sizes`, drawn once. They depend on the seed,
/// the number of resamples and the sizes only, never on the values: a compare of 1,000
/// benchmarks of 10 runs a side bootstraps 1,000 ratios from the same draws, so the draws are
/// kept ([`plan_for`]) and only the statistics are computed per benchmark.
#[derive(Debug)]
struct Plan {
    seed: u64,
    resamples: usize,
    sizes: Vec<usize>,
    /// `resamples` rows of `sizes.iter().sum()` counts.
    counts: Vec<u32>,
}

/// Plans of at most this many counts are kept (4 MiB); larger ones are drawn as they go.
const PLAN_MAX_COUNTS: usize = 1 << 20;
/// Plans kept at once (the oldest is dropped).
const PLANS_KEPT: usize = 4;

static PLANS: std::sync::Mutex<Vec<std::sync::Arc<Plan>>> = std::sync::Mutex::new(Vec::new());

/// The kept plan for `cfg` and `sizes`, drawn now if none is kept; `None` when it would be too
/// large to keep.
fn plan_for(cfg: &BootstrapConfig, sizes: &[usize]) -> Option<std::sync::Arc<Plan>> {
    let total: usize = sizes.iter().sum();
    if cfg.resamples.checked_mul(total)? > PLAN_MAX_COUNTS {
        return None;
    }
    let same = |p: &Plan| p.seed == cfg.seed && p.resamples == cfg.resamples && p.sizes == sizes;
    let kept = || PLANS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = kept().iter().find(|p| same(p)) {
        return Some(p.clone());
    }
    let chunks = cfg.resamples.div_ceil(CHUNK);
    let counts: Vec<u32> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|k| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(k as u64);
            let len = CHUNK.min(cfg.resamples - k * CHUNK);
            let mut rows = vec![0u32; len * total];
            for row in rows.chunks_mut(total.max(1)) {
                draw_counts(&mut rng, sizes, row);
            }
            rows
        })
        .collect();
    let plan = std::sync::Arc::new(Plan {
        seed: cfg.seed,
        resamples: cfg.resamples,
        sizes: sizes.to_vec(),
        counts,
    });
    let mut kept = kept();
    if kept.len() >= PLANS_KEPT {
        kept.remove(0);
    }
    kept.push(plan.clone());
    Some(plan)
}

/// `stat` of every resample of `samples` (each sorted by `f64::total_cmp`), in parallel and
/// deterministically; one row per resample. Resample `r` of chunk `k` takes its indexes from
/// generator stream `k`, each sample's in turn; the kept [`Plan`] holds exactly those draws.
fn resampled<const S: usize, const K: usize>(
    cfg: &BootstrapConfig,
    samples: [&[f64]; S],
    stat: impl Fn([Drawn<'_>; S]) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let plan = plan_for(cfg, &samples.map(<[f64]>::len));
    resampled_with(cfg, samples, plan.as_deref(), stat)
}

fn resampled_with<const S: usize, const K: usize>(
    cfg: &BootstrapConfig,
    samples: [&[f64]; S],
    plan: Option<&Plan>,
    stat: impl Fn([Drawn<'_>; S]) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let sizes: Vec<usize> = samples.iter().map(|s| s.len()).collect();
    let total: usize = sizes.iter().sum();
    let chunks = cfg.resamples.div_ceil(CHUNK);
    (0..chunks)
        .into_par_iter()
        .flat_map_iter(|k| {
            let len = CHUNK.min(cfg.resamples - k * CHUNK);
            let mut rng = None;
            let mut drawn = vec![0u32; total];
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                let counts: &[u32] = match plan {
                    Some(p) => {
                        let r = k * CHUNK + i;
                        &p.counts[r * total..(r + 1) * total]
                    }
                    None => {
                        let rng = rng.get_or_insert_with(|| {
                            let mut g = ChaCha8Rng::seed_from_u64(cfg.seed);
                            g.set_stream(k as u64);
                            g
                        });
                        draw_counts(rng, &sizes, &mut drawn);
                        &drawn
                    }
                };
                let mut at = 0;
                let drawn = samples.map(|from| {
                    let d = Drawn {
                        from,
                        counts: &counts[at..at + from.len()],
                    };
                    at += from.len();
                    d
                });
                out.push(stat(drawn));
            }
            out
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
        let mut col: Vec<f64> = dist
            .iter()
            .map(|row| row[k])
            .filter(|x| x.is_finite())
            .collect();
        // The two percentiles of the resampled statistics, selected rather than sorted (as
        // `percentile` of the sorted column, in linear time).
        ConfidenceInterval {
            estimate: point[k],
            lower: percentile_unsorted(&mut col, lo),
            upper: percentile_unsorted(&mut col, hi),
            confidence,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `draw_sorted` replaces: draw each value, then sort.
    fn draw_then_sort(rng: &mut ChaCha8Rng, from: &[f64]) -> Vec<f64> {
        let mut v: Vec<f64> = (0..from.len())
            .map(|_| from[rng.random_range(0..from.len())])
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn counted_resamples_equal_drawn_and_sorted_ones_bit_for_bit() {
        // Ties, negative zero, tiny and huge values, and sizes around the usual run counts.
        let base = [3.0, -0.0, 0.0, 1e-300, 2.5, 2.5, 7.0, -4.0, 1e300, 2.5, 0.1];
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n in [2, 3, 5, 10, 11] {
            let from = sorted_finite(&base[..n]);
            let other = sorted_finite(&base[n / 2..]);
            for seed in 0..20u64 {
                let (mut r1, mut r2) = (
                    ChaCha8Rng::seed_from_u64(seed),
                    ChaCha8Rng::seed_from_u64(seed),
                );
                let sizes = [from.len(), other.len()];
                let mut counts = vec![0; from.len() + other.len()];
                for _ in 0..50 {
                    draw_counts(&mut r1, &sizes, &mut counts);
                    let a = Drawn {
                        from: &from,
                        counts: &counts[..from.len()],
                    };
                    let b = Drawn {
                        from: &other,
                        counts: &counts[from.len()..],
                    };
                    let want_a = draw_then_sort(&mut r2, &from);
                    let want_b = draw_then_sort(&mut r2, &other);
                    for (d, want) in [(a, &want_a), (b, &want_b)] {
                        let got: Vec<f64> = d.values().collect();
                        assert_eq!(bits(&got), bits(want), "n {n}, seed {seed}");
                        assert_eq!(d.mean().to_bits(), mean(want).to_bits());
                        for p in [0.0, 25.0, 50.0, 97.5, 100.0] {
                            let want_p = percentile(want, p).to_bits();
                            assert_eq!(d.percentile(p).to_bits(), want_p, "n {n}, p {p}");
                            let (m, q) = d.mean_and_percentile(p);
                            assert_eq!(m.to_bits(), mean(want).to_bits());
                            assert_eq!(q.to_bits(), want_p, "n {n}, seed {seed}, p {p}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn kept_draws_give_what_drawing_as_we_go_gives() {
        let a: Vec<f64> = sorted_finite(
            &(0..10)
                .map(|i| 1.0 + (i * 7 % 10) as f64 * 0.01)
                .collect::<Vec<_>>(),
        );
        let b: Vec<f64> = sorted_finite(
            &(0..7)
                .map(|i| 1.1 + (i * 3 % 7) as f64 * 0.02)
                .collect::<Vec<_>>(),
        );
        // Not a multiple of CHUNK: the last chunk is short.
        let cfg = BootstrapConfig {
            resamples: 3 * CHUNK + 17,
            ..Default::default()
        };
        let stat = |[ra, rb]: [Drawn<'_>; 2]| [rb.mean() / ra.mean(), rb.percentile(50.0)];
        let plan = plan_for(&cfg, &[a.len(), b.len()]).expect("small enough to keep");
        let kept = resampled_with(&cfg, [&a, &b], Some(&plan), stat);
        let drawn = resampled_with(&cfg, [&a, &b], None, stat);
        assert_eq!(kept.len(), cfg.resamples);
        assert_eq!(kept, drawn);
        // The same plan is found again; a large one is not kept.
        assert!(std::sync::Arc::ptr_eq(
            &plan,
            &plan_for(&cfg, &[a.len(), b.len()]).unwrap()
        ));
        assert!(plan_for(&cfg, &[PLAN_MAX_COUNTS, 1]).is_none());
    }

    #[test]
    fn selected_percentiles_equal_sorted_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in [1, 2, 3, 10, 257, 10_000] {
            let xs: Vec<f64> = (0..n)
                .map(|_| (rng.random_range(0..1000u32) as f64) / 7.0)
                .collect();
            let sorted = sorted_finite(&xs);
            for p in [0.0, 2.5, 50.0, 97.5, 100.0] {
                let mut v = xs.clone();
                assert_eq!(
                    percentile_unsorted(&mut v, p).to_bits(),
                    percentile(&sorted, p).to_bits(),
                    "n {n}, p {p}"
                );
            }
        }
        assert!(percentile_unsorted(&mut [], 50.0).is_nan());
    }
}
