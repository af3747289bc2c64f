//! Local-disk blob store plugin: one file per blob under a root directory, crash-safe writes,
//! keys that cannot escape the root.
//!
//! - **Layout.** A [`BlobKey`] `a/b/c` is the file `<root>/a/b/c`. Content keys are already
//!   sharded in two levels by [`benchfleet_store::content::key_for`] (`records/ab/cd/abcd…`), so
//!   no directory grows unboundedly.
//! - **Atomic, durable put-if-absent.** The bytes go to a temporary file in the target's
//!   directory (created with `O_EXCL`), which is fsynced and then *hard-linked* to the final name.
//!   `link(2)` fails if the name exists, so of concurrent writers of one key exactly one creates
//!   it and the others get [`PutOutcome::AlreadyExists`]; nobody ever sees a partial blob. The
//!   directory is fsynced before success is reported (and so is each directory this store
//!   created on the way). Temporary names contain `~`, which no key can, so `list` never
//!   reports them.
//! - **Defence in depth.** Keys are validated by [`BlobKey`]; [`resolve`] re-checks lexically
//!   that the resulting path stays inside the root and refuses otherwise
//!   ([`ErrorKind::InvalidKey`]). `list` never follows symbolic links.
//! - All blocking I/O runs on tokio's blocking pool.
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
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
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
        let res = tokio::task::spawn_blocking(move || f(&inner)).await;
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

/// Removes a temporary file unless disarmed (on every error path).
struct TempGuard<'a>(Option<&'a Path>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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

/// Write one blob (without the final directory fsync, which the caller does once per directory).
fn put_file(inner: &Inner, path: &Path, bytes: &[u8]) -> io::Result<PutOutcome> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        // Cheap early exit; the link below is what decides atomically.
        return if meta.is_file() {
            Ok(PutOutcome::AlreadyExists)
        } else {
            Err(prefix_conflict(path))
        };
    }
    let dir = path.parent().unwrap_or(&inner.root);
    create_dirs(&inner.root, dir, inner.options.fsync)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(
        ".{file_name}.~tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let _guard = TempGuard(Some(&tmp));
    f.write_all(bytes)?;
    if inner.options.fsync {
        f.sync_data()?;
    }
    drop(f);
    match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(PutOutcome::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
                Ok(PutOutcome::AlreadyExists)
            } else {
                Err(prefix_conflict(path))
            }
        }
        Err(e) => Err(e),
    }
    // `_guard` unlinks the temporary name; the directory fsync that follows covers both the new
    // link and the unlink.
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
            let outcome = put_file(inner, &path, &bytes)?;
            if outcome == PutOutcome::Created && inner.options.fsync {
                fsync_dir(path.parent().unwrap_or(&inner.root))?;
            }
            Ok(outcome)
        })
        .await
    }

    /// Writes every blob, then fsyncs each touched directory once: one directory fsync per
    /// shard instead of one per blob. Not a transaction: on error, earlier blobs stay written
    /// (they are immutable and content-addressed, so that is harmless).
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        let mut paths = Vec::with_capacity(items.len());
        for (k, _) in &items {
            paths.push(self.path_of(k)?);
        }
        let name = self.inner.name.clone();
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut dirs = BTreeSet::new();
            let mut out = Vec::with_capacity(items.len());
            for ((key, bytes), path) in items.iter().zip(&paths) {
                let outcome = put_file(&inner, path, bytes)
                    .map_err(|e| StoreError::io(name.clone(), "put_many", e).with_key(key))?;
                if outcome == PutOutcome::Created {
                    dirs.insert(path.parent().unwrap_or(&inner.root).to_path_buf());
                }
                out.push(outcome);
            }
            if inner.options.fsync {
                for d in &dirs {
                    fsync_dir(d).map_err(|e| {
                        StoreError::io(name.clone(), "put_many", e).with_key(d.display())
                    })?;
                }
            }
            Ok(out)
        })
        .await;
        res.unwrap_or_else(|join| {
            Err(StoreError::new(
                ErrorKind::Other,
                self.inner.name.clone(),
                "put_many",
                format!("blocking I/O task failed: {join}"),
            ))
        })
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
