//! Statistics over measured runs: summaries, bootstrap intervals, outliers, two-sample
//! comparisons with a verdict, change points, threshold tests and scaling efficiency.
//!
//! **Architecture invariant:** no I/O, no terminal, no storage. Inside the workspace this crate
//! depends on `benchfleet-model` only; everything here is a pure function of its inputs (random
//! resampling is seeded and chunked, so results are reproducible bit for bit whatever the
//! number of threads). Rendering lives in `benchfleet-report`, reading records in
//! `benchfleet-store`. Functions take plain `&[f64]` samples; non-finite values are dropped
//! (or refused where dropping would shift indexes, as in [`change_points`]).
//!
//! ```
//! use benchfleet_analysis::{percentile, Summary};
//! let s = Summary::from_samples(&[0.010, 0.012, 0.011, f64::NAN]).unwrap();
//! assert_eq!(s.count, 3); // NaN is dropped
//! assert!((s.mean - 0.011).abs() < 1e-12);
//! assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
//! ```

mod bootstrap;
mod changepoint;
mod compare;
mod error;
mod hypothesis;
mod outliers;
mod scaling;
mod summary;
mod threshold;

pub use bootstrap::{
    BootstrapConfig, CHUNK, ConfidenceInterval, MeanMedianCi, bootstrap_mean_median,
    bootstrap_ratios,
};
pub use changepoint::{ChangePoint, ChangePointConfig, change_points};
pub use compare::{CompareConfig, Comparison, Verdict, compare};
pub use error::AnalysisError;
pub use hypothesis::{EffectSize, MannWhitney, TTest, effect_size, mann_whitney_u, welch_t_test};
pub use outliers::{OutlierClass, Outliers, classify_outliers};
pub use scaling::{ScalingPoint, scaling};
pub use summary::{Summary, mean, percentile, sample_variance, sorted_finite};
pub use threshold::{Side, Threshold, ThresholdKind, ThresholdResult, threshold_test};
