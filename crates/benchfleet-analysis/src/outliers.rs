//! The one outlier classifier: Tukey's fences (as criterion does) and the modified z-score
//! (Iglewicz–Hoaglin) of every sample, reported, never dropped; and the one rule `bench` and
//! suite runs warn by ([`outliers_to_warn`]).

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

/// Counts of each class, the fences used, and every sample's class and modified z-score.
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
    /// Median of the finite values.
    pub median: f64,
    /// Median absolute deviation from the median, unscaled.
    pub mad: f64,
    /// Modified z-score of every input value, in input order: `0.6745 (x − median) / MAD`; with
    /// MAD = 0, `(x − median) / (1.2533 · mean absolute deviation)`; 0 when all values are
    /// equal, and for non-finite values.
    pub modified_z: Vec<f64>,
}

impl Outliers {
    /// Total number of outliers (mild and severe, both sides).
    pub fn total(&self) -> usize {
        self.low_severe + self.low_mild + self.high_mild + self.high_severe
    }

    /// Indexes (input order) of the values of class `class`.
    pub fn indexes(&self, class: OutlierClass) -> Vec<usize> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == class)
            .map(|(i, _)| i)
            .collect()
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

/// Classify `xs` with Tukey's fences (quartiles by linear interpolation) and score each value's
/// modified z. `None` when `xs` has no finite value.
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
    let median = percentile(&s, 50.0);
    let mut deviations: Vec<f64> = s.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = percentile(&deviations, 50.0);
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
    let score = |x: f64| -> f64 {
        if !x.is_finite() {
            0.0
        } else if mad > 0.0 {
            0.6745 * (x - median) / mad
        } else if mean_ad > 0.0 {
            (x - median) / (1.253_314 * mean_ad)
        } else {
            0.0
        }
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
        median,
        mad,
        modified_z: xs.iter().map(|&x| score(x)).collect(),
    })
}

/// Iglewicz–Hoaglin threshold on |modified z-score| above which a sample is an outlier.
pub const MODIFIED_Z_THRESHOLD: f64 = 3.5;

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
    let o = classify_outliers(samples)?;
    let severe = o.low_severe + o.high_severe;
    let mild = o.low_mild + o.high_mild;
    let z_idx = o.z_outliers(MODIFIED_Z_THRESHOLD);
    let both = z_idx
        .iter()
        .filter(|i| o.classes[**i] != OutlierClass::NotOutlier)
        .count();
    let z = z_idx.len();
    (severe > 0 || both > 0 || z * 10 >= samples.len()).then_some(OutlierWarning {
        samples: samples.len(),
        severe,
        mild,
        z,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outliers_are_classified_and_scored_not_dropped() {
        // (samples, severe high, mild high, low (severe or mild), z-outliers at 3.5)
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
            // Non-finite values are neither classified nor scored.
            (&[7.0, f64::NAN, 7.0, f64::INFINITY], &[], &[], &[], &[]),
        ];
        for (xs, severe, mild, low, z) in cases {
            let o = classify_outliers(xs).unwrap();
            assert_eq!(o.classes.len(), xs.len(), "never drops");
            assert_eq!(o.modified_z.len(), xs.len(), "never drops");
            assert_eq!(o.indexes(OutlierClass::HighSevere), *severe, "{xs:?}");
            assert_eq!(o.indexes(OutlierClass::HighMild), *mild, "{xs:?}");
            let mut lows = o.indexes(OutlierClass::LowSevere);
            lows.extend(o.indexes(OutlierClass::LowMild));
            assert_eq!(lows, *low, "{xs:?}");
            assert_eq!(
                o.z_outliers(MODIFIED_Z_THRESHOLD),
                *z,
                "{xs:?}: {:?}",
                o.modified_z
            );
        }
        assert!(classify_outliers(&[]).is_none());
    }

    #[test]
    fn warnings_follow_the_one_rule() {
        let steady = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 10.1, 9.9, 10.0];
        let with = |extra: &[f64]| [&steady[..], extra].concat();
        // (samples, warning as (severe, mild, z))
        type Case = (Vec<f64>, Option<(usize, usize, usize)>);
        let cases: Vec<Case> = vec![
            (steady.to_vec(), None),
            (with(&[100.0]), Some((1, 0, 1))),
            (vec![1.0, 1.0, 100.0], None), // fewer than 4 samples
            (vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None),
        ];
        for (xs, want) in cases {
            let got = outliers_to_warn(&xs).map(|w| (w.severe, w.mild, w.z));
            assert_eq!(got, want, "{xs:?}");
            if let Some(w) = outliers_to_warn(&xs) {
                assert_eq!(w.samples, xs.len());
            }
        }
    }
}
