//! One function per subcommand.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use benchfleet::model::RunInfo;
use benchfleet::report;
use benchfleet::runner::{self, RunOptions};
use benchfleet::store::RunFilter;
use benchfleet::{BlobChoice, CatalogChoice, StorageSettings};
use benchfleet_config::{BlobBackend, CatalogBackend, Config, Loaded, Sources};

use crate::cli::{Cli, Command, ConfigCommand, Format, HistoryArgs, RunArgs, ShowArgs};
use crate::exit;
use crate::progress::{self, Mode};

pub async fn dispatch(cli: Cli) -> Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    match cli.command {
        Command::Run(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), run_flags(&args))?;
            run(&cwd, &loaded.config, args).await
        }
        Command::Plan(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::plan::plan(&cwd, &loaded.config, args).await
        }
        Command::Bench(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            let root = benchfleet_config::resolve_in(&cwd, &loaded.config.storage.root);
            crate::bench::bench(&root, storage_settings(&cwd, &loaded.config), *args).await
        }
        Command::Load(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            let root = benchfleet_config::resolve_in(&cwd, &loaded.config.storage.root);
            crate::load::load(&root, storage_settings(&cwd, &loaded.config), *args).await
        }
        Command::History(args) if args.benchmark.is_some() => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::analyze::benchmark_history(&cwd, &loaded.config, args).await
        }
        Command::History(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            history(&cwd, &loaded.config, args).await
        }
        Command::Compare(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::analyze::compare(&cwd, &loaded.config, args).await
        }
        Command::Report(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::analyze::report_cmd(&cwd, &loaded.config, args).await
        }
        Command::Import(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::analyze::import(&cwd, &loaded.config, args).await
        }
        Command::Scale(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::analyze::scale(&cwd, &loaded.config, args).await
        }
        Command::Show(args) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            show(&cwd, &loaded.config, args).await
        }
        Command::Tier(cmd) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            let storage = benchfleet::open_storage(&storage_settings(&cwd, &loaded.config)).await?;
            crate::tier::run(storage, cmd).await
        }
        Command::Db(cmd) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            crate::db::run(storage_settings(&cwd, &loaded.config), cmd).await
        }
        Command::Config(ConfigCommand::Show) => {
            let loaded = load_config(&cwd, cli.config.clone(), Vec::new())?;
            if let Some(p) = &loaded.project_file {
                emit(&format!("# project file: {}\n", p.display()));
            }
            emit(&benchfleet_config::show(&loaded));
            Ok(exit::OK)
        }
    }
}

/// Map an error to the documented exit code: bad input is 2, everything else 3.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<benchfleet::Error>() {
            return if e.is_user_input() {
                exit::USAGE
            } else {
                exit::INTERNAL
            };
        }
        if cause
            .downcast_ref::<benchfleet_config::ConfigError>()
            .is_some()
        {
            return exit::USAGE;
        }
    }
    exit::INTERNAL
}

fn load_config(
    cwd: &Path,
    file: Option<PathBuf>,
    flags: Vec<(String, benchfleet_config::Value)>,
) -> Result<Loaded> {
    let mut sources = Sources::standard(cwd, file);
    sources.flags = flags;
    Ok(benchfleet_config::load(&sources)?)
}

fn run_flags(args: &RunArgs) -> Vec<(String, benchfleet_config::Value)> {
    let mut flags = Vec::new();
    if let Some(j) = args.jobs {
        flags.push(("run.jobs".to_owned(), j.into()));
    }
    if args.fail_fast {
        flags.push(("run.keep_going".to_owned(), false.into()));
    }
    if args.keep_going {
        flags.push(("run.keep_going".to_owned(), true.into()));
    }
    if args.no_cache {
        flags.push(("run.cache".to_owned(), false.into()));
    }
    if let Some(p) = args.progress {
        flags.push(("output.progress".to_owned(), p.as_str().into()));
    }
    if let Some(i) = &args.sample_interval {
        // Checked by the configuration, which names the flag when the value is wrong.
        flags.push(("run.sample_interval".to_owned(), i.as_str().into()));
    }
    flags
}

pub(crate) fn storage_settings(cwd: &Path, config: &Config) -> StorageSettings {
    let s = &config.storage;
    let abs = |p: PathBuf| benchfleet_config::resolve_in(cwd, &p);
    let c = &s.catalog;
    let pg = |schema: &str| benchfleet::PgSettings {
        schema: (!schema.is_empty()).then(|| schema.to_owned()),
        max_connections: c.max_connections,
        connect_timeout: std::time::Duration::from_secs(c.connect_timeout_secs),
        max_attempts: c.retry_attempts,
    };
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let blob = |b: &benchfleet_config::BlobConfig, path: PathBuf| match b.backend {
        BlobBackend::Catalog => match c.backend {
            CatalogBackend::Redb => BlobChoice::RedbCatalog,
            CatalogBackend::Postgres => BlobChoice::PostgresCatalog,
        },
        BlobBackend::Fs => BlobChoice::Fs { root: abs(path) },
        BlobBackend::Redb => BlobChoice::RedbCatalog,
        BlobBackend::Postgres if b.url.is_empty() => BlobChoice::PostgresCatalog,
        BlobBackend::Postgres => BlobChoice::Postgres {
            url: b.url.clone(),
            options: pg(&b.schema),
        },
        BlobBackend::S3 => BlobChoice::S3 {
            options: benchfleet::S3Settings {
                bucket: b.bucket.clone(),
                endpoint: some(&b.endpoint),
                region: some(&b.region),
                access_key_id: some(&b.access_key_id),
                secret_access_key: some(&b.secret_access_key),
                allow_http: b.allow_http,
                prefix: b.prefix.clone(),
            },
        },
        BlobBackend::Opendal => BlobChoice::Opendal {
            scheme: b.scheme.clone(),
            options: b.options.clone(),
        },
    };
    StorageSettings {
        catalog: match c.backend {
            CatalogBackend::Redb => CatalogChoice::Redb {
                path: abs(s.catalog_path()),
            },
            CatalogBackend::Postgres => CatalogChoice::Postgres {
                url: c.url.clone(),
                options: pg(&c.schema),
            },
        },
        hot: blob(&s.hot, s.hot_path()),
        warm: blob(&s.warm, s.warm_path()),
        cold: blob(&s.cold, s.cold_path()),
        policy: tier_policy(&s.policy),
    }
}

/// `[storage.policy]` as the store's policy.
fn tier_policy(p: &benchfleet_config::TierPolicyConfig) -> benchfleet::store::TierPolicy {
    let days = |d: u32| std::time::Duration::from_secs(u64::from(d) * 86_400);
    benchfleet::store::TierPolicy {
        hot_max_age: days(p.hot_days),
        warm_max_age: days(p.warm_days),
        warm_level: p.warm_level,
        warm_dictionary_bytes: p.warm_dictionary_bytes,
        cold_level: p.cold_level,
        cold_block_bytes: p.cold_block_bytes,
        cold_segment_bytes: p.cold_segment_bytes,
        cache_bytes: p.cache_bytes,
        migrate_batch_records: p.migrate_batch_records,
        stream_threshold_bytes: p.stream_threshold_bytes.0,
        writer_lease: p.writer_lease.as_duration(),
    }
}

async fn run(cwd: &Path, config: &Config, args: RunArgs) -> Result<u8> {
    let root = benchfleet_config::resolve_in(cwd, &config.storage.root);
    let suite = benchfleet::suite::load(&args.suite, &root.join("out"))?;
    // Refuse cycles before touching storage.
    runner::build_dag(&suite)?;
    let storage = benchfleet::open_storage(&storage_settings(cwd, config)).await?;

    let mut tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
    if let Some(commit) = benchfleet::host::git_commit() {
        tags.entry("git.commit".into()).or_insert(commit);
    }
    let resume = if args.resume {
        match benchfleet::cache::resumable_run(&storage, &suite.name).await? {
            Some(run) => {
                eprintln!(
                    "resuming run {} ({}): nodes that finished in it are not run again",
                    run.run_id,
                    run.status.as_str()
                );
                Some(run)
            }
            None => {
                eprintln!(
                    "nothing to resume: the latest run of suite `{}` finished; starting a new run",
                    suite.name
                );
                None
            }
        }
    } else {
        None
    };
    let budget = benchfleet::sched::Resources::host_budget(
        config.run.reserve_cpu,
        config.run.reserve_memory,
    )
    .map_err(|e| anyhow::anyhow!("run.reserve_cpu / run.reserve_memory: {e}"))?;
    let opts = RunOptions {
        jobs: config.run.jobs,
        keep_going: config.run.keep_going,
        stderr_tail_bytes: config.run.stderr_tail_bytes,
        tags,
        use_cache: config.run.cache && !args.no_cache,
        resume,
        budget: Some(budget),
        base_dir: cwd.to_owned(),
        sample_interval: Some(config.run.sample_interval.as_duration()),
        ..RunOptions::default()
    };
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: no new runs will start; everything measured so far is kept in storage"
            );
            cancel.cancel();
        }
    });

    let mode = Mode::choose(config.output.progress, std::io::stderr().is_terminal());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let expo = crate::load::start_metrics(&args.metrics).await?;
    let (tx, rx) = crate::load::tee_events(expo.as_ref(), tx, rx);
    let display = tokio::spawn(progress::render(rx, mode, suite.nodes.len()));
    let outcome = runner::run_suite(&suite, &storage, &opts, tx).await;
    let _ = display.await;
    if let Some(e) = expo {
        e.finish().await?;
    }
    let outcome = outcome?;

    let results = report::group_records(&outcome.records);
    if !results.is_empty() {
        emit(&format!("{}\n", report::terminal_table(&results)));
    }
    for load in &outcome.loads {
        emit(&format!("{}\n", crate::load::node_summary(load)));
        for w in &load.report.warnings {
            eprintln!("{}: {}", load.name, benchfleet::load::in_table_terms(w));
        }
    }
    if !outcome.reused.is_empty() {
        let reused = report::group_records(&outcome.reused);
        let names: Vec<&str> = reused.iter().map(|r| r.name.as_str()).collect();
        eprintln!("cached (unchanged, not run again): {}", names.join(", "));
        emit(&format!("{}\n", report::terminal_table(&reused)));
    }
    for (name, state) in &outcome.states {
        use benchfleet::sched::NodeState;
        match state {
            NodeState::Failed | NodeState::TimedOut => {
                let why = results
                    .iter()
                    .find(|r| &r.name == name)
                    .and_then(|r| r.failures.first().cloned())
                    .or_else(|| {
                        // Failed before or around its runs (a hook, its output directory).
                        outcome
                            .failures
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, m)| m.clone())
                    })
                    .unwrap_or_else(|| "failed".into());
                eprintln!("FAILED  {name}: {why}");
                if let Some(tail) = results
                    .iter()
                    .find(|r| &r.name == name)
                    .and_then(|r| r.stderr_tail.as_deref())
                {
                    for line in tail
                        .trim_end()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        eprintln!("        | {line}");
                    }
                }
            }
            NodeState::Skipped => eprintln!("SKIPPED {name}: a job it needs failed"),
            NodeState::Cancelled | NodeState::Pending => eprintln!("NOT RUN {name}: interrupted"),
            _ => {}
        }
    }
    if let Some(series) = &outcome.series {
        for line in benchfleet::bench::describe_series(series) {
            eprintln!("{line}");
        }
    }
    if let Some(path) = &args.export_json {
        write_file(
            path,
            &serde_json::to_string_pretty(&report::hyperfine_json(&results))?,
        )?;
    }
    if let Some(path) = &args.export_markdown {
        write_file(path, &report::markdown(&results))?;
    }
    let load_records: usize = outcome.loads.iter().map(|l| l.report.records).sum();
    Ok(run_footer(
        &outcome.run,
        outcome.records.len() + load_records,
        &root,
    ))
}

/// The closing line of `run` and `bench`, and the exit code the run's status maps to.
pub(crate) fn run_footer(run: &benchfleet::model::RunInfo, records: usize, root: &Path) -> u8 {
    eprintln!(
        "run {} ({}): {records} records stored in {}",
        run.run_id,
        run.status.as_str(),
        root.display()
    );
    match run.status {
        benchfleet::model::RunStatus::Succeeded => exit::OK,
        benchfleet::model::RunStatus::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILED,
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
}

async fn history(cwd: &Path, config: &Config, args: HistoryArgs) -> Result<u8> {
    let storage = benchfleet::open_storage(&storage_settings(cwd, config)).await?;
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            suite: args.suite.clone(),
            limit: Some(args.limit),
            ..Default::default()
        })
        .await?;
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&runs)?)),
        Format::Table | Format::Markdown => {
            if runs.is_empty() {
                eprintln!(
                    "no runs stored yet in {}; run a suite with `benchfleet run SUITE`",
                    config.storage.root.display()
                );
            } else {
                emit(&report::runs_table(
                    &runs.iter().map(run_row).collect::<Vec<_>>(),
                    args.format == Format::Markdown,
                ));
            }
        }
    }
    Ok(exit::OK)
}

fn run_row(r: &RunInfo) -> report::RunRow {
    report::RunRow {
        run_id: r.run_id.to_string(),
        suite: r.suite.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        status: r.status.as_str().to_owned(),
        commit: r
            .tags
            .get("git.commit")
            .map(|c| c.chars().take(10).collect()),
    }
}

async fn show(cwd: &Path, config: &Config, args: ShowArgs) -> Result<u8> {
    let storage = benchfleet::open_storage(&storage_settings(cwd, config)).await?;
    let run = benchfleet::find_run(&storage, &args.run).await?;
    let records = benchfleet::load_records(&storage, &run.run_id).await?;
    let results = report::group_records(&records);
    match args.format {
        Format::Table => {
            eprintln!(
                "run {} of suite `{}` ({}), {} records",
                run.run_id,
                run.suite,
                run.status.as_str(),
                records.len()
            );
            emit(&format!("{}\n", report::terminal_table(&results)));
        }
        Format::Markdown => emit(&report::markdown(&results)),
        Format::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report::hyperfine_json(&results))?
        )),
    }
    Ok(exit::OK)
}

/// Write to stdout; a closed pipe (`benchfleet show … | head`) ends the program quietly.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(exit::OK));
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(i32::from(exit::INTERNAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bad input is 2; a bug (a failed measuring thread) is an internal error, never a usage
    /// error.
    #[test]
    fn errors_map_to_their_documented_exit_codes() {
        for (err, code) in [
            (
                benchfleet::Error::Internal("join error".into()),
                exit::INTERNAL,
            ),
            (benchfleet::Error::Schedule("too large".into()), exit::USAGE),
            (benchfleet::Error::RunNotFound("x".into()), exit::USAGE),
        ] {
            let err = anyhow::Error::new(err).context("run failed");
            assert_eq!(exit_code_for(&err), code, "{err:#}");
        }
    }
}
