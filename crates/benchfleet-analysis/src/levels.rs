//! Verdicts that know which level their noise comes from (issue 21).
//!
//! Runs of one invocation share the machine's state (frequency, neighbours, caches), so the
//! variance *between* invocations is larger than the runs of one invocation suggest, and a test
//! over the runs of two separate invocations is overconfident. Every comparison therefore has a
//! [`Mode`] that says how that level was handled:
//!
//! - [`Mode::HeadToHead`]: both sides were measured interleaved (A B A B) in one invocation, so
//!   the state of the machine hits both alike; the runs are tested as they are (Welch and
//!   Mann–Whitney over runs, as [`crate::compare`]).
//! - [`Mode::MultiInvocation`]: each side was measured in two or more invocations; the test is
//!   Welch's t-test on the per-invocation means, and the ratio's interval a two-level
//!   ([`hierarchical_bootstrap_ratio`]: invocations, then runs) bootstrap.
//! - [`Mode::HistoryBand`] and [`Mode::SingleInvocation`]: one invocation per side, so nothing
//!   in the data measures the between-invocation variance. The verdict then needs the change to
//!   exceed a band: `z(1 − α/2) · √2 · cv`, with `cv` the between-invocation spread of this
//!   benchmark's recent history ([`HistoryBand`]) or, without history, the largest of an
//!   assumed spread (2%), the drift of the runs within the invocations ([`drift_cv`]) and the
//!   runs' own spread: conservative on a busy machine, cheap on a quiet one.
//!
//! Whatever the mode, the fixed noise threshold (2%) stays as a floor, and the [`Assessment`]
//! says what the verdict saw: noise at each level, the band and the smallest change it could
//! have detected with 95% power. A change larger than the band that is not significant is
//! [`Verdict::Inconclusive`], not unchanged, and so is any result of a comparison that could not
//! have detected a change of [`LevelsConfig::resolution`] (20%).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::bootstrap::{BootstrapConfig, CHUNK, ConfidenceInterval, MeanMedianCi};
use crate::compare::{Assessment, BandSource, CompareConfig, Comparison, Mode, Verdict};
use crate::error::{AnalysisError, check_open_unit, invalid, need};
use crate::hypothesis::{effect_size, mann_whitney_u, t_from_parts, welch_t_test};
use crate::summary::{Summary, mean, percentile, sample_variance, sorted_finite};

/// The between-invocation spread of one benchmark, learned from its recent history (the mean
/// of each stored run), like Bencher's statistical thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryBand {
    /// Standard deviation of the log of the run means (≈ their coefficient of variation).
    pub cv: f64,
    /// How many runs of history it came from.
    pub invocations: usize,
}

/// Fewest runs of history a [`HistoryBand`] is learned from.
pub const HISTORY_MIN_RUNS: usize = 5;

impl HistoryBand {
    /// Learn the band from the means of recent runs (oldest first, non-finite and non-positive
    /// dropped; at least [`HISTORY_MIN_RUNS`]).
    ///
    /// ```
    /// use benchfleet_analysis::HistoryBand;
    /// let h = HistoryBand::from_means(&[1.00, 1.05, 0.97, 1.02, 0.99, 1.03]).unwrap();
    /// assert!(h.cv > 0.02 && h.cv < 0.04);
    /// ```
    pub fn from_means(means: &[f64]) -> Result<HistoryBand, AnalysisError> {
        let logs: Vec<f64> = means
            .iter()
            .filter(|x| x.is_finite() && **x > 0.0)
            .map(|x| x.ln())
            .collect();
        need("a history band (runs)", HISTORY_MIN_RUNS, logs.len())?;
        let m = mean(&logs);
        let cv = sample_variance(&logs, m).unwrap_or(0.0).sqrt();
        Ok(HistoryBand {
            cv,
            invocations: logs.len(),
        })
    }
}

/// How to compare, beyond [`CompareConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelsConfig {
    pub compare: CompareConfig,
    /// Both sides were measured interleaved in one invocation.
    pub head_to_head: bool,
    /// The benchmark's between-invocation spread from history, when known.
    pub history: Option<HistoryBand>,
    /// The between-invocation coefficient of variation assumed, at least, with one invocation
    /// per side and no history (the drift of the runs and their own spread count when larger);
    /// 0 assumes nothing: the floor alone decides, as [`crate::compare`].
    pub assumed_between_cv: f64,
    /// Power at which [`Assessment::min_detectable`] is stated (default 0.95).
    pub power: f64,
    /// A comparison is `unchanged` only when it could have detected a change of this size
    /// (default 0.20 = 20%, ten times the default floor); one that could not is
    /// `inconclusive`, whatever it measured: on a machine where runs vary by ±40%, "no change
    /// seen" is not "unchanged".
    pub resolution: f64,
}

/// The between-invocation CV assumed when nothing measured it: calibrated on a shared, noisy
/// 2-core machine (docs/STATISTICS.md, issue 21), where invocations of a 10–30 ms CPU loop vary
/// by about this much between invocations.
pub const DEFAULT_ASSUMED_BETWEEN_CV: f64 = 0.02;

impl Default for LevelsConfig {
    fn default() -> Self {
        LevelsConfig {
            compare: CompareConfig::default(),
            head_to_head: false,
            history: None,
            assumed_between_cv: DEFAULT_ASSUMED_BETWEEN_CV,
            power: 0.95,
            resolution: 0.20,
        }
    }
}

/// Per-invocation samples of one side: `invocations[i]` are the runs of invocation `i`.
pub type Invocations<'a> = &'a [Vec<f64>];

/// Compare two sides measured in one or more invocations each (see the module docs).
///
/// ```
/// use benchfleet_analysis::{compare_levels, LevelsConfig, Mode, Verdict};
/// let a = vec![vec![1.00, 1.01, 0.99], vec![1.03, 1.02, 1.04], vec![0.98, 0.99, 0.97]];
/// let b: Vec<Vec<f64>> = a.iter().map(|i| i.iter().map(|x| x * 1.2).collect()).collect();
/// let c = compare_levels(&a, &b, &LevelsConfig::default()).unwrap();
/// assert_eq!(c.assessment.mode, Mode::MultiInvocation);
/// assert_eq!(c.verdict, Verdict::Regressed);
/// ```
pub fn compare_levels(
    baseline: Invocations,
    candidate: Invocations,
    cfg: &LevelsConfig,
) -> Result<Comparison, AnalysisError> {
    check_open_unit("alpha", cfg.compare.alpha)?;
    check_open_unit("power", cfg.power)?;
    let floor = cfg.compare.noise_threshold;
    if !(floor >= 0.0 && floor.is_finite()) {
        return Err(invalid(
            "noise_threshold",
            floor,
            "expected a fraction ≥ 0, e.g. 0.02 for 2%",
        ));
    }
    if cfg.resolution.is_nan() || cfg.resolution <= 0.0 {
        return Err(invalid(
            "resolution",
            cfg.resolution,
            "expected a fraction > 0, e.g. 0.2 for 20%",
        ));
    }
    if !(cfg.assumed_between_cv >= 0.0 && cfg.assumed_between_cv.is_finite()) {
        return Err(invalid(
            "assumed_between_cv",
            cfg.assumed_between_cv,
            "expected a fraction ≥ 0",
        ));
    }
    let drift = pooled_drift(baseline, candidate);
    let clean = |side: Invocations| -> Vec<Vec<f64>> {
        side.iter()
            .map(|xs| sorted_finite(xs))
            .filter(|xs| !xs.is_empty())
            .collect()
    };
    let (ba, ca) = (clean(baseline), clean(candidate));
    let flat = |s: &[Vec<f64>]| s.concat();
    let (bf, cf) = (flat(&ba), flat(&ca));
    let multi = !cfg.head_to_head && ba.len() >= 2 && ca.len() >= 2;
    let summary = |xs: &[f64], what| {
        Summary::from_samples(xs).ok_or(AnalysisError::TooFewSamples {
            what,
            need: 2,
            got: 0,
        })
    };
    let effect = effect_size(&bf, &cf)?;
    let mann_whitney = mann_whitney_u(&bf, &cf)?;
    let runs_welch = welch_t_test(&bf, &cf)?;
    let (b, c) = (
        summary(&bf, "comparison (baseline)")?,
        summary(&cf, "comparison (candidate)")?,
    );
    let within_cv = pooled_within_cv(&ba, &ca);
    let alpha = cfg.compare.alpha;
    let z = |p: f64| Normal::standard().inverse_cdf(p);
    let (z_alpha, z_power) = (z(1.0 - alpha / 2.0), z(cfg.power));

    let (mean_ratio, welch, mode, between_cv, band, band_source, se, threshold) = if multi {
        let (mb, mc) = (invocation_means(&ba), invocation_means(&ca));
        let (gb, gc) = (mean(&mb), mean(&mc));
        let welch = welch_t_test(&mb, &mc)?;
        let (kb, kc) = (mb.len() as f64, mc.len() as f64);
        let var_b = sample_variance(&mb, gb).unwrap_or(0.0);
        let var_c = sample_variance(&mc, gc).unwrap_or(0.0);
        let r = gc / gb;
        let se = (var_c / kc + r * r * var_b / kb).sqrt() / gb;
        let between = between_cv(&ba, &ca);
        let crit = t_quantile(1.0 - alpha / 2.0, welch.df).unwrap_or(z_alpha);
        (
            gc / gb,
            welch,
            Mode::MultiInvocation,
            Some(between),
            floor,
            BandSource::Floor,
            se,
            (crit * se).max(floor),
        )
    } else {
        let se_runs = runs_se(&bf, &cf);
        let (mode, cv, source) = if cfg.head_to_head {
            (Mode::HeadToHead, None, BandSource::Floor)
        } else if let Some(h) = cfg.history {
            (Mode::HistoryBand, Some(h.cv), BandSource::History)
        } else if cfg.assumed_between_cv > 0.0 {
            // Nothing measured the between-invocation spread: the largest of the assumed one,
            // the drift within the invocations and the runs' own spread stands in for it.
            let drift = drift.unwrap_or(0.0);
            let (cv, source) = if within_cv > cfg.assumed_between_cv.max(drift) {
                (within_cv, BandSource::RunSpread)
            } else if drift > cfg.assumed_between_cv {
                (drift, BandSource::Drift)
            } else {
                (cfg.assumed_between_cv, BandSource::Assumed)
            };
            (Mode::SingleInvocation, Some(cv), source)
        } else {
            (Mode::SingleInvocation, None, BandSource::Assumed)
        };
        let learned = cv.map_or(0.0, |cv| z_alpha * std::f64::consts::SQRT_2 * cv);
        let (band, source) = if learned > floor {
            (learned, source)
        } else {
            (floor, BandSource::Floor)
        };
        let se = (se_runs * se_runs + 2.0 * cv.unwrap_or(0.0).powi(2)).sqrt();
        let crit = t_quantile(1.0 - alpha / 2.0, runs_welch.df).unwrap_or(z_alpha);
        (
            c.mean / b.mean,
            runs_welch,
            mode,
            cv,
            band,
            source,
            se,
            (crit * se_runs).max(band),
        )
    };
    let significant = if multi {
        welch.p_value < alpha
    } else {
        welch.p_value < alpha && mann_whitney.p_value < alpha
    };
    let change = mean_ratio - 1.0;
    let worse = if cfg.compare.higher_is_better {
        -change
    } else {
        change
    };
    let min_detectable = threshold + z_power * se;
    let verdict = if !change.is_finite() {
        Verdict::Inconclusive
    } else if significant && change.abs() > band {
        if worse > 0.0 {
            Verdict::Regressed
        } else {
            Verdict::Improved
        }
    } else if change.abs() > band || min_detectable > cfg.resolution {
        Verdict::Inconclusive
    } else {
        Verdict::Unchanged
    };
    let ratio_ci = match &cfg.compare.bootstrap {
        None => None,
        Some(bc) if multi => Some(hierarchical_bootstrap_ratio(&ba, &ca, bc)?),
        Some(bc) => Some(crate::bootstrap::bootstrap_ratios(&bf, &cf, bc)?),
    };
    let median_ratio = c.median / b.median;
    Ok(Comparison {
        baseline: b,
        candidate: c,
        mean_ratio,
        median_ratio,
        ratio_ci,
        welch,
        mann_whitney,
        effect,
        verdict,
        assessment: Assessment {
            mode,
            invocations: [ba.len(), ca.len()],
            within_cv,
            between_cv,
            drift_cv: drift,
            band,
            band_source,
            standard_error: se,
            min_detectable,
            p_value: welch.p_value,
        },
    })
}

/// How many runs a side a head-to-head comparison of runs like these needs to detect a change
/// of `change` (a fraction of the baseline's mean) with `cfg.power` at `cfg.compare.alpha`: the
/// count at which [`Assessment::min_detectable`](crate::Assessment) of [`compare_levels`] in
/// [`Mode::HeadToHead`] would be at most `change`, from the runs' spread so far (sizing the
/// experiment from the measured variance, as Kalibera & Jones do). Stopping when this count is
/// reached looks at the spread, never at the difference, so it does not bias the verdict.
///
/// `None` when it cannot be said: fewer than 2 runs a side, a mean that is not positive, or a
/// `change` no larger than the noise floor (no run count makes such a change a verdict).
///
/// ```
/// use benchfleet_analysis::{LevelsConfig, head_to_head_runs_to_detect};
/// let a: Vec<f64> = (0..20).map(|i| 1.0 + 0.3 * ((i % 5) as f64 - 2.0) / 2.0).collect();
/// let n10 = head_to_head_runs_to_detect(&a, &a, 0.10, &LevelsConfig::default()).unwrap();
/// let n20 = head_to_head_runs_to_detect(&a, &a, 0.20, &LevelsConfig::default()).unwrap();
/// assert!(n10 > 3 * n20, "half the change needs about four times the runs");
/// ```
pub fn head_to_head_runs_to_detect(
    baseline: &[f64],
    candidate: &[f64],
    change: f64,
    cfg: &LevelsConfig,
) -> Option<usize> {
    let (a, b) = (sorted_finite(baseline), sorted_finite(candidate));
    if a.len() < 2 || b.len() < 2 || !(change.is_finite() && change > 0.0) {
        return None;
    }
    let floor = cfg.compare.noise_threshold;
    if change <= floor {
        return None;
    }
    let (ma, mb) = (mean(&a), mean(&b));
    if !(ma > 0.0 && mb > 0.0) {
        return None;
    }
    let var = sample_variance(&a, ma)? + sample_variance(&b, mb)?;
    let normal = Normal::new(0.0, 1.0).ok()?;
    let z_alpha = normal.inverse_cdf(1.0 - cfg.compare.alpha / 2.0);
    let z_power = normal.inverse_cdf(cfg.power);
    // min_detectable = max(z_α·se, floor) + z_p·se ≤ change.
    let se_max = (change / (z_alpha + z_power)).min((change - floor) / z_power);
    // The verdict also needs Mann–Whitney's U to be significant, which needs π/3 times the runs
    // of Welch's t under normal noise (its asymptotic relative efficiency, 3/π).
    let n = std::f64::consts::FRAC_PI_3 * var / (ma * ma * se_max * se_max);
    n.is_finite().then(|| (n.ceil() as usize).max(2))
}

/// Blocks of consecutive runs [`drift_cv`] cuts an invocation into.
pub const DRIFT_BLOCKS: usize = 5;
/// Fewest runs a block of [`drift_cv`] needs.
pub const DRIFT_MIN_BLOCK: usize = 2;

/// How much the level of one invocation's runs drifts while it is measured: its runs, in the
/// order they ran, cut into [`DRIFT_BLOCKS`] blocks of consecutive runs; the variance of the
/// block means beyond what the runs' own noise explains (`var(block means) − mean(var/len)`,
/// clamped at 0), as a coefficient of variation. `None` with fewer than
/// `DRIFT_BLOCKS · DRIFT_MIN_BLOCK` finite runs.
///
/// ```
/// use benchfleet_analysis::drift_cv;
/// let steady: Vec<f64> = (0..40).map(|i| 1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0)).collect();
/// let drifting: Vec<f64> = (0..40).map(|i| 1.0 + i as f64 * 0.005).collect();
/// assert!(drift_cv(&steady).unwrap() < 0.005);
/// assert!(drift_cv(&drifting).unwrap() > 0.04);
/// ```
pub fn drift_cv(runs: &[f64]) -> Option<f64> {
    let xs: Vec<f64> = runs.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.len() < DRIFT_BLOCKS * DRIFT_MIN_BLOCK {
        return None;
    }
    let grand = mean(&xs);
    let blocks: Vec<&[f64]> = (0..DRIFT_BLOCKS)
        .map(|b| &xs[b * xs.len() / DRIFT_BLOCKS..(b + 1) * xs.len() / DRIFT_BLOCKS])
        .collect();
    let means: Vec<f64> = blocks.iter().map(|b| mean(b)).collect();
    let var_means = sample_variance(&means, mean(&means)).unwrap_or(0.0);
    let noise = mean(
        &blocks
            .iter()
            .map(|b| sample_variance(b, mean(b)).unwrap_or(0.0) / b.len() as f64)
            .collect::<Vec<_>>(),
    );
    (grand != 0.0).then(|| (var_means - noise).max(0.0).sqrt() / grand.abs())
}

/// [`drift_cv`] pooled (root mean square) over the invocations of both sides that have one.
fn pooled_drift(a: Invocations, b: Invocations) -> Option<f64> {
    let d: Vec<f64> = a.iter().chain(b).filter_map(|xs| drift_cv(xs)).collect();
    (!d.is_empty()).then(|| (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt())
}

fn t_quantile(p: f64, df: f64) -> Option<f64> {
    (df.is_finite() && df > 0.0)
        .then(|| StudentsT::new(0.0, 1.0, df).ok())
        .flatten()
        .map(|d| d.inverse_cdf(p))
}

fn invocation_means(side: &[Vec<f64>]) -> Vec<f64> {
    side.iter().map(|xs| mean(xs)).collect()
}

/// Relative standard error of the difference of means over runs (runs independent).
fn runs_se(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let va = sample_variance(a, ma).unwrap_or(0.0) / a.len() as f64;
    let vb = sample_variance(b, mb).unwrap_or(0.0) / b.len() as f64;
    (va + vb).sqrt() / ma
}

/// √(pooled within-invocation variance) / grand mean of the baseline.
fn pooled_within_cv(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (mut ss, mut df) = (0.0, 0.0);
    for xs in a.iter().chain(b) {
        if xs.len() >= 2 {
            let m = mean(xs);
            ss += xs.iter().map(|x| (x - m).powi(2)).sum::<f64>();
            df += (xs.len() - 1) as f64;
        }
    }
    let grand = mean(&a.concat());
    if df > 0.0 && grand != 0.0 {
        (ss / df).sqrt() / grand.abs()
    } else {
        0.0
    }
}

/// Method-of-moments estimate of the between-invocation CV, pooled over both sides:
/// `var(invocation means) − mean(within variance / runs)`, clamped at 0.
fn between_cv(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (mut total, mut weight) = (0.0, 0.0);
    let mut grand = 0.0;
    for side in [a, b] {
        let means = invocation_means(side);
        let m = mean(&means);
        if side.len() < 2 {
            continue;
        }
        if grand == 0.0 {
            grand = m;
        }
        let var_means = sample_variance(&means, m).unwrap_or(0.0);
        let noise = mean(
            &side
                .iter()
                .map(|xs| sample_variance(xs, mean(xs)).unwrap_or(0.0) / xs.len() as f64)
                .collect::<Vec<_>>(),
        );
        let k = (side.len() - 1) as f64;
        total += k * (var_means - noise).max(0.0);
        weight += k;
    }
    if weight > 0.0 && grand != 0.0 {
        (total / weight).sqrt() / grand.abs()
    } else {
        0.0
    }
}

/// Two-level bootstrap intervals of `mean(b)/mean(a)` and `median(b)/median(a)`, each side's
/// statistic taken over its invocation means (median: over all runs): every resample draws the
/// side's invocations with replacement, then the runs of each drawn invocation with
/// replacement. Deterministic as [`crate::bootstrap_ratios`] (chunked, seeded streams).
///
/// With `k` invocations a side the interval is about `√((k − 1)/k)` too narrow (the bootstrap's
/// known small-sample bias); the verdict uses Welch's test on the invocation means instead, the
/// interval is for display.
pub fn hierarchical_bootstrap_ratio(
    a: &[Vec<f64>],
    b: &[Vec<f64>],
    cfg: &BootstrapConfig,
) -> Result<MeanMedianCi, AnalysisError> {
    check_open_unit("confidence", cfg.confidence)?;
    if cfg.resamples < 2 {
        return Err(invalid(
            "resamples",
            cfg.resamples,
            "expected at least 2 bootstrap resamples",
        ));
    }
    let clean = |side: &[Vec<f64>]| -> Vec<Vec<f64>> {
        side.iter()
            .map(|xs| sorted_finite(xs))
            .filter(|xs| !xs.is_empty())
            .collect()
    };
    let (a, b) = (clean(a), clean(b));
    need("a two-level bootstrap (baseline invocations)", 2, a.len())?;
    need("a two-level bootstrap (candidate invocations)", 2, b.len())?;
    let stat = |side: &[Vec<f64>]| -> [f64; 2] {
        let mut all = side.concat();
        all.sort_by(f64::total_cmp);
        [mean(&invocation_means(side)), percentile(&all, 50.0)]
    };
    let ratio = |sa: [f64; 2], sb: [f64; 2]| [sb[0] / sa[0], sb[1] / sa[1]];
    let point = ratio(stat(&a), stat(&b));
    let draw = |rng: &mut ChaCha8Rng, side: &[Vec<f64>]| -> Vec<Vec<f64>> {
        (0..side.len())
            .map(|_| {
                let inv = &side[rng.random_range(0..side.len())];
                (0..inv.len())
                    .map(|_| inv[rng.random_range(0..inv.len())])
                    .collect()
            })
            .collect()
    };
    let chunks = cfg.resamples.div_ceil(CHUNK);
    let dist: Vec<[f64; 2]> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|k| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(k as u64);
            let len = CHUNK.min(cfg.resamples - k * CHUNK);
            (0..len)
                .map(|_| {
                    let ra = draw(&mut rng, &a);
                    let rb = draw(&mut rng, &b);
                    ratio(stat(&ra), stat(&rb))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let lo = (1.0 - cfg.confidence) / 2.0 * 100.0;
    let hi = (1.0 + cfg.confidence) / 2.0 * 100.0;
    let ci = |k: usize| {
        let col = sorted_finite(&dist.iter().map(|r| r[k]).collect::<Vec<_>>());
        ConfidenceInterval {
            estimate: point[k],
            lower: percentile(&col, lo),
            upper: percentile(&col, hi),
            confidence: cfg.confidence,
        }
    };
    Ok(MeanMedianCi {
        mean: ci(0),
        median: ci(1),
    })
}

/// A `(1 − alpha)` t-interval of the ratio of the mean invocation means, `mean(b)/mean(a)`
/// (delta method on Welch's standard error of the difference). The interval the
/// multi-invocation verdict's test corresponds to.
pub fn invocation_ratio_interval(
    a: &[Vec<f64>],
    b: &[Vec<f64>],
    confidence: f64,
) -> Result<ConfidenceInterval, AnalysisError> {
    check_open_unit("confidence", confidence)?;
    let (ma, mb) = (invocation_means(a), invocation_means(b));
    need("an invocation interval (baseline invocations)", 2, ma.len())?;
    need(
        "an invocation interval (candidate invocations)",
        2,
        mb.len(),
    )?;
    let (ga, gb) = (mean(&ma), mean(&mb));
    let (ka, kb) = (ma.len() as f64, mb.len() as f64);
    let va = sample_variance(&ma, ga).unwrap_or(0.0) / ka;
    let vb = sample_variance(&mb, gb).unwrap_or(0.0) / kb;
    let t = t_from_parts(gb - ga, vb, va, kb, ka);
    let q = t_quantile(1.0 - (1.0 - confidence) / 2.0, t.df).unwrap_or(f64::INFINITY);
    let r = gb / ga;
    let se = (vb + r * r * va).sqrt() / ga;
    Ok(ConfidenceInterval {
        estimate: r,
        lower: r - q * se,
        upper: r + q * se,
        confidence,
    })
}

/// Compare `candidate` with `baseline` (non-finite values dropped; two finite samples each).
///
/// The verdict is `regressed` (or `improved`) only when Welch's p and Mann–Whitney's p are both
/// below `alpha` **and** the mean moved by more than `noise_threshold` in the bad (good)
/// direction; a move larger than `noise_threshold` that is not significant is `inconclusive`,
/// and so is a comparison too noisy to detect a 20% change ([`crate::LevelsConfig::resolution`]);
/// anything else `unchanged`. The runs are taken as independent: right for two sides measured
/// interleaved in one invocation, overconfident for separate invocations, which
/// [`crate::compare_levels`] handles ([`crate::Mode`]). With the defaults, simulated A/A
/// comparisons of 30 runs at 1–3% CV raise no alarm in ≥ 99% of trials and a 5% slowdown is
/// `regressed` in ≥ 95% (see `tests/verdict_rates.rs`).
///
/// ```
/// use benchfleet_analysis::{compare, CompareConfig, Verdict};
/// let base = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99];
/// let slow: Vec<f64> = base.iter().map(|x| x * 1.10).collect();
/// let cfg = CompareConfig { bootstrap: None, ..Default::default() };
/// assert_eq!(compare(&base, &slow, &cfg).unwrap().verdict, Verdict::Regressed);
/// assert_eq!(compare(&base, &base, &cfg).unwrap().verdict, Verdict::Unchanged);
/// ```
pub fn compare(
    baseline: &[f64],
    candidate: &[f64],
    cfg: &CompareConfig,
) -> Result<Comparison, AnalysisError> {
    compare_levels(
        &[baseline.to_vec()],
        &[candidate.to_vec()],
        &LevelsConfig {
            compare: *cfg,
            assumed_between_cv: 0.0,
            ..LevelsConfig::default()
        },
    )
}
