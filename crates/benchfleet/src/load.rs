//! The `load` driver (`benchfleet load`): one command under a load profile, in a stored run of
//! its own. The engine (profiles, executor, windows, record batches) is [`crate::loadgen`],
//! shared with suite nodes that have a `load` table; its items are re-exported here.
//!
//! A thin driver over the core: [`crate::exec`] builds the process, [`crate::session`] owns the
//! run's lifecycle (row, sampler, final status, lease) on every path. It imports no other
//! driver.

use std::collections::BTreeMap;
use std::time::Duration;

use benchfleet_analysis::load::{LoadStats, Period};
use benchfleet_metrics::{Kill, SystemSeries};
use benchfleet_model::{NodeKind, RunInfo, RunStatus};
use benchfleet_sched::NodeState;
use benchfleet_store::Storage;
use tokio::sync::mpsc::UnboundedSender;

pub use crate::loadgen::*;

use crate::event::{CancelToken, RunnerEvent};
use crate::exec::{self, RecordOwner};
use crate::host;
use crate::session::{self, Session};

/// The node index of the load in its run's events (a `load` run has one node).
pub const LOAD_NODE: usize = 0;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// The command line (split into words, or run through `shell`).
    pub command: String,
    /// Name in results (default: the command).
    pub name: Option<String>,
    /// Run as `SHELL -c COMMAND` (no spawn-cost subtraction: latency includes the shell).
    pub shell: Option<String>,
    /// The profile and the length of its reporting windows.
    pub plan: LoadPlan,
    /// Kill a run (its process group) after this long; it counts as failed.
    pub timeout: Option<Duration>,
    /// Failed runs do not fail the run (exit code 0); they are always counted and stored.
    pub ignore_failure: bool,
    pub stderr_tail: usize,
    pub sample_interval: Option<Duration>,
    pub tags: BTreeMap<String, String>,
    /// Stops the load (Ctrl-C); running processes get `grace`, then are killed.
    pub cancel: CancelToken,
    pub grace: Duration,
}

impl LoadSettings {
    /// Defaults: direct execution, no timeout, sampling every 250 ms.
    pub fn new(command: impl Into<String>, plan: LoadPlan) -> Self {
        LoadSettings {
            command: command.into(),
            name: None,
            shell: None,
            plan,
            timeout: None,
            ignore_failure: false,
            stderr_tail: benchfleet_metrics::DEFAULT_STDERR_TAIL,
            sample_interval: Some(Duration::from_millis(250)),
            tags: BTreeMap::new(),
            cancel: CancelToken::default(),
            grace: Duration::from_secs(2),
        }
    }
}

/// The result of [`run_load`].
#[derive(Clone, Debug)]
pub struct LoadOutcome {
    pub run: RunInfo,
    pub name: String,
    /// Records stored (one per run, failed ones included).
    pub records: usize,
    pub windows: Vec<Period>,
    pub steps: Vec<Period>,
    pub total: Period,
    pub series: Option<SystemSeries>,
    pub warnings: Vec<String>,
}

/// Run the load and store one record per run (in batches of [`STORE_BATCH`]) plus a
/// [`RunInfo`] with source `load`. The run ends with a final status on every path, a store error
/// included (then `failed`).
///
/// Events: once the run is registered, `Started` (one node, the load) and `NodeStarted`; the
/// load's runs, missed starts and stored batches ([`NodeEvents`]); `NodeFinished` at the end,
/// on every path.
pub async fn run_load(
    settings: &LoadSettings,
    storage: &Storage,
    events: UnboundedSender<RunnerEvent>,
) -> Result<LoadOutcome, LoadRunError> {
    let shell = settings
        .shell
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "none");
    let mut spec = exec::command_spec(&settings.command, shell)?;
    spec.timeout = settings.timeout;
    spec.stderr_tail = settings.stderr_tail;
    let profile = &settings.plan.profile;
    // Refuse a bad window before a run is registered.
    LoadStats::new(profile, settings.plan.window)?;
    let name = settings
        .name
        .clone()
        .unwrap_or_else(|| settings.command.clone());

    let mut tags = settings.tags.clone();
    tags.insert(TAG_PROFILE.into(), profile.kind.as_str().into());
    tags.insert(
        TAG_WINDOW_NS.into(),
        settings.plan.window.as_nanos().to_string(),
    );
    if let Some(sh) = shell {
        tags.insert(exec::TAG_SHELL.into(), sh.into());
    }
    let mut session = Session::begin(
        storage,
        session::new_run(host::new_run_id(), LOAD_SOURCE, LOAD_SOURCE, tags),
    )
    .await?;
    let _ = events.send(RunnerEvent::Started {
        run_id: session.run().run_id.clone(),
        nodes: 1,
    });
    let _ = events.send(RunnerEvent::NodeStarted {
        node: LOAD_NODE,
        name: name.clone(),
        kind: NodeKind::Benchmark,
    });
    let finished = |state: NodeState, runs: usize, failure: Option<String>| {
        let _ = events.send(RunnerEvent::NodeFinished {
            node: LOAD_NODE,
            name: name.clone(),
            state,
            runs,
            failure,
        });
    };
    session.sample(settings.sample_interval);

    let kill = Kill::new();
    let stop = crate::event::kill_on_cancel(&settings.cancel, &kill, settings.grace);
    let job = LoadJob {
        plan: settings.plan.clone(),
        spec,
        owner: RecordOwner {
            run_id: session.run().run_id.clone(),
            suite: session.run().suite.clone(),
            name: name.clone(),
            kind: NodeKind::Benchmark,
            command: settings.command.clone(),
            parameters: BTreeMap::new(),
        },
        tags: settings.tags.clone(),
        kill,
        grace: settings.grace,
        events: NodeEvents {
            node: LOAD_NODE,
            events: events.clone(),
        },
    };
    let report = drive(&job, storage).await;
    stop.abort();
    let interrupted = settings.cancel.is_cancelled();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // What was stored before the error was announced by `Stored`.
            finished(NodeState::Failed, 0, Some(e.to_string()));
            session
                .finish(session::final_status(interrupted, true))
                .await?;
            return Err(e);
        }
    };
    let total = report.total;
    session
        .tags_mut()
        .insert(TAG_MISSED.into(), total.missed.to_string());
    let failed = total.failed > 0 && !settings.ignore_failure;
    let (state, failure) = if failed {
        (NodeState::Failed, report.first_failure.clone())
    } else {
        (NodeState::Succeeded, None)
    };
    finished(state, report.records, failure);
    let done = session
        .finish(session::final_status(interrupted, failed))
        .await?;
    let mut warnings: Vec<String> = done
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect();
    if let Some(s) = &done.series {
        warnings.extend(session::describe_series(s));
    }
    warnings.extend(report.warnings);
    debug_assert_ne!(done.run.status, RunStatus::Running);
    Ok(LoadOutcome {
        run: done.run,
        name,
        records: report.records,
        windows: report.windows,
        steps: report.steps,
        total,
        series: done.series,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{failing_storage, runs};

    /// A store that fails ends the load's run `failed`, not `running`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_error_ends_the_run_failed() {
        let storage = failing_storage();
        let spec = benchfleet_model::LoadSpec {
            duration: Some(benchfleet_model::DurationSpec(Duration::from_millis(100))),
            ..Default::default()
        };
        let mut settings = LoadSettings::new("true", plan(&spec, MissingDuration::Refuse).unwrap());
        settings.sample_interval = None;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let err = run_load(&settings, &storage, tx).await.unwrap_err();
        assert!(matches!(err, LoadRunError::Store(_)), "{err}");
        let runs = runs(&storage).await;
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunStatus::Failed);
        // The load's node ends failed, so nothing stays running in the metrics.
        let mut last = None;
        while let Some(e) = rx.recv().await {
            last = Some(e);
        }
        assert!(
            matches!(
                last,
                Some(RunnerEvent::NodeFinished {
                    node: LOAD_NODE,
                    state: NodeState::Failed,
                    failure: Some(_),
                    ..
                })
            ),
            "{last:?}"
        );
    }

    /// `load` tells its run as one node whose runs overlap: every run started and ended, its
    /// records as they are stored, the node's end; Prometheus counts from them what `load`
    /// reported before (runs started/finished, records stored, nothing running at the end).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_tells_its_runs_and_stored_records_as_events() {
        let storage = crate::testing::mem_storage();
        let spec = benchfleet_model::LoadSpec {
            duration: Some(benchfleet_model::DurationSpec(Duration::from_millis(200))),
            concurrency: Some(2),
            ..Default::default()
        };
        let mut settings = LoadSettings::new("true", plan(&spec, MissingDuration::Refuse).unwrap());
        settings.sample_interval = None;
        settings.name = Some("t".into());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = run_load(&settings, &storage, tx).await.unwrap();
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        assert!(outcome.records > 0);
        assert_eq!(
            events[..2],
            [
                RunnerEvent::Started {
                    run_id: outcome.run.run_id.clone(),
                    nodes: 1
                },
                RunnerEvent::NodeStarted {
                    node: LOAD_NODE,
                    name: "t".into(),
                    kind: NodeKind::Benchmark
                }
            ]
        );
        assert_eq!(
            events.last(),
            Some(&RunnerEvent::NodeFinished {
                node: LOAD_NODE,
                name: "t".into(),
                state: NodeState::Succeeded,
                runs: outcome.records,
                failure: None
            })
        );
        let count = |f: fn(&RunnerEvent) -> bool| events.iter().filter(|e| f(e)).count();
        let runs = count(|e| {
            matches!(
                e,
                RunnerEvent::RunStarted {
                    node: LOAD_NODE,
                    ..
                }
            )
        });
        assert_eq!(runs, outcome.records);
        assert_eq!(
            count(|e| matches!(
                e,
                RunnerEvent::Measured {
                    node: LOAD_NODE,
                    planned: 0,
                    ..
                }
            )),
            runs
        );
        let stored: usize = events
            .iter()
            .map(|e| match e {
                RunnerEvent::Stored { records, .. } => *records,
                _ => 0,
            })
            .sum();
        assert_eq!(stored, outcome.records);

        let m = crate::prom::RunnerMetrics::new();
        for e in &events {
            m.apply(e);
        }
        m.suite_finished();
        let p = crate::prom::parse_exposition(&m.encode()).unwrap();
        let n = outcome.records as f64;
        for (series, v) in [
            ("benchfleet_runs_started_total", n),
            ("benchfleet_runs_finished_total", n),
            ("benchfleet_runs_failed_total", 0.0),
            ("benchfleet_records_stored_total", n),
            (
                "benchfleet_missed_starts_total",
                outcome.total.missed as f64,
            ),
            ("benchfleet_suite_runs_started_total", 1.0),
            ("benchfleet_suite_runs_finished_total", 1.0),
            ("benchfleet_running_jobs", 0.0),
            ("benchfleet_queue_depth", 0.0),
        ] {
            assert_eq!(p[series], v, "{series}");
        }
    }
}
