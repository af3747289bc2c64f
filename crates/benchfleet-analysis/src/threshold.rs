//! Threshold tests of a new value against a window of history, like Bencher's.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::error::{AnalysisError, check_open_unit, invalid, need};
use crate::summary::{Summary, percentile, sorted_finite};

/// Which statistical model turns a boundary into a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdKind {
    /// Limit `mean · (1 ∓ boundary)`; boundary ≥ 0 (0.1 = 10%).
    Percentage,
    /// Limit `mean ∓ z(boundary) · σ`, `z` the standard normal quantile; boundary in (0.5, 1).
    ZScore,
    /// Limit `mean ∓ t(boundary, n − 1) · σ`, Student's t quantile; boundary in (0.5, 1).
    TTest,
    /// Limit `median ∓ boundary · IQR`; boundary ≥ 0.
    Iqr,
}

/// A threshold: model, optional lower and upper boundaries, and how much history to use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub kind: ThresholdKind,
    /// Boundary for "too low" (use for throughput-like metrics).
    pub lower: Option<f64>,
    /// Boundary for "too high" (use for times and sizes).
    pub upper: Option<f64>,
    /// Use only the most recent `window` values of the history (all when `None`).
    pub window: Option<usize>,
    /// Fewest history values needed to test at all (Bencher's default: 2).
    pub min_sample_size: usize,
}

/// Which limit a value crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Lower,
    Upper,
}

/// The limits computed from the history and whether the value crossed one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    /// `Some(side)` when `value` is outside that limit.
    pub alert: Option<Side>,
    /// Number of history values used.
    pub sample_size: usize,
}

/// Test `value` against limits computed from `history` (oldest first; non-finite dropped).
///
/// ```
/// use benchfleet_analysis::{threshold_test, Side, Threshold, ThresholdKind};
/// let history = [10.0, 10.2, 9.9, 10.1, 10.0];
/// let t = Threshold { kind: ThresholdKind::Percentage, lower: None, upper: Some(0.05), window: None, min_sample_size: 2 };
/// assert_eq!(threshold_test(&history, 10.9, &t).unwrap().alert, Some(Side::Upper));
/// assert_eq!(threshold_test(&history, 10.3, &t).unwrap().alert, None);
/// ```
pub fn threshold_test(
    history: &[f64],
    value: f64,
    t: &Threshold,
) -> Result<ThresholdResult, AnalysisError> {
    if t.lower.is_none() && t.upper.is_none() {
        return Err(invalid(
            "threshold boundaries",
            "none",
            "set a lower boundary, an upper boundary or both",
        ));
    }
    if t.window == Some(0) {
        return Err(invalid(
            "window",
            0,
            "expected at least 1 value of history (or no window)",
        ));
    }
    if !value.is_finite() {
        return Err(invalid("value", value, "expected a finite measurement"));
    }
    let finite: Vec<f64> = history.iter().copied().filter(|x| x.is_finite()).collect();
    let recent = &finite[finite.len().saturating_sub(t.window.unwrap_or(usize::MAX))..];
    need(
        "a threshold test (history)",
        t.min_sample_size.max(match t.kind {
            ThresholdKind::ZScore | ThresholdKind::TTest => 2,
            _ => 1,
        }),
        recent.len(),
    )?;
    let sorted = sorted_finite(recent);
    let s = Summary::from_sorted(&sorted).ok_or(AnalysisError::TooFewSamples {
        what: "a threshold test",
        need: 1,
        got: 0,
    })?;
    let limit = |b: f64, sign: f64| -> Result<f64, AnalysisError> {
        Ok(match t.kind {
            ThresholdKind::Percentage => {
                nonneg("percentage boundary", b)?;
                s.mean * (1.0 + sign * b)
            }
            ThresholdKind::ZScore => {
                quantile_boundary(b)?;
                s.mean + sign * Normal::standard().inverse_cdf(b) * s.stddev.unwrap_or(0.0)
            }
            ThresholdKind::TTest => {
                quantile_boundary(b)?;
                let d = StudentsT::new(0.0, 1.0, (s.count - 1) as f64).map_err(|e| {
                    invalid("degrees of freedom", e, "need at least 2 history values")
                })?;
                s.mean + sign * d.inverse_cdf(b) * s.stddev.unwrap_or(0.0)
            }
            ThresholdKind::Iqr => {
                nonneg("IQR boundary", b)?;
                let iqr = percentile(&sorted, 75.0) - percentile(&sorted, 25.0);
                s.median + sign * b * iqr
            }
        })
    };
    let lower_limit = t.lower.map(|b| limit(b, -1.0)).transpose()?;
    let upper_limit = t.upper.map(|b| limit(b, 1.0)).transpose()?;
    let alert = if lower_limit.is_some_and(|l| value < l) {
        Some(Side::Lower)
    } else if upper_limit.is_some_and(|u| value > u) {
        Some(Side::Upper)
    } else {
        None
    };
    Ok(ThresholdResult {
        lower_limit,
        upper_limit,
        alert,
        sample_size: s.count,
    })
}

fn nonneg(name: &'static str, b: f64) -> Result<(), AnalysisError> {
    if b >= 0.0 && b.is_finite() {
        Ok(())
    } else {
        Err(invalid(name, b, "expected a number ≥ 0"))
    }
}

fn quantile_boundary(b: f64) -> Result<(), AnalysisError> {
    check_open_unit("boundary", b)?;
    if b <= 0.5 {
        return Err(invalid(
            "boundary",
            b,
            "expected a confidence between 0.5 and 1, e.g. 0.99",
        ));
    }
    Ok(())
}
