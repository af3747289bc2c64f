//! A benchmark's history (one value per run) and a scaling table, as text and Markdown.

use benchfleet_analysis::{ChangePoint, ScalingPoint};
use benchfleet_model::Timestamp;
use comfy_table::{CellAlignment, Table, presets};

use crate::runs::format_timestamp;
use crate::units::{format_bytes, format_in, time_unit};

/// What a series' values count, for formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Seconds,
    Bytes,
    Count,
}

/// One run's value in a history table.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub run_id: String,
    pub time: Timestamp,
    pub value: f64,
    /// Successful runs averaged into `value`.
    pub runs: usize,
    /// The commit measured, in a history ordered by commit (then shown as a column).
    pub commit: Option<String>,
}

/// A formatter for values of `q`, sharing one time unit chosen from `typical`.
fn formatter(q: Quantity, typical: f64) -> impl Fn(f64) -> String {
    let (unit, scale) = time_unit(typical);
    move |x: f64| {
        if !x.is_finite() {
            return "-".into();
        }
        match q {
            Quantity::Seconds => format_in(x, unit, scale),
            Quantity::Bytes => format_bytes(x.round().max(0.0) as u64),
            Quantity::Count => format!("{x:.1}"),
        }
    }
}

fn table(markdown: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(if markdown {
        presets::ASCII_MARKDOWN
    } else {
        presets::NOTHING
    });
    t
}

/// The series as a table (`#`, run, started, value, runs; a `◆` marks the first point after
/// each change), then, when `changes` is given, one line per change point with its before/after
/// means, percent and p-value. Plain text, or GitHub Markdown when `markdown`.
pub fn history_table(
    rows: &[HistoryRow],
    quantity: Quantity,
    changes: Option<&[ChangePoint]>,
    markdown: bool,
) -> String {
    let mut sorted: Vec<f64> = rows
        .iter()
        .map(|r| r.value)
        .filter(|x| x.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let typical = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let fmt = formatter(quantity, typical);
    let mut t = table(markdown);
    let by_commit = rows.iter().any(|r| r.commit.is_some());
    let short = |c: &Option<String>| {
        c.as_deref()
            .map_or_else(String::new, |c| c.chars().take(12).collect())
    };
    let mut header = vec!["#", "run", "started (UTC)", "value", "runs", "change"];
    if by_commit {
        header.insert(1, "commit");
    }
    t.set_header(header);
    for (i, r) in rows.iter().enumerate() {
        let change = changes
            .and_then(|cs| cs.iter().find(|c| c.index == i))
            .map_or_else(String::new, |c| format!("◆ {:+.1}%", c.percent));
        let mut row = vec![
            i.to_string(),
            r.run_id.clone(),
            format_timestamp(r.time),
            fmt(r.value),
            r.runs.to_string(),
            change,
        ];
        if by_commit {
            row.insert(1, short(&r.commit));
        }
        t.add_row(row);
    }
    let (value_col, runs_col) = if by_commit { (4, 5) } else { (3, 4) };
    for i in [0, value_col, runs_col] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.to_string();
    out.push('\n');
    if let Some(cs) = changes {
        out.push('\n');
        if cs.is_empty() {
            out.push_str("no change points detected\n");
        }
        for c in cs {
            let when = rows.get(c.index).map_or_else(
                || "-".into(),
                |r| match &r.commit {
                    Some(commit) => format!("first commit after it {commit}"),
                    None => format_timestamp(r.time),
                },
            );
            let line = format!(
                "change at #{} ({when}): {} → {} ({:+.2}%), p = {:.2e}",
                c.index,
                fmt(c.before_mean),
                fmt(c.after_mean),
                c.percent,
                c.p_value
            );
            if markdown {
                out.push_str(&format!("- {line}\n"));
            } else {
                out.push_str(&format!("{line}\n"));
            }
        }
    }
    out
}

/// Speedup and efficiency per concurrency level (time in seconds).
pub fn scaling_table(points: &[ScalingPoint], markdown: bool) -> String {
    let typical = points.first().map_or(0.0, |p| p.time);
    let fmt = formatter(Quantity::Seconds, typical);
    let mut t = table(markdown);
    t.set_header(["jobs", "time", "speedup", "efficiency"]);
    for p in points {
        t.add_row([
            p.jobs.to_string(),
            fmt(p.time),
            format!("{:.2}×", p.speedup),
            format!("{:.0}%", p.efficiency * 100.0),
        ]);
    }
    for i in 0..4 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f64]) -> Vec<HistoryRow> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| HistoryRow {
                run_id: format!("R{i}"),
                time: Timestamp::from_unix_seconds(1_700_000_000 + i as i64),
                value: *v,
                runs: 3,
                commit: None,
            })
            .collect()
    }

    #[test]
    fn history_table_marks_changes_and_formats_units() {
        let cp = ChangePoint {
            index: 2,
            before_mean: 0.010,
            after_mean: 0.013,
            percent: 30.0,
            p_value: 1e-5,
        };
        let text = history_table(
            &rows(&[0.010, 0.010, 0.013, 0.013]),
            Quantity::Seconds,
            Some(&[cp]),
            false,
        );
        assert!(
            text.contains("10.00 ms") && text.contains("13.00 ms"),
            "{text}"
        );
        assert!(text.contains("◆ +30.0%"), "{text}");
        assert!(text.contains("change at #2"), "{text}");
        let none = history_table(&rows(&[1.0]), Quantity::Seconds, Some(&[]), true);
        assert!(none.contains("no change points detected"), "{none}");
        let bytes = history_table(&rows(&[2048.0]), Quantity::Bytes, None, false);
        assert!(
            bytes.contains("2.000 KiB") && !bytes.contains("change at"),
            "{bytes}"
        );
    }

    #[test]
    fn scaling_table_shows_speedup_and_efficiency() {
        let pts = benchfleet_analysis::scaling(&[(1, 0.8), (4, 0.25)]).unwrap();
        let text = scaling_table(&pts, false);
        assert!(text.contains("3.20×") && text.contains("80%"), "{text}");
        assert!(text.contains("800.0 ms"), "{text}");
        assert!(scaling_table(&pts, true).contains("|"));
    }
}
