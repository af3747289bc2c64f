//! One database file shared by several processes, one at a time.
//!
//! redb lets one process open a file (it takes an exclusive `flock`). So that `history`, `show`
//! or a second `run` work while a `run` writes to the same store, the file is held the way
//! SQLite holds its lock, only while it is in use by someone:
//! - A process that finds the file held announces that it waits, with a file of its own in
//!   `<db>.waiting/` (named `<pid>-<n>`), and tries again every few milliseconds.
//! - The holder watches that directory (one `readdir` every [`WATCH_EVERY`]). When another
//!   process waits, it closes the database between two transactions, which releases the lock;
//!   its next operation opens the file again (waiting its turn the same way).
//! - Nothing is lost: a transaction in flight finishes before the file is closed, and everything
//!   a process holds in memory (the writer's queue) is written once it has the file again. A
//!   waiter that died (SIGKILL) leaves a file whose process is gone: it is removed, not obeyed. A
//!   holder that died released its lock with its process; redb repairs the file on the next open.
//! - A waiter gives up with an error after `RedbOptions::wait_for_file` (a holder of an older
//!   version never lets go), and says that it waits after [`SAY_AFTER`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use benchfleet_store::StoreError;
use redb::{Database, DatabaseError};

use crate::RedbOptions;

/// How often a holder looks for waiters.
const WATCH_EVERY: Duration = Duration::from_millis(20);
/// When a waiter says (through `tracing`) that it waits.
const SAY_AFTER: Duration = Duration::from_secs(1);
/// How long a store about to open the file lets stores that already wait go first.
const LET_FIRST: Duration = Duration::from_millis(100);

/// Distinguishes the waiting files of several stores of one process.
static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);

/// What runs on a database each time it is opened (layout checks and upgrades).
pub(crate) type Prepare = dyn Fn(&mut Database) -> Result<(), StoreError> + Send + Sync;

/// The database of a store: open while this store uses it and nobody else waits for it.
pub(crate) struct Slot {
    db: RwLock<Option<Database>>,
    path: PathBuf,
    name: String,
    options: RedbOptions,
    prepare: Box<Prepare>,
    /// `<db>.waiting/`: one file per waiting store.
    waiting: PathBuf,
    /// This store's file name in `waiting`.
    me: String,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("path", &self.path)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// The open database, held open as long as this lives. Keep it for the whole transaction begun
/// on it: closing a redb database closes its file, and a snapshot still reading from it would
/// fail. (Handing over waits for every `DbRef` to be dropped.) Never take a second one in the
/// same thread while holding one: a waiting hand-over would block it.
pub(crate) struct DbRef<'a>(RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for DbRef<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.0
            .as_ref()
            .expect("a DbRef is only made of an open database")
    }
}

impl Slot {
    /// Open the database at `path` (waiting while another process holds it), with `prepare`
    /// run on every open, and start watching for waiters.
    pub(crate) fn open(
        path: PathBuf,
        name: String,
        options: RedbOptions,
        prepare: Box<Prepare>,
    ) -> Result<Arc<Slot>, StoreError> {
        let waiting = {
            let mut file = path.file_name().unwrap_or_default().to_os_string();
            file.push(".waiting");
            path.with_file_name(file)
        };
        let me = format!(
            "{}-{}",
            std::process::id(),
            NEXT_SLOT.fetch_add(1, Ordering::Relaxed)
        );
        let slot = Arc::new(Slot {
            db: RwLock::new(None),
            path,
            name,
            options,
            prepare,
            waiting,
            me,
        });
        *slot.write_lock() = Some(slot.open_waiting()?);
        let weak = Arc::downgrade(&slot);
        std::thread::Builder::new()
            .name("benchfleet-redb-share".into())
            .spawn(move || watch(&weak))
            .map_err(|e| StoreError::io(slot.name.clone(), "start watcher thread", e))?;
        Ok(slot)
    }

    /// The open database, opening it again (waiting its turn) if it was handed over.
    pub(crate) fn get(&self) -> Result<DbRef<'_>, StoreError> {
        loop {
            let db = self
                .db
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if db.is_some() {
                return Ok(DbRef(db));
            }
            drop(db);
            let mut db = self.write_lock();
            if db.is_none() {
                *db = Some(self.open_waiting()?);
            }
        }
    }

    /// The database for exclusive use (compaction), opened if it was handed over.
    pub(crate) fn get_mut(&self) -> Result<RwLockWriteGuard<'_, Option<Database>>, StoreError> {
        let mut db = self.write_lock();
        if db.is_none() {
            *db = Some(self.open_waiting()?);
        }
        Ok(db)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Option<Database>> {
        self.db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open the file, waiting (announced in `waiting/`) while another process holds it.
    fn open_waiting(&self) -> Result<Database, StoreError> {
        let started = Instant::now();
        let mut said = false;
        let mut announced = false;
        let mut pause = Duration::from_millis(1);
        let res = loop {
            // A store that waited announced it: let it go first (it withdraws its file once it
            // has the database), within reason.
            if started.elapsed() < LET_FIRST && self.others_wait() {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            match redb::Builder::new()
                .set_cache_size(self.options.cache_bytes)
                .create(&self.path)
            {
                Ok(mut db) => break (self.prepare)(&mut db).map(|()| db),
                Err(DatabaseError::DatabaseAlreadyOpen)
                    if started.elapsed() < self.options.wait_for_file =>
                {
                    if !announced {
                        announced = std::fs::create_dir_all(&self.waiting)
                            .and_then(|()| std::fs::write(self.waiting.join(&self.me), b""))
                            .is_ok();
                    }
                    if !said && started.elapsed() >= SAY_AFTER {
                        said = true;
                        tracing::warn!(
                            "waiting for {}: another benchfleet process is using it",
                            self.path.display()
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => break Err(crate::open_error(&self.name, &self.path, e)),
            }
        };
        if announced {
            let _ = std::fs::remove_file(self.waiting.join(&self.me));
        }
        res
    }

    /// Whether a live store other than this one waits for the file. Files of processes that
    /// are gone are removed.
    fn others_wait(&self) -> bool {
        let Ok(dir) = std::fs::read_dir(&self.waiting) else {
            return false;
        };
        let mut wait = false;
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == self.me {
                continue;
            }
            if alive(name) {
                wait = true;
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        wait
    }

    /// Whether this store has the file open now.
    fn holds(&self) -> bool {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Close the database (after the transactions in flight) so that a waiter can open it.
    fn hand_over(&self) {
        *self.write_lock() = None;
    }
}

/// Whether the process of waiting file `name` (`<pid>-<n>`) is alive. Where that cannot be
/// told (no `/proc`), every waiter counts as alive.
fn alive(name: &str) -> bool {
    let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// The holder's side: hand the file over whenever another store waits. Ends with the store.
fn watch(slot: &Weak<Slot>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(slot) = slot.upgrade() else { return };
        if slot.holds() && slot.others_wait() {
            slot.hand_over();
            // Give the waiter a moment to take the file before this store may take it back.
            std::thread::sleep(WATCH_EVERY);
        }
    }
}
