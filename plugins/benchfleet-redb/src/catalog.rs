//! [`Catalog`] over the `runs` and `records` tables and their indexes.

use async_trait::async_trait;
use redb::ReadTransaction;

use benchfleet_model::{RunId, RunInfo};
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, Catalog, ErrorKind, RecordEntry, RecordQuery, RecordSample, Result, RunFilter,
    StoreError,
};

use crate::writer::Work;
use crate::{Error, RECORD_CHUNKS, RUNS, RUNS_BY_SUITE, RedbStore};
use benchfleet_store::pack;

fn decode<T: serde::de::DeserializeOwned>(what: &str, id: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Store(
            StoreError::new(
                ErrorKind::Decode,
                "redb",
                "decode",
                format!(
                    "stored {what} cannot be decoded ({e}); was it written by a newer benchfleet?"
                ),
            )
            .with_key(id),
        )
    })
}

fn encode(name: &str, op: &'static str, value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| {
        StoreError::new(
            ErrorKind::Other,
            name,
            op,
            format!("cannot encode as JSON: {e}"),
        )
    })
}

fn read_run(txn: &ReadTransaction, id: &str) -> Result<Option<RunInfo>, Error> {
    let runs = txn.open_table(RUNS)?;
    let Some(v) = runs.get(id)? else {
        return Ok(None);
    };
    decode("run", id, v.value()).map(Some)
}

/// Run ids to consider for `filter`, newest first (before the in-memory `matches`).
fn candidate_runs(
    txn: &ReadTransaction,
    filter: &RunFilter,
    out: &mut Vec<RunInfo>,
) -> Result<(), Error> {
    let limit = filter.limit.unwrap_or(usize::MAX);
    let mut push = |run: RunInfo| {
        if filter.matches(&run) {
            out.push(run);
        }
        out.len() >= limit
    };
    if let Some(suite) = &filter.suite {
        let idx = txn.open_table(RUNS_BY_SUITE)?;
        let lo = (suite.as_str(), "");
        let mut ids = Vec::new();
        for item in idx.range(lo..)? {
            let (k, _) = item?;
            let (s, id) = k.value();
            if s != suite.as_str() {
                break;
            }
            ids.push(id.to_owned());
        }
        for id in ids.iter().rev() {
            if let Some(run) = read_run(txn, id)?
                && push(run)
            {
                break;
            }
        }
        return Ok(());
    }
    let runs = txn.open_table(RUNS)?;
    let prefix = filter.id_prefix.as_deref().unwrap_or("");
    if prefix.is_empty() {
        for item in runs.range::<&str>(..)?.rev() {
            let (k, v) = item?;
            if push(decode("run", k.value(), v.value())?) {
                break;
            }
        }
    } else {
        // Abbreviated ids match few runs: collect forward, then newest first.
        let mut found = Vec::new();
        for item in runs.range(prefix..)? {
            let (k, v) = item?;
            if !k.value().starts_with(prefix) {
                break;
            }
            found.push(decode::<RunInfo>("run", k.value(), v.value())?);
        }
        for run in found.into_iter().rev() {
            if push(run) {
                break;
            }
        }
    }
    Ok(())
}

/// Whether a chunk with this header may hold an entry matching `q`.
fn chunk_may_match(h: &pack::Header<'_>, q: &RecordQuery) -> bool {
    q.since.is_none_or(|t| h.last >= t.0)
        && q.until.is_none_or(|t| h.first < t.0)
        && q.tier.is_none_or(|t| h.tiers & pack::tier_bit(t) != 0)
        && q.suite.as_deref().is_none_or(|s| h.may_have_suite(s))
        && q.name.as_deref().is_none_or(|n| h.may_have_name(n))
}

/// Entries matching `q` from the chunks in `range`, in the documented order. Chunks are
/// skipped on their headers (time span, tiers, bloom filter of suites and names) and only the
/// others are decoded.
/// The order of `query_records` results: (`started_at`, `run_id`, `name`, `iteration`), the
/// digest last so that the order is total.
pub(crate) fn query_order(a: &RecordEntry, b: &RecordEntry) -> std::cmp::Ordering {
    (
        a.started_at,
        &a.run_id,
        &a.name,
        a.iteration,
        a.digest.as_bytes(),
    )
        .cmp(&(
            b.started_at,
            &b.run_id,
            &b.name,
            b.iteration,
            b.digest.as_bytes(),
        ))
}

/// Call `f` with the run and value of every chunk that may hold entries matching `q`: the
/// query's run only, and chunks skipped on their headers (time span, tiers, bloom filter of
/// suites and names) without decoding them.
fn for_chunks(
    txn: &ReadTransaction,
    q: &RecordQuery,
    mut f: impl FnMut(&RunId, &[u8]) -> Result<(), StoreError>,
) -> Result<(), Error> {
    let table = txn.open_table(RECORD_CHUNKS)?;
    let range = match &q.run_id {
        Some(run) => table.range((run.as_str(), 0)..=(run.as_str(), u32::MAX))?,
        None => table.range::<(&str, u32)>(..)?,
    };
    let mut run: Option<RunId> = None;
    for item in range {
        let (k, v) = item?;
        let h = pack::header(v.value()).map_err(Error::Store)?;
        if !chunk_may_match(&h, q) {
            continue;
        }
        let key = k.value().0;
        if run.as_ref().is_none_or(|r| r.as_str() != key) {
            run = Some(key.parse().map_err(|_| {
                Error::Store(
                    StoreError::new(
                        ErrorKind::Corrupt,
                        "redb",
                        "query_records",
                        "a record chunk is keyed by something that is not a run id; restore a backup",
                    )
                    .with_key(key),
                )
            })?);
        }
        f(run.as_ref().expect("set above"), v.value()).map_err(Error::Store)?;
    }
    Ok(())
}

fn run_query(txn: &ReadTransaction, q: &RecordQuery) -> Result<Vec<RecordEntry>, Error> {
    let mut out = Vec::new();
    if q.limit == Some(0) {
        return Ok(out);
    }
    for_chunks(txn, q, |id, value| {
        let entries = pack::decode(id, value)?;
        out.extend(entries.into_iter().filter(|e| q.matches(e)));
        Ok(())
    })?;
    out.sort_by(query_order);
    if let Some(l) = q.limit {
        out.truncate(l);
    }
    Ok(out)
}

/// [`run_query`] as samples ([`Catalog::query_samples`]), with no entry built whole.
fn run_samples(txn: &ReadTransaction, q: &RecordQuery) -> Result<Vec<RecordSample>, Error> {
    let mut out = Vec::new();
    if q.limit == Some(0) {
        return Ok(out);
    }
    for_chunks(txn, q, |id, value| pack::samples(id, value, q, &mut out))?;
    // Chunks come in run id order, which for ULIDs is nearly start order: a stable sort of
    // nearly sorted samples is close to linear.
    out.sort_by(benchfleet_store::sample_order);
    if let Some(l) = q.limit {
        out.truncate(l);
    }
    Ok(out)
}

#[async_trait]
impl Catalog for RedbStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put_run(&self, run: &RunInfo) -> Result<()> {
        let json = encode(&self.name, "put_run", run)?;
        let work = Work::PutRun {
            id: run.run_id.to_string(),
            suite: run.suite.clone(),
            json,
        };
        self.write("put_run", work)
            .await
            .map_err(|e| e.with_key(&run.run_id))?;
        Ok(())
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunInfo>> {
        let key = id.to_string();
        self.read("get_run", move |txn| read_run(txn, &key))
            .await
            .map_err(|e| e.with_key(id))
    }

    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        let filter = filter.clone();
        self.read("find_runs", move |txn| {
            let mut out = Vec::new();
            if filter.limit != Some(0) {
                candidate_runs(txn, &filter, &mut out)?;
            }
            Ok(out)
        })
        .await
    }

    async fn insert_records(&self, entries: &[RecordEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write("insert_records", Work::InsertRecords(entries.to_vec()))
            .await?;
        Ok(())
    }

    /// The blobs and the rows in one write transaction (one durable commit).
    async fn insert_records_with_blobs(
        &self,
        blobs: &[(BlobKey, Bytes)],
        entries: &[RecordEntry],
    ) -> Result<bool> {
        for (k, b) in blobs {
            self.check_size(k, b.len())?;
        }
        let work = Work::All(vec![
            Work::Put(blobs.to_vec()),
            Work::InsertRecords(entries.to_vec()),
        ]);
        self.write("insert_records_with_blobs", work).await?;
        Ok(true)
    }

    async fn query_records(&self, query: &RecordQuery) -> Result<Vec<RecordEntry>> {
        let q = query.clone();
        self.read("query_records", move |txn| run_query(txn, &q))
            .await
    }

    async fn query_samples(&self, query: &RecordQuery) -> Result<Vec<RecordSample>> {
        let q = query.clone();
        self.read("query_samples", move |txn| run_samples(txn, &q))
            .await
    }

    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write("move_records", Work::MoveRecords(entries.to_vec()))
            .await?;
        Ok(())
    }

    /// The flip and the source deletes in one write transaction (one durable commit).
    async fn move_records_deleting(
        &self,
        entries: &[RecordEntry],
        sources: &[BlobKey],
    ) -> Result<bool> {
        let work = Work::All(vec![
            Work::MoveRecords(entries.to_vec()),
            Work::DeleteMany(sources.to_vec()),
        ]);
        self.write("move_records_deleting", work).await?;
        Ok(true)
    }

    async fn footprint(&self) -> Result<Option<benchfleet_store::CatalogFootprint>> {
        self.catalog_footprint().await.map(Some)
    }

    /// Compaction of the database file when a quarter of it (and 1 MiB) is free pages.
    async fn reclaim_space(&self) -> Result<u64> {
        let (before, after) = self.compact().await?;
        Ok(before.saturating_sub(after))
    }
}
