//! Renders benchmark results as text and bytes: a terminal table, Markdown, hyperfine-compatible
//! JSON, CSV, JUnit XML, Bencher Metric Format, comparisons (table, Markdown, JSON) and a
//! self-contained HTML report with SVG plots (plotters).
//!
//! **Architecture invariant:** renderers return `String`s / values and never touch the terminal:
//! no printing, no colour or width detection, no files. The CLI decides where output goes.
//! Inside the workspace this crate depends on `benchfleet-model` (records) and
//! `benchfleet-analysis` (statistics) only; every number shown comes from
//! [`benchfleet_analysis::Summary`] over the same grouped runs, so `run` and `show` print
//! identical figures for identical records.
//!
//! ```
//! use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, Timestamp, SCHEMA_VERSION};
//! let rec = |i: u32, ms: u64| RunRecord {
//!     schema_version: SCHEMA_VERSION,
//!     run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
//!     suite: "demo".into(),
//!     name: "sleep".into(),
//!     kind: NodeKind::Benchmark,
//!     command: "sleep 0.01".into(),
//!     parameters: Default::default(),
//!     iteration: i,
//!     started_at: Timestamp(0),
//!     measurement: Measurement { wall_ns: ms * 1_000_000, ..Default::default() },
//!     outcome: Outcome::Success,
//!     stderr_tail: None,
//!     tags: Default::default(),
//! };
//! let results = benchfleet_report::group_records(&[rec(1, 12), rec(0, 10)]);
//! assert_eq!(results[0].times, [0.010, 0.012]);
//! let json = benchfleet_report::hyperfine_json(&results);
//! assert_eq!(json["results"][0]["mean"], 0.011);
//! assert!(benchfleet_report::markdown(&results).contains("11.00 ms"));
//! ```

mod bmf;
mod comparison;
mod csv;
mod html;
mod json;
mod junit;
mod markup;
pub mod plots;
mod result;
mod runs;
mod series;
mod table;
pub mod units;

pub use bmf::bmf_json;
pub use comparison::{
    ComparisonSet, NamedComparison, assessment_text, compare_invocations, compare_results,
    comparison_json, comparison_markdown, comparison_table,
};
pub use csv::csv;
pub use html::{HistorySeries, HtmlReport, html_report};
pub use json::{JSON_SCHEMA_VERSION, hyperfine_json};
pub use junit::junit_xml;
pub use markup::{Markup, markup_table};
pub use result::{BenchmarkResult, RunPoint, RunPoints, RunningWall, group_records};
pub use runs::{RunRow, format_timestamp, runs_table};
pub use series::{HistoryRow, Quantity, history_table, scaling_table};
pub use table::{
    markdown, markdown_in, measured_notes, terminal_table, terminal_table_in, write_terminal_table,
};

/// A report that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// plotters refused to draw (e.g. a degenerate axis range).
    #[error(
        "could not draw a plot: {0}; report the data that caused it (the other formats still work)"
    )]
    Plot(String),
}
