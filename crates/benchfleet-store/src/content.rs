//! Content addressing over any [`BlobStore`]: the key of a blob is the SHA-256 of its bytes,
//! sharded in two levels (`NS/ab/cd/abcd…`), and every read is verified against it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use benchfleet_model::Digest;

use crate::{BlobKey, BlobStore, ByteStream, ErrorKind, PutOutcome, Result, StoreError};

/// Namespace of captured outputs in the hot store, streamed ([`put_file`], [`put_reader`]) or
/// put whole (`bench` has stored its captures here, as `output/…`, from the start). They are not
/// records: `tier gc` and migration leave them alone.
pub const OUTPUTS_NS: &str = "output";

/// Bytes read (and handed to the backend) at a time by the streaming puts.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// What a streaming put stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamedBlob {
    pub digest: Digest,
    pub key: BlobKey,
    pub size: u64,
    pub outcome: PutOutcome,
}

/// The key of a blob with `digest` in namespace `ns` (e.g. `records`): `ns/ab/cd/<64 hex>`.
pub fn key_for(ns: &str, digest: &Digest) -> BlobKey {
    let hex = digest.to_hex();
    BlobKey::new(format!("{ns}/{}/{}/{hex}", &hex[0..2], &hex[2..4]))
        .expect("namespace must be a valid key segment")
}

/// The digest a content key names, if `key` is one.
pub fn digest_of_key(key: &BlobKey) -> Option<Digest> {
    key.as_str().rsplit('/').next()?.parse().ok()
}

/// Store `bytes` under their own digest (put-if-absent: storing the same content twice is free).
pub async fn put(store: &dyn BlobStore, ns: &str, bytes: Bytes) -> Result<(Digest, PutOutcome)> {
    let digest = Digest::of(&bytes);
    let outcome = store.put_if_absent(&key_for(ns, &digest), bytes).await?;
    Ok((digest, outcome))
}

/// Read the blob with `digest` and check that its bytes still hash to it.
pub async fn get(store: &dyn BlobStore, ns: &str, digest: &Digest) -> Result<Bytes> {
    let key = key_for(ns, digest);
    let bytes = store.get(&key).await?;
    verify(store.name(), &key, digest, &bytes)?;
    Ok(bytes)
}

/// Check `bytes` against `expected`; a mismatch is [`ErrorKind::Corrupt`] naming both digests.
pub fn verify(backend: &str, key: &BlobKey, expected: &Digest, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of(bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(StoreError::new(
            ErrorKind::Corrupt,
            backend,
            "verify",
            format!(
                "stored bytes hash to {} but the key says {}; the blob is corrupt (run `benchfleet tier verify`)",
                actual.short(16),
                expected.short(16)
            ),
        )
        .with_key(key))
    }
}

fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> StoreError {
    let mut err = StoreError::io("content", op, e);
    err.message = format!("{}: {}", path.display(), err.message);
    err
}

/// The SHA-256 and length of the file at `path`, read [`STREAM_CHUNK`] at a time.
async fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_err("hash file", path, e))?;
    let mut hasher = Digest::hasher();
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut len = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| io_err("hash file", path, e))?;
        if n == 0 {
            return Ok((hasher.finish(), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// The file at `path` as a [`ByteStream`] of [`STREAM_CHUNK`]s that re-hashes what it yields and
/// ends with an error instead of a clean end if the bytes do not hash to `expected` (the file
/// changed after it was hashed), so the backend stores nothing.
fn checked_file_stream(path: PathBuf, file: tokio::fs::File, expected: Digest) -> ByteStream {
    struct State {
        path: PathBuf,
        file: tokio::fs::File,
        hasher: Option<benchfleet_model::DigestHasher>,
        expected: Digest,
    }
    let state = State {
        path,
        file,
        hasher: Some(Digest::hasher()),
        expected,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        let mut hasher = st.hasher.take()?;
        let mut buf = vec![0u8; STREAM_CHUNK];
        match st.file.read(&mut buf).await {
            Err(e) => Some((Err(e), st)),
            Ok(0) => {
                let actual = hasher.finish();
                if actual == st.expected {
                    None
                } else {
                    let msg = format!(
                        "{} changed while it was stored (hashed {} first, then {}); nothing was stored",
                        st.path.display(),
                        st.expected.short(16),
                        actual.short(16)
                    );
                    Some((Err(std::io::Error::other(msg)), st))
                }
            }
            Ok(n) => {
                buf.truncate(n);
                hasher.update(&buf);
                st.hasher = Some(hasher);
                Some((Ok(Bytes::from(buf)), st))
            }
        }
    }))
}

/// Stream the file at `path` into `store` under namespace `ns`, content-addressed, without
/// holding it in memory: one pass computes its SHA-256 (the key), a second streams it with
/// [`BlobStore::put_stream`] and hashes it again, aborting the put if the file changed in between
/// (nothing is ever stored under a key its bytes do not hash to). Memory stays at a few
/// [`STREAM_CHUNK`]s on a backend that [`streams_puts`](BlobStore::streams_puts); other backends
/// buffer the blob (see the trait's default). If the blob exists already, the second pass is
/// skipped.
pub async fn put_file(store: &dyn BlobStore, ns: &str, path: &Path) -> Result<StreamedBlob> {
    let (digest, size) = hash_file(path).await?;
    put_hashed_file(store, ns, path, digest, size).await
}

async fn put_hashed_file(
    store: &dyn BlobStore,
    ns: &str,
    path: &Path,
    digest: Digest,
    size: u64,
) -> Result<StreamedBlob> {
    let key = key_for(ns, &digest);
    let done = |outcome| StreamedBlob {
        digest,
        key: key.clone(),
        size,
        outcome,
    };
    if store.head(&key).await?.is_some() {
        return Ok(done(PutOutcome::AlreadyExists));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_err("put file", path, e))?;
    let outcome = store
        .put_stream(&key, checked_file_stream(path.to_owned(), file, digest))
        .await?;
    Ok(done(outcome))
}

/// Removes a spool file on drop.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Store everything `reader` yields (e.g. a child's stdout) into `store` under `ns`,
/// content-addressed, with bounded memory: the bytes are spooled to a temporary file in
/// `spool_dir` [`STREAM_CHUNK`] at a time while their SHA-256 is computed, then streamed from
/// that file as in [`put_file`]. The spool file is removed afterwards, on success or error.
pub async fn put_reader<R: AsyncRead + Unpin + Send>(
    store: &dyn BlobStore,
    ns: &str,
    mut reader: R,
    spool_dir: &Path,
) -> Result<StreamedBlob> {
    static SPOOL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let spool = Spool(spool_dir.join(format!(
        ".benchfleet-spool.{}.{}",
        std::process::id(),
        SPOOL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )));
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&spool.0)
        .await
        .map_err(|e| io_err("spool output", &spool.0, e))?;
    let mut hasher = Digest::hasher();
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut size = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| StoreError::io("content", "read output", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .await
            .map_err(|e| io_err("spool output", &spool.0, e))?;
        size += n as u64;
    }
    out.flush()
        .await
        .map_err(|e| io_err("spool output", &spool.0, e))?;
    drop(out);
    put_hashed_file(store, ns, &spool.0, hasher.finish(), size).await
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use async_trait::async_trait;
    use futures::StreamExt as _;

    use super::*;
    use crate::{BlobMeta, Capability};

    /// A reader of `left` pseudo-random bytes made on demand, recording the largest read it was
    /// asked for (what its caller buffers at once).
    struct Generated {
        left: u64,
        state: u64,
        largest_read: usize,
    }

    impl AsyncRead for Generated {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.largest_read = self.largest_read.max(buf.remaining());
            let n = (buf.remaining() as u64).min(self.left) as usize;
            let mut chunk = vec![0u8; n];
            for b in &mut chunk {
                self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1);
                *b = (self.state >> 56) as u8;
            }
            buf.put_slice(&chunk);
            self.left -= n as u64;
            Poll::Ready(Ok(()))
        }
    }

    /// A store that consumes streamed puts chunk by chunk and keeps only what it measured: the
    /// largest chunk, the total and the digest of what it was given.
    #[derive(Debug, Default)]
    struct Measuring {
        largest_chunk: AtomicUsize,
        stored: Mutex<Vec<(BlobKey, u64, Digest)>>,
    }

    #[async_trait]
    impl BlobStore for Measuring {
        fn name(&self) -> &str {
            "measuring"
        }
        fn capability(&self) -> Capability {
            Capability::FULL
        }
        async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
            self.put_stream(key, crate::byte_stream([Ok(bytes)])).await
        }
        async fn put_stream(&self, key: &BlobKey, mut stream: ByteStream) -> Result<PutOutcome> {
            let (mut hasher, mut len) = (Digest::hasher(), 0u64);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| StoreError::io("measuring", "put_stream", e))?;
                self.largest_chunk.fetch_max(chunk.len(), Ordering::Relaxed);
                len += chunk.len() as u64;
                hasher.update(&chunk);
            }
            self.stored
                .lock()
                .unwrap()
                .push((key.clone(), len, hasher.finish()));
            Ok(PutOutcome::Created)
        }
        fn streams_puts(&self) -> bool {
            true
        }
        async fn get(&self, key: &BlobKey) -> Result<Bytes> {
            Err(StoreError::not_found("measuring", "get", key))
        }
        async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
            let stored = self.stored.lock().unwrap();
            Ok(stored
                .iter()
                .find(|(k, ..)| k == key)
                .map(|(k, size, _)| BlobMeta {
                    key: k.clone(),
                    size: *size,
                }))
        }
        async fn delete(&self, _: &BlobKey) -> Result<()> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<BlobMeta>> {
            Ok(Vec::new())
        }
    }

    /// 64 MiB and one byte go from a reader into the store content-addressed, and at no point
    /// is more than one chunk held: the reader is asked for at most a chunk at a time and the
    /// store is handed at most a chunk at a time. The key is the digest of what was stored.
    #[tokio::test]
    async fn a_large_output_is_stored_with_bounded_memory() {
        let spool = tempfile::tempdir().unwrap();
        let store = Measuring::default();
        let size = (64 << 20) + 1;
        let mut reader = Generated {
            left: size,
            state: 7,
            largest_read: 0,
        };
        let put = put_reader(&store, OUTPUTS_NS, &mut reader, spool.path())
            .await
            .unwrap();
        assert_eq!(put.size, size);
        assert_eq!(put.outcome, PutOutcome::Created);
        assert!(
            reader.largest_read <= STREAM_CHUNK,
            "{}",
            reader.largest_read
        );
        let largest = store.largest_chunk.load(Ordering::Relaxed);
        assert!(largest <= STREAM_CHUNK, "{largest}");
        let stored = store.stored.lock().unwrap().clone();
        assert_eq!(
            stored,
            [(key_for(OUTPUTS_NS, &put.digest), size, put.digest)]
        );
        // The spool file is gone.
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
    }

    /// A file whose bytes no longer hash to the digest it was keyed by (it changed after it was
    /// hashed) is refused by the stream itself: nothing is stored.
    #[tokio::test]
    async fn a_file_changed_after_hashing_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, vec![5u8; 3 * STREAM_CHUNK + 17]).unwrap();
        let store = crate::mem::MemBlobStore::new();
        let (digest, size) = hash_file(&path).await.unwrap();
        std::fs::write(&path, vec![6u8; 3 * STREAM_CHUNK + 17]).unwrap();
        let err = put_hashed_file(&store, OUTPUTS_NS, &path, digest, size)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("changed while it was stored"),
            "{err}"
        );
        assert!(store.list("").await.unwrap().is_empty());
        // Unchanged, it goes in under its digest and reads back verified.
        let put = put_file(&store, OUTPUTS_NS, &path).await.unwrap();
        assert_eq!(
            get(&store, OUTPUTS_NS, &put.digest).await.unwrap().len() as u64,
            size
        );
        let again = put_file(&store, OUTPUTS_NS, &path).await.unwrap();
        assert_eq!(again.outcome, PutOutcome::AlreadyExists);
    }
}
