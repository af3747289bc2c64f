//! Local-disk blob store plugin: one file per blob under a root directory, crash-safe writes,
//! keys that cannot escape the root.
//!
//! - **Layout.** A [`BlobKey`] `a/b/c` is the file `<root>/a/b/c`. Content keys are already
//!   sharded in two levels by [`benchfleet_store::content::key_for`] (`records/ab/cd/abcd…`), so
//!   no directory grows unboundedly.
//! - **Atomic, durable put-if-absent.** The bytes go to a temporary file in the target's
//!   directory (created with `O_EXCL`), which is fdatasynced and then given its final name with
//!   `renameat2(RENAME_NOREPLACE)` (one syscall; where the file system refuses it, `link(2)` and
//!   an unlink of the temporary name). Both fail if the name exists, so of concurrent writers of
//!   one key exactly one creates it and the others get [`PutOutcome::AlreadyExists`]; nobody
//!   ever sees a partial blob. The directory is fsynced before success is reported (and so is
//!   each directory this store created on the way). Temporary names contain `~`, which no key
//!   can, so `list` never reports them.
//! - **Batches** (`put_many`, what the runner's batch writer uses) make the same guarantee with
//!   two `syncfs(2)` flushes per batch instead of one fsync per blob: all temporary files are
//!   written, one flush makes their data durable, they are published, a second flush makes the
//!   names durable. See `put_batch` for why that is as crash-safe. Off Linux, per-file fsyncs.
//! - **Streaming puts** (`put_stream`) write chunk by chunk into the temporary file.
//! - **Defence in depth.** Keys are validated by [`BlobKey`]; [`resolve`] re-checks lexically
//!   that the resulting path stays inside the root and refuses otherwise
//!   ([`ErrorKind::InvalidKey`]). `list` never follows symbolic links.
//! - Blocking I/O runs in place on a multi-thread tokio runtime (`block_in_place`, which hands
//!   the worker's other tasks to another thread) and on the blocking pool otherwise.
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace; it knows nothing of catalogs, tiers or the CLI.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use benchfleet_store::{BlobKey, BlobStore, PutOutcome};
//! let dir = tempfile::tempdir().unwrap();
//! let store = benchfleet_fs::FsStore::open(dir.path().join("blobs")).unwrap();
//! let key = BlobKey::new("records/ab/cd/abcd").unwrap();
//! assert_eq!(store.put_if_absent(&key, "hello".into()).await.unwrap(), PutOutcome::Created);
//! assert_eq!(store.get_range(&key, 1..3).await.unwrap(), "el");
//! # }
//! ```

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, ByteStream, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

/// How an [`FsStore`] makes writes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsOptions {
    /// fsync each blob's data and its directory before a put reports success (default `true`).
    /// Turning it off keeps writes atomic (readers never see partial blobs) but a power loss may
    /// lose recently written blobs. Only for scratch stores and benchmarks.
    pub fsync: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions { fsync: true }
    }
}

/// A [`BlobStore`] of files under a root directory. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct FsStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    name: String,
    options: FsOptions,
    /// Set once `renameat2(RENAME_NOREPLACE)` was refused by the file system; puts then use
    /// link + unlink.
    no_renameat2: AtomicBool,
}

impl FsStore {
    /// Open (creating it and its parents if needed) a store rooted at `root`, fsyncing writes.
    pub fn open(root: impl AsRef<Path>) -> Result<FsStore> {
        Self::open_with(root, FsOptions::default())
    }

    /// [`FsStore::open`] with explicit [`FsOptions`].
    pub fn open_with(root: impl AsRef<Path>, options: FsOptions) -> Result<FsStore> {
        let given = root.as_ref();
        let err = |op, e: io::Error| {
            let mut e = StoreError::io(format!("fs:{}", given.display()), op, e);
            e.message = format!("{}; check that the directory is writable", e.message);
            e
        };
        fs::create_dir_all(given).map_err(|e| err("create root directory", e))?;
        let root = fs::canonicalize(given).map_err(|e| err("resolve root directory", e))?;
        if !root.is_dir() {
            return Err(StoreError::new(
                ErrorKind::Other,
                format!("fs:{}", given.display()),
                "open",
                "the store root is not a directory",
            ));
        }
        let name = format!("fs:{}", root.display());
        Ok(FsStore {
            inner: Arc::new(Inner {
                root,
                name,
                options,
                no_renameat2: AtomicBool::new(false),
            }),
        })
    }

    /// The (canonical) root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds (or would hold) `key`. Useful for fault injection in tests and for
    /// people inspecting a store.
    pub fn path_of(&self, key: &BlobKey) -> Result<PathBuf> {
        resolve(&self.inner.root, key.as_str()).map_err(|e| self.named(e))
    }

    fn named(&self, mut e: StoreError) -> StoreError {
        e.backend = self.inner.name.clone();
        e
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: Option<&BlobKey>,
        f: impl FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        let res = run_io(move || f(&inner)).await;
        let with_key = |e: StoreError| match key {
            Some(k) => e.with_key(k),
            None => e,
        };
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(with_key(StoreError::io(self.inner.name.clone(), op, e))),
            Err(join) => Err(with_key(StoreError::new(
                ErrorKind::Other,
                self.inner.name.clone(),
                op,
                format!("blocking I/O task failed: {join}"),
            ))),
        }
    }
}

/// Run blocking file I/O from async code without stalling the runtime.
///
/// On a multi-thread tokio runtime the call runs in place ([`tokio::task::block_in_place`]:
/// the worker hands its other tasks to another thread meanwhile), which saves the two thread
/// hand-offs of the blocking pool — most of the cost of reading a 1 KiB blob. Elsewhere (a
/// current-thread runtime, no runtime) it goes to the blocking pool as before.
async fn run_io<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, tokio::task::JoinError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(f))
        }
        _ => tokio::task::spawn_blocking(f).await,
    }
}

/// The path of `key` under `root`, checked lexically: the key must be a non-empty relative path
/// of plain segments (no `..`, `.`, root or drive prefix) and the joined path must lie inside
/// `root`. [`ErrorKind::InvalidKey`] otherwise.
///
/// [`BlobKey::new`] already refuses such keys; this is the second, independent check done
/// before any file is touched.
pub fn resolve(root: &Path, key: &str) -> Result<PathBuf> {
    let refuse = |why: &str| {
        Err(StoreError::new(
            ErrorKind::InvalidKey,
            format!("fs:{}", root.display()),
            "resolve key",
            format!("{why}; the key would escape the store root, refusing it"),
        )
        .with_key(key))
    };
    if key.is_empty() {
        return refuse("empty key");
    }
    if key.contains('\0') || key.contains('\\') {
        return refuse("NUL or backslash in key");
    }
    for seg in key.split('/') {
        match seg {
            "" => return refuse("empty path segment"),
            "." => return refuse("`.` segment"),
            ".." => return refuse("`..` segment"),
            _ => {}
        }
    }
    let rel = Path::new(key);
    for c in rel.components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return refuse("`..` segment"),
            Component::CurDir => return refuse("`.` segment"),
            Component::RootDir | Component::Prefix(_) => return refuse("absolute path"),
        }
    }
    let path = root.join(rel);
    if !path.starts_with(root) || path == root {
        return refuse("path outside the root");
    }
    Ok(path)
}

/// Whether a file name could be a key segment (temporary files cannot).
fn is_key_segment(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file that is removed on drop unless it was published (every error path cleans up).
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flush every dirty page and metadata change of the file system holding `root` (`syncfs(2)`),
/// reporting write-back errors. One flush for a whole batch instead of one fsync per file.
#[cfg(target_os = "linux")]
fn sync_filesystem(root: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(root)?;
    // SAFETY: `dir` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Create `dir` (inside `root`) and any missing parents; with `fsync`, fsync the parent of each
/// directory created so the new entries survive a crash.
fn create_dirs(root: &Path, dir: &Path, fsync: bool) -> io::Result<()> {
    if dir == root || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(root);
    create_dirs(root, parent, fsync)?;
    match fs::create_dir(dir) {
        Ok(()) => {
            if fsync {
                fsync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(prefix_conflict(dir)),
        Err(e) => Err(e),
    }
}

/// First half of a put: the bytes in a fresh temporary file next to `path` (created with
/// `O_EXCL`), fdatasynced when `sync_data`. `None` if a blob already exists at `path` (a cheap
/// early exit; [`publish`] is what decides atomically).
fn write_temp(
    inner: &Inner,
    path: &Path,
    bytes: &[u8],
    sync_dirs: bool,
    sync_data: bool,
) -> io::Result<Option<TempFile>> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        return if meta.is_file() {
            Ok(None)
        } else {
            Err(prefix_conflict(path))
        };
    }
    let dir = path.parent().unwrap_or(&inner.root);
    create_dirs(&inner.root, dir, sync_dirs)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = TempFile {
        path: dir.join(format!(
            ".{file_name}.~tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        )),
        armed: true,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.path)?;
    f.write_all(bytes)?;
    if sync_data {
        f.sync_data()?;
    }
    Ok(Some(tmp))
}

/// Second half of a put: give the temporary file its final name unless a blob exists there,
/// atomically. On Linux one `renameat2(RENAME_NOREPLACE)`; where the file system does not
/// support it (or elsewhere), `link(2)` (which fails if the name exists) and an unlink of the
/// temporary name. Either way, of concurrent writers of one key exactly one creates it.
fn publish(inner: &Inner, mut tmp: TempFile, path: &Path) -> io::Result<PutOutcome> {
    let exists = |path: &Path| {
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            Ok(PutOutcome::AlreadyExists)
        } else {
            Err(prefix_conflict(path))
        }
    };
    #[cfg(target_os = "linux")]
    if !inner.no_renameat2.load(Ordering::Relaxed) {
        match rename_noreplace(&tmp.path, path) {
            Ok(()) => {
                tmp.armed = false;
                return Ok(PutOutcome::Created);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return exists(path),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                inner.no_renameat2.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    let _ = inner;
    let outcome = match fs::hard_link(&tmp.path, path) {
        Ok(()) => PutOutcome::Created,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => exists(path)?,
        Err(e) => return Err(e),
    };
    // Dropping `tmp` unlinks the temporary name; the directory fsync that follows covers both
    // the new link and the unlink.
    drop(tmp);
    Ok(outcome)
}

#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD with absolute paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Write one blob durably: temporary file, fdatasync, atomic no-replace rename, fsync of the
/// directory.
fn put_file(inner: &Inner, path: &Path, bytes: &[u8]) -> io::Result<PutOutcome> {
    let fsync = inner.options.fsync;
    let Some(tmp) = write_temp(inner, path, bytes, fsync, fsync)? else {
        return Ok(PutOutcome::AlreadyExists);
    };
    let outcome = publish(inner, tmp, path)?;
    if outcome == PutOutcome::Created && fsync {
        fsync_dir(path.parent().unwrap_or(&inner.root))?;
    }
    Ok(outcome)
}

/// Write a batch durably with two file-system flushes in all instead of one fsync per blob:
///
/// 1. every blob goes to its temporary file, not synced;
/// 2. one `syncfs(2)` makes all their data durable;
/// 3. each is published under its final name ([`publish`]: atomic, no replace);
/// 4. one more `syncfs(2)` makes the new names (and new shard directories) durable before
///    success is reported.
///
/// Crash safety is the same as one blob at a time: a final name is only ever created (step 3)
/// after the data it names is on disk (step 2), so a crash at any point leaves each key either
/// absent or complete, never partial; only temporary files can be lost or left (they are not
/// keys: `list` skips them). Nothing is reported written before step 4. Off Linux, step 2 is an
/// fdatasync per file and step 4 an fsync per touched directory.
///
/// Costs to know: `syncfs` flushes every dirty page of the whole file system, other programs'
/// included, so on a file system busy with other writers one flush takes longer (it is still
/// two flushes per batch instead of one per blob). Linux before 5.8 does not report write-back
/// errors from `syncfs`; there a failing disk could go unnoticed until `tier verify`.
fn put_batch(
    inner: &Inner,
    items: &[(BlobKey, Bytes)],
    paths: &[PathBuf],
) -> Result<Vec<PutOutcome>> {
    let name = &inner.name;
    let fsync = inner.options.fsync;
    let per_file = fsync && !cfg!(target_os = "linux");
    let err = |key: &dyn std::fmt::Display, e: io::Error| {
        StoreError::io(name.clone(), "put_many", e).with_key(key)
    };
    let mut staged = Vec::with_capacity(items.len());
    for (i, ((key, bytes), path)) in items.iter().zip(paths).enumerate() {
        if let Some(tmp) =
            write_temp(inner, path, bytes, per_file, per_file).map_err(|e| err(key, e))?
        {
            staged.push((i, tmp));
        }
    }
    if fsync && !per_file && !staged.is_empty() {
        sync_root(inner).map_err(|e| err(&inner.root.display(), e))?;
    }
    let mut out = vec![PutOutcome::AlreadyExists; items.len()];
    let mut dirs = BTreeSet::new();
    for (i, tmp) in staged {
        let outcome = publish(inner, tmp, &paths[i]).map_err(|e| err(&items[i].0, e))?;
        if outcome == PutOutcome::Created {
            dirs.insert(paths[i].parent().unwrap_or(&inner.root));
        }
        out[i] = outcome;
    }
    if fsync && !dirs.is_empty() {
        if per_file {
            for d in &dirs {
                fsync_dir(d).map_err(|e| err(&d.display(), e))?;
            }
        } else {
            sync_root(inner).map_err(|e| err(&inner.root.display(), e))?;
        }
    }
    Ok(out)
}

fn sync_root(inner: &Inner) -> io::Result<()> {
    sync_filesystem(&inner.root)
}

/// Off Linux there is no `syncfs`; [`put_batch`] syncs file by file there and never calls this.
#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_root: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// On disk a key cannot be both a blob and the directory of longer keys (`a` and `a/b`).
fn prefix_conflict(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is both a blob and a directory of longer keys; on the fs backend no key may be a \
         `/`-prefix of another (content keys never are)",
        path.display()
    ))
}

fn not_a_blob(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory
    )
}

fn list_dir(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<BlobMeta>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if not_a_blob(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_key_segment(&name) {
            continue;
        }
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                list_dir(&entry.path(), &key, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) {
            let size = entry.metadata()?.len();
            if let Ok(key) = BlobKey::new(key) {
                out.push(BlobMeta { key, size });
            }
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for FsStore {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_put_if_absent: true,
            range_reads: true,
            list: true,
            delete: true,
            batch_put: false,
            max_blob_size: None,
        }
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        let path = self.path_of(key)?;
        self.blocking("put_if_absent", Some(key), move |inner| {
            put_file(inner, &path, &bytes)
        })
        .await
    }

    /// Two file-system flushes per batch instead of one fsync per blob (see [`put_batch`] for
    /// why that is as crash-safe). Not a transaction: on error, earlier blobs stay written (they
    /// are immutable and content-addressed, so that is harmless).
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        let mut paths = Vec::with_capacity(items.len());
        for (k, _) in &items {
            paths.push(self.path_of(k)?);
        }
        let inner = self.inner.clone();
        run_io(move || put_batch(&inner, &items, &paths))
            .await
            .unwrap_or_else(|join| {
                Err(StoreError::new(
                    ErrorKind::Other,
                    self.inner.name.clone(),
                    "put_many",
                    format!("blocking I/O task failed: {join}"),
                ))
            })
    }

    /// Chunk by chunk into a temporary file (memory: one chunk), then fdatasync, the atomic
    /// no-replace publish and the directory fsync of [`BlobStore::put_if_absent`]. If the stream
    /// fails, the temporary file is removed and nothing is stored.
    async fn put_stream(&self, key: &BlobKey, mut stream: ByteStream) -> Result<PutOutcome> {
        use futures::StreamExt as _;
        let path = self.path_of(key)?;
        let p = path.clone();
        let staged = self
            .blocking("put_stream", Some(key), move |inner| {
                write_temp(inner, &p, &[], inner.options.fsync, false)
            })
            .await?;
        let Some(tmp) = staged else {
            return Ok(PutOutcome::AlreadyExists);
        };
        let tmp = Arc::new(tmp);
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| StoreError::io(self.name(), "put_stream", e).with_key(key))?;
            let t = tmp.clone();
            self.blocking("put_stream", Some(key), move |_| {
                OpenOptions::new()
                    .append(true)
                    .open(&t.path)?
                    .write_all(&chunk)
            })
            .await?;
        }
        let tmp = Arc::into_inner(tmp).ok_or_else(|| {
            StoreError::new(
                ErrorKind::Other,
                self.name(),
                "put_stream",
                "temporary file still shared",
            )
            .with_key(key)
        })?;
        self.blocking("put_stream", Some(key), move |inner| {
            if inner.options.fsync {
                File::open(&tmp.path)?.sync_data()?;
            }
            let outcome = publish(inner, tmp, &path)?;
            if outcome == PutOutcome::Created && inner.options.fsync {
                fsync_dir(path.parent().unwrap_or(&inner.root))?;
            }
            Ok(outcome)
        })
        .await
    }

    fn streams_puts(&self) -> bool {
        true
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let path = self.path_of(key)?;
        let res = self
            .blocking("get", Some(key), move |_| fs::read(&path).map(Bytes::from))
            .await;
        res.map_err(|e| {
            if e.kind == ErrorKind::Other && is_dir_error(&e) {
                not_found(self, key)
            } else {
                e
            }
        })
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let path = self.path_of(key)?;
        let outcome = self
            .blocking("get_range", Some(key), move |_| {
                let mut f = File::open(&path)?;
                let len = f.metadata()?.len();
                if range.start > len || range.start > range.end {
                    return Ok(Err(len));
                }
                let end = range.end.min(len);
                let mut buf = vec![0u8; (end - range.start) as usize];
                f.seek(SeekFrom::Start(range.start))?;
                f.read_exact(&mut buf)?;
                Ok(Ok(Bytes::from(buf)))
            })
            .await
            .map_err(|e| {
                if e.kind == ErrorKind::Other && is_dir_error(&e) {
                    not_found(self, key)
                } else {
                    e
                }
            })?;
        outcome.map_err(|len| {
            StoreError::new(
                ErrorKind::Other,
                self.name(),
                "get_range",
                format!(
                    "range {}..{} outside blob of {len} bytes",
                    range.start, range.end
                ),
            )
            .with_key(key)
        })
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        let path = self.path_of(key)?;
        let k = key.clone();
        self.blocking("head", Some(key), move |_| {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                    key: k,
                    size: m.len(),
                })),
                Ok(_) => Ok(None),
                Err(e) if not_a_blob(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let path = self.path_of(key)?;
        self.blocking("delete", Some(key), move |inner| {
            match fs::remove_file(&path) {
                Ok(()) => {
                    if inner.options.fsync {
                        fsync_dir(path.parent().unwrap_or(&inner.root))?;
                    }
                    Ok(())
                }
                Err(e) if not_a_blob(&e) => Ok(()),
                Err(e) => Err(e),
            }
            // Empty shard directories are kept: removing one would race with a concurrent put
            // into it.
        })
        .await
    }

    /// Unlinks every file, then makes the removals durable with one `syncfs(2)` (off Linux, one
    /// fsync per directory touched) instead of one directory fsync per blob.
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        let paths = keys
            .iter()
            .map(|k| self.path_of(k))
            .collect::<Result<Vec<_>>>()?;
        self.blocking("delete_many", None, move |inner| {
            let mut dirs = BTreeSet::new();
            for (key, path) in keys.iter().zip(&paths) {
                match fs::remove_file(path) {
                    Ok(()) => {
                        dirs.insert(path.parent().unwrap_or(&inner.root));
                    }
                    Err(e) if not_a_blob(&e) => {}
                    Err(e) => {
                        return Err(io::Error::new(e.kind(), format!("deleting {key}: {e}")));
                    }
                }
            }
            if inner.options.fsync && !dirs.is_empty() {
                if cfg!(target_os = "linux") {
                    sync_root(inner)?;
                } else {
                    for d in dirs {
                        fsync_dir(d)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        // Start from the deepest directory the prefix names completely.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        if !dir_part.is_empty() && BlobKey::new(dir_part).is_err() {
            return Ok(Vec::new()); // no key can start with this prefix
        }
        let start = if dir_part.is_empty() {
            self.inner.root.clone()
        } else {
            resolve(&self.inner.root, dir_part)?
        };
        let (dir_part, prefix) = (dir_part.to_owned(), prefix.to_owned());
        self.blocking("list", None, move |_| {
            let mut out = Vec::new();
            list_dir(&start, &dir_part, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

fn is_dir_error(e: &StoreError) -> bool {
    e.source
        .as_ref()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .is_some_and(not_a_blob)
}

fn not_found(store: &FsStore, key: &BlobKey) -> StoreError {
    StoreError::not_found(store.name(), "get", key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_escapes() {
        let root = Path::new("/srv/store");
        for bad in [
            "",
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "./a",
            "a/./b",
            "a\\..\\b",
            "a\0b",
            "..",
        ] {
            let err = resolve(root, bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidKey, "{bad:?} was accepted");
            assert!(err.message.contains("escape"), "{bad:?}: {err}");
        }
        for (good, want) in [
            ("a", "/srv/store/a"),
            ("records/ab/cd/x.y-z_1", "/srv/store/records/ab/cd/x.y-z_1"),
        ] {
            assert_eq!(resolve(root, good).unwrap(), Path::new(want), "{good}");
        }
    }

    #[test]
    fn temp_names_are_never_keys() {
        for (name, is_key) in [
            ("abc", true),
            (".abc.~tmp.1.2", false),
            ("a.b-c_d", true),
            (".", false),
            ("é", false),
        ] {
            assert_eq!(is_key_segment(name), is_key, "{name}");
        }
    }

    fn key(s: &str) -> BlobKey {
        BlobKey::new(s).unwrap()
    }

    /// Every file name under `dir`, recursively.
    fn all_names(dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                all_names(&e.path(), out);
            }
        }
    }

    #[tokio::test]
    async fn no_temporary_files_are_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store
            .put_if_absent(&key("a/b/c"), "x".into())
            .await
            .unwrap();
        store
            .put_if_absent(&key("a/b/c"), "y".into())
            .await
            .unwrap();
        store
            .put_many(vec![
                (key("m/1"), "1".into()),
                (key("m/2"), "2".into()),
                (key("a/b/c"), "z".into()),
            ])
            .await
            .unwrap();
        // Failed puts clean up too: a key that is a directory of other keys, and one below a blob.
        for bad in ["a/b", "a/b/c/d"] {
            let err = store
                .put_if_absent(&key(bad), "bad".into())
                .await
                .unwrap_err();
            assert!(
                err.message.contains("both a blob and a directory"),
                "{bad}: {err}"
            );
        }
        let mut names = Vec::new();
        all_names(dir.path(), &mut names);
        assert!(
            names.iter().all(|n| is_key_segment(n)),
            "leftover files: {names:?}"
        );
        assert_eq!(names.len(), 6, "{names:?}"); // a, b, c, m, 1, 2 and nothing else
    }

    /// Both ways of publishing a blob (renameat2 where supported, link + unlink otherwise)
    /// keep put-if-absent atomic and leave no temporary files, one key or many, racing or not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_publish_paths_are_put_if_absent() {
        for link_only in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = FsStore::open(dir.path()).unwrap();
            store.inner.no_renameat2.store(link_only, Ordering::Relaxed);
            let k = key("p/q/r");
            let racers: Vec<_> = (0..8)
                .map(|i| {
                    let (store, k) = (store.clone(), k.clone());
                    tokio::spawn(
                        async move { store.put_if_absent(&k, Bytes::from(vec![i; 10])).await },
                    )
                })
                .collect();
            let mut created = 0;
            for r in racers {
                if r.await.unwrap().unwrap() == PutOutcome::Created {
                    created += 1;
                }
            }
            assert_eq!(created, 1, "link_only={link_only}");
            let batch = store
                .put_many(vec![
                    (key("p/q/r"), "x".into()),
                    (key("p/q/s"), "s".into()),
                    (key("p/q/s"), "t".into()),
                ])
                .await
                .unwrap();
            use PutOutcome::*;
            assert_eq!(
                batch,
                [AlreadyExists, Created, AlreadyExists],
                "link_only={link_only}"
            );
            assert_eq!(store.get(&key("p/q/s")).await.unwrap(), "s");
            let mut names = Vec::new();
            all_names(dir.path(), &mut names);
            assert_eq!(names.len(), 4, "link_only={link_only}: {names:?}"); // p q r s
        }
    }

    /// A streamed put goes to disk chunk by chunk: while the stream is still open, the bytes
    /// already handed over are in the temporary file, not held in memory; nothing is visible
    /// under the key until the stream ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_put_is_on_disk_before_the_stream_ends() {
        const MIB: usize = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let k = key("big/out");
        // Capacity 1: once chunk n+2 is accepted, the store has taken chunk n+1, so it has
        // finished writing chunk n.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(1);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let put = tokio::spawn({
            let (store, k) = (store.clone(), k.clone());
            async move { store.put_stream(&k, Box::pin(stream)).await }
        });
        for i in 0..42u8 {
            tx.send(Ok(Bytes::from(vec![i; MIB]))).await.unwrap();
        }
        let on_disk: u64 = fs::read_dir(dir.path().join("big"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().contains("~tmp"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(
            on_disk >= 40 * MIB as u64,
            "{on_disk} bytes in the temporary file"
        );
        assert_eq!(store.head(&k).await.unwrap(), None);
        drop(tx);
        assert_eq!(put.await.unwrap().unwrap(), PutOutcome::Created);
        let got = store.get(&k).await.unwrap();
        assert_eq!(got.len(), 42 * MIB);
        assert!(
            got.chunks(MIB)
                .enumerate()
                .all(|(i, c)| c.iter().all(|&b| b == i as u8))
        );
    }

    #[tokio::test]
    async fn list_does_not_follow_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.put_if_absent(&key("in/a"), "a".into()).await.unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("in/link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("in/file"))
            .unwrap();
        let listed: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key.to_string())
            .collect();
        assert_eq!(listed, ["in/a"]);
    }

    #[test]
    fn open_refuses_a_file_as_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = FsStore::open(&file).unwrap_err();
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }
}
