//! Statistics over measured runs: summaries, intervals, comparisons, change points.
//!
//! **Architecture invariant:** no I/O, no terminal, no storage. Inside the workspace this crate
//! depends on `benchfleet-model` only; everything here is a pure function of its inputs (random
//! resampling is seeded, so results are reproducible bit for bit). Rendering lives in
//! `benchfleet-report`, reading records in `benchfleet-store`.
//!
//! ```
//! use benchfleet_analysis::{percentile, Summary};
//! let s = Summary::from_samples(&[0.010, 0.012, 0.011, f64::NAN]).unwrap();
//! assert_eq!(s.count, 3); // NaN is dropped
//! assert!((s.mean - 0.011).abs() < 1e-12);
//! assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
//! ```

mod summary;

pub use summary::{Summary, mean, percentile, sample_variance, sorted_finite};
