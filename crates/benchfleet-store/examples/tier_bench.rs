//! Tiered-store figures for docs/benchmarks/storage-tiers.md:
//! (2) hot → warm migration throughput, next to the `zstd -3` command-line tool compressing the
//!     same records, and the compression ratio of each tier;
//! (3) single-record read latency from the cold tier on local disk (no cache).
//!
//! ```text
//! cargo run --release -p benchfleet-store --example tier_bench -- [RECORDS] [DIR]
//! ```
//! RECORDS defaults to 20000; DIR (default: a temporary directory) holds the on-disk cold tier
//! and the file given to `zstd`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_model::{
    Measurement, NodeKind, Outcome, RunId, RunRecord, SCHEMA_VERSION, Timestamp,
};
use benchfleet_store::mem::{MemBlobStore, MemCatalog};
use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, MigrateOptions, PutOutcome, RecordQuery, Result,
    Storage, StoreError, TierPolicy, TierStores,
};

const DAY: i64 = 86_400;

/// Records shaped like the quickstart's: 6 benchmarks, runs of 10–30 iterations, tags.
fn records(n: usize, now_s: i64) -> Vec<RunRecord> {
    let names = [
        "gzip-1",
        "gzip-6",
        "gzip-9",
        "sort-lexical",
        "sort-numeric",
        "sort-general-numeric",
    ];
    let mut out = Vec::with_capacity(n);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut run = 0u32;
    while out.len() < n {
        run += 1;
        let run_id: RunId = format!("01HZY3K4MZ8Q6X2V1B{run:08}").parse().unwrap();
        let commit = format!("{:016x}{:016x}{:08x}", rnd(), rnd(), rnd() as u32);
        let started = (now_s - 200 * DAY + i64::from(run) * 600) * 1_000_000_000;
        for (k, name) in names.iter().enumerate() {
            let base = 5_000_000 + (k as u64) * 3_000_000;
            for it in 0..(10 + run % 21) {
                if out.len() == n {
                    break;
                }
                let wall = base + rnd() % (base / 10);
                let user = wall * 8 / 10 + rnd() % 100_000;
                let sys = wall / 10 + rnd() % 50_000;
                let mut tags = BTreeMap::new();
                tags.insert("git.commit".into(), commit.clone());
                tags.insert("branch".into(), "main".into());
                tags.insert("run.concurrent".into(), "false".into());
                let mut params = BTreeMap::new();
                if let Some(level) = name.strip_prefix("gzip-") {
                    params.insert("level".into(), level.into());
                }
                out.push(RunRecord {
                    schema_version: SCHEMA_VERSION,
                    run_id: run_id.clone(),
                    suite: "quickstart".into(),
                    name: (*name).into(),
                    kind: NodeKind::Benchmark,
                    command: if name.starts_with("gzip") {
                        format!(
                            "gzip -{} -c /home/ci/project/.benchfleet/out/generate/input.txt",
                            &name[5..]
                        )
                    } else {
                        format!(
                            "sort {} /home/ci/project/.benchfleet/out/generate/input.txt",
                            if *name == "sort-numeric" {
                                "-n"
                            } else if *name == "sort-general-numeric" {
                                "-g"
                            } else {
                                ""
                            }
                        )
                    },
                    parameters: params,
                    iteration: it,
                    started_at: Timestamp(
                        started + i64::from(it) * 37_000_000 + (k as i64) * 1_000_000_000,
                    ),
                    measurement: Measurement {
                        wall_ns: wall,
                        user_ns: user,
                        sys_ns: sys,
                        max_rss_bytes: 3_000_000 + rnd() % 2_000_000,
                        minor_faults: 200 + rnd() % 400,
                        major_faults: 0,
                        voluntary_context_switches: rnd() % 20,
                        involuntary_context_switches: rnd() % 50,
                        block_in: 0,
                        block_out: rnd() % 8,
                    },
                    outcome: Outcome::Success,
                    stderr_tail: None,
                    tags,
                });
            }
        }
    }
    out
}

/// A minimal on-disk blob store (one file per key; positioned range reads) for the cold tier.
#[derive(Debug)]
struct Disk {
    root: PathBuf,
}

impl Disk {
    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::io("disk", "io", e)
}

#[async_trait]
impl BlobStore for Disk {
    fn name(&self) -> &str {
        "disk"
    }
    fn capability(&self) -> Capability {
        Capability::FULL
    }
    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        let p = self.path(key);
        if p.exists() {
            return Ok(PutOutcome::AlreadyExists);
        }
        std::fs::create_dir_all(p.parent().unwrap()).map_err(io)?;
        let mut f = std::fs::File::create(&p).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(PutOutcome::Created)
    }
    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        Ok(Bytes::from(std::fs::read(self.path(key)).map_err(io)?))
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        Ok(std::fs::metadata(self.path(key)).ok().map(|m| BlobMeta {
            key: key.clone(),
            size: m.len(),
        }))
    }
    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let _ = std::fs::remove_file(self.path(key));
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<BlobMeta>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if let Ok(k) = BlobKey::new(p.strip_prefix(root).unwrap().to_str().unwrap())
                {
                    out.push(BlobMeta {
                        key: k,
                        size: e.metadata().map(|m| m.len()).unwrap_or(0),
                    });
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.retain(|m| m.key.has_prefix(prefix));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let mut f = std::fs::File::open(self.path(key)).map_err(io)?;
        f.seek(SeekFrom::Start(range.start)).map_err(io)?;
        let mut buf = vec![0; (range.end - range.start) as usize];
        f.read_exact(&mut buf).map_err(io)?;
        Ok(Bytes::from(buf))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let now_s = 20_000 * DAY;
    let recs = records(n, now_s);
    let total: usize = recs.iter().map(|r| r.canonical_bytes().len()).sum();
    println!(
        "records: {n}, canonical bytes: {total} ({:.0} B/record)",
        total as f64 / n as f64
    );

    // (2) hot → warm, in memory (the codec and the state machine, not a disk).
    let as_of = |d: i64| MigrateOptions {
        now: Some(Timestamp::from_unix_seconds(now_s - 200 * DAY + d * DAY)),
        ..Default::default()
    };
    // Dictionary training happens once per suite (first batch); time it apart.
    {
        let samples: Vec<Vec<u8>> = recs
            .iter()
            .take(1000)
            .map(|r| r.canonical_bytes())
            .collect();
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        let t = Instant::now();
        let d = benchfleet_store::codec::train_dictionary(&refs, 16 * 1024);
        println!(
            "dictionary training (once per suite, 1000 samples): {:.3} s, {} B",
            t.elapsed().as_secs_f64(),
            d.map_or(0, |d| d.len())
        );
    }
    for dict_bytes in [0usize] {
        let s = Storage::tiered(
            Arc::new(MemCatalog::new()),
            TierStores::single(Arc::new(MemBlobStore::new())),
            TierPolicy {
                warm_dictionary_bytes: dict_bytes,
                ..TierPolicy::default()
            },
        );
        s.write_records(&recs).await.unwrap();
        let t = Instant::now();
        benchfleet_store::migrate(&s, &as_of(10)).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        let st = benchfleet_store::status(&s).await.unwrap();
        println!(
            "hot->warm migration without dictionary: {secs:.3} s, {:.1} MB/s, warm ratio {:.2}x",
            total as f64 / secs / 1e6,
            st.tiers[1].ratio
        );
    }
    let s = Storage::tiered(
        Arc::new(MemCatalog::new()),
        TierStores::single(Arc::new(MemBlobStore::new())),
        TierPolicy::default(),
    );
    s.write_records(&recs).await.unwrap();
    let t = Instant::now();
    let r = benchfleet_store::migrate(&s, &as_of(10)).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.to_warm, n);
    let ours = total as f64 / secs / 1e6;
    println!(
        "hot->warm migration: {secs:.3} s, {ours:.1} MB/s of records (zstd -3 + dictionary, read+verify, write, read back+verify, journal, flip, delete)"
    );

    if std::env::var_os("TIER_BENCH_WARM_ONLY").is_some() {
        return;
    }
    // The same records through the zstd command-line tool.
    let file = dir.join("records.jsonl");
    {
        let mut f = std::fs::File::create(&file).unwrap();
        for r in &recs {
            f.write_all(&r.canonical_bytes()).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    let mut best = f64::MAX;
    let mut zstd_out = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new("zstd")
            .args(["-3", "-q", "-f", "-c"])
            .arg(&file)
            .output()
            .expect("zstd on PATH (apt-get install zstd)");
        best = best.min(t.elapsed().as_secs_f64());
        zstd_out = out.stdout.len() as u64;
    }
    let cli = total as f64 / best / 1e6;
    println!(
        "zstd -3 CLI on the concatenated records: {best:.3} s, {cli:.1} MB/s, ratio {:.2}x",
        total as f64 / zstd_out as f64
    );
    println!(
        "migration / CLI (one stream) throughput: {:.2}x",
        ours / cli
    );

    // The CLI on the same records one frame each (what the warm tier stores): one process,
    // one file per record, with a dictionary trained by `zstd --train` on the same records.
    let per = dir.join("per-record");
    let _ = std::fs::remove_dir_all(&per);
    std::fs::create_dir_all(&per).unwrap();
    let mut names = Vec::with_capacity(recs.len());
    for (i, r) in recs.iter().enumerate() {
        let p = per.join(format!("{i}.json"));
        std::fs::write(&p, r.canonical_bytes()).unwrap();
        names.push(p);
    }
    let dict = dir.join("dict.zstd");
    let trained = std::process::Command::new("zstd")
        .args(["--train", "-q", "-f", "--maxdict=16384", "-o"])
        .arg(&dict)
        .args(&names[..1000.min(names.len())])
        .status()
        .unwrap();
    assert!(trained.success());
    let t = Instant::now();
    let status = std::process::Command::new("zstd")
        .args(["-3", "-q", "-f", "-D"])
        .arg(&dict)
        .args(&names)
        .status()
        .unwrap();
    let per_secs = t.elapsed().as_secs_f64();
    assert!(status.success());
    let z: u64 = names
        .iter()
        .map(|p| {
            std::fs::metadata(p.with_extension("json.zst"))
                .unwrap()
                .len()
        })
        .sum();
    let cli_per = total as f64 / per_secs / 1e6;
    println!(
        "zstd -3 -D dict CLI, one file per record: {per_secs:.3} s, {cli_per:.1} MB/s, ratio {:.2}x; migration / this: {:.2}x",
        total as f64 / z as f64,
        ours / cli_per
    );
    let _ = std::fs::remove_dir_all(&per);

    let st = benchfleet_store::status(&s).await.unwrap();
    println!(
        "warm tier: ratio {:.2}x ({} records, {} B stored; dictionary {} B not included)",
        st.tiers[1].ratio, st.tiers[1].records, st.tiers[1].stored_bytes, st.dictionary_bytes
    );

    // Cold: warm → cold into an on-disk store, default block/segment sizes.
    let cold_dir = dir.join("cold-tier");
    let _ = std::fs::remove_dir_all(&cold_dir);
    let disk = Arc::new(Disk { root: cold_dir });
    let tiers = TierStores {
        hot: s.tiers.hot.clone(),
        warm: s.tiers.warm.clone(),
        cold: disk.clone(),
    };
    let s2 = Storage::tiered(s.catalog.clone(), tiers.clone(), TierPolicy::default());
    let t = Instant::now();
    let r = benchfleet_store::migrate(&s2, &as_of(100)).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.to_cold, n);
    let st = benchfleet_store::status(&s2).await.unwrap();
    println!(
        "warm->cold migration: {secs:.3} s, {:.1} MB/s; cold tier: ratio {:.2}x, {} segments, {} B",
        total as f64 / secs / 1e6,
        st.tiers[2].ratio,
        st.tiers[2].objects,
        st.tiers[2].stored_bytes
    );

    // (3) single-record reads from the cold tier, no cache: one range read + one block decode.
    let entries = s2
        .catalog
        .query_records(&RecordQuery::default())
        .await
        .unwrap();
    let reader = Storage::tiered(
        s2.catalog.clone(),
        tiers,
        TierPolicy {
            cache_bytes: 0,
            ..TierPolicy::default()
        },
    );
    let mut lat = Vec::new();
    let step = (entries.len() / 2000).max(1);
    for i in (0..entries.len()).step_by(step) {
        let e = &entries[(i * 7919) % entries.len()];
        let t = Instant::now();
        let b = reader.read_bytes(e).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(b.len() as u64, e.size);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "cold single-record read (no cache, page cache warm), {} reads: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
}
