//! Issue 5, benchmark 1 for redb: 1 KiB record put and get throughput through `RedbStore`,
//! unbatched and batched, next to raw redb transactions with the same durability (every commit
//! fsynced), in the same run. Single raw gets are measured twice: called directly, and from
//! async code through `block_on` exactly as the plugin's get is called. Run: `cargo bench -p benchfleet-redb --bench put_get`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use benchfleet_model::Digest;
use benchfleet_redb::RedbStore;
use benchfleet_store::{BlobKey, BlobStore, content};

const RAW: TableDefinition<&str, &[u8]> = TableDefinition::new("raw");
const BATCH: u64 = 1000;
const RECORD: usize = 1024;

/// A fresh content key and 1 KiB value per call (records are content-addressed).
fn record(n: u64) -> (BlobKey, Bytes) {
    let mut v = vec![0u8; RECORD];
    v[..8].copy_from_slice(&n.to_le_bytes());
    let bytes = Bytes::from(v);
    (content::key_for("records", &Digest::of(&bytes)), bytes)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("plugin.redb")).unwrap());
    let raw = Database::create(dir.path().join("raw.redb")).unwrap();
    let next = AtomicU64::new(0);
    let fresh = || record(next.fetch_add(1, Ordering::Relaxed));

    let raw_put = |raw: &Database, items: &[(BlobKey, Bytes)]| {
        let txn = raw.begin_write().unwrap();
        {
            let mut t = txn.open_table(RAW).unwrap();
            for (k, v) in items {
                // Same semantics as put-if-absent: look first, insert if absent.
                if t.get(k.as_str()).unwrap().is_none() {
                    t.insert(k.as_str(), v.as_ref()).unwrap();
                }
            }
        }
        txn.commit().unwrap();
    };

    let mut g = c.benchmark_group("redb_put_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("raw", "unbatched"), |b| {
        b.iter(|| raw_put(&raw, &[fresh()]))
    });
    g.bench_function(BenchmarkId::new("plugin", "unbatched"), |b| {
        b.iter(|| {
            let (k, v) = fresh();
            rt.block_on(store.put_if_absent(&k, v)).unwrap()
        })
    });
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function(BenchmarkId::new("raw", "batched_1000"), |b| {
        b.iter(|| raw_put(&raw, &(0..BATCH).map(|_| fresh()).collect::<Vec<_>>()))
    });
    g.bench_function(BenchmarkId::new("plugin", "batched_1000"), |b| {
        b.iter(|| {
            rt.block_on(store.put_many((0..BATCH).map(|_| fresh()).collect()))
                .unwrap()
        })
    });
    // 64 callers each putting one record at once: the writer folds them into few commits.
    g.throughput(Throughput::Elements(64));
    g.bench_function(BenchmarkId::new("plugin", "concurrent_64_unbatched"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|_| {
                        let (store, (k, v)) = (store.clone(), fresh());
                        tokio::spawn(async move { store.put_if_absent(&k, v).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            })
        })
    });
    g.finish();

    // Reads: two fresh databases holding the same 10 000 records and nothing else (the put
    // benchmarks above wrote different numbers of records into each).
    let store = Arc::new(RedbStore::open(dir.path().join("plugin-read.redb")).unwrap());
    let raw = Database::create(dir.path().join("raw-read.redb")).unwrap();
    let keys: Vec<(BlobKey, Bytes)> = (0..10_000).map(|i| record(u64::MAX - i)).collect();
    raw_put(&raw, &keys);
    rt.block_on(store.put_many(keys.clone())).unwrap();
    let mut g = c.benchmark_group("redb_get_1KiB");
    g.throughput(Throughput::Elements(1));
    let i = AtomicU64::new(0);
    let pick = || &keys[(i.fetch_add(7919, Ordering::Relaxed) % keys.len() as u64) as usize].0;
    g.bench_function(BenchmarkId::new("raw", "unbatched"), |b| {
        b.iter(|| {
            let txn = raw.begin_read().unwrap();
            let t = txn.open_table(RAW).unwrap();
            let v = t.get(pick().as_str()).unwrap().unwrap();
            Bytes::copy_from_slice(v.value())
        })
    });
    // The same raw read, called from async code the way the plugin is (`block_on` of a future).
    g.bench_function(BenchmarkId::new("raw", "unbatched_from_async"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let txn = raw.begin_read().unwrap();
                let t = txn.open_table(RAW).unwrap();
                let v = t.get(pick().as_str()).unwrap().unwrap();
                Bytes::copy_from_slice(v.value())
            })
        })
    });
    g.bench_function(BenchmarkId::new("plugin", "unbatched"), |b| {
        b.iter(|| rt.block_on(store.get(pick())).unwrap())
    });
    g.throughput(Throughput::Elements(BATCH));
    // Both sides of the batched reads pick the same 1000 keys the same way and return the
    // 1000 values together (what a caller reading a batch gets).
    g.bench_function(BenchmarkId::new("raw", "batched_1000"), |b| {
        b.iter(|| {
            let batch: Vec<BlobKey> = (0..BATCH).map(|_| pick().clone()).collect();
            let txn = raw.begin_read().unwrap();
            let t = txn.open_table(RAW).unwrap();
            batch
                .iter()
                .map(|k| Bytes::copy_from_slice(t.get(k.as_str()).unwrap().unwrap().value()))
                .collect::<Vec<_>>()
        })
    });
    // One read snapshot for the batch, like raw: `get_many`.
    g.bench_function(BenchmarkId::new("plugin", "batched_1000"), |b| {
        b.iter(|| {
            let batch: Vec<BlobKey> = (0..BATCH).map(|_| pick().clone()).collect();
            rt.block_on(store.get_many(&batch)).unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
