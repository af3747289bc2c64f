//! Analysis subcommands: `compare`, `history --benchmark`, `report`, `import`, `scale`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use benchfleet::analysis::{BootstrapConfig, CompareConfig, scaling};
use benchfleet::compare::{CompareError, CompareOutcome, Origin, Side};
use benchfleet::history::{self, HistoryQuery, Metric};
use benchfleet::import::{ImportError, ImportFormat, ImportOptions};
use benchfleet::model::{NodeKind, Timestamp};
use benchfleet::report::{self, BenchmarkResult, ComparisonSet, HistorySeries};
use benchfleet::runner::{self, RunOptions};
use benchfleet::store::Storage;
use benchfleet_config::Config;

use crate::cli::{Format, HistoryArgs, parse_tag};
use crate::commands::{emit, storage_settings};
use crate::exit;

/// A mistake in the command line that clap cannot see (exit code 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Print user-input errors and return exit code 2; other errors go up (exit code 3).
fn usage_errors(r: Result<u8>) -> Result<u8> {
    match r {
        Err(e) if is_user_input(&e) => {
            eprintln!("error: {e:#}");
            Ok(exit::USAGE)
        }
        other => other,
    }
}

fn is_user_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Usage>()
            || c.downcast_ref::<ImportError>()
                .is_some_and(ImportError::is_user_input)
            || c.downcast_ref::<CompareError>()
                .is_some_and(CompareError::is_user_input)
            || c.downcast_ref::<benchfleet::Error>()
                .is_some_and(benchfleet::Error::is_user_input)
    })
}

async fn open(cwd: &Path, config: &Config) -> Result<Storage> {
    Ok(benchfleet::open_storage(&storage_settings(cwd, config)).await?)
}

fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write `{}`", p.display()))
        }
        None => {
            emit(text);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// compare

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline: a run id (or unique prefix, or `latest`), a tag KEY=VALUE (the newest run
    /// recorded with it, e.g. `git.commit=abc123`), or an exported JSON file (hyperfine or
    /// benchfleet `--export-json`).
    pub baseline: String,
    /// Candidate, in the same forms as the baseline.
    pub candidate: String,
    /// Exit with code 1 when any benchmark regressed.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on: Option<FailOn>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Changes of the mean smaller than this fraction are `unchanged` even when significant.
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub noise: f64,
    /// Significance level; both Welch's t-test and Mann–Whitney U must be below it.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Regression,
}

fn compare_config(noise: f64, alpha: f64) -> Result<CompareConfig> {
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Usage(format!(
            "--noise {noise}: expected a fraction ≥ 0, e.g. 0.02 for 2%"
        ))
        .into());
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Usage(format!(
            "--alpha {alpha}: expected a probability between 0 and 1, e.g. 0.01"
        ))
        .into());
    }
    Ok(CompareConfig {
        alpha,
        noise_threshold: noise,
        higher_is_better: false,
        bootstrap: Some(BootstrapConfig::default()),
    })
}

fn side_json(s: &Side) -> serde_json::Value {
    match &s.origin {
        Origin::Run(r) => serde_json::json!({
            "spec": s.spec, "run_id": r.run_id.as_str(), "suite": r.suite,
            "started_at": report::format_timestamp(r.started_at), "tags": r.tags,
        }),
        Origin::File(p) => serde_json::json!({ "spec": s.spec, "file": p.display().to_string() }),
    }
}

pub async fn compare(cwd: &Path, config: &Config, args: CompareArgs) -> Result<u8> {
    usage_errors(compare_inner(cwd, config, args).await)
}

async fn compare_inner(cwd: &Path, config: &Config, args: CompareArgs) -> Result<u8> {
    let cfg = compare_config(args.noise, args.alpha)?;
    let needs_storage = !benchfleet::compare::is_file(&args.baseline)
        || !benchfleet::compare::is_file(&args.candidate);
    let storage = if needs_storage {
        Some(open(cwd, config).await?)
    } else {
        None
    };
    let CompareOutcome {
        baseline,
        candidate,
        set,
    } = benchfleet::compare::compare(storage.as_ref(), &args.baseline, &args.candidate, &cfg)
        .await?;
    match args.format {
        Format::Table => {
            eprintln!("baseline:  {}", baseline.describe());
            eprintln!("candidate: {}", candidate.describe());
            emit(&report::comparison_table(&set));
        }
        Format::Markdown => emit(&format!(
            "Comparing {} against {}.\n\n{}",
            candidate.describe(),
            baseline.describe(),
            report::comparison_markdown(&set)
        )),
        Format::Json => {
            let mut v = report::comparison_json(&set);
            v["baseline"] = side_json(&baseline);
            v["candidate"] = side_json(&candidate);
            v["noise"] = args.noise.into();
            v["alpha"] = args.alpha.into();
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
        }
    }
    if set.compared.is_empty() {
        return Err(Usage(format!(
            "no benchmark could be compared between `{}` and `{}` (see the skipped list); compare runs that share benchmark names and have at least 2 successful runs each",
            args.baseline, args.candidate
        ))
        .into());
    }
    let regressed: Vec<&str> = set
        .compared
        .iter()
        .filter(|c| c.comparison.verdict == benchfleet::analysis::Verdict::Regressed)
        .map(|c| c.name.as_str())
        .collect();
    if args.fail_on == Some(FailOn::Regression) && !regressed.is_empty() {
        eprintln!("regressed: {}", regressed.join(", "));
        return Ok(exit::FAILED);
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------------------------------------
// history --benchmark

pub async fn benchmark_history(cwd: &Path, config: &Config, args: HistoryArgs) -> Result<u8> {
    usage_errors(benchmark_history_inner(cwd, config, args).await)
}

async fn benchmark_history_inner(cwd: &Path, config: &Config, args: HistoryArgs) -> Result<u8> {
    let name = args.benchmark.clone().unwrap_or_default();
    let metric: Metric = args
        .metric
        .as_deref()
        .unwrap_or("wall")
        .parse()
        .map_err(Usage)?;
    let storage = open(cwd, config).await?;
    let q = HistoryQuery {
        suite: args.suite.clone(),
        ..HistoryQuery::new(name.clone(), metric)
    };
    let points = history::benchmark_history(&storage, &q).await?;
    if points.is_empty() {
        return Err(Usage(format!(
            "no stored run has a successful run of benchmark `{name}`{}; `benchfleet show RUN` lists a run's benchmark names",
            args.suite
                .as_deref()
                .map(|s| format!(" in suite `{s}`"))
                .unwrap_or_default()
        ))
        .into());
    }
    let changes = if args.changes {
        Some(history::detect_changes(&points, None).context("change-point detection failed")?)
    } else {
        None
    };
    match args.format {
        Format::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&history::history_json(&q, &points, changes.as_deref()))?
        )),
        Format::Table | Format::Markdown => {
            let md = args.format == Format::Markdown;
            if md {
                emit(&format!(
                    "History of `{}` ({}), {} runs\n\n",
                    name.replace('`', "'"),
                    metric.as_str(),
                    points.len()
                ));
            } else {
                eprintln!(
                    "history of `{name}` ({}, mean of successful runs), {} runs, oldest first",
                    metric.as_str(),
                    points.len()
                );
            }
            emit(&report::history_table(
                &history::table_rows(&points),
                metric.quantity(),
                changes.as_deref(),
                md,
            ));
        }
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------------------------------------
// report

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

pub async fn report_cmd(cwd: &Path, config: &Config, args: ReportArgs) -> Result<u8> {
    usage_errors(report_inner(cwd, config, args).await)
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

async fn report_inner(cwd: &Path, config: &Config, args: ReportArgs) -> Result<u8> {
    let metric: Metric = args.metric.parse().map_err(Usage)?;
    let storage = open(cwd, config).await?;
    let run = benchfleet::find_run(&storage, &args.run).await?;
    let records = benchfleet::load_records(&storage, &run.run_id).await?;
    let results = report::group_records(&records);
    let comparison: Option<ComparisonSet> = match &args.baseline {
        Some(b) => {
            let base = benchfleet::compare::resolve(Some(&storage), b).await?;
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
                &storage,
                &run.suite,
                &results,
                Timestamp(until.0.saturating_add(1)),
                metric,
            )
            .await?;
            // The system samples stored with the run, if it was sampled; a missing or unreadable
            // series only leaves the section out.
            let utilisation = match benchfleet::bench::load_series(&storage, &run).await {
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
    write_output(args.output.as_deref(), &text)?;
    if let Some(p) = &args.output {
        eprintln!(
            "wrote {} ({} benchmarks of run {})",
            p.display(),
            results.len(),
            run.run_id
        );
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------------------------------------
// import

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file, or a directory (one run per *.json file; a criterion directory is one run).
    pub path: PathBuf,
    /// Which tool wrote the files.
    #[arg(long, value_enum)]
    pub format: ImportFormatArg,
    /// Suite name of the imported runs (default: the file or directory name without extension).
    #[arg(long)]
    pub suite: Option<String>,
    /// Label stored with the imported runs, e.g. `--tag git.commit=abc123` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormatArg {
    Hyperfine,
    Criterion,
    Bmf,
}

impl From<ImportFormatArg> for ImportFormat {
    fn from(f: ImportFormatArg) -> Self {
        match f {
            ImportFormatArg::Hyperfine => ImportFormat::Hyperfine,
            ImportFormatArg::Criterion => ImportFormat::Criterion,
            ImportFormatArg::Bmf => ImportFormat::Bmf,
        }
    }
}

pub async fn import(cwd: &Path, config: &Config, args: ImportArgs) -> Result<u8> {
    usage_errors(import_inner(cwd, config, args).await)
}

async fn import_inner(cwd: &Path, config: &Config, args: ImportArgs) -> Result<u8> {
    let opts = ImportOptions {
        suite: args.suite.clone(),
        tags: args.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    // Parse everything before opening (and possibly creating) storage.
    benchfleet::import::read(&args.path, args.format.into())?;
    let storage = open(cwd, config).await?;
    let runs = benchfleet::import::import(&storage, &args.path, args.format.into(), &opts).await?;
    for r in &runs {
        for note in &r.notes {
            eprintln!("note: {note}");
        }
        emit(&format!(
            "{}\t{}\t{} benchmarks, {} records\t{}\n",
            r.run.run_id, r.run.suite, r.benchmarks, r.records, r.run.source
        ));
    }
    eprintln!(
        "imported {} run{} from {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        args.path.display()
    );
    Ok(exit::OK)
}

// ---------------------------------------------------------------------------------------------
// scale

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The suite file to run at each concurrency level.
    pub suite: PathBuf,
    /// Concurrency levels, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4",
        value_name = "N,N,…"
    )]
    pub jobs: Vec<usize>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Label stored with each run (repeatable); `scale.jobs=N` is added.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

pub async fn scale(cwd: &Path, config: &Config, args: ScaleArgs) -> Result<u8> {
    usage_errors(scale_inner(cwd, config, args).await)
}

async fn scale_inner(cwd: &Path, config: &Config, args: ScaleArgs) -> Result<u8> {
    let mut levels = args.jobs.clone();
    if levels.is_empty() || levels.contains(&0) {
        return Err(Usage("--jobs: expected concurrency levels ≥ 1, e.g. 1,2,4".into()).into());
    }
    levels.sort_unstable();
    levels.dedup();
    let root = benchfleet_config::resolve_in(cwd, &config.storage.root);
    let suite = benchfleet::suite::load(&args.suite, &root.join("out"))?;
    runner::build_dag(&suite)?;
    let storage = open(cwd, config).await?;
    let mut measured: Vec<(u32, f64)> = Vec::new();
    let mut runs = Vec::new();
    let mut failed = false;
    for &jobs in &levels {
        let mut tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
        tags.insert("scale.jobs".into(), jobs.to_string());
        let opts = RunOptions {
            jobs,
            keep_going: config.run.keep_going,
            stderr_tail_bytes: config.run.stderr_tail_bytes,
            tags,
            // Every level must run every node afresh: no stored result is reused.
            use_cache: false,
            base_dir: cwd.to_owned(),
            ..RunOptions::default()
        };
        // Commands may read the level they run at.
        let mut level_suite = suite.clone();
        for node in &mut level_suite.nodes {
            node.env
                .insert("BENCHFLEET_SCALE_JOBS".into(), jobs.to_string());
        }
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let outcome = runner::run_suite(&level_suite, &storage, &opts, tx).await?;
        let secs = start.elapsed().as_secs_f64();
        let ok = outcome.failed_nodes() == 0 && outcome.skipped_nodes() == 0;
        failed |= !ok;
        eprintln!(
            "jobs={jobs}: {} in {secs:.3} s (run {}, {})",
            suite.name,
            outcome.run.run_id,
            outcome.run.status.as_str()
        );
        measured.push((u32::try_from(jobs).unwrap_or(u32::MAX), secs));
        runs.push(outcome.run.run_id.to_string());
    }
    let points = scaling(&measured).context("cannot compute the scaling table")?;
    match args.format {
        Format::Table => emit(&report::scaling_table(&points, false)),
        Format::Markdown => emit(&report::scaling_table(&points, true)),
        Format::Json => {
            let v = serde_json::json!({
                "schema_version": report::JSON_SCHEMA_VERSION,
                "suite": suite.name,
                "levels": points.iter().zip(&runs).map(|(p, id)| serde_json::json!({
                    "jobs": p.jobs, "time": p.time, "speedup": p.speedup,
                    "efficiency": p.efficiency, "run_id": id,
                })).collect::<Vec<_>>(),
            });
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
        }
    }
    if failed {
        eprintln!("some jobs failed: the timings include failures; see `benchfleet show RUN`");
        return Ok(exit::FAILED);
    }
    Ok(exit::OK)
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
