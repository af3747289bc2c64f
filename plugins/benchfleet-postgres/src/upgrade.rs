//! Opening stores of other layouts: a store written by a newer build is refused before anything
//! is changed; a store of layout 1 (a `bf_records` row per record, builds before migration 0004)
//! is upgraded in place on connect.
//!
//! The upgrade moves the entries of a few runs at a time: in one transaction it reads their
//! `bf_records` rows, inserts them as chunks (idempotent) and deletes the rows and their
//! `bf_record_digests`. A crash loses nothing (the transaction rolls back, the rows stay), and
//! the next connect goes on where the last committed batch ended. Once `bf_records` is empty,
//! one transaction drops the old tables and the partition function and sets `bf_meta.layout` to
//! 2. Processes connecting at the same time take turns on an advisory lock. Hot records already
//! stored as `bf_blobs` rows stay there (they are read as before and leave with migration).

use benchfleet_store::{ErrorKind, RecordEntry, Result, StoreError};

use crate::legacy::RECORD_COLUMNS;
use crate::{MIGRATOR, PgStore, chunks};

/// The catalog layout this build writes.
pub const LAYOUT: i64 = 2;

/// Runs moved per upgrade transaction.
const RUNS_PER_BATCH: i64 = 64;

/// Where a test stops an upgrade (as a crash would). Not for production use.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeStop {
    /// Run it to the end (what [`PgStore::connect`] does).
    Never,
    /// Apply only the migrations up to this version; no upgrade (fixtures of older stores).
    MigrationsUpTo(i64),
    /// Commit this many batches, then fail inside the next batch's transaction before it
    /// commits (the last one being the transaction that drops the old tables).
    CrashAfterBatches(usize),
}

impl PgStore {
    fn newer(&self, what: String) -> StoreError {
        StoreError::new(
            ErrorKind::Unsupported,
            &self.name,
            "open store",
            format!(
                "this PostgreSQL store was written by a newer benchfleet ({what}); this build \
                 knows catalog layout {LAYOUT} and migrations up to {}; upgrade benchfleet to open it \
                 (nothing was changed)",
                MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
            ),
        )
    }

    /// Refuse a store that a newer build migrated or upgraded, before touching it.
    pub(crate) async fn refuse_newer(&self) -> Result<()> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let (applied, layout): (Option<i64>, Option<i64>) = self
            .retry("open store", None, || async {
                let applied: Option<i64> = if sqlx::query_scalar::<_, bool>(
                    "SELECT to_regclass(quote_ident(current_schema()) || '._sqlx_migrations') IS NOT NULL",
                )
                .fetch_one(&self.pool)
                .await?
                {
                    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
                        .fetch_one(&self.pool)
                        .await?
                } else {
                    None
                };
                let layout: Option<i64> = if sqlx::query_scalar::<_, bool>(
                    "SELECT to_regclass(quote_ident(current_schema()) || '.bf_meta') IS NOT NULL",
                )
                .fetch_one(&self.pool)
                .await?
                {
                    sqlx::query_scalar("SELECT value FROM bf_meta WHERE key = 'layout'")
                        .fetch_optional(&self.pool)
                        .await?
                } else {
                    None
                };
                Ok((applied, layout))
            })
            .await?;
        if let Some(v) = applied.filter(|v| *v > known) {
            return Err(self.newer(format!("schema migration {v}")));
        }
        if let Some(l) = layout.filter(|l| *l > LAYOUT) {
            return Err(self.newer(format!("catalog layout {l}")));
        }
        Ok(())
    }

    /// The store's catalog layout (1 while an upgrade is unfinished).
    pub async fn layout(&self) -> Result<i64> {
        self.retry("layout", None, || async {
            sqlx::query_scalar("SELECT value FROM bf_meta WHERE key = 'layout'")
                .fetch_one(&self.pool)
                .await
        })
        .await
    }

    /// Upgrade layout 1 to [`LAYOUT`] (see the module), batch by batch, until done or `stop`.
    pub(crate) async fn upgrade(&self, stop: UpgradeStop) -> Result<()> {
        let mut batches = 0usize;
        loop {
            let crash = stop == UpgradeStop::CrashAfterBatches(batches);
            let done = self
                .retry("upgrade catalog layout", None, || self.upgrade_batch(crash))
                .await?;
            if done {
                return Ok(());
            }
            batches += 1;
        }
    }

    /// One transaction of the upgrade; `Ok(true)` when the store is at [`LAYOUT`].
    async fn upgrade_batch(&self, crash: bool) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.bf upgrade', 0))",
        )
        .execute(&mut *tx)
        .await?;
        let layout: i64 = sqlx::query_scalar("SELECT value FROM bf_meta WHERE key = 'layout'")
            .fetch_one(&mut *tx)
            .await?;
        if layout >= LAYOUT {
            tx.commit().await?;
            return Ok(true);
        }
        let legacy: bool = sqlx::query_scalar(
            "SELECT to_regclass(quote_ident(current_schema()) || '.bf_records') IS NOT NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        let runs: Vec<String> = if legacy {
            sqlx::query_scalar(
                "SELECT run_id FROM bf_records GROUP BY run_id ORDER BY run_id LIMIT $1",
            )
            .bind(RUNS_PER_BATCH)
            .fetch_all(&mut *tx)
            .await?
        } else {
            Vec::new()
        };
        if runs.is_empty() {
            sqlx::raw_sql(
                "DROP TABLE IF EXISTS bf_records, bf_record_digests;
                 DROP FUNCTION IF EXISTS bf_ensure_partition(timestamptz);
                 UPDATE bf_meta SET value = 2 WHERE key = 'layout';",
            )
            .execute(&mut *tx)
            .await?;
            if crash {
                return Err(crashed());
            }
            tx.commit().await?;
            return Ok(true);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM bf_records WHERE run_id = ANY($1::text[])"
        )))
        .bind(&runs)
        .fetch_all(&mut *tx)
        .await?;
        let entries: Vec<RecordEntry> = rows
            .iter()
            .map(|r| self.legacy_entry(r))
            .collect::<Result<_>>()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        // In start order, as a run's records were written.
        let mut entries = entries;
        entries.sort_by(|a, b| {
            (a.run_id.as_str(), a.started_at, &a.name, a.iteration).cmp(&(
                b.run_id.as_str(),
                b.started_at,
                &b.name,
                b.iteration,
            ))
        });
        chunks::insert(&mut tx, &entries).await?;
        sqlx::query(
            "DELETE FROM bf_record_digests WHERE digest IN
                 (SELECT digest FROM bf_records WHERE run_id = ANY($1::text[]))",
        )
        .bind(&runs)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM bf_records WHERE run_id = ANY($1::text[])")
            .bind(&runs)
            .execute(&mut *tx)
            .await?;
        if crash {
            return Err(crashed());
        }
        tx.commit().await?;
        Ok(false)
    }
}

/// The error of a simulated crash (the transaction is dropped uncommitted).
fn crashed() -> sqlx::Error {
    sqlx::Error::Configuration("upgrade stopped by a test (simulated crash)".into())
}
