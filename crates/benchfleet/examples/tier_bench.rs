//! Tiered-store figures for docs/benchmarks/storage-tiers.md, on the embedded default storage
//! as `benchfleet` opens it (catalog and hot records in one redb file, warm and cold tiers as
//! files through the fs plugin, fsync on):
//! (2) hot → warm migration throughput, next to the `zstd -3` command-line tool compressing the
//!     same records, and the compression ratio of each tier;
//! (3) single-record read latency from the cold tier on local disk (no cache).
//!
//! ```text
//! cargo run --release -p benchfleet --example tier_bench -- [RECORDS] [DIR]
//! ```
//! RECORDS defaults to 20000; DIR (default: a temporary directory) holds the store and the files
//! given to `zstd`. With `TIER_BENCH_WARM_ONLY=1` it stops after the hot → warm migration (for
//! profiling it).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use benchfleet::StorageSettings;
use benchfleet::model::{
    Measurement, NodeKind, Outcome, RunId, RunRecord, SCHEMA_VERSION, Timestamp,
};
use benchfleet::store::{MigrateOptions, RecordQuery, Storage, TierPolicy};

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn zstd(args: &[&str], files: &[PathBuf]) -> std::process::Output {
    let out = Command::new("zstd")
        .args(args)
        .args(files)
        .output()
        .expect("zstd on PATH (apt-get install zstd)");
    assert!(
        out.status.success(),
        "zstd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Compression speed in MB/s from `zstd -b`'s result line (`... (x15.0), 310.2 MB/s, ...`).
fn bench_speed(out: &std::process::Output) -> f64 {
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let line = text
        .rsplit(['\r', '\n'])
        .find(|l| l.contains("MB/s"))
        .unwrap_or_else(|| panic!("no MB/s in zstd -b output: {text}"));
    let before = line.split("MB/s").next().unwrap();
    before
        .rsplit([',', ' '])
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("cannot read a speed from {line:?}"))
}

fn write_files(dir: &Path, recs: &[Vec<u8>]) -> Vec<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    recs.iter()
        .enumerate()
        .map(|(i, r)| {
            let p = dir.join(format!("{i}.json"));
            std::fs::write(&p, r).unwrap();
            p
        })
        .collect()
}

#[tokio::main]
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
    let canon: Vec<Vec<u8>> = recs.iter().map(RunRecord::canonical_bytes).collect();
    let total: usize = canon.iter().map(Vec::len).sum();
    let mb = |secs: f64| total as f64 / secs / 1e6;
    println!(
        "records: {n}, canonical bytes: {total} ({:.0} B/record)",
        total as f64 / n as f64
    );

    // The store, as `benchfleet` opens the embedded default; records written in batches of
    // 1000 like the runner's.
    let root = dir.join("store");
    let _ = std::fs::remove_dir_all(&root);
    let mut settings = StorageSettings::embedded(&root);
    if let Some(b) = std::env::var("TIER_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
    {
        settings.policy.migrate_batch_records = b;
    }
    let storage = benchfleet::open_storage(&settings)
        .await
        .expect("open the embedded storage");
    let t = Instant::now();
    for chunk in recs.chunks(1000) {
        storage.write_records(chunk).await.unwrap();
    }
    storage.release_lease().await.unwrap();
    println!(
        "stored in the hot tier in batches of 1000: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let as_of = |d: i64| MigrateOptions {
        now: Some(Timestamp::from_unix_seconds(now_s - 200 * DAY + d * DAY)),
        ..Default::default()
    };

    // (2) hot → warm.
    let t = Instant::now();
    let r = benchfleet::store::migrate(&storage, &as_of(10))
        .await
        .unwrap();
    let ours_secs = t.elapsed().as_secs_f64();
    assert_eq!(r.to_warm, n);
    let ours = mb(ours_secs);
    println!(
        "benchfleet hot->warm migration: {ours_secs:.3} s, {ours:.1} MB/s of records (read + verify, zstd -3 with the suite dictionary, write, read back + verify, journal, flip, delete; fsync on)"
    );

    if std::env::var_os("TIER_BENCH_WARM_ONLY").is_some() {
        return;
    }
    // The same records through the zstd command-line tool.
    let stream = dir.join("records.jsonl");
    {
        let mut f = std::fs::File::create(&stream).unwrap();
        for r in &canon {
            f.write_all(r).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    let mut best = f64::MAX;
    let mut stream_out = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let out = zstd(&["-3", "-q", "-f", "-c"], std::slice::from_ref(&stream));
        best = best.min(t.elapsed().as_secs_f64());
        stream_out = out.stdout.len();
    }
    println!(
        "zstd -3 CLI, the records as one stream (best of 3): {best:.3} s, {:.1} MB/s, ratio {:.2}x; migration / this: {:.2}x",
        mb(best),
        total as f64 / stream_out as f64,
        ours / mb(best)
    );

    let files = write_files(&dir.join("per-record"), &canon);
    let zst_bytes = |files: &[PathBuf]| -> u64 {
        files
            .iter()
            .map(|p| {
                std::fs::metadata(p.with_extension("json.zst"))
                    .unwrap()
                    .len()
            })
            .sum()
    };
    // `zstd -3` on the same records as they are kept (one per file), without a dictionary.
    let t = Instant::now();
    zstd(&["-3", "-q", "-f"], &files);
    let plain_secs = t.elapsed().as_secs_f64();
    println!(
        "zstd -3 CLI, one file per record, no dictionary: {plain_secs:.3} s, {:.1} MB/s, ratio {:.2}x; migration / this: {:.2}x",
        mb(plain_secs),
        total as f64 / zst_bytes(&files) as f64,
        ours / mb(plain_secs)
    );
    let dict = dir.join("dict.zstd");
    let dict_arg = dict.to_str().unwrap();
    zstd(
        &["--train", "-q", "-f", "--maxdict=16384", "-o", dict_arg],
        &files[..1000.min(files.len())],
    );
    let t = Instant::now();
    zstd(&["-3", "-q", "-f", "-D", dict_arg], &files);
    let per_secs = t.elapsed().as_secs_f64();
    let z = zst_bytes(&files);
    println!(
        "zstd -3 -D dict CLI, one file per record: {per_secs:.3} s, {:.1} MB/s, ratio {:.2}x; migration / this: {:.2}x",
        mb(per_secs),
        total as f64 / z as f64,
        ours / mb(per_secs)
    );
    let out = zstd(&["-b3", "-i2", "-D", dict_arg], &files);
    let codec = bench_speed(&out);
    println!(
        "zstd -b3 -D dict (the CLI's in-memory benchmark: one frame per record, no I/O): {codec:.1} MB/s; migration / this: {:.2}x",
        ours / codec
    );
    let _ = std::fs::remove_dir_all(dir.join("per-record"));

    let st = benchfleet::store::status(&storage).await.unwrap();
    println!(
        "warm tier: ratio {:.2}x ({} records, {} objects, {} B stored; dictionary {} B not included)",
        st.tiers[1].ratio,
        st.tiers[1].records,
        st.tiers[1].objects,
        st.tiers[1].stored_bytes,
        st.dictionary_bytes
    );

    // warm → cold, default block and segment sizes.
    let t = Instant::now();
    let r = benchfleet::store::migrate(&storage, &as_of(100))
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.to_cold, n);
    let st = benchfleet::store::status(&storage).await.unwrap();
    println!(
        "warm->cold migration: {secs:.3} s, {:.1} MB/s; cold tier: ratio {:.2}x, {} segments, {} B",
        mb(secs),
        st.tiers[2].ratio,
        st.tiers[2].objects,
        st.tiers[2].stored_bytes
    );

    // (3) single-record reads from the cold tier through the fs plugin, no cache: one range
    // read, one block decompression.
    let entries = storage
        .catalog
        .query_records(&RecordQuery::default())
        .await
        .unwrap();
    let reader = Storage::tiered(
        storage.catalog.clone(),
        storage.tiers.clone(),
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
        "cold single-record read (fs plugin, no cache, page cache warm), {} reads: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
}
