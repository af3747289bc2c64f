//! Self-contained HTML report: inline CSS and inline SVG, no scripts, no network requests.

use benchfleet_analysis::{ChangePoint, ScalingPoint};

use crate::junit::xml_escape as esc;
use crate::{BenchmarkResult, ComparisonSet, ReportError, plots};

/// One metric's history for one benchmark (oldest first) and its detected change points.
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySeries {
    pub name: String,
    /// Unit shown on the axis, e.g. `ms`.
    pub unit: String,
    pub values: Vec<f64>,
    pub changes: Vec<ChangePoint>,
}

/// Everything an HTML report can show; empty parts are left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HtmlReport<'a> {
    pub title: String,
    pub results: &'a [BenchmarkResult],
    pub comparison: Option<&'a ComparisonSet>,
    pub history: &'a [HistorySeries],
    pub scaling: &'a [ScalingPoint],
    /// The machine during the run, when it was sampled.
    pub utilisation: Option<&'a crate::plots::Utilisation>,
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}\
h1{font-size:1.5em;overflow-wrap:anywhere}\
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}\
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f4f4f4}.bad{color:#c00}.good{color:#080}\
figure{margin:1em 0}svg{max-width:100%;height:auto}pre{background:#f7f7f7;padding:.5em;overflow:auto}";

/// Render the report as one HTML document that works opened from a file: no `<script>`, no
/// external stylesheet, font or image; plots are inline SVG.
pub fn html_report(r: &HtmlReport<'_>) -> Result<String, ReportError> {
    let mut body = String::new();
    body.push_str(&format!("<h1>{}</h1>\n", esc(&r.title)));
    if !r.results.is_empty() {
        body.push_str("<h2>Results</h2>\n");
        body.push_str(&results_table(r.results));
        let svg = plots::distribution_svg(r.results)?;
        if !svg.is_empty() {
            body.push_str(&format!("<figure>{svg}</figure>\n"));
        }
        for b in r.results.iter().filter(|b| b.stderr_tail.is_some()) {
            body.push_str(&format!(
                "<h3>stderr of <code>{}</code></h3><pre>{}</pre>\n",
                esc(&b.name),
                esc(b.stderr_tail.as_deref().unwrap_or(""))
            ));
        }
    }
    if let Some(set) = r.comparison {
        body.push_str("<h2>Comparison</h2>\n<table><tr><th>Benchmark</th><th>Ratio of means</th><th>95% CI</th><th>Welch p</th><th>Mann–Whitney p</th><th>Verdict</th></tr>\n");
        for c in &set.compared {
            let k = &c.comparison;
            let class = match k.verdict {
                benchfleet_analysis::Verdict::Regressed => "bad",
                benchfleet_analysis::Verdict::Improved => "good",
                benchfleet_analysis::Verdict::Unchanged
                | benchfleet_analysis::Verdict::Inconclusive => "",
            };
            let ci = k.ratio_ci.map_or_else(
                || "-".into(),
                |ci| format!("{:.3} … {:.3}", ci.mean.lower, ci.mean.upper),
            );
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td class=n>{:.3}</td><td class=n>{ci}</td><td class=n>{:.2e}</td><td class=n>{:.2e}</td><td class=\"{class}\">{}</td></tr>\n",
                esc(&c.name), k.mean_ratio, k.welch.p_value, k.mann_whitney.p_value, k.verdict.as_str()
            ));
        }
        body.push_str("</table>\n");
        for (name, why) in &set.skipped {
            body.push_str(&format!(
                "<p>skipped <code>{}</code>: {}</p>\n",
                esc(name),
                esc(why)
            ));
        }
        let svg = plots::comparison_svg(&set.compared)?;
        if !svg.is_empty() {
            body.push_str(&format!("<figure>{svg}</figure>\n"));
        }
    }
    if !r.history.is_empty() {
        body.push_str("<h2>History</h2>\n");
        for h in r.history {
            body.push_str(&format!(
                "<figure>{}</figure>\n",
                plots::history_svg(&h.name, &h.unit, &h.values, &h.changes)?
            ));
            if !h.changes.is_empty() {
                body.push_str("<table><tr><th>index</th><th>before</th><th>after</th><th>change</th><th>p</th></tr>\n");
                for c in &h.changes {
                    body.push_str(&format!(
                        "<tr><td class=n>{}</td><td class=n>{:.4}</td><td class=n>{:.4}</td><td class=n>{:+.2}%</td><td class=n>{:.2e}</td></tr>\n",
                        c.index, c.before_mean, c.after_mean, c.percent, c.p_value
                    ));
                }
                body.push_str("</table>\n");
            }
        }
    }
    if let Some(u) = r.utilisation.filter(|u| !u.t_s.is_empty()) {
        body.push_str("<h2>System utilisation</h2>\n");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        body.push_str(&format!(
            "<p>Mean over {} samples: CPU {:.1}% (benchfleet and its commands {:.1}%), memory {:.1}%.</p>\n",
            u.t_s.len(),
            mean(&u.cpu_busy_pct),
            mean(&u.own_busy_pct),
            mean(&u.mem_used_pct)
        ));
        if let Some(note) = &u.note {
            body.push_str(&format!("<p class=bad>{}</p>\n", esc(note)));
        }
        body.push_str(&format!(
            "<figure>{}</figure>\n",
            plots::utilisation_svg(u)?
        ));
    }
    if !r.scaling.is_empty() {
        body.push_str("<h2>Scaling</h2>\n<table><tr><th>jobs</th><th>time</th><th>speedup</th><th>efficiency</th></tr>\n");
        for p in r.scaling {
            body.push_str(&format!(
                "<tr><td class=n>{}</td><td class=n>{:.4}</td><td class=n>{:.2}×</td><td class=n>{:.0}%</td></tr>\n",
                p.jobs, p.time, p.speedup, p.efficiency * 100.0
            ));
        }
        body.push_str("</table>\n");
        body.push_str(&format!(
            "<figure>{}</figure>\n",
            plots::scaling_svg(r.scaling)?
        ));
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head>\n<body>\n{body}</body></html>\n",
        esc(&r.title)
    ))
}

fn results_table(results: &[BenchmarkResult]) -> String {
    // Same cells as the terminal table and Markdown.
    let mut out = String::from("<table><tr>");
    for h in crate::table::HEADER {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>\n");
    for r in results {
        out.push_str("<tr>");
        for (i, cell) in crate::table::row(r, None).iter().enumerate() {
            let class = if crate::table::NUMERIC[i] {
                " class=n"
            } else {
                ""
            };
            let class = if i == 9 && r.failed() > 0 {
                " class=bad"
            } else {
                class
            };
            out.push_str(&format!("<td{class}>{}</td>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}
