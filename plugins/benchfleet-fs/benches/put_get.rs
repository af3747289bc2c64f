//! Issue 5, benchmark 1 for the fs plugin: 1 KiB record put and get throughput through
//! `FsStore`, unbatched and batched, next to raw file writes in the same run.
//!
//! **What "raw" does** (the same durability the issue demands of the plugin, written the
//! obvious way with `std::fs` on the calling thread): per record, create a temporary file in the
//! shard directory (`O_EXCL`), write, `fdatasync`, `rename` to the final name; then `fsync` the
//! directory — per record when unbatched, once per distinct directory after a batch. Raw gets are
//! `std::fs::read` on the calling thread; the `get_in_task` group calls both from inside a task
//! on a multi-thread runtime (how the runner calls the store), 100 reads per task.
//!
//! Both roots use the content layout `records/ab/cd/<hex>` with every shard directory created up
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

/// The raw baseline: temporary file, write, fdatasync, rename. Returns the directory to fsync.
fn raw_write(root: &Path, key: &BlobKey, bytes: &[u8]) -> PathBuf {
    let path = root.join(key.as_str());
    let dir = path.parent().unwrap().to_path_buf();
    let tmp = dir.join(format!(
        ".tmp.{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs::rename(&tmp, &path).unwrap();
    dir
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

    // From inside a task on a runtime worker thread, 100 reads per task.
    let keys = std::sync::Arc::new(keys);
    let mut g = c.benchmark_group("fs_get_in_task_1KiB");
    g.throughput(Throughput::Elements(100));
    let start = AtomicU64::new(0);
    let batch = || {
        let s = start.fetch_add(100 * 7919, Ordering::Relaxed);
        (0..100u64).map(move |j| ((s + j * 7919) % 10_000) as usize)
    };
    g.bench_function(BenchmarkId::new("raw", "std_fs_read"), |b| {
        b.iter(|| {
            let (keys, root, idx) = (keys.clone(), raw_root.clone(), batch());
            rt.block_on(rt.spawn(async move {
                for i in idx {
                    let _ = Bytes::from(fs::read(root.join(keys[i].0.as_str())).unwrap());
                }
            }))
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("raw", "tokio_fs_read"), |b| {
        b.iter(|| {
            let (keys, root, idx) = (keys.clone(), raw_root.clone(), batch());
            rt.block_on(rt.spawn(async move {
                for i in idx {
                    let _ = Bytes::from(
                        tokio::fs::read(root.join(keys[i].0.as_str()))
                            .await
                            .unwrap(),
                    );
                }
            }))
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("plugin", "get"), |b| {
        b.iter(|| {
            let (keys, store, idx) = (keys.clone(), store.clone(), batch());
            rt.block_on(rt.spawn(async move {
                for i in idx {
                    store.get(&keys[i].0).await.unwrap();
                }
            }))
            .unwrap()
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
