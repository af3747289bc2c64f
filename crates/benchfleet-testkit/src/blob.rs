//! [`BlobStore`] behaviours. Each function is one test of [`blob_store_conformance!`]
//! (crate::blob_store_conformance); they panic with a message naming the backend on failure.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use benchfleet_model::Digest;
use benchfleet_store::{BlobKey, BlobStore, ErrorKind, PutOutcome, byte_stream, content};

use crate::{Harness, data, skip};

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).unwrap_or_else(|e| panic!("test key {s:?} is invalid: {e}"))
}

/// Values of several shapes (empty, one byte, every byte value, 1 KiB) round-trip through
/// put/get, and `head` reports their sizes.
pub async fn put_get_roundtrip<H: Harness>(h: &H) {
    let store = h.make().await;
    let all_bytes: Bytes = (0..=255u8).collect::<Vec<u8>>().into();
    let cases = [
        ("empty", Bytes::new()),
        ("one", Bytes::from_static(b"x")),
        ("all-bytes", all_bytes),
        ("kib", data::bytes(1, 1024)),
    ];
    for (name, value) in cases {
        let k = key(&format!("roundtrip/{name}"));
        let outcome = store.put_if_absent(&k, value.clone()).await;
        assert_eq!(
            outcome.unwrap_or_else(|e| panic!("put {k}: {e}")),
            PutOutcome::Created,
            "{}: put {k}",
            store.name()
        );
        let got = store
            .get(&k)
            .await
            .unwrap_or_else(|e| panic!("get {k}: {e}"));
        assert_eq!(got, value, "{}: bytes read back for {k}", store.name());
        let meta = store
            .head(&k)
            .await
            .unwrap_or_else(|e| panic!("head {k}: {e}"));
        let meta =
            meta.unwrap_or_else(|| panic!("{}: head {k} says absent after put", store.name()));
        assert_eq!(
            (meta.key, meta.size),
            (k.clone(), value.len() as u64),
            "{}: head {k}",
            store.name()
        );
    }
}

/// Reading an absent key is `NotFound` (get, get_range), `None` (head).
pub async fn missing_keys<H: Harness>(h: &H) {
    let store = h.make().await;
    store
        .put_if_absent(&key("present/a"), Bytes::from_static(b"a"))
        .await
        .expect("put");
    for k in ["absent", "present/b", "present/a/deeper", "present"] {
        let k = key(k);
        let err = store
            .get(&k)
            .await
            .expect_err(&format!("{}: get of absent {k} succeeded", store.name()));
        assert_eq!(
            err.kind,
            ErrorKind::NotFound,
            "{}: get {k}: {err}",
            store.name()
        );
        let err = store
            .get_range(&k, 0..1)
            .await
            .expect_err("get_range of an absent key succeeded");
        assert_eq!(
            err.kind,
            ErrorKind::NotFound,
            "{}: get_range {k}: {err}",
            store.name()
        );
        assert_eq!(
            store.head(&k).await.expect("head"),
            None,
            "{}: head {k}",
            store.name()
        );
    }
}

/// `get_range` returns exactly the requested bytes, clamps the end to the blob's length, and
/// refuses a start past the end or a reversed range.
pub async fn get_range<H: Harness>(h: &H) {
    let store = h.make().await;
    let value = data::bytes(2, 100);
    let k = key("range/blob");
    store.put_if_absent(&k, value.clone()).await.expect("put");
    #[allow(clippy::reversed_empty_ranges)]
    let cases: [(Range<u64>, Option<Range<usize>>); 9] = [
        (0..10, Some(0..10)),
        (10..20, Some(10..20)),
        (0..100, Some(0..100)),
        (90..200, Some(90..100)),
        (0..u64::MAX, Some(0..100)),
        (100..100, Some(100..100)),
        (100..150, Some(100..100)),
        (101..102, None),
        (50..40, None),
    ];
    for (range, want) in cases {
        let got = store.get_range(&k, range.clone()).await;
        match (got, want) {
            (Ok(b), Some(w)) => {
                assert_eq!(b, value.slice(w), "{}: get_range {range:?}", store.name())
            }
            (Err(e), None) => assert_ne!(
                e.kind,
                ErrorKind::NotFound,
                "{}: get_range {range:?}: {e}",
                store.name()
            ),
            (Ok(b), None) => panic!(
                "{}: get_range {range:?} should fail, returned {} bytes",
                store.name(),
                b.len()
            ),
            (Err(e), Some(_)) => panic!("{}: get_range {range:?} failed: {e}", store.name()),
        }
    }
}

/// `list(prefix)` returns exactly the keys that start with `prefix` (a string prefix, not a
/// directory), sorted, with sizes.
pub async fn list_prefix<H: Harness>(h: &H) {
    let store = h.make().await;
    if !store.capability().list {
        return skip("list_prefix", store.name(), "capability.list is false");
    }
    let keys = [
        "p/b/d", "p/a", "q/x", "p/ab", "pa", "p/b/c", "p/b/c.x", "p-z",
    ];
    for (i, k) in keys.iter().enumerate() {
        store
            .put_if_absent(&key(k), data::bytes(i as u64, i + 1))
            .await
            .expect("put");
    }
    let size_of = |k: &str| keys.iter().position(|x| *x == k).map(|i| i as u64 + 1);
    for prefix in [
        "", "p", "p/", "p/a", "p/b", "p/b/", "p/b/c", "p/ab/", "pa", "q", "zzz", "p/b/d/",
    ] {
        let mut want: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| k.starts_with(prefix))
            .collect();
        want.sort_unstable();
        let got = store
            .list(prefix)
            .await
            .unwrap_or_else(|e| panic!("{}: list {prefix:?}: {e}", store.name()));
        let got_keys: Vec<&str> = got.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(got_keys, want, "{}: list {prefix:?}", store.name());
        for m in &got {
            assert_eq!(
                Some(m.size),
                size_of(m.key.as_str()),
                "{}: size of {} in list",
                store.name(),
                m.key
            );
        }
    }
}

/// Delete removes a blob; deleting it again, or a key never written, succeeds; the key can be
/// written afresh afterwards.
pub async fn delete_is_idempotent<H: Harness>(h: &H) {
    let store = h.make().await;
    if !store.capability().delete {
        return skip(
            "delete_is_idempotent",
            store.name(),
            "capability.delete is false",
        );
    }
    let (k, other) = (key("del/a"), key("del/b"));
    store
        .put_if_absent(&k, Bytes::from_static(b"first"))
        .await
        .expect("put");
    store
        .put_if_absent(&other, Bytes::from_static(b"keep"))
        .await
        .expect("put");
    store
        .delete(&k)
        .await
        .unwrap_or_else(|e| panic!("{}: delete: {e}", store.name()));
    assert_eq!(
        store.head(&k).await.expect("head"),
        None,
        "{}: head after delete",
        store.name()
    );
    let err = store.get(&k).await.expect_err("get after delete succeeded");
    assert_eq!(err.kind, ErrorKind::NotFound, "{}: {err}", store.name());
    store
        .delete(&k)
        .await
        .unwrap_or_else(|e| panic!("{}: second delete: {e}", store.name()));
    store
        .delete(&key("del/never"))
        .await
        .unwrap_or_else(|e| panic!("{}: delete of absent key: {e}", store.name()));
    assert_eq!(
        store.get(&other).await.expect("neighbour survives"),
        "keep",
        "{}",
        store.name()
    );
    if store.capability().list {
        let listed: Vec<_> = store
            .list("del/")
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(
            listed,
            vec![other.clone()],
            "{}: list after delete",
            store.name()
        );
    }
    let again = store
        .put_if_absent(&k, Bytes::from_static(b"second"))
        .await
        .expect("put after delete");
    assert_eq!(
        again,
        PutOutcome::Created,
        "{}: put after delete",
        store.name()
    );
    assert_eq!(
        store.get(&k).await.expect("get"),
        "second",
        "{}",
        store.name()
    );
}

/// `delete_many` removes exactly the keys it is given (small and large blobs, present or
/// absent, one listed twice), leaves neighbours alone, and an empty list is a no-op.
/// `get_many` returns every key's bytes in the order asked (small and large blobs, a key twice),
/// nothing for no keys, and a missing key is `NotFound` naming it.
pub async fn get_many_returns_each_key_in_order<H: Harness>(h: &H) {
    let store = h.make().await;
    let name = store.name().to_owned();
    let keys: Vec<BlobKey> = (0..30).map(|i| key(&format!("getmany/{i:02}"))).collect();
    let mut items: Vec<(BlobKey, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), data::bytes(100 + i as u64, 50 + 7 * i)))
        .collect();
    items[11].1 = data::bytes(11, 3 * 1024 * 1024);
    store.put_many(items.clone()).await.expect("put_many");
    assert!(
        store
            .get_many(&[])
            .await
            .expect("get_many of nothing")
            .is_empty(),
        "{name}: get_many of no keys"
    );
    // Reversed, with one key twice.
    let asked: Vec<BlobKey> = keys.iter().rev().chain([&keys[3]]).cloned().collect();
    let got = store
        .get_many(&asked)
        .await
        .unwrap_or_else(|e| panic!("{name}: get_many: {e}"));
    assert_eq!(got.len(), asked.len(), "{name}: get_many count");
    for (k, bytes) in asked.iter().zip(&got) {
        let want = &items
            .iter()
            .find(|(x, _)| x == k)
            .expect("asked key was put")
            .1;
        assert_eq!(bytes, want, "{name}: get_many bytes of {k}");
    }
    let absent = key("getmany/absent");
    let err = store
        .get_many(&[keys[0].clone(), absent.clone(), keys[1].clone()])
        .await
        .expect_err("get_many with a missing key succeeded");
    assert_eq!(err.kind, ErrorKind::NotFound, "{name}: {err}");
    assert_eq!(err.key.as_deref(), Some(absent.as_str()), "{name}: {err}");
}

pub async fn delete_many_removes_exactly_its_keys<H: Harness>(h: &H) {
    let store = h.make().await;
    if !store.capability().delete {
        return skip(
            "delete_many_removes_exactly_its_keys",
            store.name(),
            "capability.delete is false",
        );
    }
    let name = store.name().to_owned();
    let keys: Vec<BlobKey> = (0..40).map(|i| key(&format!("delmany/{i:02}"))).collect();
    let mut items: Vec<(BlobKey, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), data::bytes(i as u64, 100 + i)))
        .collect();
    // One blob larger than most backends inline.
    items[7].1 = data::bytes(7, 3 * 1024 * 1024);
    store.put_many(items).await.expect("put_many");
    store
        .delete_many(Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{name}: delete_many of nothing: {e}"));
    let doomed: Vec<BlobKey> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| k.clone())
        .chain([keys[1].clone(), key("delmany/absent")])
        .collect();
    store
        .delete_many(doomed)
        .await
        .unwrap_or_else(|e| panic!("{name}: delete_many: {e}"));
    for (i, k) in keys.iter().enumerate() {
        let present = store.head(k).await.expect("head").is_some();
        assert_eq!(present, i % 3 == 0, "{name}: {k} after delete_many");
    }
    if store.capability().list {
        let listed = store.list("delmany/").await.expect("list");
        assert_eq!(listed.len(), 14, "{name}: list after delete_many");
    }
    // Deleting the same keys again is not an error.
    store
        .delete_many(keys.clone())
        .await
        .unwrap_or_else(|e| panic!("{name}: second delete_many: {e}"));
    assert!(
        store.head(&keys[0]).await.expect("head").is_none(),
        "{name}: delete_many left {}",
        keys[0]
    );
}

/// A second put under an existing key reports `AlreadyExists` and leaves the bytes alone.
pub async fn put_if_absent_is_idempotent<H: Harness>(h: &H) {
    let store = h.make().await;
    let k = key("idem/k");
    let first = data::bytes(3, 300);
    assert_eq!(
        store.put_if_absent(&k, first.clone()).await.expect("put"),
        PutOutcome::Created
    );
    for second in [
        first.clone(),
        data::bytes(4, 300),
        data::bytes(5, 7),
        Bytes::new(),
    ] {
        let outcome = store.put_if_absent(&k, second).await.expect("second put");
        assert_eq!(
            outcome,
            PutOutcome::AlreadyExists,
            "{}: second put",
            store.name()
        );
        assert_eq!(
            store.get(&k).await.expect("get"),
            first,
            "{}: bytes changed by a second put",
            store.name()
        );
        assert_eq!(
            store.head(&k).await.expect("head").map(|m| m.size),
            Some(300),
            "{}",
            store.name()
        );
    }
}

/// `put_many` reports one outcome per item, in order, including a key repeated in the batch.
pub async fn put_many_outcomes<H: Harness>(h: &H) {
    let store = h.make().await;
    let (a, b, c) = (key("many/a"), key("many/b"), key("many/c"));
    store
        .put_if_absent(&b, Bytes::from_static(b"old"))
        .await
        .expect("put");
    let items = vec![
        (a.clone(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"new")),
        (c.clone(), Bytes::from_static(b"C")),
        (a.clone(), Bytes::from_static(b"A2")),
    ];
    let got = store
        .put_many(items)
        .await
        .unwrap_or_else(|e| panic!("{}: put_many: {e}", store.name()));
    use PutOutcome::{AlreadyExists, Created};
    assert_eq!(
        got,
        [Created, AlreadyExists, Created, AlreadyExists],
        "{}: put_many outcomes",
        store.name()
    );
    for (k, want) in [(&a, "A"), (&b, "old"), (&c, "C")] {
        assert_eq!(
            store.get(k).await.expect("get"),
            want,
            "{}: {k}",
            store.name()
        );
    }
    assert_eq!(
        store.put_many(Vec::new()).await.expect("empty batch"),
        Vec::<PutOutcome>::new()
    );
}

/// Many tasks racing to create one key: exactly one creates it (if the backend claims atomic
/// put-if-absent), and the stored bytes are exactly one writer's, never a mix.
pub async fn concurrent_writers_same_key<H: Harness>(h: &H) {
    const WRITERS: u64 = 16;
    let store = Arc::new(h.make().await);
    let k = key("race/same");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, k) = (store.clone(), k.clone());
            tokio::spawn(async move {
                (
                    i,
                    store
                        .put_if_absent(&k, data::bytes(100 + i, 64 * 1024))
                        .await,
                )
            })
        })
        .collect();
    let mut created = Vec::new();
    for t in tasks {
        let (i, res) = t.await.expect("writer task panicked");
        if res.unwrap_or_else(|e| panic!("{}: concurrent put {i}: {e}", store.name()))
            == PutOutcome::Created
        {
            created.push(i);
        }
    }
    let stored = store.get(&k).await.expect("get");
    let winner = (0..WRITERS).find(|i| stored == data::bytes(100 + i, 64 * 1024));
    let winner = winner.unwrap_or_else(|| {
        panic!(
            "{}: stored bytes match no writer (torn write?)",
            store.name()
        )
    });
    if store.capability().atomic_put_if_absent {
        assert_eq!(
            created,
            vec![winner],
            "{}: writers that reported Created",
            store.name()
        );
    } else {
        assert!(
            !created.is_empty(),
            "{}: no writer reported Created",
            store.name()
        );
    }
}

/// Many tasks writing different keys at once: every blob lands intact.
pub async fn concurrent_writers_different_keys<H: Harness>(h: &H) {
    const TASKS: u64 = 16;
    const PER_TASK: u64 = 8;
    let store = Arc::new(h.make().await);
    let name = |t: u64, i: u64| key(&format!("race/diff/t{t:02}/k{i}"));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    let outcome = store
                        .put_if_absent(&name(t, i), data::bytes(t * 100 + i, 1024 + i as usize))
                        .await?;
                    assert_eq!(
                        outcome,
                        PutOutcome::Created,
                        "{}: {}",
                        store.name(),
                        name(t, i)
                    );
                }
                Ok::<_, benchfleet_store::StoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("writer task panicked")
            .unwrap_or_else(|e| panic!("{}: concurrent put: {e}", store.name()));
    }
    for t in 0..TASKS {
        for i in 0..PER_TASK {
            let got = store.get(&name(t, i)).await.expect("get");
            assert_eq!(
                got,
                data::bytes(t * 100 + i, 1024 + i as usize),
                "{}: {}",
                store.name(),
                name(t, i)
            );
        }
    }
    if store.capability().list {
        let listed = store.list("race/diff/").await.expect("list");
        assert_eq!(
            listed.len() as u64,
            TASKS * PER_TASK,
            "{}: listed blobs",
            store.name()
        );
        assert!(
            listed.windows(2).all(|w| w[0].key < w[1].key),
            "{}: list is not sorted",
            store.name()
        );
    }
}

/// A 64 MiB blob is written, then read back whole and as a stream of 4 MiB range reads, both
/// matching the written bytes' digest.
pub async fn large_blob_64_mib<H: Harness>(h: &H) {
    const SIZE: usize = 64 << 20;
    const CHUNK: u64 = 4 << 20;
    let store = h.make().await;
    if store
        .capability()
        .max_blob_size
        .is_some_and(|m| m < SIZE as u64)
    {
        return skip(
            "large_blob_64_mib",
            store.name(),
            "max_blob_size is below 64 MiB",
        );
    }
    let value = data::bytes(64, SIZE);
    let want = Digest::of(&value);
    let k = key("large/blob");
    assert_eq!(
        store.put_if_absent(&k, value).await.expect("put 64 MiB"),
        PutOutcome::Created
    );
    assert_eq!(
        store.head(&k).await.expect("head").map(|m| m.size),
        Some(SIZE as u64),
        "{}",
        store.name()
    );
    let whole = store.get(&k).await.expect("get 64 MiB");
    assert_eq!(whole.len(), SIZE, "{}: length read back", store.name());
    assert_eq!(
        Digest::of(&whole),
        want,
        "{}: bytes read back whole",
        store.name()
    );
    drop(whole);
    let mut hasher = Digest::hasher();
    let mut offset = 0u64;
    loop {
        let chunk = store
            .get_range(&k, offset..offset + CHUNK)
            .await
            .expect("range read");
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(offset, SIZE as u64, "{}: bytes streamed", store.name());
    assert_eq!(
        hasher.finish(),
        want,
        "{}: bytes streamed by range reads",
        store.name()
    );
}

/// A 64 MiB blob written with [`BlobStore::put_stream`] as 64 chunks of 1 MiB, each generated
/// only when the backend asks for it, reads back intact (by 4 MiB range reads); a second
/// streamed put of the key is `AlreadyExists` and changes nothing; a stream that fails midway
/// stores nothing.
pub async fn stream_put_64_mib<H: Harness>(h: &H) {
    const CHUNKS: u64 = 64;
    const CHUNK: usize = 1 << 20;
    const SIZE: u64 = CHUNKS * CHUNK as u64;
    let store = h.make().await;
    if store.capability().max_blob_size.is_some_and(|m| m < SIZE) {
        return skip(
            "stream_put_64_mib",
            store.name(),
            "max_blob_size is below 64 MiB",
        );
    }
    let chunks = |seed: u64| (0..CHUNKS).map(move |i| Ok(data::bytes(seed + i, CHUNK)));
    let want = {
        let mut hasher = Digest::hasher();
        for c in chunks(1000) {
            hasher.update(c.expect("generated"));
        }
        hasher.finish()
    };
    let k = key("stream/blob");
    let name = store.name().to_owned();
    assert_eq!(
        store
            .put_stream(&k, byte_stream(chunks(1000)))
            .await
            .unwrap_or_else(|e| panic!("{name}: streamed put of 64 MiB: {e}")),
        PutOutcome::Created,
        "{name}"
    );
    let read_back = || async {
        let mut hasher = Digest::hasher();
        let mut offset = 0u64;
        loop {
            let chunk = store
                .get_range(&k, offset..offset + (4 << 20))
                .await
                .expect("range read");
            if chunk.is_empty() {
                break;
            }
            offset += chunk.len() as u64;
            hasher.update(&chunk);
        }
        (offset, hasher.finish())
    };
    assert_eq!(
        read_back().await,
        (SIZE, want),
        "{name}: streamed blob read back"
    );
    assert_eq!(
        store
            .put_stream(&k, byte_stream(chunks(2000).take(2)))
            .await
            .expect("second streamed put"),
        PutOutcome::AlreadyExists,
        "{name}"
    );
    assert_eq!(
        read_back().await,
        (SIZE, want),
        "{name}: after a second put"
    );

    let broken = key("stream/broken");
    let failing = chunks(3000)
        .take(3)
        .chain(std::iter::once(Err(std::io::Error::other(
            "the source failed",
        ))));
    let err = store
        .put_stream(&broken, byte_stream(failing))
        .await
        .expect_err("a failing stream must fail the put");
    assert!(
        err.to_string().contains("the source failed"),
        "{name}: {err}"
    );
    assert_eq!(
        store.head(&broken).await.expect("head"),
        None,
        "{name}: partial blob stored"
    );
    let listed: Vec<String> = store
        .list("stream/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(listed, ["stream/blob"], "{name}");
}

/// A byte flipped behind the store's back is caught by [`content::get`] as `Corrupt`.
pub async fn corrupted_byte_detected<H: Harness>(h: &H) {
    let store = h.make().await;
    let value = data::bytes(9, 4096);
    let (digest, _) = content::put(&store, "records", value.clone())
        .await
        .expect("content put");
    assert_eq!(
        content::get(&store, "records", &digest)
            .await
            .expect("verified read"),
        value
    );
    let k = content::key_for("records", &digest);
    if !h.corrupt(&store, &k) {
        return skip(
            "corrupted_byte_detected",
            store.name(),
            "the harness cannot corrupt stored bytes",
        );
    }
    let err = content::get(&store, "records", &digest)
        .await
        .expect_err("corrupted blob read as valid");
    assert_eq!(err.kind, ErrorKind::Corrupt, "{}: {err}", store.name());
    assert_eq!(
        err.key.as_deref(),
        Some(k.as_str()),
        "{}: the error names the key",
        store.name()
    );
}

/// Hostile keys never reach a backend (`BlobKey` refuses them), and hostile `list` prefixes
/// return nothing instead of escaping the store or failing.
pub async fn invalid_keys_refused<H: Harness>(h: &H) {
    let store = h.make().await;
    let bad = [
        "",
        "/etc/passwd",
        "../x",
        "a/../../b",
        "a//b",
        "./a",
        "a\\..\\b",
        "a\0b",
        "~tmp",
        "sp ace",
    ];
    for k in bad {
        let err = BlobKey::new(k).expect_err(&format!("key {k:?} was accepted"));
        assert_eq!(err.kind, ErrorKind::InvalidKey, "{k:?}: {err}");
    }
    if !store.capability().list {
        return skip(
            "invalid_keys_refused (list part)",
            store.name(),
            "capability.list is false",
        );
    }
    store
        .put_if_absent(&key("inside/a"), Bytes::from_static(b"a"))
        .await
        .expect("put");
    for prefix in [
        "../",
        "..",
        "/",
        "/etc",
        "inside/../",
        "inside/..",
        "./",
        "inside//",
        "\0",
        "~",
    ] {
        let got = store.list(prefix).await;
        let got = got.unwrap_or_else(|e| panic!("{}: list {prefix:?} failed: {e}", store.name()));
        assert!(
            got.is_empty(),
            "{}: list {prefix:?} returned {got:?}",
            store.name()
        );
    }
}
