use std::fmt;
use std::ops::Range;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use crate::{ErrorKind, Result, StoreError};

/// A validated blob key: a relative path of `/`-separated segments, each made of
/// `[A-Za-z0-9._-]`, none empty, `.` or `..`. Nothing a key says can escape a store's root.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub const MAX_LEN: usize = 1024;

    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let bad = |why: &str| {
            Err(StoreError::new(
                ErrorKind::InvalidKey,
                "store",
                "validate key",
                format!("{why}; keys are relative paths of [A-Za-z0-9._-] segments"),
            )
            .with_key(&key))
        };
        if key.is_empty() {
            return bad("empty key");
        }
        if key.len() > Self::MAX_LEN {
            return bad("key longer than 1024 bytes");
        }
        if key.starts_with('/') {
            return bad("absolute path");
        }
        for seg in key.split('/') {
            if seg.is_empty() {
                return bad("empty path segment");
            }
            if seg == "." || seg == ".." {
                return bad("`.` or `..` segment");
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return bad("character outside [A-Za-z0-9._-]");
            }
        }
        Ok(BlobKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this key starts with `prefix` (string prefix, as S3 lists).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobKey({})", self.0)
    }
}

/// What `head` and `list` report about a stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: BlobKey,
    pub size: u64,
}

/// Result of a put-if-absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The blob was written.
    Created,
    /// A blob already existed under the key; nothing was written.
    AlreadyExists,
}

/// What a backend can do. Callers check this instead of discovering a missing feature late;
/// the conformance kit gates its behaviour tests on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// `put_if_absent` is atomic against concurrent writers (a conditional write), not a
    /// check-then-write.
    pub atomic_put_if_absent: bool,
    /// `get_range` reads only the requested bytes.
    pub range_reads: bool,
    /// `list` is supported.
    pub list: bool,
    /// `delete` is supported.
    pub delete: bool,
    /// `put_many` writes a batch in one transaction, and `delete_many` removes one in one
    /// transaction.
    pub batch_put: bool,
    /// Largest blob the backend accepts, if bounded.
    pub max_blob_size: Option<u64>,
}

impl Capability {
    /// Everything supported, no size bound.
    pub const FULL: Capability = Capability {
        atomic_put_if_absent: true,
        range_reads: true,
        list: true,
        delete: true,
        batch_put: true,
        max_blob_size: None,
    };
}

/// The chunks of a blob written with [`BlobStore::put_stream`]. An `Err` item aborts the put:
/// nothing is stored under the key.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A [`ByteStream`] over chunks produced by an iterator (lazily: each chunk is made when the
/// backend asks for it).
pub fn byte_stream(
    chunks: impl IntoIterator<Item = std::io::Result<Bytes>, IntoIter: Send + 'static>,
) -> ByteStream {
    Box::pin(futures::stream::iter(chunks))
}

/// How much the default [`BlobStore::put_stream`] buffers before refusing (512 MiB), for backends
/// without a streaming put and without a smaller [`Capability::max_blob_size`].
pub const STREAM_BUFFER_LIMIT: u64 = 512 * 1024 * 1024;

/// A narrow, async store of immutable blobs.
///
/// Implementations are plugins (`plugins/…`); callers usually go through
/// [`content`](crate::content) (content addressing, verified reads) or [`Storage`](crate::Storage).
/// Only `name`, `capability`, `put_if_absent`, `get`, `head`, `delete` and `list` are required;
/// the rest have defaults that a backend overrides when it can do better.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// Backend name for messages, e.g. `fs:/path/to/root` or `redb`.
    fn name(&self) -> &str;

    fn capability(&self) -> Capability;

    /// Write `bytes` under `key` unless a blob already exists there.
    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome>;

    /// The whole blob. [`ErrorKind::NotFound`] if absent.
    async fn get(&self, key: &BlobKey) -> Result<Bytes>;

    /// Size (and existence) of a blob; `None` if absent.
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>>;

    /// Remove a blob. Deleting an absent key is not an error (idempotent).
    async fn delete(&self, key: &BlobKey) -> Result<()>;

    /// Every blob whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>>;

    /// Bytes `range` of a blob (clamped to its end). The default reads the whole blob.
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let all = self.get(key).await?;
        let len = all.len() as u64;
        if range.start > len || range.start > range.end {
            return Err(StoreError::new(
                ErrorKind::Other,
                self.name(),
                "get_range",
                format!(
                    "range {}..{} outside blob of {len} bytes",
                    range.start, range.end
                ),
            )
            .with_key(key));
        }
        Ok(all.slice(range.start as usize..range.end.min(len) as usize))
    }

    /// Put-if-absent of a blob given as a stream of chunks, so large values (a captured output)
    /// need not be held in memory whole. Contract: the blob appears under `key` only after the
    /// stream has ended without error; if any item is an `Err`, nothing is stored and that error
    /// is returned ([`ErrorKind::Other`], or `Transient` when the I/O error says so).
    ///
    /// The default collects the chunks into memory and calls [`BlobStore::put_if_absent`],
    /// refusing ([`ErrorKind::Unsupported`]) as soon as the total passes
    /// [`Capability::max_blob_size`] or [`STREAM_BUFFER_LIMIT`]. Backends that can write chunk by
    /// chunk override it and return `true` from [`BlobStore::streams_puts`].
    async fn put_stream(&self, key: &BlobKey, mut stream: ByteStream) -> Result<PutOutcome> {
        let limit = self
            .capability()
            .max_blob_size
            .unwrap_or(u64::MAX)
            .min(STREAM_BUFFER_LIMIT);
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| StoreError::io(self.name(), "put_stream", e).with_key(key))?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(StoreError::new(
                    ErrorKind::Unsupported,
                    self.name(),
                    "put_stream",
                    format!(
                        "this backend buffers streamed puts in memory and the blob passed {limit} \
                         bytes; store large outputs on a backend that streams (fs)"
                    ),
                )
                .with_key(key));
            }
            buf.extend_from_slice(&chunk);
        }
        self.put_if_absent(key, Bytes::from(buf)).await
    }

    /// Whether [`BlobStore::put_stream`] writes chunk by chunk with bounded memory (the default
    /// buffers the whole blob).
    fn streams_puts(&self) -> bool {
        false
    }

    /// Put-if-absent for a batch; one transaction where the backend supports it
    /// ([`Capability::batch_put`]). The default writes one by one.
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        let mut out = Vec::with_capacity(items.len());
        for (k, b) in items {
            out.push(self.put_if_absent(&k, b).await?);
        }
        Ok(out)
    }

    /// The bytes of every key, in order: all of them, or the first error (a missing key is
    /// [`ErrorKind::NotFound`] naming it). One read snapshot or round trip where the backend can,
    /// instead of one per key. The default runs [`BlobStore::get`] 16 at a time.
    async fn get_many(&self, keys: &[BlobKey]) -> Result<Vec<Bytes>> {
        each_key(keys, |k| self.get(k)).await
    }

    /// Remove many blobs (absent keys are not an error), durably once this returns: one
    /// transaction or one flush where the backend can, instead of one per key. On an error some
    /// keys may already be gone (deletes are idempotent: retry the whole list). The default runs
    /// [`BlobStore::delete`] 16 at a time.
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        each_key(&keys, |k| self.delete(k)).await.map(drop)
    }
}

/// `op` on every key, [`IN_FLIGHT`] at a time, outputs in key order; the first error ends it.
/// What the batched defaults do for backends without a batched form.
async fn each_key<'a, T, F>(keys: &'a [BlobKey], op: impl Fn(&'a BlobKey) -> F) -> Result<Vec<T>>
where
    F: std::future::Future<Output = Result<T>>,
{
    use futures::StreamExt as _;
    let mut out = Vec::with_capacity(keys.len());
    let mut pending = futures::stream::FuturesOrdered::new();
    let mut keys = keys.iter();
    loop {
        while pending.len() < IN_FLIGHT {
            match keys.next() {
                Some(k) => pending.push_back(op(k)),
                None => break,
            }
        }
        match pending.next().await {
            Some(done) => out.push(done?),
            None => return Ok(out),
        }
    }
}

/// Requests the batched defaults keep in flight.
const IN_FLIGHT: usize = 16;

#[async_trait]
impl<T: BlobStore + ?Sized> BlobStore for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capability(&self) -> Capability {
        (**self).capability()
    }
    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        (**self).put_if_absent(key, bytes).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        (**self).get(key).await
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        (**self).head(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<()> {
        (**self).delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        (**self).list(prefix).await
    }
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        (**self).get_range(key, range).await
    }
    async fn put_many(&self, items: Vec<(BlobKey, Bytes)>) -> Result<Vec<PutOutcome>> {
        (**self).put_many(items).await
    }
    async fn put_stream(&self, key: &BlobKey, stream: ByteStream) -> Result<PutOutcome> {
        (**self).put_stream(key, stream).await
    }
    async fn delete_many(&self, keys: Vec<BlobKey>) -> Result<()> {
        (**self).delete_many(keys).await
    }
    async fn get_many(&self, keys: &[BlobKey]) -> Result<Vec<Bytes>> {
        (**self).get_many(keys).await
    }
    fn streams_puts(&self) -> bool {
        (**self).streams_puts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_validation() {
        for good in ["a", "records/ab/cd/0123", "x.y-z_1/2"] {
            assert!(BlobKey::new(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "./a", "a/", "sp ace", "a\\b", "é",
        ] {
            let err = BlobKey::new(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidKey, "{bad}");
        }
    }
}
