//! hyperfine's AsciiDoc and Emacs org-mode exports: `Command | Mean | Min | Max | Relative`, in
//! one time unit (the first result's, or the one asked for), relative to the fastest mean.

use crate::BenchmarkResult;
use crate::units::{TimeUnit, unit_for};

/// The markup of [`markup_table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Markup {
    AsciiDoc,
    OrgMode,
}

/// hyperfine's table in `markup`. Results without a successful run show `-`. Relative speeds
/// are `mean / fastest mean`, with the propagated σ except on the fastest row.
pub fn markup_table(results: &[BenchmarkResult], markup: Markup, unit: Option<TimeUnit>) -> String {
    let walls: Vec<_> = results.iter().map(BenchmarkResult::wall).collect();
    let (unit_name, scale) = unit_for(walls.iter().flatten().next().map_or(1.0, |s| s.mean), unit);
    let fastest = walls
        .iter()
        .flatten()
        .map(|s| (s.mean, s.stddev.unwrap_or(0.0)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let num = |x: f64| format!("{:.1}", x * scale);
    let header = [
        "Command".to_string(),
        format!("Mean [{unit_name}]"),
        format!("Min [{unit_name}]"),
        format!("Max [{unit_name}]"),
        "Relative".to_string(),
    ];
    let mut rows = Vec::new();
    for (r, s) in results.iter().zip(&walls) {
        let name = r.name.replace('|', "\\|");
        let command = match markup {
            Markup::AsciiDoc => format!("`{name}`"),
            Markup::OrgMode => format!("={name}="),
        };
        let cells = match (s, fastest) {
            (Some(s), Some((fm, fsd))) if fm > 0.0 => {
                let mean = match s.stddev {
                    Some(sd) => format!("{} ± {}", num(s.mean), num(sd)),
                    None => num(s.mean),
                };
                let ratio = s.mean / fm;
                let is_fastest = s.mean == fm;
                let rel = if is_fastest {
                    format!("{ratio:.2}")
                } else {
                    let sd = s.stddev.unwrap_or(0.0);
                    let err = ratio * ((sd / s.mean).powi(2) + (fsd / fm).powi(2)).sqrt();
                    format!("{ratio:.2} ± {err:.2}")
                };
                [command, mean, num(s.min), num(s.max), rel]
            }
            _ => [command, "-".into(), "-".into(), "-".into(), "-".into()],
        };
        rows.push(cells);
    }
    let mut out = String::new();
    match markup {
        Markup::AsciiDoc => {
            out.push_str("[cols=\"<,>,>,>,>\"]\n|===");
            for cells in std::iter::once(&header).chain(&rows) {
                out.push_str(&format!("\n| {} \n", cells.join(" \n| ")));
            }
            out.push_str("|===\n");
        }
        Markup::OrgMode => {
            let line =
                |cells: &[String; 5]| format!("| {}  |  {} |\n", cells[0], cells[1..].join(" |  "));
            out.push_str(&line(&header));
            out.push_str("|--+--+--+--+--|\n");
            for cells in &rows {
                out.push_str(&line(cells));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, SCHEMA_VERSION, Timestamp};

    fn results() -> Vec<BenchmarkResult> {
        let rec = |name: &str, i: u32, ms: u64| RunRecord {
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
                wall_ns: ms * 1_000_000,
                ..Default::default()
            },
            outcome: Outcome::Success,
            stderr_tail: None,
            tags: Default::default(),
        };
        crate::group_records(&[
            rec("a|b", 0, 10),
            rec("a|b", 1, 10),
            rec("slow", 0, 20),
            rec("slow", 1, 20),
        ])
    }

    #[test]
    fn asciidoc_and_orgmode_tables_look_like_hyperfines() {
        let r = results();
        assert_eq!(
            markup_table(&r, Markup::OrgMode, None),
            "| Command  |  Mean [ms] |  Min [ms] |  Max [ms] |  Relative |\n\
             |--+--+--+--+--|\n\
             | =a\\|b=  |  10.0 ± 0.0 |  10.0 |  10.0 |  1.00 |\n\
             | =slow=  |  20.0 ± 0.0 |  20.0 |  20.0 |  2.00 ± 0.00 |\n"
        );
        let a = markup_table(&r, Markup::AsciiDoc, Some(TimeUnit::Second));
        assert!(
            a.starts_with("[cols=\"<,>,>,>,>\"]\n|===\n| Command \n| Mean [s] "),
            "{a}"
        );
        assert!(a.contains("\n| `slow` \n| 0.0 ± 0.0 \n"), "{a}");
        assert!(a.ends_with("|===\n"), "{a}");
    }
}
