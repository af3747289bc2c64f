//! `benchfleet report RUN`: one stored run as self-contained HTML (with history plots),
//! Markdown, JSON, CSV, JUnit or Bencher Metric Format.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchfleet::analysis::CompareConfig;
use benchfleet::history::{self, HistoryQuery, Metric};
use benchfleet::model::{NodeKind, Timestamp};
use benchfleet::report::{self, BenchmarkResult, ComparisonSet, HistorySeries};
use benchfleet::store::Storage;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id, a unique prefix of one, or `latest`.
    pub run: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also compare with this baseline (run id, tag KEY=VALUE or JSON file): shown in HTML and
    /// Markdown; regressions fail JUnit test cases.
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<String>,
    /// Metric of the history plots in the HTML report.
    #[arg(long, default_value = "wall")]
    pub metric: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Markdown,
    Json,
    Csv,
    Junit,
    Bmf,
}

/// Every benchmark's history up to and including `results`' run, when it has at least 2 points.
async fn histories(
    storage: &Storage,
    suite: &str,
    results: &[BenchmarkResult],
    until: Timestamp,
    metric: Metric,
) -> Result<Vec<HistorySeries>> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.kind == NodeKind::Benchmark) {
        let q = HistoryQuery {
            suite: Some(suite.to_owned()),
            until: Some(until),
            ..HistoryQuery::new(r.name.clone(), metric)
        };
        let points = history::benchmark_history(storage, &q).await?;
        if points.len() < 2 {
            continue;
        }
        let changes = history::detect_changes(&points, None).unwrap_or_default();
        out.push(history::html_series(&r.name, metric, &points, &changes));
    }
    Ok(out)
}

pub async fn report(ctx: &Context, args: ReportArgs) -> Result<Status> {
    let metric: Metric = args.metric.parse().map_err(CliError::Usage)?;
    let storage = ctx.storage().await?;
    let run = benchfleet::find_run(storage, &args.run).await?;
    let records = benchfleet::load_records(storage, &run.run_id).await?;
    let results = report::group_records(&records);
    let comparison: Option<ComparisonSet> = match &args.baseline {
        Some(b) => {
            let base = benchfleet::compare::resolve(Some(storage), b).await?;
            Some(report::compare_results(
                &base.results,
                &results,
                &CompareConfig::default(),
            ))
        }
        None => None,
    };
    let text = match args.format {
        ReportFormat::Html => {
            let until = records
                .iter()
                .map(|r| r.started_at)
                .max()
                .unwrap_or(run.started_at);
            let history = histories(
                storage,
                &run.suite,
                &results,
                Timestamp(until.0.saturating_add(1)),
                metric,
            )
            .await?;
            // The system samples stored with the run, if it was sampled; a missing or unreadable
            // series only leaves the section out.
            let utilisation = match benchfleet::bench::load_series(storage, &run).await {
                Ok(Some(series)) => Some(utilisation_of(&series)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("system samples of run {} unreadable: {e}", run.run_id);
                    None
                }
            };
            report::html_report(&report::HtmlReport {
                title: format!(
                    "{} — run {} ({})",
                    run.suite,
                    run.run_id,
                    report::format_timestamp(run.started_at)
                ),
                results: &results,
                comparison: comparison.as_ref(),
                history: &history,
                scaling: &[],
                utilisation: utilisation.as_ref(),
            })?
        }
        ReportFormat::Markdown => {
            let mut s = report::markdown(&results);
            if let Some(set) = &comparison {
                s.push('\n');
                s.push_str(&report::comparison_markdown(set));
            }
            s
        }
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report::hyperfine_json(&results))?
        ),
        ReportFormat::Csv => report::csv(&results),
        ReportFormat::Junit => report::junit_xml(
            &run.suite,
            &results,
            comparison.as_ref().map_or(&[][..], |c| &c.compared[..]),
        ),
        ReportFormat::Bmf => format!(
            "{}\n",
            serde_json::to_string_pretty(&report::bmf_json(&results))?
        ),
    };
    ctx.out.emit_to(args.output.as_deref(), &text)?;
    if let Some(p) = &args.output {
        eprintln!(
            "wrote {} ({} benchmarks of run {})",
            p.display(),
            results.len(),
            run.run_id
        );
    }
    Ok(Status::Success)
}

/// The sampler's series as the plain percentages the HTML report plots.
fn utilisation_of(series: &benchfleet::metrics::SystemSeries) -> report::plots::Utilisation {
    let mut u = report::plots::Utilisation::default();
    for s in &series.samples {
        let cores = s.cores.len().max(1) as f64;
        let busy: f64 = s.cores.iter().map(|c| f64::from(c.busy)).sum();
        u.t_s.push(s.t_ms as f64 / 1000.0);
        u.cpu_busy_pct.push(100.0 * busy / cores);
        u.own_busy_pct
            .push((100.0 * s.own_busy_cores / cores).min(100.0));
        u.mem_used_pct.push(if s.mem_total_bytes == 0 {
            0.0
        } else {
            100.0 * s.mem_used_bytes as f64 / s.mem_total_bytes as f64
        });
    }
    let verdict = series.noisy();
    if verdict.noisy {
        u.note = Some(format!("noisy machine: {}", verdict.reasons.join("; ")));
    }
    u
}
