//! [`Catalog`] on PostgreSQL: runs as JSON rows; record entries packed per run in `bf_chunks`
//! (`chunks.rs`), found through the chunks' run, time span, tiers and suite/name hashes, then
//! decoded and filtered exactly.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::Row;

use benchfleet_model::RunId;
use benchfleet_model::RunInfo;
use benchfleet_store::{
    BlobKey, Catalog, CatalogFootprint, ErrorKind, RecordEntry, RecordQuery, Result, RunFilter,
    StoreError,
};

use crate::PgStore;
use crate::chunks;

pub use benchfleet_store::{DailySummary, SummaryQuery};

/// The catalog's own tables, for [`Catalog::footprint`] (not the blob tables of the hot tier).
const CATALOG_TABLES: &str = "
SELECT coalesce(sum(pg_total_relation_size(c)), 0)::int8
FROM unnest(ARRAY['bf_runs', 'bf_chunks', 'bf_meta', 'bf_daily_summary', 'bf_alerts',
                  'bf_record_digests']) AS t(name)
CROSS JOIN LATERAL (SELECT to_regclass(quote_ident(current_schema()) || '.' || t.name) AS c) AS r
WHERE c IS NOT NULL";

/// Layout 1's partitioned record table, while an upgrade has not dropped it yet.
const LEGACY_RECORDS: &str = "
SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8
FROM pg_partition_tree(to_regclass(quote_ident(current_schema()) || '.bf_records'))";

/// The daily summary's metrics, in `DailySummary::metric` spelling.
const METRICS: [&str; 4] = ["wall_ns", "user_ns", "sys_ns", "max_rss_bytes"];

/// Percentile with linear interpolation between the closest ranks (`percentile_cont`).
fn percentile_cont(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

impl PgStore {
    fn decode_err(&self, what: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(
            ErrorKind::Decode,
            &self.name,
            "decode row",
            format!("{what}: {detail}"),
        )
    }

    fn run_from_json(&self, json: &str) -> Result<RunInfo> {
        serde_json::from_str(json).map_err(|e| self.decode_err("run info", e))
    }

    /// Every entry of the chunks matching `q` (by run, suite/name hashes, span and tiers), not
    /// yet filtered exactly nor ordered.
    async fn chunk_entries(&self, op: &'static str, q: &RecordQuery) -> Result<Vec<RecordEntry>> {
        // Built from fixed fragments only; every value is a bind parameter. Only the conditions a
        // query has are written, so that the planner sees which index serves it.
        let mut sql = String::from("SELECT run_id, pack FROM bf_chunks WHERE true");
        let mut n = 0;
        let mut param = || {
            n += 1;
            n
        };
        let (all, any) = chunks::query_keys(q);
        if q.run_id.is_some() {
            sql.push_str(&format!(" AND run_id = ${}", param()));
        }
        if !all.is_empty() {
            sql.push_str(&format!(" AND keys @> ${}::int4[]", param()));
        }
        if !any.is_empty() {
            sql.push_str(&format!(" AND keys && ${}::int4[]", param()));
        }
        if q.since.is_some() {
            sql.push_str(&format!(" AND last_ns >= ${}", param()));
        }
        if q.until.is_some() {
            sql.push_str(&format!(" AND first_ns < ${}", param()));
        }
        if q.tier.is_some() {
            sql.push_str(&format!(" AND tiers & ${}::int2 <> 0", param()));
        }
        let rows = self
            .retry(op, None, || {
                let sql = sql.clone();
                let (all, any) = (&all, &any);
                async move {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    if let Some(r) = &q.run_id {
                        query = query.bind(r.as_str());
                    }
                    if !all.is_empty() {
                        query = query.bind(all);
                    }
                    if !any.is_empty() {
                        query = query.bind(any);
                    }
                    if let Some(t) = q.since {
                        query = query.bind(t.0);
                    }
                    if let Some(t) = q.until {
                        query = query.bind(t.0);
                    }
                    if let Some(t) = q.tier {
                        query = query.bind(chunks::tier_bit(t));
                    }
                    query.fetch_all(&self.pool).await
                }
            })
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let run: String = r
                .try_get("run_id")
                .map_err(|e| self.decode_err("chunk column", e))?;
            let value: Vec<u8> = r
                .try_get("pack")
                .map_err(|e| self.decode_err("chunk column", e))?;
            let run_id: RunId = run
                .parse()
                .map_err(|e| self.decode_err("run id of a record chunk", e))?;
            let mut entries = benchfleet_store::pack::decode(&run_id, &value).map_err(|e| {
                StoreError::new(
                    e.kind,
                    &self.name,
                    op,
                    format!("a record chunk of run {run}: {}", e.message),
                )
                .with_key(&run)
            })?;
            out.append(&mut entries);
        }
        Ok(out)
    }

    /// Recompute the daily summary from the record entries and replace it in one transaction
    /// (readers see the old rows until it commits, never an empty table).
    pub async fn refresh_daily_summary(&self) -> Result<()> {
        let entries = self
            .chunk_entries("refresh daily summary", &RecordQuery::default())
            .await?;
        // (day, suite, name) -> the four metrics' values of successful records.
        let mut groups: BTreeMap<(i64, &str, &str), [Vec<f64>; 4]> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.outcome.is_success()) {
            let day = e.started_at.0.div_euclid(NS_PER_DAY);
            let m = &e.measurement;
            let slot = groups.entry((day, &e.suite, &e.name)).or_default();
            for (v, x) in slot
                .iter_mut()
                .zip([m.wall_ns, m.user_ns, m.sys_ns, m.max_rss_bytes])
            {
                v.push(x as f64);
            }
        }
        let mut cols: (Vec<String>, Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
        let mut count: Vec<i64> = Vec::new();
        let mut nums: [Vec<f64>; 4] = Default::default();
        for ((day, suite, name), mut values) in groups {
            for (metric, v) in METRICS.iter().zip(values.iter_mut()) {
                v.sort_by(f64::total_cmp);
                cols.0.push(crate::months::date_of_day(day));
                cols.1.push(suite);
                cols.2.push(name);
                cols.3.push(metric);
                count.push(v.len() as i64);
                nums[0].push(v.iter().sum::<f64>() / v.len() as f64);
                nums[1].push(v[0]);
                nums[2].push(v[v.len() - 1]);
                nums[3].push(percentile_cont(v, 0.95));
            }
        }
        self.retry("refresh daily summary", None, || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM bf_daily_summary")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO bf_daily_summary (day, suite, name, metric, count, mean, min, max, p95)
                 SELECT day::date, suite, name, metric, count, mean, min, max, p95
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[],
                             $6::float8[], $7::float8[], $8::float8[], $9::float8[])
                      AS t(day, suite, name, metric, count, mean, min, max, p95)",
            )
            .bind(&cols.0)
            .bind(&cols.1)
            .bind(&cols.2)
            .bind(&cols.3)
            .bind(&count)
            .bind(&nums[0])
            .bind(&nums[1])
            .bind(&nums[2])
            .bind(&nums[3])
            .execute(&mut *tx)
            .await?;
            tx.commit().await
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
        self.retry("insert_records", None, || async {
            let mut tx = self.pool.begin().await?;
            chunks::insert(&mut tx, entries).await?;
            tx.commit().await
        })
        .await
    }

    async fn query_records(&self, q: &RecordQuery) -> Result<Vec<RecordEntry>> {
        if q.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut out: Vec<RecordEntry> = self
            .chunk_entries("query_records", q)
            .await?
            .into_iter()
            .filter(|e| q.matches(e))
            .collect();
        out.sort_by(|a, b| {
            (a.started_at, a.run_id.as_str(), &a.name, a.iteration).cmp(&(
                b.started_at,
                b.run_id.as_str(),
                &b.name,
                b.iteration,
            ))
        });
        out.truncate(q.limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn move_records(&self, entries: &[RecordEntry]) -> Result<()> {
        self.move_rows("move_records", entries, &[]).await
    }

    /// The flip and the deletes of the hot sources (rows of this database) in one transaction.
    async fn move_records_deleting(
        &self,
        entries: &[RecordEntry],
        sources: &[BlobKey],
    ) -> Result<bool> {
        self.move_rows("move_records_deleting", entries, sources)
            .await?;
        Ok(true)
    }

    /// The hot records' blobs and their entries in one transaction.
    async fn insert_records_with_blobs(
        &self,
        blobs: &[(BlobKey, bytes::Bytes)],
        entries: &[RecordEntry],
    ) -> Result<bool> {
        self.check_blob_sizes(blobs)?;
        self.retry("insert_records_with_blobs", None, || async {
            let mut tx = self.pool.begin().await?;
            self.put_blobs_in(&mut tx, blobs).await?;
            chunks::insert(&mut tx, entries).await?;
            tx.commit().await
        })
        .await?;
        Ok(true)
    }

    /// The catalog's own tables (`pg_total_relation_size`: heap, TOAST and indexes of runs,
    /// record chunks, meta, daily summary and alerts), not the hot tier's blob tables.
    async fn footprint(&self) -> Result<Option<CatalogFootprint>> {
        let bytes: i64 = self
            .retry("footprint", None, || async {
                let own: i64 = sqlx::query_scalar(CATALOG_TABLES)
                    .fetch_one(&self.pool)
                    .await?;
                let legacy: i64 = sqlx::query_scalar(LEGACY_RECORDS)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(own + legacy)
            })
            .await?;
        Ok(Some(CatalogFootprint {
            catalog_bytes: bytes.max(0) as u64,
            file_bytes: None,
        }))
    }

    /// Plain `VACUUM` of the tables a migration or gc rewrites (record chunks, hot packs, blob
    /// rows), so that their dead rows' space is reused without waiting for autovacuum; then
    /// `VACUUM FULL` of each of them whose size (heap, TOAST, indexes) exceeds 1.4 times what its
    /// live rows take plus 64 KiB — a migration rewrites every chunk it touches and empties hot
    /// packs, which plain `VACUUM` cannot give back — as the embedded catalog compacts its
    /// file. That rewrite holds an exclusive lock on the table while it runs (about a second per
    /// 100,000 entries of the chunk table; an emptied pack table is instant).
    async fn reclaim_space(&self) -> Result<u64> {
        let mut given = self.reclaim_plain().await?;
        // What each table's live rows take: their columns as stored (a TOASTed value's stored
        // size, read from its pointer without fetching it) and a row header each.
        for (table, live) in [
            (
                "bf_chunks",
                "pg_column_size(t.pack) + pg_column_size(t.keys) + octet_length(t.run_id) + 56",
            ),
            (
                "bf_hot_packs",
                "pg_column_size(t.data) + pg_column_size(t.dir) + 64",
            ),
            (
                "bf_blobs",
                "pg_column_size(t.data) + octet_length(t.key) + 48",
            ),
        ] {
            let sizes = || async {
                sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(format!(
                    "SELECT pg_total_relation_size('{table}')::int8,
                            coalesce(sum({live}), 0)::int8 FROM {table} t"
                )))
                .fetch_one(&self.pool)
                .await
            };
            let (total, live) = self.retry("reclaim_space", None, sizes).await?;
            if (total as f64) <= 1.4 * live as f64 + 65_536.0 {
                continue;
            }
            self.retry("reclaim_space", None, || async {
                sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM FULL {table}")))
                    .execute(&self.pool)
                    .await
            })
            .await?;
            let (after, _) = self.retry("reclaim_space", None, sizes).await?;
            given += (total - after).max(0) as u64;
        }
        Ok(given)
    }
}

impl PgStore {
    /// Plain `VACUUM` of the tables migrations and gc rewrite; the bytes it gave back.
    async fn reclaim_plain(&self) -> Result<u64> {
        let size = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT (pg_total_relation_size('bf_chunks') + pg_total_relation_size('bf_hot_packs')
                        + pg_total_relation_size('bf_blobs'))::int8",
            )
            .fetch_one(&self.pool)
            .await
        };
        let before = self.retry("reclaim_space", None, size).await?;
        self.retry("reclaim_space", None, || async {
            sqlx::query("VACUUM bf_chunks, bf_hot_packs, bf_blobs")
                .execute(&self.pool)
                .await
        })
        .await?;
        let after = self.retry("reclaim_space", None, size).await?;
        Ok((before - after).max(0) as u64)
    }
}

impl PgStore {
    /// Set the entries' tier and location and delete the blobs under `delete`, in one
    /// transaction that is rolled back (nothing changes) if any entry has no row.
    async fn move_rows(
        &self,
        op: &'static str,
        entries: &[RecordEntry],
        delete: &[BlobKey],
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let missing = self
            .retry(op, None, || async {
                let mut tx = self.pool.begin().await?;
                if let Some(d) = chunks::move_entries(&mut tx, entries).await? {
                    tx.rollback().await?;
                    return Ok(Some(d));
                }
                self.delete_blobs_in(&mut tx, delete).await?;
                tx.commit().await?;
                Ok(None)
            })
            .await?;
        match missing {
            None => Ok(()),
            Some(d) => Err(StoreError::new(
                ErrorKind::NotFound,
                &self.name,
                op,
                "no catalog entry with this digest; nothing was moved",
            )
            .with_key(d)),
        }
    }
}
