//! Comparing two sets of results: matching, table, Markdown and JSON.

use benchfleet_analysis::{
    AnalysisError, Assessment, BandSource, CompareConfig, Comparison, HistoryBand, LevelsConfig,
    Mode, Verdict, compare_levels,
};
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
/// times of successful runs, each side one invocation, the between-invocation noise assumed as
/// [`LevelsConfig::default`] does (see [`compare_invocations`]).
pub fn compare_results(
    baseline: &[BenchmarkResult],
    candidate: &[BenchmarkResult],
    cfg: &CompareConfig,
) -> ComparisonSet {
    compare_invocations(
        &[baseline.to_vec()],
        &[candidate.to_vec()],
        &LevelsConfig {
            compare: *cfg,
            ..LevelsConfig::default()
        },
        |_| None,
    )
}

/// Compare each candidate benchmark with the baseline benchmark of the same name, each side
/// measured in one or more invocations (`baseline[i]`: the results of invocation `i`), with
/// [`compare_levels`]: head-to-head when `cfg.head_to_head`, multi-invocation with two or more
/// invocations a side, else the band of `history(name)` (when it knows the benchmark) or the
/// assumed one. Benchmarks are matched by name; the candidate's order is kept.
pub fn compare_invocations(
    baseline: &[Vec<BenchmarkResult>],
    candidate: &[Vec<BenchmarkResult>],
    cfg: &LevelsConfig,
    history: impl Fn(&str) -> Option<HistoryBand>,
) -> ComparisonSet {
    let mut set = ComparisonSet::default();
    // Names in first-seen order, and per invocation each name's first result: looked up by
    // hash, so that a compare of thousands of benchmarks stays linear.
    let names = |side: &[Vec<BenchmarkResult>]| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        side.iter()
            .flatten()
            .filter(|r| seen.insert(r.name.as_str()))
            .map(|r| r.name.clone())
            .collect()
    };
    let (bi, ci) = (index(baseline), index(candidate));
    let times =
        |side: &[std::collections::HashMap<&str, &BenchmarkResult>], name: &str| -> Vec<Vec<f64>> {
            side.iter()
                .filter_map(|inv| inv.get(name))
                .map(|r| r.successful_times())
                .filter(|t| !t.is_empty())
                .collect()
        };
    let (bn, cn) = (names(baseline), names(candidate));
    let (bset, cset): (
        std::collections::HashSet<&str>,
        std::collections::HashSet<&str>,
    ) = (
        bn.iter().map(String::as_str).collect(),
        cn.iter().map(String::as_str).collect(),
    );
    for name in &cn {
        if !bset.contains(name.as_str()) {
            set.skipped
                .push((name.clone(), "not in the baseline".into()));
            continue;
        }
        let cfg = LevelsConfig {
            history: cfg.history.or_else(|| history(name)),
            ..*cfg
        };
        match compare_levels(&times(&bi, name), &times(&ci, name), &cfg) {
            Ok(comparison) => set.compared.push(NamedComparison {
                name: name.clone(),
                comparison,
            }),
            Err(e @ AnalysisError::TooFewSamples { .. })
            | Err(e @ AnalysisError::InvalidParameter { .. }) => {
                set.skipped.push((name.clone(), e.to_string()))
            }
        }
    }
    for name in &bn {
        if !cset.contains(name.as_str()) {
            set.skipped
                .push((name.clone(), "not in the candidate".into()));
        }
    }
    set
}

/// One invocation's results by name (the first of each name).
type ByName<'a> = std::collections::HashMap<&'a str, &'a BenchmarkResult>;

fn index(side: &[Vec<BenchmarkResult>]) -> Vec<ByName<'_>> {
    side.iter()
        .map(|inv| {
            let mut m = ByName::new();
            for r in inv {
                m.entry(r.name.as_str()).or_insert(r);
            }
            m
        })
        .collect()
}

/// One line saying what a verdict saw: its mode, the noise at each level, the band a change had
/// to exceed and where it came from, and the smallest change it could have detected.
pub fn assessment_text(a: &Assessment) -> String {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let between = match (a.mode, a.between_cv) {
        (Mode::HeadToHead, _) => "between invocations: cancelled by interleaving".to_string(),
        (Mode::MultiInvocation, Some(b)) => format!(
            "between invocations ±{} (measured over {}+{} invocations)",
            pct(b),
            a.invocations[0],
            a.invocations[1]
        ),
        (Mode::HistoryBand, Some(b)) => {
            format!("between invocations ±{} (this benchmark's history)", pct(b))
        }
        (_, Some(b)) if a.band_source == BandSource::RunSpread => format!(
            "between invocations not measured, taken as ±{}, the runs' own spread (one invocation a side; measure head-to-head or in several invocations)",
            pct(b)
        ),
        (_, Some(b)) if a.band_source == BandSource::Drift => format!(
            "between invocations not measured, taken as ±{}, the drift of the runs within the invocations (one invocation a side; measure head-to-head or in several invocations)",
            pct(b)
        ),
        (_, Some(b)) => format!(
            "between invocations not measured, assumed ±{} (one invocation a side; measure head-to-head or in several invocations)",
            pct(b)
        ),
        (_, None) => {
            "between invocations not measured (one invocation a side, nothing assumed)".into()
        }
    };
    let source = match a.band_source {
        BandSource::Floor => "the fixed floor",
        BandSource::History => "from history",
        BandSource::Assumed => "from the assumed noise",
        BandSource::Drift => "from the drift",
        BandSource::RunSpread => "from the runs' spread",
    };
    format!(
        "{}: runs ±{}, {}; band ±{} ({}); smallest detectable change ±{} (95% power)",
        a.mode.as_str(),
        pct(a.within_cv),
        between,
        pct(a.band),
        source,
        pct(a.min_detectable)
    )
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
    for c in &set.compared {
        out.push_str(&format!(
            "{}: {}\n",
            c.name,
            assessment_text(&c.comparison.assessment)
        ));
    }
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
        "**{} regressed, {} improved, {} unchanged, {} inconclusive** of {} compared benchmarks.\n\n",
        count(Verdict::Regressed),
        count(Verdict::Improved),
        count(Verdict::Unchanged),
        count(Verdict::Inconclusive),
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
    out.push('\n');
    for c in &set.compared {
        out.push_str(&format!(
            "- `{}`: {}\n",
            c.name.replace('`', "'"),
            md_cell(&assessment_text(&c.comparison.assessment))
        ));
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
                m.insert("assessment_text".into(), assessment_text(&c.comparison.assessment).into());
            }
            v
        }).collect::<Vec<_>>(),
        "skipped": set.skipped.iter().map(|(n, why)| json!({"name": n, "reason": why})).collect::<Vec<_>>(),
    })
}
