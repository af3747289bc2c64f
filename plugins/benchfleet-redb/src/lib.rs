//! redb plugin: an embedded run [`Catalog`] and [`BlobStore`] in one redb database file.
//!
//! - **One writer, many readers.** Every write (blob puts and deletes, `put_run`,
//!   `insert_records`) is sent to a single writer thread that drains whatever is queued and
//!   applies it in **one** write transaction (group commit): concurrent `put_if_absent` calls
//!   share a commit and its fsync. Reads run on tokio's blocking pool against MVCC snapshots
//!   (`begin_read`) and never wait for the writer. Blobs up to [`INLINE_READ_MAX`] are read on the
//!   calling thread (cheaper than the hop to the blocking pool), larger ones on the blocking pool.
//! - **Catalog layout** (version 2). `runs` (run id → JSON [`RunInfo`]), `runs_by_suite`
//!   (suite, run id), and `record_chunks`: (run id, chunk number) → up to
//!   128 record entries of that run in one value (`benchfleet_store::pack`: binary, with a
//!   header that lets [`Catalog::query_records`] skip a chunk on its time span, tiers, suites and
//!   names without decoding it). There is no row per record and no index keyed by digest: the
//!   writer thread knows which chunk holds which digest of the runs it writes (`chunks.rs`).
//!   Stores of layout 1 are upgraded in place when opened (`upgrade.rs`); newer layouts are
//!   refused. [`Catalog::reclaim_space`] compacts the file when a quarter of it is free.
//! - **Blobs** up to [`INLINE_READ_MAX`] live in `blobs` (key → bytes: one B-tree write per
//!   put); larger ones in `large_blobs`, with their sizes in `large_blob_sizes` so that `head`
//!   and `list` never load large bytes. A blob is one redb value, so range reads load the whole
//!   value (`Capability::range_reads` is `false`).
//! - **Several processes** use one file in turns (`share.rs`): a store closes the database
//!   between transactions when another process waits for it, and opens it again when it needs
//!   it. A file held by something that never lets go (`RedbOptions::wait_for_file`), or a file
//!   that is not a redb database, fails with an error naming the file and saying what to do.
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace, plus `redb`. Nothing outside this crate sees a redb type.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use benchfleet_store::{BlobKey, BlobStore, Catalog, RunFilter};
//! let dir = tempfile::tempdir().unwrap();
//! let store = benchfleet_redb::RedbStore::open(dir.path().join("db/catalog.redb")).unwrap();
//! let key = BlobKey::new("records/ab/cd/abcd").unwrap();
//! store.put_if_absent(&key, "hello".into()).await.unwrap();
//! assert_eq!(store.get(&key).await.unwrap(), "hello");
//! assert!(store.find_runs(&RunFilter::default()).await.unwrap().is_empty());
//! # }
//! ```

mod alerts;
mod blob;
mod catalog;
mod chunks;
mod share;
mod upgrade;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};
use tokio::sync::{mpsc, oneshot};

use benchfleet_store::{BlobKey, ErrorKind, Result, StoreError};

use writer::{Done, Job, Work};

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Blobs up to [`INLINE_READ_MAX`] bytes: one B-tree write per put, read inline.
pub(crate) const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
/// Larger blobs, with their sizes kept apart so `head` and `list` never load their bytes.
pub(crate) const LARGE_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("large_blobs");
pub(crate) const LARGE_SIZES: TableDefinition<&str, u64> = TableDefinition::new("large_blob_sizes");
pub(crate) const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
pub(crate) const RUNS_BY_SUITE: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("runs_by_suite");
/// Record entries: (run id, chunk number) → up to [`benchfleet_store::pack::CHUNK_RECORDS`] entries of that run,
/// packed ([`benchfleet_store::pack`]).
pub(crate) const RECORD_CHUNKS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("record_chunks");

/// Alert id → [`Alert`](benchfleet_store::Alert) as JSON (`alerts.rs`). Created on the first
/// write, so files of older versions open unchanged.
pub(crate) const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");

/// The catalog's own tables (everything but the blob tables), for [`RedbStore::footprint`].
const CATALOG_TABLES: [&str; 4] = ["meta", "runs", "runs_by_suite", "record_chunks"];

/// Layout version stored in `meta`; bump on incompatible table changes. Version 1 (one JSON
/// row and four index rows per record) is upgraded in place when opened ([`upgrade`]).
pub(crate) const LAYOUT_VERSION: u64 = 2;

/// Largest blob accepted: redb's value limit (3 GiB) minus room for the key.
pub const MAX_BLOB_SIZE: u64 = 3 * 1024 * 1024 * 1024 - 64 * 1024;

/// Blobs up to this size are read on the calling task's thread (a few cached pages, microseconds);
/// larger ones on tokio's blocking pool.
pub const INLINE_READ_MAX: u64 = 64 * 1024;

/// How a [`RedbStore`] commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// Make every commit durable before it returns (default `true`). With `false` commits use
    /// `Durability::None`: still atomic, but recent ones may be lost on power failure.
    pub fsync: bool,
    /// Most jobs (puts, deletes, catalog writes) the writer folds into one transaction.
    pub max_batch_jobs: usize,
    /// Soft bound on the blob bytes folded into one transaction (a single larger job still goes
    /// through, alone).
    pub max_batch_bytes: usize,
    /// redb's page cache, bytes (default 4 MiB). redb's own default is 1 GiB, and its cache
    /// fills with every page a long run writes: a 100,000-node suite's runner grew by 100 MB of
    /// cached catalog pages (by 25 MB with 32 MiB). Evicted pages are read back through the OS
    /// page cache, so a small cache costs a system call per page read, not a disk read.
    pub cache_bytes: usize,
    /// How long to wait for the file while another process holds it and does not hand it over
    /// (default 120 s; benchfleet processes hand it over between transactions, `share.rs`).
    pub wait_for_file: std::time::Duration,
    /// Records moved per transaction when a store of an older layout is upgraded on open.
    pub upgrade_batch_records: usize,
    /// Fault injection for upgrade tests: stop the upgrade with an error, as a crash would, at
    /// this point. Never set it on data you care about.
    pub upgrade_fault: Option<UpgradeFault>,
}

/// Where [`RedbOptions::upgrade_fault`] stops an upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeFault {
    /// After this many batches have committed.
    AfterBatches(usize),
    /// Inside batch number `n` (from 0), after its writes and before its commit: the batch is
    /// lost, as in a crash.
    BeforeCommitOfBatch(usize),
    /// After every record moved, before the old tables are dropped and the version is written.
    BeforeFinish,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            fsync: true,
            max_batch_jobs: 4096,
            max_batch_bytes: 64 << 20,
            cache_bytes: 4 << 20,
            wait_for_file: std::time::Duration::from_secs(120),
            upgrade_batch_records: 20_000,
            upgrade_fault: None,
        }
    }
}

/// A redb database used as run catalog and blob store. Share it with `Arc`; dropping the last
/// handle waits for queued writes to commit and closes the file.
#[derive(Debug)]
pub struct RedbStore {
    /// Shared with the writer thread, which takes it exclusively only to compact the file; open
    /// while this store uses it and no other process waits for it (`share.rs`).
    db: Arc<share::Slot>,
    name: String,
    path: PathBuf,
    tx: Option<mpsc::UnboundedSender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl RedbStore {
    /// Open or create the database at `path` (creating parent directories), durable commits.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore> {
        Self::open_with(path, RedbOptions::default())
    }

    /// [`RedbStore::open`] with explicit [`RedbOptions`].
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<RedbStore> {
        let path = path.as_ref().to_path_buf();
        let name = format!("redb:{}", path.display());
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::io(name.clone(), "open", e).with_key(parent.display()))?;
        }
        let prepare = {
            let (name, path) = (name.clone(), path.clone());
            move |db: &mut Database| -> Result<()> {
                if upgrade::open_layout(db, &name, &path, &options)? {
                    // An upgrade left the old layout's pages free: give them back.
                    while db.compact().map_err(|e| map_err(&name, "compact", e))? {}
                }
                Ok(())
            }
        };
        let db = share::Slot::open(path.clone(), name.clone(), options, Box::new(prepare))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = {
            let (db, writer_name, writer_path) = (db.clone(), name.clone(), path.clone());
            std::thread::Builder::new()
                .name("benchfleet-redb-writer".into())
                .spawn(move || writer::run(&db, &writer_path, &writer_name, options, rx))
                .map_err(|e| StoreError::io(name.clone(), "start writer thread", e))?
        };
        Ok(RedbStore {
            db,
            name,
            path,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the catalog's own tables (pages in use, with their unused room) and of the
    /// whole file (catalog, hot-tier blobs and free pages).
    pub async fn catalog_footprint(&self) -> Result<benchfleet_store::CatalogFootprint> {
        let path = self.path.clone();
        self.read("footprint", move |txn| {
            let mut catalog_bytes = 0;
            for t in txn.list_tables()? {
                if CATALOG_TABLES.contains(&t.name()) {
                    catalog_bytes += table_stats(txn, t.name())?;
                }
            }
            let file_bytes = std::fs::metadata(&path).map(|m| m.len()).ok();
            Ok(benchfleet_store::CatalogFootprint {
                catalog_bytes,
                file_bytes,
            })
        })
        .await
    }

    /// Give free pages back to the file system when at least a quarter of the file (and 1 MiB)
    /// is free. Returns the file's size before and after.
    pub async fn compact(&self) -> Result<(u64, u64)> {
        match self.write("compact", Work::Compact).await? {
            Done::Compacted { before, after } => Ok((before, after)),
            _ => Err(StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                "compact",
                "writer answered a compaction with no sizes",
            )),
        }
    }

    /// Fault injection for the conformance kit and `tier verify` tests: flip one byte of the blob
    /// stored under `key`, bypassing every check. Returns `false` if there is no such non-empty
    /// blob. Never call this on data you care about.
    pub fn inject_corruption(&self, key: &BlobKey) -> Result<bool> {
        let run = || -> Result<bool, redb::Error> {
            // The database stays held until the transaction ends (see `share::DbRef`).
            let db = self.db.get().map_err(redb_err)?;
            let txn = db.begin_write()?;
            let mut flipped = false;
            for table in [BLOBS, LARGE_BLOBS] {
                let mut blobs = txn.open_table(table)?;
                let Some(mut bytes) = blobs.get(key.as_str())?.map(|v| v.value().to_vec()) else {
                    continue;
                };
                if let Some(last) = bytes.len().checked_sub(1) {
                    bytes[last / 2] ^= 0x01;
                    blobs.insert(key.as_str(), bytes.as_slice())?;
                    flipped = true;
                }
            }
            txn.commit()?;
            Ok(flipped)
        };
        run().map_err(|e| map_err(&self.name, "inject_corruption", e).with_key(key))
    }

    /// Send `work` to the writer thread and wait for its transaction to commit.
    async fn write(&self, op: &'static str, work: Work) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        let gone = || {
            StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                op,
                "the redb writer thread has stopped (it panicked?)",
            )
        };
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Job { work, reply })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Run `f` against a read snapshot on the calling thread. Only for lookups bounded to a few
    /// pages (small values), which cost less than a hop to the blocking pool.
    fn read_now<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, Error>,
    ) -> Result<T> {
        // The database stays held until the snapshot is dropped (see `share::DbRef`).
        let db = self.db.get()?;
        let txn = db.begin_read().map_err(|e| map_err(&self.name, op, e))?;
        f(&txn).map_err(|e| match e {
            Error::Db(e) => map_err(&self.name, op, e),
            Error::Store(e) => e,
        })
    }

    /// Run `f` against a read snapshot on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, Error> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        let name = self.name.clone();
        let res = tokio::task::spawn_blocking(move || {
            let db = db.get()?;
            let txn = db.begin_read().map_err(|e| map_err(&name, op, e))?;
            f(&txn).map_err(|e| match e {
                Error::Db(e) => map_err(&name, op, e),
                Error::Store(e) => e,
            })
        })
        .await;
        res.unwrap_or_else(|join| {
            Err(StoreError::new(
                ErrorKind::Other,
                self.name.clone(),
                op,
                format!("read task failed: {join}"),
            ))
        })
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit; joining it makes
        // sure the file is closed (and its lock released) when `drop` returns.
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Errors inside read closures: redb's, or one already in store terms (e.g. undecodable JSON).
#[derive(Debug)]
pub(crate) enum Error {
    Db(redb::Error),
    Store(StoreError),
}

impl<E: Into<redb::Error>> From<E> for Error {
    fn from(e: E) -> Self {
        Error::Db(e.into())
    }
}

/// A store error where a redb error is expected (closures in redb's terms); its message is
/// kept.
fn redb_err(e: StoreError) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e.message))
}

/// Pages in use by table `name`, in bytes (stored keys and values, metadata, unused room).
fn table_stats(txn: &redb::ReadTransaction, name: &str) -> Result<u64, Error> {
    use redb::ReadableTableMetadata;
    let stats = match name {
        "meta" => txn.open_table(META)?.stats()?,
        "runs" => txn.open_table(RUNS)?.stats()?,
        "runs_by_suite" => txn.open_table(RUNS_BY_SUITE)?.stats()?,
        "record_chunks" => txn.open_table(RECORD_CHUNKS)?.stats()?,
        _ => return Ok(0),
    };
    Ok(stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes())
}

pub(crate) fn open_error(name: &str, path: &Path, e: DatabaseError) -> StoreError {
    let file = path.display();
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::new(
            ErrorKind::Other,
            name,
            "open",
            format!(
                "database file {file} is locked: another process holds it and does not let go \
                 (an older benchfleet, or a program that is not benchfleet); stop it or point this store at another file"
            ),
        ),
        DatabaseError::UpgradeRequired(v) => StoreError::new(
            ErrorKind::Other,
            name,
            "open",
            format!(
                "database file {file} uses redb file format {v}, which this build cannot read; upgrade benchfleet"
            ),
        ),
        DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            not_a_database(name, path, io.to_string())
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
            not_a_database(name, path, msg)
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) => {
            let mut err = StoreError::io(name, "open", io);
            err.message = format!("cannot open database file {file}: {}", err.message);
            err
        }
        other => StoreError::new(
            ErrorKind::Other,
            name,
            "open",
            format!("cannot open database file {file}: {other}"),
        )
        .with_source(other),
    }
}

fn not_a_database(name: &str, path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        name,
        "open",
        format!(
            "{} is not a readable redb database (corrupt, truncated, or another kind of file: {why}); \
             move it aside and restore a backup, or point the store at a new file",
            path.display()
        ),
    )
}

/// A redb error during `op`, in store terms.
pub(crate) fn map_err(name: &str, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(io) => StoreError::io(name, op, io),
        redb::Error::Corrupted(msg) => StoreError::new(
            ErrorKind::Corrupt,
            name,
            op,
            format!("the database is corrupt ({msg}); restore a backup or rebuild it"),
        ),
        other => StoreError::new(ErrorKind::Other, name, op, other.to_string()).with_source(other),
    }
}

#[cfg(test)]
mod tests;
