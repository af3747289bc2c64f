use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, RunInfo, Timestamp};

use crate::{ErrorKind, Result, StoreError};

/// Storage tier a record currently lives in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Uncompressed, fast random access.
    #[default]
    Hot,
    /// Compressed per record (zstd).
    Warm,
    /// Packed into compressed segments (xz).
    Cold,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The catalog's row for one stored [`RunRecord`](benchfleet_model::RunRecord): enough to list,
/// filter and summarise history without reading the record itself (summaries first, raw records
/// on demand), plus where the record's bytes are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// SHA-256 of the record's canonical bytes: its identity in every tier.
    pub digest: Digest,
    pub run_id: RunId,
    pub suite: String,
    pub name: String,
    pub kind: NodeKind,
    pub iteration: u32,
    pub started_at: Timestamp,
    pub measurement: Measurement,
    pub outcome: Outcome,
    /// Size of the canonical (uncompressed) record in bytes.
    pub size: u64,
    pub tier: Tier,
    /// Tier-specific location (for hot and warm the blob key; for cold `segment#block@offset`).
    pub location: String,
}

/// One record's measurement as a series over many runs needs it: the lean projection of a
/// [`RecordEntry`] (no digest, suite, name, tier or location), returned by
/// [`Catalog::query_samples`].
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSample {
    pub run_id: RunId,
    pub started_at: Timestamp,
    pub iteration: u32,
    pub measurement: Measurement,
    /// Whether the run succeeded ([`Outcome::is_success`]).
    pub success: bool,
}

impl From<&RecordEntry> for RecordSample {
    fn from(e: &RecordEntry) -> Self {
        RecordSample {
            run_id: e.run_id.clone(),
            started_at: e.started_at,
            iteration: e.iteration,
            measurement: e.measurement,
            success: e.outcome.is_success(),
        }
    }
}

/// The order of [`Catalog::query_samples`]: (`started_at`, `run_id`, `iteration`).
pub fn sample_order(a: &RecordSample, b: &RecordSample) -> std::cmp::Ordering {
    (a.started_at, &a.run_id, a.iteration).cmp(&(b.started_at, &b.run_id, b.iteration))
}

/// Which runs to list. Empty fields match everything; results are newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub suite: Option<String>,
    /// Run ids starting with this (abbreviated ids).
    pub id_prefix: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: Option<usize>,
}

/// Which record entries to return. Empty fields match everything.
/// Results are ordered by (`started_at`, `run_id`, `name`, `iteration`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordQuery {
    pub run_id: Option<RunId>,
    pub suite: Option<String>,
    /// Exact node name (after expansion).
    pub name: Option<String>,
    /// Inclusive lower bound on `started_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `started_at`.
    pub until: Option<Timestamp>,
    pub tier: Option<Tier>,
    pub limit: Option<usize>,
}

impl RecordQuery {
    pub fn run(id: &RunId) -> Self {
        RecordQuery {
            run_id: Some(id.clone()),
            ..Default::default()
        }
    }

    /// Whether `e` satisfies every set field (used by backends that filter in memory).
    pub fn matches(&self, e: &RecordEntry) -> bool {
        self.run_id.as_ref().is_none_or(|r| *r == e.run_id)
            && self.suite.as_ref().is_none_or(|s| *s == e.suite)
            && self.name.as_ref().is_none_or(|n| *n == e.name)
            && self.since.is_none_or(|t| e.started_at >= t)
            && self.until.is_none_or(|t| e.started_at < t)
            && self.tier.is_none_or(|t| e.tier == t)
    }
}

impl RunFilter {
    pub fn matches(&self, r: &RunInfo) -> bool {
        self.suite.as_ref().is_none_or(|s| *s == r.suite)
            && self
                .id_prefix
                .as_ref()
                .is_none_or(|p| r.run_id.as_str().starts_with(p.as_str()))
            && self.since.is_none_or(|t| r.started_at >= t)
            && self.until.is_none_or(|t| r.started_at < t)
    }
}

/// What a catalog occupies on disk, for `tier status` (the overhead next to the records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogFootprint {
    /// Bytes of the catalog's own tables (runs, record entries, their indexes), pages in use.
    pub catalog_bytes: u64,
    /// Bytes of the whole database file, where there is one (the embedded default's also holds
    /// the hot tier's records, and free pages not yet given back).
    pub file_bytes: Option<u64>,
}

/// Run metadata: invocations and the entries of their records; and, through the supertrait
/// [`AlertCatalog`](crate::AlertCatalog), the alerts found in their history.
#[async_trait]
pub trait Catalog: crate::AlertCatalog + Send + Sync + fmt::Debug + 'static {
    /// Backend name for messages.
    fn name(&self) -> &str;

    /// Insert or replace a run's row (status changes as the run progresses).
    async fn put_run(&self, run: &RunInfo) -> Result<()>;

    async fn get_run(&self, id: &RunId) -> Result<Option<RunInfo>>;

    /// Matching runs, newest first.
    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>>;

    /// Insert a batch of entries in one transaction. Idempotent: an entry whose digest is already
    /// present is left as it is.
    async fn insert_records(&self, entries: &[RecordEntry]) -> Result<()>;

    async fn query_records(&self, query: &RecordQuery) -> Result<Vec<RecordEntry>>;

    /// The entries [`query_records`](Catalog::query_records) returns for `query`, projected to
    /// [`RecordSample`]s: what a benchmark's history reads (one name over every run). Ordered
    /// by (`started_at`, `run_id`, `iteration`) (for a query by name, `query_records`' order);
    /// samples equal in all three come in no promised order. `limit` counts samples in this
    /// order. The default projects `query_records`; a backend overrides it when it can skip
    /// decoding what a sample leaves out (the redb catalog never builds the entries' names and
    /// locations).
    async fn query_samples(&self, query: &RecordQuery) -> Result<Vec<RecordSample>> {
        let all = RecordQuery {
            limit: None,
            ..query.clone()
        };
        let mut out: Vec<RecordSample> = self
            .query_records(&all)
            .await?
            .iter()
            .map(RecordSample::from)
            .collect();
        out.sort_by(sample_order);
        out.truncate(query.limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    /// Replace the `tier` and `location` of existing entries, all in ONE transaction: either
    /// every entry moves or none does. Each element is a complete row as returned by
    /// [`query_records`](Catalog::query_records) with only `tier` and `location` changed; the
    /// backend finds the stored row by `digest` (or by any other field of the row, all of which are
    /// unchanged). Idempotent: moving an entry to where it already is succeeds. An entry whose row
    /// does not exist is [`ErrorKind::NotFound`] and nothing is changed.
    ///
    /// This is the commit point of a tier migration (copy → verify → **move** → delete source).
    /// The default reports [`ErrorKind::Unsupported`], so a catalog without it can still store and
    /// read the hot tier; `benchfleet tier migrate` then says which backend lacks it.
    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        let _ = entries;
        Err(StoreError::new(
            ErrorKind::Unsupported,
            self.name(),
            "move_records",
            "this catalog backend cannot move records between tiers (Catalog::move_records is not \
             implemented); tier migration needs it",
        ))
    }

    /// For a catalog whose own database also holds the hot tier (this very object is the hot
    /// [`BlobStore`](crate::BlobStore)): put the `blobs` whose keys are absent and insert
    /// `entries`, all in ONE transaction — one durable commit instead of two, and never a row
    /// without its bytes. `Ok(false)`: not supported, nothing was written; [`Storage`] then puts
    /// the blobs and inserts the rows one after the other.
    ///
    /// [`Storage`]: crate::Storage
    async fn insert_records_with_blobs(
        &self,
        blobs: &[(crate::BlobKey, bytes::Bytes)],
        entries: &[RecordEntry],
    ) -> Result<bool> {
        let _ = (blobs, entries);
        Ok(false)
    }

    /// For a catalog whose own database also holds the hot tier: [`move_records`] and delete the
    /// blobs under `sources` (absent keys are skipped), all in ONE transaction. A migration whose
    /// sources are all in the hot tier then needs no journal: before the commit the rows point
    /// at the intact sources, after it at the verified targets with the sources gone.
    /// `Ok(false)`: not supported, nothing was changed; the migration journals, flips and
    /// deletes in three steps.
    ///
    /// [`move_records`]: Catalog::move_records
    async fn move_records_deleting(
        &self,
        entries: &[RecordEntry],
        sources: &[crate::BlobKey],
    ) -> Result<bool> {
        let _ = (entries, sources);
        Ok(false)
    }

    /// What the catalog occupies on disk; `None` when the backend cannot tell.
    async fn footprint(&self) -> Result<Option<CatalogFootprint>> {
        Ok(None)
    }

    /// Give space freed by deletes and rewrites back to the file system, when that pays off
    /// (the backend decides). Returns the bytes given back; the default has nothing to give.
    /// Called after a migration or `tier gc` that changed something.
    async fn reclaim_space(&self) -> Result<u64> {
        Ok(0)
    }
}

/// One row of a catalog's pre-aggregated daily summary (successful runs only), for backends that
/// keep one (PostgreSQL's materialized view).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DailySummary {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub suite: String,
    pub name: String,
    /// `wall_ns`, `user_ns`, `sys_ns` or `max_rss_bytes`.
    pub metric: String,
    pub count: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub p95: f64,
}

/// Which daily summary rows to return; empty fields match everything. Days are `YYYY-MM-DD`,
/// `since_day` inclusive, `until_day` exclusive. Rows come ordered by (day, suite, name, metric).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryQuery {
    pub suite: Option<String>,
    pub name: Option<String>,
    pub metric: Option<String>,
    pub since_day: Option<String>,
    pub until_day: Option<String>,
}
