//! Statistics over measured runs: summaries, bootstrap intervals, outliers, two-sample
//! comparisons with a verdict, change points, threshold tests and scaling efficiency; running
//! statistics that stay small ([`BenchStats`]), and the pure logic of load profiles ([`load`]:
//! steps, rate schedule, windowed throughput and latency).
//!
//! The workspace's statistics live here only: one outlier classifier ([`classify_outliers`],
//! with the warning rule [`outliers_to_warn`]) and one summary type ([`Summary`]), whether it
//! is computed exactly from the samples or from constant memory. `benchfleet-metrics` measures
//! processes and samples the system; it summarises nothing.
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
mod levels;
pub mod load;
mod outliers;
mod scaling;
mod stream;
mod summary;
mod threshold;

pub use bootstrap::{
    BootstrapConfig, CHUNK, ConfidenceInterval, MeanMedianCi, bootstrap_mean_median,
    bootstrap_ratios,
};
pub use changepoint::{ChangePoint, ChangePointConfig, change_points};
pub use compare::{Assessment, BandSource, CompareConfig, Comparison, Mode, Verdict};
pub use error::AnalysisError;
pub use hypothesis::{EffectSize, MannWhitney, TTest, effect_size, mann_whitney_u, welch_t_test};
pub use levels::{
    DEFAULT_ASSUMED_BETWEEN_CV, DRIFT_BLOCKS, DRIFT_MIN_BLOCK, HISTORY_MIN_RUNS, HistoryBand,
    LevelsConfig, compare, compare_levels, drift_cv, head_to_head_runs_to_detect,
    hierarchical_bootstrap_ratio, invocation_ratio_interval,
};
pub use outliers::{
    MODIFIED_Z_THRESHOLD, OutlierClass, OutlierWarning, Outliers, classify_outliers,
    outliers_to_warn,
};
pub use scaling::{ScalingPoint, scaling};
pub use stream::{BenchStats, RunningStats};
pub use summary::{Summary, mean, percentile, sample_variance, sorted_finite};
pub use threshold::{Side, Threshold, ThresholdKind, ThresholdResult, threshold_test};
