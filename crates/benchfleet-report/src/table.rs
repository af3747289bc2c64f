//! The results table, as terminal text and as GitHub-flavoured Markdown.

use std::borrow::Borrow;
use std::io::Write;

use unicode_width::UnicodeWidthStr;

use crate::BenchmarkResult;
use crate::units::{TimeUnit, format_bytes, format_in, unit_for};

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

/// One table row per result: the same cells for the terminal and Markdown, times in `unit` (or
/// the best unit of the row's mean).
pub(crate) fn row(r: &BenchmarkResult, unit: Option<TimeUnit>) -> [String; 10] {
    let dash = || "-".to_string();
    let runs = if r.failed() == 0 {
        r.runs().to_string()
    } else {
        format!("{}/{}", r.successes(), r.runs())
    };
    let (mean_sd, range, median, p95) = match r.wall() {
        Some(s) => {
            let (unit, scale) = unit_for(s.mean, unit);
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
        r.mean_user().map_or_else(dash, |t| duration(t, unit)),
        r.mean_system().map_or_else(dash, |t| duration(t, unit)),
        r.peak_rss().map_or_else(dash, format_bytes),
        runs,
        r.status(),
    ]
}

fn duration(secs: f64, unit: Option<TimeUnit>) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let (u, scale) = unit_for(secs, unit);
    format_in(secs, u, scale)
}

/// A plain-text table (Unicode box drawing, no colours, no terminal-width detection): one row
/// per benchmark with mean ± σ, min … max, median and p95 of the wall time over successful runs
/// (in one unit per row), mean user and system CPU time, peak RSS, runs (`ok/total` when some
/// failed) and status. Followed by [`measured_notes`], one per line.
pub fn terminal_table(results: &[BenchmarkResult]) -> String {
    terminal_table_in(results, None)
}

/// [`terminal_table`] with every time in `unit` (hyperfine's `-u/--time-unit`).
pub fn terminal_table_in(results: &[BenchmarkResult], unit: Option<TimeUnit>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_table(&mut out, || results.iter(), unit);
    String::from_utf8(out).expect("the table is UTF-8")
}

/// [`terminal_table`] written to `w` as it is rendered, without a final newline. `results` is
/// called twice (column widths first, then the rows), so a caller with 100,000 results can
/// build each one when it is asked for and hold none of them, nor the table.
pub fn write_terminal_table<W, I>(w: &mut W, results: impl Fn() -> I) -> std::io::Result<()>
where
    W: Write,
    I: IntoIterator,
    I::Item: Borrow<BenchmarkResult>,
{
    write_table(w, results, None)
}

fn write_table<W, I>(
    w: &mut W,
    results: impl Fn() -> I,
    unit: Option<TimeUnit>,
) -> std::io::Result<()>
where
    W: Write,
    I: IntoIterator,
    I::Item: Borrow<BenchmarkResult>,
{
    let mut widths = HEADER.map(UnicodeWidthStr::width);
    for r in results() {
        for (width, cell) in widths.iter_mut().zip(row(r.borrow(), unit)) {
            *width = (*width).max(cell.lines().map(UnicodeWidthStr::width).max().unwrap_or(0));
        }
    }
    let rule = |w: &mut W, left: &str, line: &str, mid: &str, right: &str| {
        let cells: Vec<String> = widths.iter().map(|n| line.repeat(n + 2)).collect();
        writeln!(w, "{left}{}{right}", cells.join(mid))
    };
    rule(w, "┌", "─", "┬", "┐")?;
    write_row(w, &widths, &HEADER.map(String::from))?;
    rule(w, "╞", "═", "╪", "╡")?;
    for r in results() {
        write_row(w, &widths, &row(r.borrow(), unit))?;
    }
    let cells: Vec<String> = widths.iter().map(|n| "─".repeat(n + 2)).collect();
    write!(w, "└{}┘", cells.join("┴"))?;
    for r in results() {
        if let Some(note) = measured_note(r.borrow()) {
            write!(w, "\n{note}")?;
        }
    }
    Ok(())
}

/// One table row; a cell holding several lines makes the row as many lines high.
fn write_row<W: Write>(
    w: &mut W,
    widths: &[usize; 10],
    cells: &[String; 10],
) -> std::io::Result<()> {
    let height = cells
        .iter()
        .map(|c| c.lines().count().max(1))
        .max()
        .unwrap_or(1);
    for line in 0..height {
        w.write_all("│".as_bytes())?;
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                w.write_all("┆".as_bytes())?;
            }
            let text = cell.lines().nth(line).unwrap_or("");
            let pad = " ".repeat(widths[i] - text.width());
            if NUMERIC[i] {
                write!(w, " {pad}{text} ")?;
            } else {
                write!(w, " {text}{pad} ")?;
            }
        }
        w.write_all("│\n".as_bytes())?;
    }
    Ok(())
}

/// What was measured beyond the table, one line per benchmark that has it: hardware counters
/// (mean per successful run, IPC, and how many runs lacked them) and how many runs ran beside
/// others. Nothing for results without counters whose runs all ran alone.
pub fn measured_notes(results: &[BenchmarkResult]) -> Vec<String> {
    results.iter().filter_map(measured_note).collect()
}

fn measured_note(r: &BenchmarkResult) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(instructions) = r.mean_instructions() {
        let mut p = format!("{} instructions", si(instructions));
        if let Some(cycles) = r.mean_cycles() {
            p.push_str(&format!(", {} cycles", si(cycles)));
            if cycles > 0.0 {
                p.push_str(&format!(" (IPC {:.2})", instructions / cycles));
            }
        }
        p.push_str(" per run");
        let missing = r.runs_without_counters();
        if missing > 0 {
            p.push_str(&format!(
                " ({missing} of {} runs without counters)",
                r.runs()
            ));
        }
        parts.push(p);
    }
    let beside = r.concurrent_runs();
    if beside > 0 {
        parts.push(format!("{beside} of {} runs ran beside others", r.runs()));
    }
    (!parts.is_empty()).then(|| format!("{}: {}", r.name, parts.join("; ")))
}

/// `1234567` → `1.23 M`.
fn si(x: f64) -> String {
    for (div, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if x.abs() >= div {
            return format!("{:.2} {suffix}", x / div);
        }
    }
    format!("{x:.0}")
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
    markdown_in(results, None)
}

/// [`markdown`] with every time in `unit` (hyperfine's `-u/--time-unit`).
pub fn markdown_in(results: &[BenchmarkResult], unit: Option<TimeUnit>) -> String {
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", HEADER.join(" | ")));
    let align: Vec<&str> = NUMERIC
        .iter()
        .map(|n| if *n { "---:" } else { ":---" })
        .collect();
    out.push_str(&format!("| {} |\n", align.join(" | ")));
    for r in results {
        let mut cells = row(r, unit).map(|c| md_cell(&c));
        cells[0] = format!("`{}`", cells[0].replace('`', "'"));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    let notes = measured_notes(results);
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&format!("- {}\n", md_cell(&note)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group_records;
    use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, SCHEMA_VERSION, Timestamp};

    fn rec(name: &str, i: u32, tags: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
            suite: "bench".into(),
            name: name.into(),
            kind: NodeKind::Benchmark,
            command: name.into(),
            parameters: Default::default(),
            iteration: i,
            started_at: Timestamp(0),
            measurement: Measurement {
                wall_ns: 1_000_000,
                ..Default::default()
            },
            outcome: Outcome::Success,
            stderr_tail: None,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn counters_and_concurrency_are_shown_below_the_tables() {
        let counted = [
            ("hw.instructions", "2000000"),
            ("hw.cycles", "1000000"),
            ("run.concurrent", "false"),
        ];
        let records = [
            rec("alone", 0, &[("run.concurrent", "false")]),
            rec("counted", 0, &counted),
            rec(
                "counted",
                1,
                &[("hw.instructions", "4000000"), ("hw.cycles", "1000000")],
            ),
            rec("counted", 2, &[("run.concurrent", "true")]),
        ];
        let results = group_records(&records);
        let notes = measured_notes(&results);
        assert_eq!(
            notes,
            [
                "counted: 3.00 M instructions, 1.00 M cycles (IPC 3.00) per run (1 of 3 runs without counters); 1 of 3 runs ran beside others"
            ]
        );
        let table = terminal_table(&results);
        assert!(table.ends_with(&notes[0]), "{table}");
        let md = markdown(&results);
        assert!(md.ends_with(&format!("\n- {}\n", notes[0])), "{md}");
        assert!(
            measured_notes(&results[..1]).is_empty(),
            "nothing to say about `alone`"
        );
        assert!(!markdown(&results[..1]).contains("\n- "));
    }

    /// The table as comfy-table draws it: what [`write_terminal_table`] must reproduce byte for
    /// byte (it renders row by row instead, so 100,000 rows never exist at once).
    fn comfy(results: &[BenchmarkResult]) -> String {
        use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .force_no_tty()
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(HEADER);
        for r in results {
            t.add_row(row(r, None));
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
        let mut out = t.to_string();
        for note in measured_notes(results) {
            out.push('\n');
            out.push_str(&note);
        }
        out
    }

    #[test]
    fn the_streamed_table_is_comfy_tables_table() {
        let mut records = vec![
            rec("alone", 0, &[("run.concurrent", "false")]),
            rec("a much longer benchmark name", 0, &[]),
            rec("名前", 0, &[("run.concurrent", "true")]),
            rec("counted", 0, &[("hw.instructions", "2000000")]),
        ];
        for i in 0..5 {
            let mut r = rec("many", i, &[]);
            r.measurement.wall_ns = 1_000 * u64::from(i + 1) * 7919;
            r.measurement.max_rss_bytes = 1 << (20 + i);
            records.push(r);
        }
        let mut failed = rec("failing", 0, &[]);
        failed.outcome = Outcome::Failed {
            exit_code: Some(3),
            signal: None,
        };
        records.push(failed);
        let mut multi = rec("two\nlines", 0, &[]);
        multi.kind = NodeKind::Job;
        records.push(multi);
        let results = group_records(&records);
        for n in [0, 1, 2, results.len()] {
            assert_eq!(
                terminal_table(&results[..n]),
                comfy(&results[..n]),
                "{n} rows"
            );
        }
    }
}
