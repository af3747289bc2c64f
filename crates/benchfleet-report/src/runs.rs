//! The list of stored runs (`benchfleet history`).

use benchfleet_model::Timestamp;
use comfy_table::{Table, presets};

/// One line of the run list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub run_id: String,
    pub suite: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: String,
    /// Abbreviated git commit, when recorded.
    pub commit: Option<String>,
}

/// RFC 3339 UTC with second precision, e.g. `2026-11-23T10:15:00Z`.
pub fn format_timestamp(t: Timestamp) -> String {
    match jiff::Timestamp::from_nanosecond(t.0 as i128) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("@{}ns", t.0),
    }
}

/// Runs as a table (plain text, or GitHub Markdown when `markdown`).
pub fn runs_table(rows: &[RunRow], markdown: bool) -> String {
    let mut t = Table::new();
    t.load_preset(if markdown {
        presets::ASCII_MARKDOWN
    } else {
        presets::NOTHING
    });
    t.set_header([
        "run",
        "suite",
        "started (UTC)",
        "duration",
        "status",
        "commit",
    ]);
    for r in rows {
        let duration = r
            .finished_at
            .map(|f| crate::units::format_duration((f.0 - r.started_at.0).max(0) as f64 / 1e9))
            .unwrap_or_else(|| "-".into());
        t.add_row([
            r.run_id.clone(),
            r.suite.clone(),
            format_timestamp(r.started_at),
            duration,
            r.status.clone(),
            r.commit.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut s = t.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rows() {
        let row = RunRow {
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".into(),
            suite: "quick".into(),
            started_at: Timestamp::from_unix_seconds(1_700_000_000),
            finished_at: Some(Timestamp::from_unix_seconds(1_700_000_012)),
            status: "succeeded".into(),
            commit: None,
        };
        let text = runs_table(std::slice::from_ref(&row), false);
        assert!(text.contains("2023-11-14T22:13:20Z"), "{text}");
        assert!(
            text.contains("01HZY3K4MZ8Q6X2V1B0C9D7E5F") && text.contains("succeeded"),
            "{text}"
        );
        assert!(
            text.contains("12.00 s") || text.contains("12.000 s") || text.contains("12 s"),
            "{text}"
        );
        let md = runs_table(&[row], true);
        assert!(md.lines().next().unwrap().starts_with('|'), "{md}");
    }
}
