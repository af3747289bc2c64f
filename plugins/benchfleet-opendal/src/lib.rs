//! OpenDAL plugin for benchfleet: a [`BlobStore`] over any [OpenDAL] service, chosen by scheme
//! and options, and **capability-checked** when it is built.
//!
//! A blob store must be able to read (whole and by range), write, stat, delete, list, and write
//! conditionally (`write_with_if_not_exists`, for put-if-absent). [`OpendalStore::from_scheme`]
//! refuses a service that lacks one of these with a message naming the missing OpenDAL
//! capability, instead of failing later in the middle of a migration.
//! [`OpendalStore::from_operator`] accepts a custom [`Requirements`] for tiers that need less.
//!
//! Only the services enabled as features are built (`services-memory` and `services-fs` by
//! default, to keep the build light); add `opendal/services-…` features to enable others.
//!
//! Notes: listing stats every listed file (some services, such as `fs`, do not report sizes in
//! listings). On `fs`, put-if-absent is an exclusive create (atomic), unless `atomic_write_dir` is
//! set, in which case OpenDAL checks and then renames, which is not atomic: the store then
//! reports [`Capability::atomic_put_if_absent`] as `false`.
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace.
//!
//! ```
//! # async fn demo() -> Result<(), benchfleet_store::StoreError> {
//! use benchfleet_opendal::OpendalStore;
//! use benchfleet_store::{BlobKey, BlobStore, PutOutcome};
//! let store = OpendalStore::from_scheme("memory", Default::default())?;
//! let key = BlobKey::new("records/a")?;
//! assert_eq!(store.put_if_absent(&key, "x".into()).await?, PutOutcome::Created);
//! # Ok(()) }
//! # futures::executor::block_on(demo()).unwrap();
//! ```
//!
//! [OpenDAL]: https://opendal.apache.org

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

/// What the store needs from a service. [`Requirements::default`] is everything a blob store
/// tier needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirements {
    /// `list` (tier migration, `tier gc`, `tier verify`).
    pub list: bool,
    /// `write_with_if_not_exists` (put-if-absent as a conditional write).
    pub conditional_write: bool,
    /// `delete` (migration deletes the source).
    pub delete: bool,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            list: true,
            conditional_write: true,
            delete: true,
        }
    }
}

/// The OpenDAL capabilities `req` needs that `cap` lacks, as `(capability, why)`.
pub fn missing_capabilities(
    cap: &opendal::Capability,
    req: Requirements,
) -> Vec<(&'static str, &'static str)> {
    let checks = [
        (true, cap.read, "read", "reading blobs and byte ranges"),
        (true, cap.write, "write", "storing blobs"),
        (
            true,
            cap.write_can_empty,
            "write_can_empty",
            "storing empty blobs",
        ),
        (true, cap.stat, "stat", "head and sizes"),
        (
            req.delete,
            cap.delete,
            "delete",
            "deleting blobs after migration",
        ),
        // Recursive listing needs only `list`: OpenDAL's default SimulateLayer walks the tree
        // for services without native `list_with_recursive` (fs, for one).
        (
            req.list,
            cap.list,
            "list",
            "listing blobs (migration, gc, verify)",
        ),
        (
            req.conditional_write,
            cap.write_with_if_not_exists,
            "write_with_if_not_exists",
            "put-if-absent as a conditional write",
        ),
    ];
    checks
        .into_iter()
        .filter(|(needed, has, _, _)| *needed && !*has)
        .map(|(_, _, name, why)| (name, why))
        .collect()
}

/// A [`BlobStore`] on an OpenDAL [`Operator`](opendal::Operator).
pub struct OpendalStore {
    op: opendal::Operator,
    name: String,
    atomic_create: bool,
    req: Requirements,
}

impl fmt::Debug for OpendalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Options may hold credentials: show only the name (scheme and root).
        f.debug_struct("OpendalStore")
            .field("name", &self.name)
            .field("requirements", &self.req)
            .finish_non_exhaustive()
    }
}

impl OpendalStore {
    /// Build the service `scheme` (e.g. `memory`, `fs`) from its OpenDAL `options` (e.g.
    /// `root`), and check that it can do everything a blob store needs.
    pub fn from_scheme(scheme: &str, options: HashMap<String, String>) -> Result<OpendalStore> {
        opendal::init_default_registry();
        let non_atomic = scheme == "fs" && options.contains_key("atomic_write_dir");
        let op = opendal::Operator::via_iter(scheme, options).map_err(|e| {
            let backend = format!("opendal:{scheme}");
            let msg = if e.kind() == opendal::ErrorKind::Unsupported {
                format!(
                    "OpenDAL service `{scheme}` is not available in this build ({e}); \
                     built-in services: {}",
                    built_in_services().join(", ")
                )
            } else {
                format!("cannot configure OpenDAL service `{scheme}`: {e}")
            };
            StoreError::new(ErrorKind::Other, backend, "configure", msg)
        })?;
        let mut store = Self::from_operator(op, Requirements::default())?;
        store.atomic_create &= !non_atomic;
        Ok(store)
    }

    /// Wrap an operator, checking it against `req`.
    pub fn from_operator(op: opendal::Operator, req: Requirements) -> Result<OpendalStore> {
        let info = op.info();
        let name = format!("opendal:{}:{}", info.scheme(), info.root());
        let cap = info.capability();
        let missing = missing_capabilities(&cap, req);
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|(c, why)| format!("`{c}` ({why})"))
                .collect();
            return Err(StoreError::new(
                ErrorKind::Unsupported,
                name,
                "configure",
                format!(
                    "OpenDAL service `{}` lacks {}; choose another backend for this tier",
                    info.scheme(),
                    list.join(", ")
                ),
            ));
        }
        Ok(OpendalStore {
            op,
            name,
            atomic_create: cap.write_with_if_not_exists,
            req,
        })
    }

    /// The wrapped operator.
    pub fn operator(&self) -> &opendal::Operator {
        &self.op
    }

    fn err(&self, op: &'static str, key: Option<&str>, e: opendal::Error) -> StoreError {
        let kind = match e.kind() {
            opendal::ErrorKind::NotFound => ErrorKind::NotFound,
            opendal::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ if e.is_temporary() => ErrorKind::Transient,
            _ => ErrorKind::Other,
        };
        let mut err = StoreError::new(kind, &self.name, op, e.to_string()).with_source(e);
        if let Some(k) = key {
            err = err.with_key(k);
        }
        err
    }

    fn unsupported(&self, op: &'static str, capability: &str) -> StoreError {
        StoreError::new(
            ErrorKind::Unsupported,
            &self.name,
            op,
            format!("this store was built without the `{capability}` requirement"),
        )
    }
}

/// Does `e` say the path holds no blob? Besides `NotFound`: a directory where the key would be,
/// or (on `fs`) a file where one of the key's directories would be (`ENOTDIR`).
fn absent(e: &opendal::Error) -> bool {
    if matches!(
        e.kind(),
        opendal::ErrorKind::NotFound | opendal::ErrorKind::IsADirectory
    ) {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::NotADirectory | std::io::ErrorKind::IsADirectory
            );
        }
        src = s.source();
    }
    false
}

/// Schemes of the services compiled into this build.
pub fn built_in_services() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "services-memory") {
        v.push("memory");
    }
    if cfg!(feature = "services-fs") {
        v.push("fs");
    }
    v
}

/// Can any key start with `prefix`? (Keys are `[A-Za-z0-9._-]` segments, none `.` or `..`.)
fn prefix_could_match(prefix: &str) -> bool {
    !prefix.starts_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && match prefix.rfind('/') {
            Some(i) => prefix[..i]
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
            None => true,
        }
}

#[async_trait]
impl BlobStore for OpendalStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_put_if_absent: self.atomic_create,
            range_reads: true,
            list: self.req.list,
            delete: self.req.delete,
            batch_put: false,
            max_blob_size: None,
        }
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        if self.req.conditional_write {
            return match self
                .op
                .write_with(key.as_str(), bytes)
                .if_not_exists(true)
                .await
            {
                Ok(_) => Ok(PutOutcome::Created),
                Err(e)
                    if matches!(
                        e.kind(),
                        opendal::ErrorKind::ConditionNotMatch | opendal::ErrorKind::AlreadyExists
                    ) =>
                {
                    Ok(PutOutcome::AlreadyExists)
                }
                Err(e) => Err(self.err("put_if_absent", Some(key.as_str()), e)),
            };
        }
        // Without conditional writes: check, then write (not atomic; capability says so).
        if self.head(key).await?.is_some() {
            return Ok(PutOutcome::AlreadyExists);
        }
        self.op
            .write(key.as_str(), bytes)
            .await
            .map_err(|e| self.err("put_if_absent", Some(key.as_str()), e))?;
        Ok(PutOutcome::Created)
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        // Paths ending in `/` are directories to OpenDAL; keys never end so.
        match self.op.read(key.as_str()).await {
            Ok(buf) => Ok(buf.to_bytes()),
            Err(e) if absent(&e) => Err(StoreError::not_found(&self.name, "get", key)),
            Err(e) => Err(self.err("get", Some(key.as_str()), e)),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        match self.op.stat(key.as_str()).await {
            Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                key: key.clone(),
                size: m.content_length(),
            })),
            Ok(_) => Ok(None),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(self.err("head", Some(key.as_str()), e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        if !self.req.delete {
            return Err(self.unsupported("delete", "delete"));
        }
        match self.op.delete(key.as_str()).await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(self.err("delete", Some(key.as_str()), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        if !self.req.list {
            return Err(self.unsupported("list", "list"));
        }
        if !prefix_could_match(prefix) {
            return Ok(Vec::new());
        }
        // List the enclosing directory recursively, keep the keys with the string prefix.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        let entries = match self.op.list_with(dir).recursive(true).await {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list", Some(prefix), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let Ok(key) = BlobKey::new(entry.path()) else {
                continue;
            };
            if !key.has_prefix(prefix) {
                continue;
            }
            // Listings do not always carry sizes (fs does not): ask.
            if let Some(meta) = self.head(&key).await? {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let bad = |msg: String| {
            StoreError::new(ErrorKind::Other, &self.name, "get_range", msg).with_key(key)
        };
        if range.start > range.end {
            return Err(bad(format!(
                "reversed range {}..{}",
                range.start, range.end
            )));
        }
        let size = self
            .head(key)
            .await?
            .ok_or_else(|| StoreError::not_found(&self.name, "get_range", key))?
            .size;
        if range.start > size {
            return Err(bad(format!(
                "range {}..{} outside blob of {size} bytes",
                range.start, range.end
            )));
        }
        let end = range.end.min(size);
        if range.start == end {
            return Ok(Bytes::new());
        }
        self.op
            .read_with(key.as_str())
            .range(range.start..end)
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| self.err("get_range", Some(key.as_str()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> opendal::Capability {
        opendal::Capability {
            read: true,
            write: true,
            write_can_empty: true,
            stat: true,
            delete: true,
            list: true,
            list_with_recursive: true,
            write_with_if_not_exists: true,
            ..Default::default()
        }
    }

    #[test]
    fn missing_capabilities_are_named() {
        let all = Requirements::default();
        let no_list = Requirements { list: false, ..all };
        let cases: Vec<(opendal::Capability, Requirements, Vec<&str>)> = vec![
            (full(), all, vec![]),
            (
                opendal::Capability {
                    write_with_if_not_exists: false,
                    ..full()
                },
                all,
                vec!["write_with_if_not_exists"],
            ),
            (
                opendal::Capability {
                    list: false,
                    ..full()
                },
                all,
                vec!["list"],
            ),
            (
                opendal::Capability {
                    list: false,
                    ..full()
                },
                no_list,
                vec![],
            ),
            (
                opendal::Capability {
                    read: false,
                    delete: false,
                    ..full()
                },
                all,
                vec!["read", "delete"],
            ),
            (
                opendal::Capability::default(),
                no_list,
                vec![
                    "read",
                    "write",
                    "write_can_empty",
                    "stat",
                    "delete",
                    "write_with_if_not_exists",
                ],
            ),
        ];
        for (cap, req, want) in cases {
            let got: Vec<&str> = missing_capabilities(&cap, req)
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            assert_eq!(got, want, "{req:?}");
        }
    }

    #[test]
    fn unknown_service_is_explained() {
        let err = OpendalStore::from_scheme("s3", HashMap::new()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`s3`"), "{text}");
        assert!(text.contains("memory"), "{text}");
    }

    #[test]
    fn bad_options_are_explained() {
        // fs needs a root.
        let err = OpendalStore::from_scheme("fs", HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("fs"), "{err}");
    }

    #[test]
    fn prefixes() {
        for (p, could) in [
            ("", true),
            ("a/b", true),
            ("a/b/", true),
            ("/a", false),
            ("a/../", false),
            ("a//", false),
            ("..x", true),
            ("a\0", false),
            ("~", false),
        ] {
            assert_eq!(prefix_could_match(p), could, "{p:?}");
        }
    }
}
