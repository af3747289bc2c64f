//! Issue 5, benchmark 1 for the fs plugin: 1 KiB record put and get throughput through
//! `FsStore`, unbatched and batched, next to raw file writes with the same durability (file data
//! fsynced, then each touched directory fsynced once, before success), in the same run. Both
//! roots use the content layout `records/ab/cd/<hex>` with every shard directory created up
//! front (the steady state of a store holding more than a few hundred thousand records).
//! Run: `cargo bench -p benchfleet-fs --bench put_get`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use benchfleet_fs::FsStore;
use benchfleet_model::Digest;
use benchfleet_store::{BlobKey, BlobStore, content};

const BATCH: u64 = 1000;
const RECORD: usize = 1024;

fn record(n: u64) -> (BlobKey, Bytes) {
    let mut v = vec![0u8; RECORD];
    v[..8].copy_from_slice(&n.to_le_bytes());
    let bytes = Bytes::from(v);
    (content::key_for("records", &Digest::of(&bytes)), bytes)
}

fn make_shards(root: &Path) {
    for a in 0..256 {
        for b in 0..256 {
            fs::create_dir_all(root.join(format!("records/{a:02x}/{b:02x}"))).unwrap();
        }
    }
}

/// The raw baseline: create the final file exclusively, write, fdatasync.
fn raw_write(root: &Path, key: &BlobKey, bytes: &[u8]) -> PathBuf {
    let path = root.join(key.as_str());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_data().unwrap();
    path.parent().unwrap().to_path_buf()
}

fn fsync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let (plugin_root, raw_root) = (dir.path().join("plugin"), dir.path().join("raw"));
    make_shards(&plugin_root);
    make_shards(&raw_root);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = FsStore::open(&plugin_root).unwrap();
    let next = AtomicU64::new(0);
    let fresh = || record(next.fetch_add(1, Ordering::Relaxed));

    let mut g = c.benchmark_group("fs_put_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("raw", "unbatched"), |b| {
        b.iter(|| {
            let (k, v) = fresh();
            fsync_dir(&raw_write(&raw_root, &k, &v));
        })
    });
    g.bench_function(BenchmarkId::new("plugin", "unbatched"), |b| {
        b.iter(|| {
            let (k, v) = fresh();
            rt.block_on(store.put_if_absent(&k, v)).unwrap()
        })
    });
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function(BenchmarkId::new("raw", "batched_1000"), |b| {
        b.iter(|| {
            let dirs: BTreeSet<PathBuf> = (0..BATCH)
                .map(|_| fresh())
                .map(|(k, v)| raw_write(&raw_root, &k, &v))
                .collect();
            dirs.iter().for_each(|d| fsync_dir(d));
        })
    });
    g.bench_function(BenchmarkId::new("plugin", "batched_1000"), |b| {
        b.iter(|| {
            rt.block_on(store.put_many((0..BATCH).map(|_| fresh()).collect()))
                .unwrap()
        })
    });
    g.finish();

    let keys: Vec<(BlobKey, Bytes)> = (0..10_000).map(|i| record(u64::MAX - i)).collect();
    for (k, v) in &keys {
        raw_write(&raw_root, k, v);
    }
    rt.block_on(store.put_many(keys.clone())).unwrap();
    let i = AtomicU64::new(0);
    let pick = || &keys[(i.fetch_add(7919, Ordering::Relaxed) % keys.len() as u64) as usize].0;
    let mut g = c.benchmark_group("fs_get_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("raw", "unbatched"), |b| {
        b.iter(|| Bytes::from(fs::read(raw_root.join(pick().as_str())).unwrap()))
    });
    g.bench_function(BenchmarkId::new("plugin", "unbatched"), |b| {
        b.iter(|| rt.block_on(store.get(pick())).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
