//! Two-sample hypothesis tests and effect sizes.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::error::{AnalysisError, need};
use crate::summary::{mean, sample_variance, sorted_finite};

/// Result of Welch's unequal-variances t-test (two-sided).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// `(mean(a) - mean(b)) / sqrt(var(a)/na + var(b)/nb)`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Welch's t-test of equal means (two-sided), as `scipy.stats.ttest_ind(a, b, equal_var=False)`.
///
/// Non-finite values are dropped. Needs two finite samples on each side. When both samples have
/// zero variance the test is degenerate: `p = 1` if the means are equal, else `p = 0`.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Result<TTest, AnalysisError> {
    let (a, b) = (sorted_finite(a), sorted_finite(b));
    need("Welch's t-test (first sample)", 2, a.len())?;
    need("Welch's t-test (second sample)", 2, b.len())?;
    let (ma, mb) = (mean(&a), mean(&b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let va = sample_variance(&a, ma).unwrap_or(0.0) / na;
    let vb = sample_variance(&b, mb).unwrap_or(0.0) / nb;
    Ok(t_from_parts(ma - mb, va, vb, na, nb))
}

/// Welch's test from the difference of means and the squared standard errors of each side.
pub(crate) fn t_from_parts(diff: f64, va: f64, vb: f64, na: f64, nb: f64) -> TTest {
    let se2 = va + vb;
    if se2 <= 0.0 || !se2.is_finite() {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return TTest {
            t,
            df: na + nb - 2.0,
            p_value: p,
        };
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    TTest {
        t,
        df,
        p_value: two_sided_t(t, df),
    }
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom.
pub(crate) fn two_sided_t(t: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (2.0 * d.sf(t.abs())).min(1.0),
        Err(_) => f64::NAN,
    }
}

/// Result of the Mann–Whitney U test (two-sided, normal approximation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U statistic of the first sample (number of pairs where `a > b`, ties counting ½).
    pub u: f64,
    /// Standardised statistic (with tie and continuity corrections).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann–Whitney U test (two-sided), normal approximation with tie correction and continuity
/// correction, as `scipy.stats.mannwhitneyu(a, b, method="asymptotic")`.
///
/// Non-finite values are dropped. Needs one finite sample on each side; when every value is
/// tied, `p = 1`.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Result<MannWhitney, AnalysisError> {
    let (a, b) = (sorted_finite(a), sorted_finite(b));
    need("Mann–Whitney U (first sample)", 1, a.len())?;
    need("Mann–Whitney U (second sample)", 1, b.len())?;
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;
    // Merge the two sorted samples, assigning average ranks to ties.
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut r1, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        r1 += rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let mu = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return Ok(MannWhitney {
            u,
            z: 0.0,
            p_value: 1.0,
        });
    }
    let dev = (u - mu).abs() - 0.5;
    let z = dev.max(0.0) / var.sqrt() * (u - mu).signum();
    let p_value = (2.0 * Normal::standard().sf(z.abs())).min(1.0);
    Ok(MannWhitney { u, z, p_value })
}

/// Standardised effect sizes of `b` relative to `a`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectSize {
    /// Cohen's d: `(mean(b) - mean(a)) / pooled σ`. Infinite when both samples are constant and
    /// differ, 0 when they are constant and equal.
    pub cohens_d: f64,
    /// Hedges' g: Cohen's d with the small-sample bias correction `1 - 3 / (4(na + nb) - 9)`.
    pub hedges_g: f64,
    /// Cliff's delta in −1…1: `P(b > a) - P(b < a)` over all pairs (non-parametric).
    pub cliffs_delta: f64,
}

/// Effect sizes of `b` relative to `a` (positive: `b` is larger). Needs two finite samples each.
pub fn effect_size(a: &[f64], b: &[f64]) -> Result<EffectSize, AnalysisError> {
    let (a, b) = (sorted_finite(a), sorted_finite(b));
    need("effect size (first sample)", 2, a.len())?;
    need("effect size (second sample)", 2, b.len())?;
    let (ma, mb) = (mean(&a), mean(&b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let va = sample_variance(&a, ma).unwrap_or(0.0);
    let vb = sample_variance(&b, mb).unwrap_or(0.0);
    let pooled = (((na - 1.0) * va + (nb - 1.0) * vb) / (na + nb - 2.0)).sqrt();
    let diff = mb - ma;
    let cohens_d = if pooled > 0.0 {
        diff / pooled
    } else if diff == 0.0 {
        0.0
    } else {
        diff.signum() * f64::INFINITY
    };
    let hedges_g = cohens_d * (1.0 - 3.0 / (4.0 * (na + nb) - 9.0));
    // U of b against a, from the merged ranks: Cliff's delta = 2U/(na nb) - 1.
    let u_b = mann_whitney_u(&b, &a)?.u;
    let cliffs_delta = 2.0 * u_b / (na * nb) - 1.0;
    Ok(EffectSize {
        cohens_d,
        hedges_g,
        cliffs_delta,
    })
}
