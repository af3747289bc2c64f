//! Tables the CLI draws itself and more than one command prints: the per-period load table
//! (`load`, and `run` for a suite's load nodes).

use benchfleet::analysis::load::Period;

/// The short summary `run` prints for a load node: its name, the per-step table and the total
/// (the per-window table is in the records' `load.window` tags).
pub fn node_summary(load: &benchfleet::load::NodeLoadOutcome) -> String {
    let r = &load.report;
    format!(
        "{} (load: {} profile, {} records)\n{}{}",
        load.name,
        load.profile.kind.as_str(),
        r.records,
        period_table("step", &r.steps),
        period_table("total", std::slice::from_ref(&r.total))
    )
}

fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The per-period table: one row per step or window.
pub fn period_table(first: &str, periods: &[Period]) -> String {
    let header = [
        first, "from s", "to s", "conc", "rate/s", "ok", "failed", "missed", "ops/s", "p50 ms",
        "p90 ms", "p99 ms", "max ms",
    ];
    let rows: Vec<Vec<String>> = periods
        .iter()
        .map(|p| {
            let lat = |v: f64| {
                if p.completed == 0 {
                    "-".to_owned()
                } else {
                    ms(v as u64)
                }
            };
            vec![
                if first == "window" {
                    format!("{} ({})", p.index, p.label)
                } else {
                    p.label.clone()
                },
                format!("{:.1}", p.start.as_secs_f64()),
                format!("{:.1}", p.end.as_secs_f64()),
                p.concurrency.to_string(),
                p.rate.map_or("-".into(), |r| format!("{r:.1}")),
                p.completed.to_string(),
                p.failed.to_string(),
                p.missed.to_string(),
                format!("{:.1}", p.throughput),
                lat(p.latency.median),
                lat(p.latency.p90),
                lat(p.latency.p99),
                lat(p.latency.max),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(&header.map(str::to_owned));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use benchfleet::load::MissingDuration;
    use benchfleet::model::LoadSpec;

    #[test]
    fn tables_have_one_row_per_period_and_dashes_without_runs() {
        let spec = LoadSpec {
            profile: Some("stress".into()),
            steps: Some(3),
            max_concurrency: Some(3),
            ..LoadSpec::default()
        };
        let p = benchfleet::load::plan(&spec, MissingDuration::Default).unwrap();
        let stats = benchfleet::analysis::load::LoadStats::new(&p.profile, p.window).unwrap();
        let text = period_table("step", &stats.steps());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("step") && lines[0].contains("p99 ms"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("step 1") && lines[1].ends_with('-'),
            "{text}"
        );
    }
}
