//! benchfleet as a library: the facade that composes the scheduler, the measurement code, storage,
//! analysis and reports into the runner the CLI drives.
//!
//! **Architecture invariant:** this is the only crate that names storage plugins, each behind a
//! cargo feature (`fs` and `redb`, on by default: the embedded default; `postgres`, `s3` and
//! `opendal` for team-scale backends, enabled by the CLI). It knows nothing about
//! the terminal, flags or figment: the CLI resolves configuration into the plain settings here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), benchfleet::Error> {
//! use benchfleet::{open_storage, runner, suite, StorageSettings};
//! let suite = suite::load("config/examples/quickstart.toml".as_ref(), ".benchfleet/out".as_ref())?;
//! let storage = open_storage(&StorageSettings::embedded(".benchfleet")).await?;
//! let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
//! let outcome = runner::run_suite(&suite, &storage, &Default::default(), tx).await?;
//! println!("{} records stored in run {}", outcome.records(), outcome.run.run_id);
//! # Ok(()) }
//! ```

// Lower modules: they never import a driver or a consumer.
pub mod cpus;
mod error;
pub mod event;
pub mod exec;
pub mod git;
pub mod host;
pub mod loadgen;
pub mod machine;
pub mod session;
pub mod suite;
// Drivers over the core (exec, session, event); they never import each other.
pub mod bench;
pub mod load;
pub mod runner;
// Consumers and everything else.
pub mod alerts;
pub mod bisect;
pub mod cache;
pub mod commits;
pub mod compare;
pub mod fleet;
pub mod history;
pub mod import;
mod open;
pub mod plan;
pub mod prom;
#[cfg(test)]
mod testing;

pub use benchfleet_analysis as analysis;
pub use benchfleet_metrics as metrics;
pub use benchfleet_model as model;
pub use benchfleet_report as report;
pub use benchfleet_sched as sched;
pub use benchfleet_store as store;

pub use error::Error;
pub use open::{
    BlobChoice, CatalogChoice, DailySummaryQuery, DailySummaryRow, PgSettings, S3Settings,
    StorageSettings, daily_summary, open_queue, open_storage, redact_url, refresh_daily_summary,
};

use benchfleet_model::{RunId, RunInfo, RunRecord};
use benchfleet_store::{RunFilter, Storage};

/// Find one run by full id, unique id prefix (case-insensitive), or `latest`.
pub async fn find_run(storage: &Storage, what: &str) -> Result<RunInfo, Error> {
    if what.eq_ignore_ascii_case("latest") || what.eq_ignore_ascii_case("last") {
        let mut runs = storage
            .catalog
            .find_runs(&RunFilter {
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        return runs
            .pop()
            .ok_or_else(|| Error::RunNotFound(what.to_owned()));
    }
    let prefix = what.to_ascii_uppercase();
    if !RunId::is_valid_prefix(&prefix) {
        return Err(Error::RunNotFound(what.to_owned()));
    }
    if let Ok(id) = prefix.parse::<RunId>()
        && let Some(run) = storage.catalog.get_run(&id).await?
    {
        return Ok(run);
    }
    let mut runs = storage
        .catalog
        .find_runs(&RunFilter {
            id_prefix: Some(prefix),
            limit: Some(2),
            ..Default::default()
        })
        .await?;
    match runs.len() {
        0 => Err(Error::RunNotFound(what.to_owned())),
        1 => Ok(runs.remove(0)),
        _ => {
            let count = storage
                .catalog
                .find_runs(&RunFilter {
                    id_prefix: Some(what.to_ascii_uppercase()),
                    ..Default::default()
                })
                .await?
                .len();
            Err(Error::AmbiguousRun {
                prefix: what.to_owned(),
                count,
            })
        }
    }
}

/// Every record of a run, read back from storage and verified, in catalog order.
pub async fn load_records(storage: &Storage, run: &RunId) -> Result<Vec<RunRecord>, Error> {
    Ok(storage.read_run(run).await?)
}
