//! `benchfleet db …`: maintenance of a shared catalog database.
//!
//! - `db refresh` refreshes the PostgreSQL catalog's materialized daily summary concurrently
//!   (readers are not blocked). On a catalog that keeps no summary (redb) there is nothing to
//!   refresh: it says so and exits 0, so a scheduled job may run it whatever the backend.
//! - `db summary` prints that summary (per UTC day, suite, benchmark and metric: count, mean, min,
//!   max, p95 of successful runs) as of its last refresh, `--refresh` first if asked. On a catalog
//!   without a summary it exits 2, pointing at `history --benchmark`, which reads the catalog
//!   directly.

use std::str::FromStr;

use clap::{Args, Subcommand};

use benchfleet::history::Metric;
use benchfleet::{DailySummaryQuery, DailySummaryRow, StorageSettings};

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Refresh the catalog's pre-aggregated daily summary (PostgreSQL) without blocking readers.
    /// On an embedded (redb) catalog there is nothing to refresh: exit 0 with a note.
    Refresh,
    /// Print the daily summary (count, mean, min, max, p95 per day, suite, benchmark and metric)
    /// as of its last refresh. PostgreSQL catalogs only (exit 2 otherwise).
    Summary(SummaryArgs),
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Only this suite.
    #[arg(long)]
    pub suite: Option<String>,
    /// Only this benchmark (name after matrix expansion).
    #[arg(long, value_name = "NAME")]
    pub benchmark: Option<String>,
    /// Only this metric: wall, user, sys or rss (the summarised ones).
    #[arg(long)]
    pub metric: Option<String>,
    /// From this UTC day on (`YYYY-MM-DD`, inclusive).
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub since: Option<String>,
    /// Before this UTC day (`YYYY-MM-DD`, exclusive).
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub until: Option<String>,
    /// Refresh the summary first.
    #[arg(long)]
    pub refresh: bool,
    /// Print JSON (one object per row; values in the metric's unit: ns or bytes).
    #[arg(long)]
    pub json: bool,
}

pub async fn db(ctx: &Context, cmd: DbCommand) -> Result<Status> {
    // The facade opens the catalog itself for these: only the catalog is needed, not the tiers.
    let settings = ctx.storage_settings();
    match cmd {
        DbCommand::Refresh => refresh(&settings).await,
        DbCommand::Summary(args) => summary(&ctx.out, &settings, args).await,
    }
}

async fn refresh(settings: &StorageSettings) -> Result<Status> {
    match benchfleet::refresh_daily_summary(settings).await? {
        Some(name) => eprintln!("daily summary refreshed in {name}"),
        None => eprintln!(
            "nothing to refresh: the catalog backend is redb, which keeps no pre-aggregated summary \
             (history reads the catalog directly); `db refresh` applies to a postgres catalog"
        ),
    }
    Ok(Status::Success)
}

/// The summary's name for a metric, if it summarises it.
fn summary_metric(m: Metric) -> Option<&'static str> {
    match m {
        Metric::Wall => Some("wall_ns"),
        Metric::User => Some("user_ns"),
        Metric::Sys => Some("sys_ns"),
        Metric::Rss => Some("max_rss_bytes"),
        _ => None,
    }
}

fn parse_day(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a day; expected YYYY-MM-DD"))
    }
}

async fn summary(out: &Output, settings: &StorageSettings, args: SummaryArgs) -> Result<Status> {
    let metric = match &args.metric {
        None => None,
        Some(m) => {
            let parsed =
                Metric::from_str(m).map_err(|e| CliError::Usage(format!("--metric: {e}")))?;
            match summary_metric(parsed) {
                Some(name) => Some(name.to_owned()),
                None => {
                    return Err(CliError::Usage(format!(
                        "--metric {m}: the daily summary covers wall, user, sys and rss; \
                         use `benchfleet history --benchmark NAME --metric {m}` for the others"
                    )));
                }
            }
        }
    };
    if args.refresh {
        benchfleet::refresh_daily_summary(settings).await?;
    }
    let q = DailySummaryQuery {
        suite: args.suite.clone(),
        name: args.benchmark.clone(),
        metric,
        since_day: args.since.clone(),
        until_day: args.until.clone(),
    };
    let Some(rows) = benchfleet::daily_summary(settings, &q).await? else {
        return Err(CliError::usage(
            "the catalog backend is redb, which keeps no daily summary; use \
             `benchfleet history --benchmark NAME` (it reads the catalog directly), or a postgres \
             catalog",
        ));
    };
    if args.json {
        out.emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
    } else if rows.is_empty() {
        eprintln!(
            "no summary rows match; the summary holds successful runs as of its last refresh \
             (`benchfleet db refresh`)"
        );
    } else {
        out.emit(&summary_table(&rows))?;
    }
    Ok(Status::Success)
}

/// Plain aligned columns; times in ms, memory in MiB.
fn summary_table(rows: &[DailySummaryRow]) -> String {
    let mut lines = vec![[
        "day".to_string(),
        "suite".into(),
        "benchmark".into(),
        "metric".into(),
        "count".into(),
        "mean".into(),
        "min".into(),
        "max".into(),
        "p95".into(),
    ]];
    for r in rows {
        let (scale, unit) = if r.metric.ends_with("_ns") {
            (1e-6, "ms")
        } else {
            (1.0 / (1024.0 * 1024.0), "MiB")
        };
        let v = |x: f64| format!("{:.3}", x * scale);
        lines.push([
            r.day.clone(),
            r.suite.clone(),
            r.name.clone(),
            format!("{} ({unit})", r.metric),
            r.count.to_string(),
            v(r.mean),
            v(r.min),
            v(r.max),
            v(r.p95),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i >= 4 {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_checked() {
        for (input, ok) in [
            ("2024-05-01", true),
            ("2024-5-01", false),
            ("20240501", false),
            ("2024-05-0x", false),
            ("", false),
        ] {
            assert_eq!(parse_day(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn summarised_metrics() {
        let cases = [
            ("wall", Some("wall_ns")),
            ("time", Some("wall_ns")),
            ("memory", Some("max_rss_bytes")),
            ("sys", Some("sys_ns")),
            ("block-in", None),
        ];
        for (m, want) in cases {
            assert_eq!(summary_metric(Metric::from_str(m).unwrap()), want, "{m}");
        }
    }
}
