//! Scaling efficiency: speedup and parallel efficiency per concurrency level.

use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, invalid};

/// One concurrency level of a scaling table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingPoint {
    /// Number of concurrent jobs.
    pub jobs: u32,
    /// Time to complete the whole workload at this level (any unit, e.g. mean wall seconds).
    pub time: f64,
    /// `time(base) / time(jobs)`, `base` the smallest level given.
    pub speedup: f64,
    /// `speedup / (jobs / base jobs)`: 1.0 is perfect scaling.
    pub efficiency: f64,
}

/// Speedup and efficiency of each level relative to the smallest level (usually 1 job).
///
/// Input: `(jobs, time to finish the same workload)` in any order; output sorted by `jobs`.
///
/// ```
/// use benchfleet_analysis::scaling;
/// let t = scaling(&[(4, 30.0), (1, 100.0), (2, 55.0)]).unwrap();
/// assert_eq!(t[2].jobs, 4);
/// assert!((t[2].speedup - 100.0 / 30.0).abs() < 1e-12);
/// assert!((t[2].efficiency - 100.0 / 30.0 / 4.0).abs() < 1e-12);
/// ```
pub fn scaling(levels: &[(u32, f64)]) -> Result<Vec<ScalingPoint>, AnalysisError> {
    let mut v = levels.to_vec();
    v.sort_by_key(|l| l.0);
    for w in v.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(invalid(
                "jobs",
                w[0].0,
                "each concurrency level must appear once",
            ));
        }
    }
    for &(jobs, time) in &v {
        if jobs == 0 {
            return Err(invalid("jobs", 0, "concurrency levels start at 1"));
        }
        if !(time > 0.0 && time.is_finite()) {
            return Err(invalid(
                "time",
                format!("{time} at {jobs} jobs"),
                "expected a positive finite time",
            ));
        }
    }
    let Some(&(base_jobs, base_time)) = v.first() else {
        return Err(AnalysisError::TooFewSamples {
            what: "a scaling table",
            need: 1,
            got: 0,
        });
    };
    Ok(v.iter()
        .map(|&(jobs, time)| {
            let speedup = base_time / time;
            ScalingPoint {
                jobs,
                time,
                speedup,
                efficiency: speedup / (f64::from(jobs) / f64::from(base_jobs)),
            }
        })
        .collect())
}
