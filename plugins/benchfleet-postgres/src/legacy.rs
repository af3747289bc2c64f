//! The catalog layout of migrations 0001–0003 (layout 1: a `bf_records` row per record, in
//! monthly partitions, plus `bf_record_digests`): reading its rows for the upgrade
//! (`upgrade.rs`), and writing them, only to build stores as older builds left them (fixtures of
//! the upgrade tests).

use std::collections::HashSet;

use sqlx::Row;
use sqlx::postgres::PgRow;

use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, Timestamp};
use benchfleet_store::{ErrorKind, RecordEntry, Result, StoreError, Tier};

use crate::PgStore;
use crate::months::{micros_of_nanos, month_of_unix_nanos, month_start_micros};

fn kind_str(k: NodeKind) -> &'static str {
    k.as_str()
}

fn parse_kind(s: &str) -> Option<NodeKind> {
    match s {
        "job" => Some(NodeKind::Job),
        "benchmark" => Some(NodeKind::Benchmark),
        _ => None,
    }
}

fn parse_tier(s: &str) -> Option<Tier> {
    match s {
        "hot" => Some(Tier::Hot),
        "warm" => Some(Tier::Warm),
        "cold" => Some(Tier::Cold),
        _ => None,
    }
}

/// Columns of a batch, as arrays for `UNNEST`. Unsigned values are stored bit-for-bit in bigint.
#[derive(Default)]
struct Columns {
    digest: Vec<Vec<u8>>,
    run_id: Vec<String>,
    suite: Vec<String>,
    name: Vec<String>,
    kind: Vec<&'static str>,
    iteration: Vec<i64>,
    started_ns: Vec<i64>,
    started_us: Vec<i64>,
    m: [Vec<i64>; 10],
    success: Vec<bool>,
    outcome: Vec<String>,
    size: Vec<i64>,
    tier: Vec<&'static str>,
    location: Vec<String>,
}

impl Columns {
    fn push(&mut self, e: &RecordEntry) {
        self.digest.push(e.digest.as_bytes().to_vec());
        self.run_id.push(e.run_id.as_str().to_owned());
        self.suite.push(e.suite.clone());
        self.name.push(e.name.clone());
        self.kind.push(kind_str(e.kind));
        self.iteration.push(i64::from(e.iteration));
        self.started_ns.push(e.started_at.0);
        self.started_us.push(micros_of_nanos(e.started_at.0));
        for (col, v) in self.m.iter_mut().zip(e.measurement.counters()) {
            col.push(v as i64);
        }
        self.success.push(e.outcome.is_success());
        self.outcome
            .push(serde_json::to_string(&e.outcome).expect("Outcome serializes"));
        self.size.push(e.size as i64);
        self.tier.push(e.tier.as_str());
        self.location.push(e.location.clone());
    }
}

impl Columns {
    /// The columns of `entries`, one row per digest (the first wins, as a repeated digest is
    /// "already present"), and the months their partitions must exist for.
    fn of(entries: &[RecordEntry]) -> (Columns, Vec<i64>) {
        let mut seen = HashSet::with_capacity(entries.len());
        let mut cols = Columns::default();
        let mut months = Vec::new();
        for e in entries {
            if seen.insert(e.digest) {
                cols.push(e);
                months.push(month_of_unix_nanos(e.started_at.0));
            }
        }
        (cols, months)
    }
}

/// The layout-1 statement inserting a batch of record entries.
fn insert_query(
    cols: &Columns,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(INSERT_RECORDS)
        .bind(&cols.digest)
        .bind(&cols.run_id)
        .bind(&cols.suite)
        .bind(&cols.name)
        .bind(&cols.kind)
        .bind(&cols.iteration)
        .bind(&cols.started_ns)
        .bind(&cols.started_us)
        .bind(&cols.m[0])
        .bind(&cols.m[1])
        .bind(&cols.m[2])
        .bind(&cols.m[3])
        .bind(&cols.m[4])
        .bind(&cols.m[5])
        .bind(&cols.m[6])
        .bind(&cols.m[7])
        .bind(&cols.m[8])
        .bind(&cols.m[9])
        .bind(&cols.success)
        .bind(&cols.outcome)
        .bind(&cols.size)
        .bind(&cols.tier)
        .bind(&cols.location)
}

const INSERT_RECORDS: &str = "
WITH input AS (
    SELECT * FROM UNNEST(
        $1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[],
        $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[],
        $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::bool[], $20::text[], $21::int8[],
        $22::text[], $23::text[]
    ) AS t(digest, run_id, suite, name, kind, iteration, started_ns, started_us,
           wall_ns, user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults, vol_cs, invol_cs,
           block_in, block_out, success, outcome, size, tier, location)
),
fresh AS (
    INSERT INTO bf_record_digests (digest, started_at)
    SELECT digest, 'epoch'::timestamptz + started_us * interval '1 microsecond' FROM input
    ON CONFLICT (digest) DO NOTHING
    RETURNING digest
)
INSERT INTO bf_records (digest, run_id, suite, name, kind, iteration, started_at, started_ns,
    wall_ns, user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults, vol_cs, invol_cs,
    block_in, block_out, success, outcome, size, tier, location)
SELECT digest, run_id, suite, name, kind, iteration,
       'epoch'::timestamptz + started_us * interval '1 microsecond', started_ns,
       wall_ns, user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults, vol_cs, invol_cs,
       block_in, block_out, success, outcome::jsonb, size, tier, location
FROM input WHERE digest IN (SELECT digest FROM fresh)";

pub(crate) const RECORD_COLUMNS: &str = "digest, run_id, suite, name, kind, iteration, started_ns, wall_ns, \
    user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults, vol_cs, invol_cs, block_in, \
    block_out, outcome::text AS outcome, size, tier, location";

impl PgStore {
    fn legacy_decode_err(&self, what: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(
            ErrorKind::Decode,
            &self.name,
            "upgrade: decode a layout-1 record row",
            format!("{what}: {detail}"),
        )
    }

    /// A `bf_records` row as the entry it describes.
    pub(crate) fn legacy_entry(&self, row: &PgRow) -> Result<RecordEntry> {
        let get_err = |e: sqlx::Error| self.legacy_decode_err("record column", e);
        let digest: Vec<u8> = row.try_get("digest").map_err(get_err)?;
        let digest: [u8; 32] = digest
            .try_into()
            .map_err(|_| self.legacy_decode_err("digest", "not 32 bytes"))?;
        let run_id: String = row.try_get("run_id").map_err(get_err)?;
        let run_id: RunId = run_id
            .parse()
            .map_err(|e| self.legacy_decode_err("run_id", e))?;
        let kind: String = row.try_get("kind").map_err(get_err)?;
        let tier: String = row.try_get("tier").map_err(get_err)?;
        let outcome: String = row.try_get("outcome").map_err(get_err)?;
        let outcome: Outcome =
            serde_json::from_str(&outcome).map_err(|e| self.legacy_decode_err("outcome", e))?;
        let iteration: i64 = row.try_get("iteration").map_err(get_err)?;
        let u = |c: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(c).map_err(get_err)? as u64) };
        Ok(RecordEntry {
            digest: Digest::from_bytes(digest),
            run_id,
            suite: row.try_get("suite").map_err(get_err)?,
            name: row.try_get("name").map_err(get_err)?,
            kind: parse_kind(&kind).ok_or_else(|| self.legacy_decode_err("kind", &kind))?,
            iteration: u32::try_from(iteration)
                .map_err(|e| self.legacy_decode_err("iteration", e))?,
            started_at: Timestamp(row.try_get("started_ns").map_err(get_err)?),
            measurement: Measurement {
                wall_ns: u("wall_ns")?,
                user_ns: u("user_ns")?,
                sys_ns: u("sys_ns")?,
                max_rss_bytes: u("max_rss_bytes")?,
                minor_faults: u("minor_faults")?,
                major_faults: u("major_faults")?,
                voluntary_context_switches: u("vol_cs")?,
                involuntary_context_switches: u("invol_cs")?,
                block_in: u("block_in")?,
                block_out: u("block_out")?,
            },
            outcome,
            size: u("size")?,
            tier: parse_tier(&tier).ok_or_else(|| self.legacy_decode_err("tier", &tier))?,
            location: row.try_get("location").map_err(get_err)?,
        })
    }

    /// Write `entries` in layout 1, as builds before migration 0004 did (their monthly
    /// partitions created first). Only for building fixtures of older stores: a store whose
    /// layout was upgraded has no `bf_records` any more, and this fails.
    #[doc(hidden)]
    pub async fn write_layout1_records(&self, entries: &[RecordEntry]) -> Result<()> {
        let (cols, months) = Columns::of(entries);
        for month in months {
            let micros = month_start_micros(month);
            self.retry("create partition", None, || async move {
                sqlx::query(
                    "SELECT bf_ensure_partition('epoch'::timestamptz + $1 * interval '1 microsecond')",
                )
                .bind(micros)
                .execute(&self.pool)
                .await
            })
            .await?;
        }
        self.retry("insert layout-1 records", None, || async {
            insert_query(&cols).execute(&self.pool).await
        })
        .await?;
        Ok(())
    }
}
