//! The results table, as terminal text and as GitHub-flavoured Markdown.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use crate::BenchmarkResult;
use crate::units::{format_bytes, format_duration, format_in, time_unit};

pub(crate) const HEADER: [&str; 10] = [
    "Benchmark",
    "Mean ± σ",
    "Min … Max",
    "Median",
    "p95",
    "User",
    "Sys",
    "Max RSS",
    "Runs",
    "Status",
];
/// Columns holding numbers (right-aligned).
pub(crate) const NUMERIC: [bool; 10] =
    [false, true, true, true, true, true, true, true, true, false];

/// One table row per result: the same cells for the terminal and Markdown.
pub(crate) fn row(r: &BenchmarkResult) -> [String; 10] {
    let dash = || "-".to_string();
    let runs = if r.failed() == 0 {
        r.runs().to_string()
    } else {
        format!("{}/{}", r.successes(), r.runs())
    };
    let (mean_sd, range, median, p95) = match r.wall() {
        Some(s) => {
            let (unit, scale) = time_unit(s.mean);
            let f = |x: f64| format_in(x, unit, scale);
            let mean_sd = match s.stddev {
                Some(sd) => format!("{} ± {}", f(s.mean), f(sd)),
                None => f(s.mean),
            };
            (
                mean_sd,
                format!("{} … {}", f(s.min), f(s.max)),
                f(s.median),
                f(s.p95),
            )
        }
        None => (dash(), dash(), dash(), dash()),
    };
    [
        r.name.clone(),
        mean_sd,
        range,
        median,
        p95,
        r.mean_user().map_or_else(dash, format_duration),
        r.mean_system().map_or_else(dash, format_duration),
        r.peak_rss().map_or_else(dash, format_bytes),
        runs,
        r.status(),
    ]
}

/// A plain-text table (Unicode box drawing, no colours, no terminal-width detection): one row
/// per benchmark with mean ± σ, min … max, median and p95 of the wall time over successful runs
/// (in one unit per row), mean user and system CPU time, peak RSS, runs (`ok/total` when some
/// failed) and status.
pub fn terminal_table(results: &[BenchmarkResult]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADER);
    for r in results {
        t.add_row(row(r));
    }
    for (i, numeric) in NUMERIC.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(if *numeric {
                CellAlignment::Right
            } else {
                CellAlignment::Left
            });
        }
    }
    t.to_string()
}

/// Escape text for a Markdown table cell: `|` would end the cell, newlines the row.
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A GitHub-flavoured Markdown table with the same columns as [`terminal_table`], fit for a
/// pull-request comment or a CI job summary. Benchmark names are code spans.
pub fn markdown(results: &[BenchmarkResult]) -> String {
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", HEADER.join(" | ")));
    let align: Vec<&str> = NUMERIC
        .iter()
        .map(|n| if *n { "---:" } else { ":---" })
        .collect();
    out.push_str(&format!("| {} |\n", align.join(" | ")));
    for r in results {
        let mut cells = row(r).map(|c| md_cell(&c));
        cells[0] = format!("`{}`", cells[0].replace('`', "'"));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
