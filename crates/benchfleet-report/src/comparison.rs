//! Comparing two sets of results: matching, table, Markdown and JSON.

use benchfleet_analysis::{AnalysisError, CompareConfig, Comparison, Verdict, compare};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde_json::{Value, json};

use crate::BenchmarkResult;
use crate::table::md_cell;
use crate::units::{format_in, time_unit};

/// One benchmark present on both sides, compared.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedComparison {
    pub name: String,
    pub comparison: Comparison,
}

/// What [`compare_results`] produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComparisonSet {
    /// Benchmarks on both sides, in the candidate's order.
    pub compared: Vec<NamedComparison>,
    /// Benchmarks that could not be compared and why (only on one side, too few successful runs).
    pub skipped: Vec<(String, String)>,
}

impl ComparisonSet {
    /// Whether any benchmark regressed (for `--fail-on regression`).
    pub fn any_regressed(&self) -> bool {
        self.compared
            .iter()
            .any(|c| c.comparison.verdict == Verdict::Regressed)
    }
}

/// Compare each candidate benchmark with the baseline benchmark of the same name, over the wall
/// times of successful runs.
pub fn compare_results(
    baseline: &[BenchmarkResult],
    candidate: &[BenchmarkResult],
    cfg: &CompareConfig,
) -> ComparisonSet {
    let mut set = ComparisonSet::default();
    for c in candidate {
        let Some(b) = baseline.iter().find(|b| b.name == c.name) else {
            set.skipped
                .push((c.name.clone(), "not in the baseline".into()));
            continue;
        };
        match compare(&b.successful_times(), &c.successful_times(), cfg) {
            Ok(comparison) => set.compared.push(NamedComparison {
                name: c.name.clone(),
                comparison,
            }),
            Err(e @ AnalysisError::TooFewSamples { .. })
            | Err(e @ AnalysisError::InvalidParameter { .. }) => {
                set.skipped.push((c.name.clone(), e.to_string()))
            }
        }
    }
    for b in baseline {
        if !candidate.iter().any(|c| c.name == b.name) {
            set.skipped
                .push((b.name.clone(), "not in the candidate".into()));
        }
    }
    set
}

const HEADER: [&str; 7] = [
    "Benchmark",
    "Baseline",
    "Candidate",
    "Ratio",
    "95% CI",
    "p (Welch / MWU)",
    "Verdict",
];

fn row(c: &NamedComparison) -> [String; 7] {
    let k = &c.comparison;
    let (unit, scale) = time_unit(k.baseline.mean);
    let ci = k.ratio_ci.map_or_else(
        || "-".into(),
        |ci| format!("{:.3} … {:.3}", ci.mean.lower, ci.mean.upper),
    );
    [
        c.name.clone(),
        format_in(k.baseline.mean, unit, scale),
        format_in(k.candidate.mean, unit, scale),
        format!("{:.3} ({:+.1}%)", k.mean_ratio, k.change() * 100.0),
        ci,
        format!("{} / {}", p(k.welch.p_value), p(k.mann_whitney.p_value)),
        k.verdict.as_str().into(),
    ]
}

fn p(x: f64) -> String {
    if x < 0.001 {
        format!("{x:.1e}")
    } else {
        format!("{x:.3}")
    }
}

/// A plain-text comparison table (no colours): mean of each side, ratio of means with its
/// bootstrap interval, p-values, verdict; skipped benchmarks listed below.
pub fn comparison_table(set: &ComparisonSet) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADER);
    for c in &set.compared {
        t.add_row(row(c));
    }
    for i in 1..6 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.to_string();
    out.push('\n');
    for (name, why) in &set.skipped {
        out.push_str(&format!("skipped {name}: {why}\n"));
    }
    out
}

/// The comparison as GitHub-flavoured Markdown, with a one-line summary first (fit for a PR
/// comment or `$GITHUB_STEP_SUMMARY`).
pub fn comparison_markdown(set: &ComparisonSet) -> String {
    let count = |v: Verdict| {
        set.compared
            .iter()
            .filter(|c| c.comparison.verdict == v)
            .count()
    };
    let mut out = format!(
        "**{} regressed, {} improved, {} unchanged** of {} compared benchmarks.\n\n",
        count(Verdict::Regressed),
        count(Verdict::Improved),
        count(Verdict::Unchanged),
        set.compared.len()
    );
    out.push_str(&format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        ":---|".to_string() + &"---:|".repeat(5) + ":---|"
    ));
    for c in &set.compared {
        let mut cells = row(c).map(|s| md_cell(&s));
        cells[0] = format!("`{}`", cells[0].replace('`', "'"));
        if c.comparison.verdict != Verdict::Unchanged {
            cells[6] = format!("**{}**", cells[6]);
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if !set.skipped.is_empty() {
        out.push('\n');
        for (name, why) in &set.skipped {
            out.push_str(&format!(
                "- skipped `{}`: {}\n",
                name.replace('`', "'"),
                md_cell(why)
            ));
        }
    }
    out
}

/// Stable machine-readable comparison: `{"schema_version": 1, "comparisons": [...], "skipped":
/// [...], "regressed": bool}`; every statistic of [`Comparison`] under its field name.
pub fn comparison_json(set: &ComparisonSet) -> Value {
    json!({
        "schema_version": crate::JSON_SCHEMA_VERSION,
        "regressed": set.any_regressed(),
        "comparisons": set.compared.iter().map(|c| {
            let mut v = serde_json::to_value(&c.comparison).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("name".into(), c.name.clone().into());
                m.insert("change_percent".into(), json!(c.comparison.change() * 100.0));
            }
            v
        }).collect::<Vec<_>>(),
        "skipped": set.skipped.iter().map(|(n, why)| json!({"name": n, "reason": why})).collect::<Vec<_>>(),
    })
}
