//! Content addressing over any [`BlobStore`]: the key of a blob is the SHA-256 of its bytes,
//! sharded in two levels (`NS/ab/cd/abcd…`), and every read is verified against it.

use bytes::Bytes;

use benchfleet_model::Digest;

use crate::{BlobKey, BlobStore, ErrorKind, PutOutcome, Result, StoreError};

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
