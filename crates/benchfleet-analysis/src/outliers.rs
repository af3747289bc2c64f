//! Outlier classification with Tukey's fences (as criterion does).

use serde::{Deserialize, Serialize};

use crate::summary::{percentile, sorted_finite};

/// Where one sample falls relative to the fences `Q1 − k·IQR` and `Q3 + k·IQR` (k = 1.5 mild,
/// 3 severe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierClass {
    LowSevere,
    LowMild,
    NotOutlier,
    HighMild,
    HighSevere,
}

/// Counts of each class plus the fences used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outliers {
    pub low_severe: usize,
    pub low_mild: usize,
    pub high_mild: usize,
    pub high_severe: usize,
    /// `[Q1 − 3·IQR, Q1 − 1.5·IQR, Q3 + 1.5·IQR, Q3 + 3·IQR]`.
    pub fences: [f64; 4],
    /// Class of every input value, in input order (non-finite values are `NotOutlier`).
    pub classes: Vec<OutlierClass>,
}

impl Outliers {
    /// Total number of outliers (mild and severe, both sides).
    pub fn total(&self) -> usize {
        self.low_severe + self.low_mild + self.high_mild + self.high_severe
    }
}

/// Classify `xs` with Tukey's fences; quartiles by linear interpolation. `None` when `xs` has no
/// finite value.
pub fn classify_outliers(xs: &[f64]) -> Option<Outliers> {
    let s = sorted_finite(xs);
    if s.is_empty() {
        return None;
    }
    let (q1, q3) = (percentile(&s, 25.0), percentile(&s, 75.0));
    let iqr = q3 - q1;
    let fences = [
        q1 - 3.0 * iqr,
        q1 - 1.5 * iqr,
        q3 + 1.5 * iqr,
        q3 + 3.0 * iqr,
    ];
    let class = |x: f64| match x {
        x if !x.is_finite() => OutlierClass::NotOutlier,
        x if x < fences[0] => OutlierClass::LowSevere,
        x if x < fences[1] => OutlierClass::LowMild,
        x if x > fences[3] => OutlierClass::HighSevere,
        x if x > fences[2] => OutlierClass::HighMild,
        _ => OutlierClass::NotOutlier,
    };
    let classes: Vec<OutlierClass> = xs.iter().map(|&x| class(x)).collect();
    let count = |c: OutlierClass| classes.iter().filter(|&&k| k == c).count();
    Some(Outliers {
        low_severe: count(OutlierClass::LowSevere),
        low_mild: count(OutlierClass::LowMild),
        high_mild: count(OutlierClass::HighMild),
        high_severe: count(OutlierClass::HighSevere),
        fences,
        classes,
    })
}
