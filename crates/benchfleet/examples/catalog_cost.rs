//! What the catalog costs next to the records it describes (issue 20), on the embedded default
//! storage as `benchfleet` opens it (catalog and hot records in one redb file, warm and cold
//! tiers as files, fsync on).
//!
//! ```text
//! cargo run --release -p benchfleet --example catalog_cost -- [RECORDS] [DIR] [SHAPE]
//! cargo run --release -p benchfleet --features postgres --example catalog_cost -- \
//!     RECORDS DIR SHAPE --postgres postgres://USER@HOST:PORT/DB
//! ```
//! RECORDS defaults to 10000; DIR (default: a temporary directory) holds the store; SHAPE is
//! `dag` (default: one run of RECORDS `touch` jobs, like `cargo xtask bench dag-vs-ninja`) or
//! `history` (RECORDS runs of one benchmark, one record each). It stores the records in batches of
//! 1000, migrates them to warm and then to cold, and prints after each step the raw record bytes,
//! the catalog's own bytes (`tier status`), the redb file, the warm and cold directories and the
//! ratios; with `history` it also times a history query (every record of the one benchmark).
//!
//! With `--postgres URL` the catalog and the hot tier are PostgreSQL (a schema of their own,
//! dropped at the end; warm and cold stay files under DIR), and the sizes are
//! `pg_total_relation_size` of the catalog's tables (runs, record entries in either layout, meta,
//! daily summary, alerts) and of the hot tier's (`bf_hot_packs`, `bf_blobs`), read with `psql`
//! (which must be on `PATH`). The store is `VACUUM`ed before each measurement, as autovacuum
//! would do, so that dead row versions left by rewrites are not counted as live data. With
//! `CATALOG_COST_KEEP=1` in the environment the schema is kept (and named) for inspection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use benchfleet::StorageSettings;
use benchfleet::model::{
    Measurement, NodeKind, Outcome, RunId, RunRecord, SCHEMA_VERSION, Timestamp,
};
use benchfleet::store::{MigrateOptions, RecordQuery, Storage};

const DAY: i64 = 86_400;

fn rng() -> impl FnMut() -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn tags(commit: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert("git.commit".into(), commit.to_owned());
    tags.insert("host.name".into(), "ci-runner-07".into());
    tags.insert("run.concurrent".into(), "true".into());
    tags
}

fn measurement(rnd: &mut impl FnMut() -> u64, base: u64) -> Measurement {
    let wall = base + rnd() % (base / 5);
    Measurement {
        wall_ns: wall,
        user_ns: wall / 3 + rnd() % 100_000,
        sys_ns: wall / 2 + rnd() % 100_000,
        max_rss_bytes: 1_800_000 + rnd() % 400_000,
        minor_faults: 80 + rnd() % 40,
        major_faults: 0,
        voluntary_context_switches: rnd() % 3,
        involuntary_context_switches: rnd() % 4,
        block_in: 0,
        block_out: 0,
    }
}

/// One run of `n` jobs `touch out/nNNNNN`, started one after the other (two at a time).
fn dag(n: usize, start_s: i64) -> Vec<RunRecord> {
    let mut rnd = rng();
    let run_id: RunId = "01HZY3K4MZ8Q6X2V1B00000001".parse().unwrap();
    let commit = format!("{:016x}{:016x}{:08x}", rnd(), rnd(), rnd() as u32);
    (0..n)
        .map(|i| RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.clone(),
            suite: "dag".into(),
            name: format!("n{i:06}"),
            kind: NodeKind::Job,
            command: format!("touch out/n{i:06}"),
            parameters: BTreeMap::new(),
            iteration: 0,
            started_at: Timestamp(start_s * 1_000_000_000 + (i as i64 / 2) * 1_300_000),
            measurement: measurement(&mut rnd, 1_000_000),
            outcome: Outcome::Success,
            stderr_tail: None,
            tags: tags(&commit),
        })
        .collect()
}

/// `n` runs of the one benchmark `gzip-6`, one record each, ten minutes apart.
fn history(n: usize, start_s: i64) -> Vec<RunRecord> {
    let mut rnd = rng();
    (0..n)
        .map(|i| {
            let commit = format!("{:016x}{:016x}{:08x}", rnd(), rnd(), rnd() as u32);
            RunRecord {
                schema_version: SCHEMA_VERSION,
                run_id: format!("01HZY3K4MZ8Q6X2V1B{i:08}").parse().unwrap(),
                suite: "quickstart".into(),
                name: "gzip-6".into(),
                kind: NodeKind::Benchmark,
                command: "gzip -6 -c input.txt".into(),
                parameters: BTreeMap::from([("level".into(), "6".into())]),
                iteration: 0,
                started_at: Timestamp((start_s + i as i64 * 600) * 1_000_000_000),
                measurement: measurement(&mut rnd, 20_000_000),
                outcome: Outcome::Success,
                stderr_tail: None,
                tags: tags(&commit),
            }
        })
        .collect()
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The PostgreSQL store of a run with `--postgres`: its URL and schema.
struct Pg {
    url: String,
    schema: String,
}

/// Catalog tables of both layouts (the partitioned `bf_records` of layout 1 is summed over its
/// partitions).
const PG_CATALOG: &str = "SELECT coalesce(sum(pg_total_relation_size(c)), 0) \
    FROM unnest(ARRAY['bf_runs','bf_chunks','bf_meta','bf_daily_summary','bf_alerts','bf_record_digests']) t(n) \
    CROSS JOIN LATERAL (SELECT to_regclass(current_schema() || '.' || t.n) c) r WHERE c IS NOT NULL";
const PG_LEGACY: &str = "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) \
    FROM pg_partition_tree(to_regclass(current_schema() || '.bf_records'))";
const PG_HOT: &str = "SELECT coalesce(sum(pg_total_relation_size(c)), 0) \
    FROM unnest(ARRAY['bf_hot_packs','bf_blobs']) t(n) \
    CROSS JOIN LATERAL (SELECT to_regclass(current_schema() || '.' || t.n) c) r WHERE c IS NOT NULL";

impl Pg {
    fn psql(&self, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args([self.url.as_str(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("SET search_path TO {}", self.schema))
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn bytes(&self, sql: &str) -> u64 {
        self.psql(sql).parse().expect("a size")
    }

    /// (catalog tables, hot tier tables), after a VACUUM.
    fn sizes(&self) -> (u64, u64) {
        self.psql("VACUUM");
        (
            self.bytes(PG_CATALOG) + self.bytes(PG_LEGACY),
            self.bytes(PG_HOT),
        )
    }
}

async fn report(step: &str, storage: &Storage, root: &Path, raw: u64, pg: Option<&Pg>) {
    let s = benchfleet::store::status(storage).await.unwrap();
    if let Some(pg) = pg {
        let (catalog, hot) = pg.sizes();
        let (warm, cold) = (dir_bytes(&root.join("warm")), dir_bytes(&root.join("cold")));
        let pct = |b: u64| 100.0 * b as f64 / raw as f64;
        let tiers: Vec<String> = s
            .tiers
            .iter()
            .map(|t| format!("{} {} rec/{} B", t.tier, t.records, t.stored_bytes))
            .collect();
        let shown = s
            .catalog
            .as_ref()
            .map_or("n/a".to_owned(), |c| format!("{} B", c.bytes));
        println!(
            "{step:>5}: [{}] catalog {catalog} B ({:.1}%; tier status: {shown}) | hot tables {hot} B ({:.1}%) | warm dir {warm} B | cold dir {cold} B | whole store {} B ({:.1}%)",
            tiers.join(", "),
            pct(catalog),
            pct(hot),
            catalog + hot + warm + cold,
            pct(catalog + hot + warm + cold),
        );
        return;
    }
    let file = std::fs::metadata(root.join("catalog.redb")).map_or(0, |m| m.len());
    let (warm, cold) = (dir_bytes(&root.join("warm")), dir_bytes(&root.join("cold")));
    let pct = |b: u64| 100.0 * b as f64 / raw as f64;
    let tiers: Vec<String> = s
        .tiers
        .iter()
        .map(|t| format!("{} {} rec/{} B", t.tier, t.records, t.stored_bytes))
        .collect();
    let catalog = s.catalog.as_ref().map(|c| c.bytes);
    println!(
        "{step:>5}: [{}] catalog {} | redb file {file} B ({:.1}%) | warm dir {warm} B | cold dir {cold} B | whole store {} B ({:.1}%)",
        tiers.join(", "),
        catalog.map_or("n/a".to_owned(), |c| format!("{c} B ({:.1}%)", pct(c))),
        pct(file),
        file + warm + cold,
        pct(file + warm + cold),
    );
}

async fn time_history(storage: &Storage, label: &str) {
    let mut best = f64::MAX;
    let mut got = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let rows = storage
            .catalog
            .query_records(&RecordQuery {
                suite: Some("quickstart".into()),
                name: Some("gzip-6".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        got = rows.len();
    }
    println!("history of gzip-6 ({label}): {got} rows, best of 5 {best:.4} s");
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let pg = args.iter().position(|a| a == "--postgres").map(|i| {
        let url = args.get(i + 1).cloned().expect("--postgres URL");
        args.drain(i..i + 2);
        Pg {
            url,
            schema: format!("bfcost_{}", std::process::id()),
        }
    });
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    let shape = args.get(3).map_or("dag", String::as_str);
    let start_s = 20_000 * DAY;
    let recs = match shape {
        "history" => history(n, start_s),
        _ => dag(n, start_s),
    };
    let raw: u64 = recs.iter().map(|r| r.canonical_bytes().len() as u64).sum();
    println!(
        "{shape}: {n} records, {raw} raw record bytes ({:.0} B/record)",
        raw as f64 / n as f64
    );
    let root = dir.join("store");
    let _ = std::fs::remove_dir_all(&root);
    let settings = match &pg {
        Some(pg) => StorageSettings {
            catalog: benchfleet::CatalogChoice::Postgres {
                url: pg.url.clone(),
                options: benchfleet::PgSettings {
                    schema: Some(pg.schema.clone()),
                    ..Default::default()
                },
            },
            hot: benchfleet::BlobChoice::PostgresCatalog,
            ..StorageSettings::embedded(&root)
        },
        None => StorageSettings::embedded(&root),
    };
    let storage = benchfleet::open_storage(&settings).await.unwrap();
    let t = Instant::now();
    for chunk in recs.chunks(1000) {
        storage.write_records(chunk).await.unwrap();
    }
    storage.release_lease().await.unwrap();
    println!("stored in {:.3} s", t.elapsed().as_secs_f64());
    report("hot", &storage, &root, raw, pg.as_ref()).await;
    if shape == "history" {
        time_history(&storage, "hot").await;
    }
    let last_s = recs.iter().map(|r| r.started_at.0).max().unwrap_or(0) / 1_000_000_000;
    let as_of = |days: i64| MigrateOptions {
        now: Some(Timestamp::from_unix_seconds(last_s + days * DAY)),
        ..Default::default()
    };
    // Default policy: hot for 7 days, warm until 90.
    let t = Instant::now();
    benchfleet::store::migrate(&storage, &as_of(30))
        .await
        .unwrap();
    println!("to warm in {:.3} s", t.elapsed().as_secs_f64());
    report("warm", &storage, &root, raw, pg.as_ref()).await;
    let t = Instant::now();
    benchfleet::store::migrate(&storage, &as_of(400))
        .await
        .unwrap();
    println!("to cold in {:.3} s", t.elapsed().as_secs_f64());
    report("cold", &storage, &root, raw, pg.as_ref()).await;
    if shape == "history" {
        time_history(&storage, "cold").await;
    }
    let v = benchfleet::store::verify(&storage).await.unwrap();
    println!(
        "verify: {} records checked, {} problems",
        v.checked,
        v.problems.len()
    );
    drop(storage);
    if let Some(pg) = &pg {
        if std::env::var_os("CATALOG_COST_KEEP").is_some() {
            println!("kept schema {}", pg.schema);
        } else {
            pg.psql(&format!("DROP SCHEMA {} CASCADE", pg.schema));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
