//! Alerts: the regressions of a benchmark's history, found by the same change-point detection
//! as `history --changes`, stored in the catalog ([`benchfleet_store::AlertCatalog`]) where
//! people triage them. Finding a regression again gives the same alert (same id), so a scan can
//! run as often as runs finish without losing anyone's triage.

use std::collections::BTreeSet;

use benchfleet_model::{RunId, Timestamp};
use benchfleet_store::{Alert, AlertKind, RecordQuery, Storage, Triage};

use crate::Error;
use crate::history::{self, HistoryQuery, Metric};

/// The alerts of one history: one per change point where the metric went up (every metric of
/// [`Metric`] is better lower), with the run after the change and the one before it.
pub async fn detect(
    storage: &Storage,
    suite: Option<&str>,
    benchmark: &str,
    metric: Metric,
    now: Timestamp,
) -> Result<Vec<Alert>, Error> {
    let q = HistoryQuery {
        suite: suite.map(str::to_owned),
        ..HistoryQuery::new(benchmark, metric)
    };
    let runs = history::runs_of(storage, &q).await?;
    let points = history::benchmark_history_among(storage, &q, &runs).await?;
    let changes = history::detect_changes(&points, None)?;
    let commit_of = |id: &RunId| {
        runs.iter()
            .find(|r| r.run_id == *id)
            .and_then(|r| r.tags.get(crate::commits::TAG_COMMIT).cloned())
    };
    Ok(changes
        .iter()
        .filter(|c| c.after_mean > c.before_mean)
        .filter_map(|c| {
            let p = points.get(c.index)?;
            Some(Alert {
                id: Alert::id_for(
                    AlertKind::ChangePoint,
                    suite,
                    benchmark,
                    metric.as_str(),
                    &p.run_id,
                ),
                kind: AlertKind::ChangePoint,
                suite: suite.map(str::to_owned),
                benchmark: benchmark.to_owned(),
                metric: metric.as_str().to_owned(),
                run_id: p.run_id.clone(),
                baseline_run_id: c
                    .index
                    .checked_sub(1)
                    .and_then(|i| points.get(i))
                    .map(|b| b.run_id.clone()),
                commit: commit_of(&p.run_id),
                at: p.time,
                detected_at: now,
                before: c.before_mean,
                after: c.after_mean,
                percent: c.percent,
                p_value: Some(c.p_value),
                state: Triage::Untriaged,
                note: String::new(),
                triaged_at: None,
            })
        })
        .collect())
}

/// Scan the histories of every benchmark of `run` (in its suite) for wall-time regressions and
/// store the alerts not stored yet. Returns the new ones.
pub async fn scan_run(storage: &Storage, run: &RunId, now: Timestamp) -> Result<Vec<Alert>, Error> {
    let Some(info) = storage.catalog.get_run(run).await? else {
        return Err(Error::RunNotFound(run.to_string()));
    };
    let names: BTreeSet<String> = storage
        .catalog
        .query_records(&RecordQuery::run(run))
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut new = Vec::new();
    for name in names {
        let found = detect(storage, Some(&info.suite), &name, Metric::Wall, now).await?;
        if found.is_empty() {
            continue;
        }
        let mut absent = Vec::new();
        for a in found {
            if storage.catalog.get_alert(&a.id).await?.is_none() {
                absent.push(a);
            }
        }
        storage.catalog.put_alerts(&absent).await?;
        new.extend(absent);
    }
    Ok(new)
}
