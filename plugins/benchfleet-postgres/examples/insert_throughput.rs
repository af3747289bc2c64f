//! Catalog insert throughput next to a raw `COPY` of the same rows, in the same run.
//!
//! ```text
//! BENCHFLEET_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres \
//!     cargo run --release -p benchfleet-postgres --example insert_throughput -- [N] [BATCH]
//! ```
//! Inserts N entries (default 100,000) with `PgStore::insert_records` in batches of BATCH
//! (default 5,000) into one schema, and the same rows with `COPY … FROM STDIN` (one COPY per
//! batch) into another schema of identical shape, alternating three rounds; prints records per
//! second for each and the ratio of the medians.

use std::time::Instant;

use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, Timestamp};
use benchfleet_postgres::{PgOptions, PgStore};
use benchfleet_store::{Catalog, RecordEntry, Tier};
use sqlx::postgres::PgPoolCopyExt;

fn entries(round: u32, n: usize, now_ns: i64) -> Vec<RecordEntry> {
    let run: RunId = format!("01J00000000000000000000{round:03}")
        .parse()
        .expect("run id");
    (0..n)
        .map(|i| {
            let digest = Digest::of(format!("{round}/{i}").as_bytes());
            RecordEntry {
                digest,
                run_id: run.clone(),
                suite: "throughput".into(),
                name: format!("bench-{}", i % 50),
                kind: NodeKind::Benchmark,
                iteration: (i / 50) as u32,
                started_at: Timestamp(now_ns + i as i64 * 1_000),
                measurement: Measurement {
                    wall_ns: 1_000_000 + (i as u64 * 7919) % 100_000,
                    user_ns: 600_000,
                    sys_ns: 100_000,
                    max_rss_bytes: 8 << 20,
                    minor_faults: 300,
                    ..Default::default()
                },
                outcome: Outcome::Success,
                size: 900,
                tier: Tier::Hot,
                location: format!(
                    "records/{}/{}/{}",
                    &digest.to_hex()[..2],
                    &digest.to_hex()[2..4],
                    digest.to_hex()
                ),
            }
        })
        .collect()
}

/// The same rows as `COPY` text: one line per entry, the columns of `bf_records`.
fn copy_text(batch: &[RecordEntry]) -> String {
    let mut s = String::with_capacity(batch.len() * 400);
    for e in batch {
        let m = &e.measurement;
        let us = e.started_at.0.div_euclid(1_000);
        let outcome = serde_json::to_string(&e.outcome)
            .unwrap()
            .replace('\\', "\\\\");
        s.push_str(&format!(
            "\\\\x{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            e.digest.to_hex(),
            e.run_id,
            e.suite,
            e.name,
            e.kind.as_str(),
            e.iteration,
            iso_utc(us),
            e.started_at.0,
            m.wall_ns as i64,
            m.user_ns as i64,
            m.sys_ns as i64,
            m.max_rss_bytes as i64,
            m.minor_faults as i64,
            m.major_faults as i64,
            m.voluntary_context_switches as i64,
            m.involuntary_context_switches as i64,
            m.block_in as i64,
            m.block_out as i64,
            if e.outcome.is_success() { "t" } else { "f" },
            outcome,
            e.size as i64,
            e.tier.as_str(),
            e.location,
        ));
    }
    s
}

/// `us` microseconds after the epoch as an exact timestamptz literal (UTC).
fn iso_utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}+00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("BENCHFLEET_TEST_POSTGRES_URL")
        .map_err(|_| "set BENCHFLEET_TEST_POSTGRES_URL (e.g. from `cargo xtask test`'s server)")?;
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64;
    let tag = std::process::id();
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for round in 0..3u32 {
        let opts = |s: &str| PgOptions {
            schema: Some(s.to_string()),
            ..PgOptions::default()
        };
        let a = PgStore::connect(&url, opts(&format!("bf_tp_{tag}_{round}_ours"))).await?;
        let b = PgStore::connect(&url, opts(&format!("bf_tp_{tag}_{round}_raw"))).await?;
        let rows = entries(round, n, now_ns);
        // Same month for every row: both schemas have its partition from connect.
        // Prepared before timing: the raw COPY gets its text for free.
        let texts: Vec<String> = rows.chunks(batch).map(copy_text).collect();

        let t = Instant::now();
        for c in rows.chunks(batch) {
            a.insert_records(c).await?;
        }
        let ours_rate = n as f64 / t.elapsed().as_secs_f64();

        let t = Instant::now();
        for text in &texts {
            let mut copy = b
                .pool()
                .copy_in_raw(
                    "COPY bf_records (digest, run_id, suite, name, kind, iteration, started_at,
                     started_ns, wall_ns, user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults,
                     vol_cs, invol_cs, block_in, block_out, success, outcome, size, tier, location)
                     FROM STDIN",
                )
                .await?;
            copy.send(text.as_bytes()).await?;
            copy.finish().await?;
        }
        let raw_rate = n as f64 / t.elapsed().as_secs_f64();

        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM bf_records")
            .fetch_one(a.pool())
            .await?;
        let count_raw: i64 = sqlx::query_scalar("SELECT count(*) FROM bf_records")
            .fetch_one(b.pool())
            .await?;
        assert_eq!((count, count_raw), (n as i64, n as i64), "rows written");
        println!(
            "round {round}: insert_records {ours_rate:>9.0} records/s, raw COPY {raw_rate:>9.0} records/s"
        );
        ours.push(ours_rate);
        raw.push(raw_rate);
        for s in [&a, &b] {
            let schema = s
                .name()
                .rsplit("schema=")
                .next()
                .unwrap_or_default()
                .to_string();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(s.pool())
            .await?;
        }
    }
    let (o, r) = (median(ours), median(raw));
    println!(
        "median of 3 rounds, {n} records in batches of {batch}: insert_records {o:.0} records/s, raw COPY {r:.0} records/s, ratio {:.2}",
        o / r
    );
    Ok(())
}
