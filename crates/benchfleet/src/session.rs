//! The lifecycle of one stored run: its catalog row ([`new_run`]), the system sampler, the
//! series stored with it ([`store_series`], [`load_series`]), its final status
//! ([`final_status`]) and the writer lease. [`Session`] holds them together and is finalised on
//! every path: [`Session::finish`] consumes it; a session dropped unfinished (an early return,
//! an error, a panic) still marks its run failed and releases the lease, so no run stays
//! `running` after its process has exited.
//!
//! **Architecture invariant:** a lower module: it imports no driver (runner, bench, load) and no
//! consumer (prom).

use std::collections::BTreeMap;
use std::time::Duration;

use benchfleet_metrics::{Sampler, SystemSeries};
use benchfleet_model::{Digest, RunInfo, RunStatus, SCHEMA_VERSION};
use benchfleet_store::{Storage, StoreError};

use crate::host;

/// A new run row of `suite` read from `source` (for `bench` and `load` both are the source),
/// started now on this host.
pub fn new_run(
    run_id: benchfleet_model::RunId,
    suite: &str,
    source: &str,
    tags: BTreeMap<String, String>,
) -> RunInfo {
    RunInfo {
        schema_version: SCHEMA_VERSION,
        run_id,
        suite: suite.into(),
        started_at: host::now(),
        finished_at: None,
        status: RunStatus::Running,
        host: host::host_info(),
        tags,
        source: source.into(),
    }
}

/// How a run ended: interrupted wins over failed, which wins over succeeded.
pub fn final_status(interrupted: bool, any_failed: bool) -> RunStatus {
    if interrupted {
        RunStatus::Interrupted
    } else if any_failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    }
}

/// Nothing more will be written: give the storage's writer lease up, so `tier gc` may remove
/// orphans again (a lease left behind only lasts until its holder's process is gone).
pub async fn release_lease(storage: &Storage) {
    if let Err(e) = storage.release_lease().await {
        tracing::warn!("could not release the writer lease: {e}");
    }
}

/// Store `series` as a JSON blob and reference it (plus its average and noise verdict) from
/// `tags`. Used by ad-hoc runs and suites alike.
pub async fn store_series(
    storage: &Storage,
    series: &SystemSeries,
    tags: &mut BTreeMap<String, String>,
) -> Result<Digest, StoreError> {
    let bytes = serde_json::to_vec(series).expect("SystemSeries serializes");
    let (digest, _) =
        benchfleet_store::content::put(&*storage.blobs, RunInfo::SYSTEM_SERIES_NS, bytes.into())
            .await?;
    let verdict = series.noisy();
    tags.insert(RunInfo::TAG_SYSTEM_SERIES.into(), digest.to_hex());
    tags.insert(
        RunInfo::TAG_SYSTEM_BUSY.into(),
        format!("{:.1}", verdict.mean_busy * 100.0),
    );
    tags.insert(RunInfo::TAG_SYSTEM_NOISY.into(), verdict.noisy.to_string());
    Ok(digest)
}

/// Read back the system series a run stored, if it has one.
pub async fn load_series(
    storage: &Storage,
    run: &RunInfo,
) -> Result<Option<SystemSeries>, StoreError> {
    let Some(hex) = run.tags.get(RunInfo::TAG_SYSTEM_SERIES) else {
        return Ok(None);
    };
    let Ok(digest) = hex.parse::<Digest>() else {
        return Ok(None);
    };
    let bytes =
        benchfleet_store::content::get(&*storage.blobs, RunInfo::SYSTEM_SERIES_NS, &digest).await?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// One line on the machine's state during a run: average utilisation, and why it was noisy.
pub fn describe_series(series: &SystemSeries) -> Vec<String> {
    if series.samples.is_empty() {
        return Vec::new();
    }
    let v = series.noisy();
    let mem = series
        .samples
        .iter()
        .map(|s| s.mem_used_bytes as f64)
        .sum::<f64>()
        / series.samples.len() as f64;
    let mut out = vec![format!(
        "system: {:.0}% CPU busy on average over {} cores ({:.2} CPUs outside benchfleet), {:.0} MiB memory used, {} samples every {} ms",
        v.mean_busy * 100.0,
        series.samples[0].cores.len(),
        v.foreign_busy_cores,
        mem / (1024.0 * 1024.0),
        series.samples.len(),
        series.interval_ms
    )];
    if v.noisy {
        out.push(format!(
            "warning: the machine was noisy during the measurement ({}); results may be unreliable — rerun on a quiet machine",
            v.reasons.join("; ")
        ));
    }
    out
}

/// Why a session's system sampling produced no series (the drivers word it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SamplingWarning {
    /// The sampler could not start: sampling is off.
    Off(String),
    /// The sampler's thread failed.
    Failed(String),
    /// The series could not be stored with the run.
    NotStored(String),
}

impl std::fmt::Display for SamplingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplingWarning::Off(e) => write!(f, "system sampling is off: {e}"),
            SamplingWarning::Failed(e) => write!(f, "system sampling failed: {e}"),
            SamplingWarning::NotStored(e) => write!(f, "could not store the system samples: {e}"),
        }
    }
}

/// A finished session: the run as stored, its system series and what went wrong with sampling.
#[derive(Debug)]
pub struct Finished {
    pub run: RunInfo,
    pub series: Option<SystemSeries>,
    pub warnings: Vec<SamplingWarning>,
}

/// One stored run in progress. Create it with [`Session::start`] (the row is written in the
/// background) or [`Session::begin`] (written before it returns); end it with
/// [`Session::finish`]. Dropped unfinished, it records the run as failed (interrupted when
/// [`Session::set_interrupted`] was called) and releases the writer lease, in the background.
#[derive(Debug)]
pub struct Session {
    storage: Storage,
    run: RunInfo,
    /// The first write of the row, while it is in flight.
    row: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
    sampler: Option<tokio::task::JoinHandle<Result<Sampler, benchfleet_metrics::SamplerError>>>,
    interrupted: bool,
    finished: bool,
}

impl Session {
    /// Register `run` and wait until its row is written.
    pub async fn begin(storage: &Storage, run: RunInfo) -> Result<Session, StoreError> {
        let mut s = Session::start(storage, run);
        if let Err(e) = s.registered().await {
            // Nothing was registered: nothing to finalise.
            s.finished = true;
            return Err(e);
        }
        Ok(s)
    }

    /// Register `run`, writing its row in the background (see [`Session::registered`]).
    pub fn start(storage: &Storage, mut run: RunInfo) -> Session {
        // The machine it is measured on (a resumed run keeps the facts it began with).
        for (k, v) in crate::machine::MachineFacts::current().tags() {
            run.tags.entry(k).or_insert(v);
        }
        let row = {
            let (storage, run) = (storage.clone(), run.clone());
            tokio::spawn(async move { storage.catalog.put_run(&run).await })
        };
        Session {
            storage: storage.clone(),
            run,
            row: Some(row),
            sampler: None,
            interrupted: false,
            finished: false,
        }
    }

    /// Wait for the row to be written (a no-op once it is).
    pub async fn registered(&mut self) -> Result<(), StoreError> {
        match self.row.take() {
            Some(task) => task.await.unwrap_or_else(|e| {
                Err(StoreError::new(
                    benchfleet_store::ErrorKind::Other,
                    "catalog",
                    "put_run",
                    format!("the task writing the run's row failed: {e}"),
                ))
            }),
            None => Ok(()),
        }
    }

    /// Sample the system every `interval` until the session finishes (the first `/proc` reading
    /// is taken on the blocking pool, beside whatever starts now).
    pub fn sample(&mut self, interval: Option<Duration>) {
        self.sampler = interval.map(|i| tokio::task::spawn_blocking(move || Sampler::start(i)));
    }

    pub fn run(&self) -> &RunInfo {
        &self.run
    }

    /// The run's tags, to add to before it finishes.
    pub fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.run.tags
    }

    /// The user stopped the run: a session dropped unfinished ends `interrupted`.
    pub fn set_interrupted(&mut self) {
        self.interrupted = true;
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// End the run with `status`: stop the sampler and store its series, write the final row,
    /// release the writer lease.
    pub async fn finish(mut self, status: RunStatus) -> Result<Finished, StoreError> {
        self.finished = true;
        let row = self.registered().await;
        let mut warnings = Vec::new();
        let series = match self.sampler.take() {
            Some(started) => match started.await {
                Ok(Ok(s)) => Some(s.stop()),
                Ok(Err(e)) => {
                    warnings.push(SamplingWarning::Off(e.to_string()));
                    None
                }
                Err(e) => {
                    warnings.push(SamplingWarning::Failed(e.to_string()));
                    None
                }
            },
            None => None,
        };
        if let Some(s) = &series
            && let Err(e) = store_series(&self.storage, s, &mut self.run.tags).await
        {
            warnings.push(SamplingWarning::NotStored(e.to_string()));
        }
        let mut run = self.run.clone();
        run.finished_at = Some(host::now());
        run.status = status;
        // Written even when the first write failed: a row that exists must not stay running.
        let written = self.storage.catalog.put_run(&run).await;
        release_lease(&self.storage).await;
        row?;
        written?;
        Ok(Finished {
            run,
            series,
            warnings,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let status = final_status(self.interrupted, true);
        tracing::warn!(
            "run {} ended without finishing; recording it as {}",
            self.run.run_id,
            status.as_str()
        );
        let mut run = self.run.clone();
        run.finished_at = Some(host::now());
        run.status = status;
        let storage = self.storage.clone();
        let row = self.row.take();
        if let Some(s) = self.sampler.take() {
            s.abort();
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(row) = row {
                    let _ = row.await;
                }
                if let Err(e) = storage.catalog.put_run(&run).await {
                    tracing::error!("could not record the end of run {}: {e}", run.run_id);
                }
                release_lease(&storage).await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
