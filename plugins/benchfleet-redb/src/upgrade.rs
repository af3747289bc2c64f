//! Opening a database: creating the tables of a new one, refusing one written by a newer
//! benchfleet, and upgrading layout 1 in place.
//!
//! Layout 1 kept one JSON row per record in `records`, keyed by (started_at, run id, name,
//! iteration, digest), plus four index rows per record (`record_digests`, `records_by_run`,
//! `records_by_suite`, `records_by_name`): about 4 KB of catalog per 470-byte record once pages
//! were rewritten by migrations. The upgrade moves the rows into `record_chunks` batch by batch,
//! each batch ONE transaction that writes the chunks and deletes the batch's old rows and index
//! rows: an interrupted upgrade has lost nothing, and the next open goes on where it stopped
//! (already moved entries are found by digest and never written twice). When no old row is
//! left, one last transaction drops the old tables and writes the new layout version; the
//! caller then compacts the file.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use benchfleet_store::{ErrorKind, RecordEntry, Result, StoreError};

use crate::chunks::{Runs, WriteError};
use crate::{
    BLOBS, LARGE_BLOBS, LARGE_SIZES, LAYOUT_VERSION, META, RECORD_CHUNKS, RUNS, RUNS_BY_SUITE,
    RedbOptions, UpgradeFault, map_err,
};

/// Layout 1's primary key of a record entry: (started_at ns, run id, name, iteration, digest).
pub(crate) type RecKey<'a> = (i64, &'a str, &'a str, u32, [u8; 32]);
/// Layout 1's secondary index key: (indexed value, then the primary key).
pub(crate) type IdxKey<'a> = (&'a str, i64, &'a str, &'a str, u32, [u8; 32]);

/// A [`RecKey`] that owns its strings.
type OwnedRecKey = (i64, String, String, u32, [u8; 32]);

pub(crate) const V1_RECORDS: TableDefinition<RecKey, &[u8]> = TableDefinition::new("records");
pub(crate) const V1_RECORD_DIGESTS: TableDefinition<[u8; 32], RecKey> =
    TableDefinition::new("record_digests");
pub(crate) const V1_RECORDS_BY_RUN: TableDefinition<IdxKey, ()> =
    TableDefinition::new("records_by_run");
pub(crate) const V1_RECORDS_BY_SUITE: TableDefinition<IdxKey, ()> =
    TableDefinition::new("records_by_suite");
pub(crate) const V1_RECORDS_BY_NAME: TableDefinition<IdxKey, ()> =
    TableDefinition::new("records_by_name");

fn version_of(db: &Database) -> Result<Option<u64>, redb::Error> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(meta.get("layout_version")?.map(|v| v.value()))
}

fn has_current_tables(db: &Database) -> Result<bool, redb::Error> {
    let txn = db.begin_read()?;
    let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
    Ok([
        BLOBS.name(),
        LARGE_BLOBS.name(),
        LARGE_SIZES.name(),
        RUNS.name(),
        RUNS_BY_SUITE.name(),
        RECORD_CHUNKS.name(),
    ]
    .iter()
    .all(|n| names.iter().any(|have| have == n)))
}

/// Make `db` a database of the current layout. `Ok(true)` when it was upgraded (the caller
/// compacts it); a database of a newer layout is refused.
pub(crate) fn open_layout(
    db: &Database,
    name: &str,
    path: &Path,
    options: &RedbOptions,
) -> Result<bool> {
    let err = |e: redb::Error| map_err(name, "open", e);
    let version = version_of(db).map_err(err)?;
    match version {
        // An existing store of this layout needs no write (and no fsync) to be opened.
        Some(LAYOUT_VERSION) if has_current_tables(db).map_err(err)? => Ok(false),
        None | Some(LAYOUT_VERSION) => {
            create_tables(db).map_err(err)?;
            Ok(false)
        }
        Some(1) => {
            upgrade_v1(db, name, options)?;
            Ok(true)
        }
        Some(v) => Err(StoreError::new(
            ErrorKind::Unsupported,
            name,
            "open",
            format!(
                "database file {} has catalog layout {v}, written by a newer benchfleet; this build \
                 reads layouts 1 to {LAYOUT_VERSION}. Use a benchfleet at least as new as the one \
                 that wrote it",
                path.display()
            ),
        )),
    }
}

fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("layout_version", LAYOUT_VERSION)?;
        txn.open_table(BLOBS)?;
        txn.open_table(LARGE_BLOBS)?;
        txn.open_table(LARGE_SIZES)?;
        txn.open_table(RUNS)?;
        txn.open_table(RUNS_BY_SUITE)?;
        txn.open_table(RECORD_CHUNKS)?;
    }
    txn.commit()?;
    Ok(())
}

fn fault(name: &str, at: &str) -> StoreError {
    StoreError::new(
        ErrorKind::Other,
        name,
        "upgrade",
        format!("upgrade stopped by fault injection {at}"),
    )
}

/// One batch: move up to `n` layout-1 rows into chunks and delete them, in one transaction.
/// Returns how many rows it moved (0: none left).
fn upgrade_batch(
    db: &Database,
    name: &str,
    runs: &mut Runs,
    n: usize,
    crash_before_commit: bool,
) -> Result<usize, WriteError> {
    let txn = db.begin_write()?;
    let moved = {
        let mut records = txn.open_table(V1_RECORDS)?;
        let mut rows: Vec<(OwnedRecKey, RecordEntry)> = Vec::new();
        for item in records.range::<RecKey>(..)?.take(n.max(1)) {
            let (k, v) = item?;
            let (t, run, node, it, d) = k.value();
            let entry: RecordEntry = serde_json::from_slice(v.value()).map_err(|e| {
                StoreError::new(
                    ErrorKind::Decode,
                    name,
                    "upgrade",
                    format!(
                        "a record entry of layout 1 cannot be decoded ({e}); nothing of it was \
                         changed. Restore a backup, or open the store with the benchfleet that \
                         wrote it"
                    ),
                )
                .with_key(run)
            })?;
            rows.push(((t, run.to_owned(), node.to_owned(), it, d), entry));
        }
        let entries: Vec<RecordEntry> = rows.iter().map(|(_, e)| e.clone()).collect();
        runs.insert(&txn, &entries)?;
        let mut digests = txn.open_table(V1_RECORD_DIGESTS)?;
        let mut by_run = txn.open_table(V1_RECORDS_BY_RUN)?;
        let mut by_suite = txn.open_table(V1_RECORDS_BY_SUITE)?;
        let mut by_name = txn.open_table(V1_RECORDS_BY_NAME)?;
        for ((t, run, node, it, d), e) in &rows {
            let (run, node) = (run.as_str(), node.as_str());
            records.remove((*t, run, node, *it, *d))?;
            digests.remove(*d)?;
            by_run.remove((run, *t, run, node, *it, *d))?;
            by_suite.remove((e.suite.as_str(), *t, run, node, *it, *d))?;
            by_name.remove((node, *t, run, node, *it, *d))?;
        }
        rows.len()
    };
    if moved == 0 {
        txn.abort()?;
        return Ok(0);
    }
    if crash_before_commit {
        // Dropped without commit: the batch is lost, as in a crash.
        runs.clear();
        return Err(fault(name, "before a batch's commit").into());
    }
    txn.commit()?;
    Ok(moved)
}

fn upgrade_v1(db: &Database, name: &str, options: &RedbOptions) -> Result<()> {
    let store_err = |e: WriteError| match e {
        WriteError::Db(e) => map_err(name, "upgrade", e),
        WriteError::Store(mut e) => {
            e.backend = name.to_owned();
            e
        }
    };
    // The old tables may be gone already if a previous upgrade stopped in its last step.
    let mut runs = Runs::default();
    let mut batches = 0usize;
    if version_has_v1_rows(db).map_err(|e| map_err(name, "upgrade", e))? {
        loop {
            let crash = options.upgrade_fault == Some(UpgradeFault::BeforeCommitOfBatch(batches));
            let moved = upgrade_batch(db, name, &mut runs, options.upgrade_batch_records, crash)
                .map_err(store_err)?;
            if moved == 0 {
                break;
            }
            batches += 1;
            if options.upgrade_fault == Some(UpgradeFault::AfterBatches(batches)) {
                return Err(fault(name, &format!("after {batches} batches")));
            }
        }
    }
    if options.upgrade_fault == Some(UpgradeFault::BeforeFinish) {
        return Err(fault(name, "before the last step"));
    }
    let finish = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        for t in [
            V1_RECORDS.name(),
            V1_RECORD_DIGESTS.name(),
            V1_RECORDS_BY_RUN.name(),
            V1_RECORDS_BY_SUITE.name(),
            V1_RECORDS_BY_NAME.name(),
        ] {
            let def: TableDefinition<'_, (), ()> = TableDefinition::new(t);
            txn.delete_table(def)?;
        }
        {
            txn.open_table(BLOBS)?;
            txn.open_table(LARGE_BLOBS)?;
            txn.open_table(LARGE_SIZES)?;
            txn.open_table(RUNS)?;
            txn.open_table(RUNS_BY_SUITE)?;
            txn.open_table(RECORD_CHUNKS)?;
            txn.open_table(META)?
                .insert("layout_version", LAYOUT_VERSION)?;
        }
        txn.commit()?;
        Ok(())
    };
    finish().map_err(|e| map_err(name, "upgrade", e))
}

/// Whether the layout-1 `records` table still exists.
fn version_has_v1_rows(db: &Database) -> Result<bool, redb::Error> {
    let txn = db.begin_read()?;
    Ok(txn.list_tables()?.any(|t| t.name() == V1_RECORDS.name()))
}

/// Layout 1 as the benchfleet before issue 20 wrote it, for upgrade tests: the same tables,
/// the same JSON rows and index rows, written by the same steps as its writer.
#[cfg(test)]
pub(crate) mod v1 {
    use super::*;
    use benchfleet_model::RunInfo;
    use benchfleet_store::BlobKey;

    pub(crate) fn write(
        path: &Path,
        runs: &[RunInfo],
        entries: &[RecordEntry],
        blobs: &[(BlobKey, Vec<u8>)],
    ) {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            txn.open_table(META)
                .unwrap()
                .insert("layout_version", 1u64)
                .unwrap();
            let mut b = txn.open_table(BLOBS).unwrap();
            for (k, v) in blobs {
                b.insert(k.as_str(), v.as_slice()).unwrap();
            }
            txn.open_table(LARGE_BLOBS).unwrap();
            txn.open_table(LARGE_SIZES).unwrap();
            let mut r = txn.open_table(RUNS).unwrap();
            let mut rs = txn.open_table(RUNS_BY_SUITE).unwrap();
            for run in runs {
                let json = serde_json::to_vec(run).unwrap();
                r.insert(run.run_id.as_str(), json.as_slice()).unwrap();
                rs.insert((run.suite.as_str(), run.run_id.as_str()), ())
                    .unwrap();
            }
            let mut records = txn.open_table(V1_RECORDS).unwrap();
            let mut digests = txn.open_table(V1_RECORD_DIGESTS).unwrap();
            let mut by_run = txn.open_table(V1_RECORDS_BY_RUN).unwrap();
            let mut by_suite = txn.open_table(V1_RECORDS_BY_SUITE).unwrap();
            let mut by_name = txn.open_table(V1_RECORDS_BY_NAME).unwrap();
            for e in entries {
                let d = *e.digest.as_bytes();
                if digests.get(d).unwrap().is_some() {
                    continue;
                }
                let json = serde_json::to_vec(e).unwrap();
                let (t, run, name, it) = (
                    e.started_at.0,
                    e.run_id.as_str(),
                    e.name.as_str(),
                    e.iteration,
                );
                let pk: RecKey = (t, run, name, it, d);
                records.insert(pk, json.as_slice()).unwrap();
                digests.insert(d, pk).unwrap();
                by_run.insert((run, t, run, name, it, d), ()).unwrap();
                by_suite
                    .insert((e.suite.as_str(), t, run, name, it, d), ())
                    .unwrap();
                by_name.insert((name, t, run, name, it, d), ()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    /// Rows left in layout 1's `records` table (None: the table is gone).
    pub(crate) fn rows_left(path: &Path) -> Option<u64> {
        use redb::ReadableTableMetadata;
        let db = Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        match txn.open_table(V1_RECORDS) {
            Ok(t) => Some(t.len().unwrap()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => panic!("{e}"),
        }
    }
}
