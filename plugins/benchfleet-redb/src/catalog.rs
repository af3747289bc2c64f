//! [`Catalog`] over the `runs` and `records` tables and their indexes.

use async_trait::async_trait;
use redb::{ReadTransaction, TableDefinition};

use benchfleet_model::{RunId, RunInfo};
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, Catalog, ErrorKind, RecordEntry, RecordQuery, Result, RunFilter, StoreError,
};

use crate::writer::Work;
use crate::{
    Error, IdxKey, RECORD_DIGESTS, RECORDS, RECORDS_BY_NAME, RECORDS_BY_RUN, RECORDS_BY_SUITE,
    RUNS, RUNS_BY_SUITE, RedbStore,
};

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

/// Scan one secondary index for `value` from `since`, resolving primary rows.
fn scan_index(
    txn: &ReadTransaction,
    index: TableDefinition<IdxKey, ()>,
    value: &str,
    q: &RecordQuery,
    out: &mut Vec<RecordEntry>,
) -> Result<(), Error> {
    let idx = txn.open_table(index)?;
    let records = txn.open_table(RECORDS)?;
    let since = q.since.map_or(i64::MIN, |t| t.0);
    let lo: IdxKey = (value, since, "", "", 0, [0; 32]);
    for item in idx.range(lo..)? {
        let (k, _) = item?;
        let (v, t, run, name, it, d) = k.value();
        if v != value || q.until.is_some_and(|u| t >= u.0) {
            break;
        }
        let Some(row) = records.get((t, run, name, it, d))? else {
            continue;
        };
        let e: RecordEntry = decode("record entry", run, row.value())?;
        if q.matches(&e) {
            out.push(e);
            if q.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
    }
    Ok(())
}

fn run_query(txn: &ReadTransaction, q: &RecordQuery) -> Result<Vec<RecordEntry>, Error> {
    let mut out = Vec::new();
    if q.limit == Some(0) {
        return Ok(out);
    }
    if let Some(run) = &q.run_id {
        scan_index(txn, RECORDS_BY_RUN, run.as_str(), q, &mut out)?;
    } else if let Some(name) = &q.name {
        scan_index(txn, RECORDS_BY_NAME, name, q, &mut out)?;
    } else if let Some(suite) = &q.suite {
        scan_index(txn, RECORDS_BY_SUITE, suite, q, &mut out)?;
    } else {
        let records = txn.open_table(RECORDS)?;
        let since = q.since.map_or(i64::MIN, |t| t.0);
        for item in records.range((since, "", "", 0, [0u8; 32])..)? {
            let (k, v) = item?;
            let (t, run, ..) = k.value();
            if q.until.is_some_and(|u| t >= u.0) {
                break;
            }
            let e: RecordEntry = decode("record entry", run, v.value())?;
            if q.matches(&e) {
                out.push(e);
                if q.limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
        }
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
        let items = self.encode_rows("insert_records", entries)?;
        self.write("insert_records", Work::InsertRecords(items))
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
        let items = self.encode_rows("insert_records", entries)?;
        let work = Work::All(vec![Work::Put(blobs.to_vec()), Work::InsertRecords(items)]);
        self.write("insert_records_with_blobs", work).await?;
        Ok(true)
    }

    async fn query_records(&self, query: &RecordQuery) -> Result<Vec<RecordEntry>> {
        let q = query.clone();
        self.read("query_records", move |txn| run_query(txn, &q))
            .await
    }

    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let items = self.checked_moves(entries).await?;
        self.write("move_records", Work::MoveRecords(items)).await?;
        Ok(())
    }

    /// The flip and the source deletes in one write transaction (one durable commit).
    async fn move_records_deleting(
        &self,
        entries: &[RecordEntry],
        sources: &[BlobKey],
    ) -> Result<bool> {
        let items = self.checked_moves(entries).await?;
        let work = Work::All(vec![
            Work::MoveRecords(items),
            Work::DeleteMany(sources.to_vec()),
        ]);
        self.write("move_records_deleting", work).await?;
        Ok(true)
    }
}

impl RedbStore {
    /// Each entry with its JSON row, encoded here (off the writer thread).
    fn encode_rows(
        &self,
        op: &'static str,
        entries: &[RecordEntry],
    ) -> Result<Vec<(RecordEntry, Vec<u8>)>> {
        entries
            .iter()
            .map(|e| {
                let json = encode(&self.name, op, e).map_err(|err| err.with_key(e.digest))?;
                Ok((e.clone(), json))
            })
            .collect()
    }

    /// [`Catalog::move_records`]'s rows, after checking that every one exists (a missing row is
    /// `NotFound` and nothing is queued).
    async fn checked_moves(&self, entries: &[RecordEntry]) -> Result<Vec<(RecordEntry, Vec<u8>)>> {
        let digests: Vec<[u8; 32]> = entries.iter().map(|e| *e.digest.as_bytes()).collect();
        let missing = self
            .read("move_records", move |txn| {
                let table = txn.open_table(RECORD_DIGESTS)?;
                for d in &digests {
                    if table.get(*d)?.is_none() {
                        return Ok(Some(*d));
                    }
                }
                Ok(None)
            })
            .await?;
        if let Some(d) = missing {
            return Err(StoreError::new(
                ErrorKind::NotFound,
                &self.name,
                "move_records",
                "no catalog entry with this digest; nothing was moved",
            )
            .with_key(benchfleet_model::Digest::from_bytes(d)));
        }
        self.encode_rows("move_records", entries)
    }
}
