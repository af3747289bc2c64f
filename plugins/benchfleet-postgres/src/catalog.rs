//! [`Catalog`] on PostgreSQL: runs as JSON rows, record entries in monthly partitions, inserted
//! in batches with `UNNEST`.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, RunInfo, Timestamp};
use benchfleet_store::{
    BlobKey, Catalog, ErrorKind, RecordEntry, RecordQuery, Result, RunFilter, StoreError, Tier,
};

use crate::PgStore;
use crate::months::{micros_of_nanos, month_of_unix_nanos};

pub use benchfleet_store::{DailySummary, SummaryQuery};

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
pub(crate) struct Columns {
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
    pub(crate) fn of(entries: &[RecordEntry]) -> (Columns, Vec<i64>) {
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

/// The one statement inserting a batch of record entries (used by `insert_records` and by the
/// fleet queue's completion, inside its transaction).
pub(crate) fn insert_query(
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

const RECORD_COLUMNS: &str = "digest, run_id, suite, name, kind, iteration, started_ns, wall_ns, \
    user_ns, sys_ns, max_rss_bytes, minor_faults, major_faults, vol_cs, invol_cs, block_in, \
    block_out, outcome::text AS outcome, size, tier, location";

impl PgStore {
    fn decode_err(&self, what: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(
            ErrorKind::Decode,
            &self.name,
            "decode row",
            format!("{what}: {detail}"),
        )
    }

    fn record_from_row(&self, row: &PgRow) -> Result<RecordEntry> {
        let get_err = |e: sqlx::Error| self.decode_err("record column", e);
        let digest: Vec<u8> = row.try_get("digest").map_err(get_err)?;
        let digest: [u8; 32] = digest
            .try_into()
            .map_err(|_| self.decode_err("digest", "not 32 bytes"))?;
        let run_id: String = row.try_get("run_id").map_err(get_err)?;
        let run_id: RunId = run_id.parse().map_err(|e| self.decode_err("run_id", e))?;
        let kind: String = row.try_get("kind").map_err(get_err)?;
        let tier: String = row.try_get("tier").map_err(get_err)?;
        let outcome: String = row.try_get("outcome").map_err(get_err)?;
        let outcome: Outcome =
            serde_json::from_str(&outcome).map_err(|e| self.decode_err("outcome", e))?;
        let iteration: i64 = row.try_get("iteration").map_err(get_err)?;
        let u = |c: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(c).map_err(get_err)? as u64) };
        Ok(RecordEntry {
            digest: Digest::from_bytes(digest),
            run_id,
            suite: row.try_get("suite").map_err(get_err)?,
            name: row.try_get("name").map_err(get_err)?,
            kind: parse_kind(&kind).ok_or_else(|| self.decode_err("kind", &kind))?,
            iteration: u32::try_from(iteration).map_err(|e| self.decode_err("iteration", e))?,
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
            tier: parse_tier(&tier).ok_or_else(|| self.decode_err("tier", &tier))?,
            location: row.try_get("location").map_err(get_err)?,
        })
    }

    fn run_from_json(&self, json: &str) -> Result<RunInfo> {
        serde_json::from_str(json).map_err(|e| self.decode_err("run info", e))
    }

    /// Refresh the daily summary without blocking readers (`REFRESH MATERIALIZED VIEW
    /// CONCURRENTLY`).
    pub async fn refresh_daily_summary(&self) -> Result<()> {
        self.retry("refresh daily summary", None, || async {
            sqlx::query("REFRESH MATERIALIZED VIEW CONCURRENTLY bf_daily_summary")
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(())
    }

    /// Rows of the daily summary as of its last refresh.
    pub async fn daily_summary(&self, q: &SummaryQuery) -> Result<Vec<DailySummary>> {
        let rows = self
            .retry("daily summary", None, || async {
                sqlx::query(
                    "SELECT day::text AS day, suite, name, metric, count, mean, min, max, p95
                     FROM bf_daily_summary
                     WHERE ($1::text IS NULL OR suite = $1)
                       AND ($2::text IS NULL OR name = $2)
                       AND ($3::text IS NULL OR metric = $3)
                       AND ($4::date IS NULL OR day >= $4::date)
                       AND ($5::date IS NULL OR day < $5::date)
                     ORDER BY day, suite COLLATE \"C\", name COLLATE \"C\", metric",
                )
                .bind(q.suite.as_deref())
                .bind(q.name.as_deref())
                .bind(q.metric.as_deref())
                .bind(q.since_day.as_deref())
                .bind(q.until_day.as_deref())
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        rows.iter()
            .map(|r| {
                let e = |e: sqlx::Error| self.decode_err("summary column", e);
                Ok(DailySummary {
                    day: r.try_get("day").map_err(e)?,
                    suite: r.try_get("suite").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    metric: r.try_get("metric").map_err(e)?,
                    count: r.try_get("count").map_err(e)?,
                    mean: r.try_get("mean").map_err(e)?,
                    min: r.try_get("min").map_err(e)?,
                    max: r.try_get("max").map_err(e)?,
                    p95: r.try_get("p95").map_err(e)?,
                })
            })
            .collect()
    }
}

/// Is this "no partition of relation found for row" (a partition dropped behind our back)?
fn missing_partition(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23514")
        && db.message().contains("no partition"))
}

#[async_trait]
impl Catalog for PgStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put_run(&self, run: &RunInfo) -> Result<()> {
        let json = serde_json::to_string(run)
            .map_err(|e| StoreError::new(ErrorKind::Other, &self.name, "put_run", e.to_string()))?;
        self.retry("put_run", Some(run.run_id.as_str()), || async {
            sqlx::query(
                "INSERT INTO bf_runs (run_id, suite, started_ns, info) VALUES ($1, $2, $3, $4::jsonb)
                 ON CONFLICT (run_id) DO UPDATE
                 SET suite = EXCLUDED.suite, started_ns = EXCLUDED.started_ns, info = EXCLUDED.info",
            )
            .bind(run.run_id.as_str())
            .bind(&run.suite)
            .bind(run.started_at.0)
            .bind(&json)
            .execute(&self.pool)
            .await
        })
        .await?;
        Ok(())
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunInfo>> {
        let json: Option<String> = self
            .retry("get_run", Some(id.as_str()), || async {
                sqlx::query_scalar("SELECT info::text FROM bf_runs WHERE run_id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        json.map(|j| self.run_from_json(&j)).transpose()
    }

    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        if let Some(p) = &filter.id_prefix
            && !RunId::is_valid_prefix(p)
        {
            return Ok(Vec::new());
        }
        let like = filter.id_prefix.as_ref().map(|p| format!("{p}%"));
        let limit = filter.limit.map(|l| l.min(i64::MAX as usize) as i64);
        let rows: Vec<String> = self
            .retry("find_runs", None, || async {
                sqlx::query_scalar(
                    "SELECT info::text FROM bf_runs
                     WHERE ($1::text IS NULL OR suite = $1)
                       AND ($2::text IS NULL OR run_id LIKE $2)
                       AND ($3::int8 IS NULL OR started_ns >= $3)
                       AND ($4::int8 IS NULL OR started_ns < $4)
                     ORDER BY run_id DESC
                     LIMIT $5",
                )
                .bind(filter.suite.as_deref())
                .bind(like.as_deref())
                .bind(filter.since.map(|t| t.0))
                .bind(filter.until.map(|t| t.0))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        rows.iter().map(|j| self.run_from_json(j)).collect()
    }

    async fn insert_records(&self, entries: &[RecordEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (cols, months) = Columns::of(entries);
        self.ensure_partitions(&months).await?;
        let run = || async { insert_query(&cols).execute(&self.pool).await };
        match self.retry("insert_records", None, run).await {
            Err(e)
                if e.source
                    .as_deref()
                    .and_then(|s| s.downcast_ref::<sqlx::Error>())
                    .is_some_and(missing_partition) =>
            {
                // Someone dropped a partition we thought existed: recreate and try once more.
                self.forget_partitions();
                self.ensure_partitions(&months).await?;
                self.retry("insert_records", None, run).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    async fn query_records(&self, q: &RecordQuery) -> Result<Vec<RecordEntry>> {
        if q.limit == Some(0) {
            return Ok(Vec::new());
        }
        // Built from fixed fragments only; every value is a bind parameter.
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM bf_records WHERE true");
        let mut n = 0;
        let mut param = || {
            n += 1;
            n
        };
        if q.run_id.is_some() {
            sql.push_str(&format!(" AND run_id = ${}", param()));
        }
        if q.suite.is_some() {
            sql.push_str(&format!(" AND suite = ${}", param()));
        }
        if q.name.is_some() {
            sql.push_str(&format!(" AND name = ${}", param()));
        }
        // The exact bound on started_ns, plus the implied bound on the partition key (whole
        // microseconds, rounded down) so that PostgreSQL prunes partitions.
        if q.since.is_some() {
            let (a, b) = (param(), param());
            sql.push_str(&format!(
                " AND started_ns >= ${a} AND started_at >= 'epoch'::timestamptz + ${b} * interval '1 microsecond'"
            ));
        }
        if q.until.is_some() {
            let (a, b) = (param(), param());
            sql.push_str(&format!(
                " AND started_ns < ${a} AND started_at <= 'epoch'::timestamptz + ${b} * interval '1 microsecond'"
            ));
        }
        if q.tier.is_some() {
            sql.push_str(&format!(" AND tier = ${}", param()));
        }
        sql.push_str(" ORDER BY started_ns, run_id, name, iteration");
        if q.limit.is_some() {
            sql.push_str(&format!(" LIMIT ${}", param()));
        }
        let rows = self
            .retry("query_records", None, || {
                let sql = sql.clone();
                async move {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    if let Some(r) = &q.run_id {
                        query = query.bind(r.as_str());
                    }
                    if let Some(s) = &q.suite {
                        query = query.bind(s.as_str());
                    }
                    if let Some(s) = &q.name {
                        query = query.bind(s.as_str());
                    }
                    if let Some(t) = q.since {
                        query = query.bind(t.0).bind(micros_of_nanos(t.0));
                    }
                    if let Some(t) = q.until {
                        query = query.bind(t.0).bind(micros_of_nanos(t.0));
                    }
                    if let Some(t) = q.tier {
                        query = query.bind(t.as_str());
                    }
                    if let Some(l) = q.limit {
                        query = query.bind(l.min(i64::MAX as usize) as i64);
                    }
                    query.fetch_all(&self.pool).await
                }
            })
            .await?;
        rows.iter().map(|r| self.record_from_row(r)).collect()
    }

    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        self.move_rows("move_records", entries, &[]).await
    }

    /// The flip and the deletes of the hot sources (`bf_blobs` rows of this database) in one
    /// transaction.
    async fn move_records_deleting(
        &self,
        entries: &[RecordEntry],
        sources: &[BlobKey],
    ) -> Result<bool> {
        let keys: Vec<&str> = sources.iter().map(BlobKey::as_str).collect();
        self.move_rows("move_records_deleting", entries, &keys)
            .await?;
        Ok(true)
    }
}

impl PgStore {
    /// Set the rows' tier and location and delete the blobs under `delete`, in one transaction
    /// that is rolled back (nothing changes) if any entry has no row.
    async fn move_rows(
        &self,
        op: &'static str,
        entries: &[RecordEntry],
        delete: &[&str],
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One row per digest (the first wins), like `insert_records`.
        let mut seen = HashSet::with_capacity(entries.len());
        let (mut digests, mut tiers, mut locations) = (Vec::new(), Vec::new(), Vec::new());
        for e in entries {
            if seen.insert(e.digest) {
                digests.push(e.digest.as_bytes().to_vec());
                tiers.push(e.tier.as_str());
                locations.push(e.location.clone());
            }
        }
        let missing: Option<Vec<u8>> = self
            .retry(op, None, || async {
                let mut tx = self.pool.begin().await?;
                let moved: Vec<Vec<u8>> = sqlx::query_scalar(MOVE_RECORDS)
                    .bind(&digests)
                    .bind(&tiers)
                    .bind(&locations)
                    .fetch_all(&mut *tx)
                    .await?;
                if moved.len() != digests.len() {
                    tx.rollback().await?;
                    let moved: HashSet<Vec<u8>> = moved.into_iter().collect();
                    return Ok(digests.iter().find(|d| !moved.contains(*d)).cloned());
                }
                if !delete.is_empty() {
                    sqlx::query("DELETE FROM bf_blobs WHERE key = ANY($1::text[])")
                        .bind(delete)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(None)
            })
            .await?;
        match missing {
            None => Ok(()),
            Some(d) => {
                let mut err = StoreError::new(
                    ErrorKind::NotFound,
                    &self.name,
                    op,
                    "no catalog entry with this digest; nothing was moved",
                );
                if let Ok(d) = <[u8; 32]>::try_from(d.as_slice()) {
                    err = err.with_key(Digest::from_bytes(d));
                }
                Err(err)
            }
        }
    }
}

/// Set tier and location of the rows whose digests are given (distinct); returns the digests of
/// the rows it found. Each digest has one row (`bf_record_digests`), in one partition.
const MOVE_RECORDS: &str = "
UPDATE bf_records AS r SET tier = u.tier, location = u.location
FROM UNNEST($1::bytea[], $2::text[], $3::text[]) AS u(digest, tier, location)
WHERE r.digest = u.digest
RETURNING r.digest";
