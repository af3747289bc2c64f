//! PostgreSQL plugin for benchfleet: a [`Catalog`] and a [`BlobStore`] in one database, through
//! [`sqlx`], so that a team can run on PostgreSQL alone.
//!
//! - **Migrations** are embedded (`sqlx::migrate!`, `migrations/`), versioned, and applied on
//!   [`PgStore::connect`]; sqlx holds a PostgreSQL advisory lock while migrating, so several
//!   processes may connect at once.
//! - **Record entries** (catalog layout 2, migration 0004): packed per run in `bf_chunks`, up to
//!   128 entries a row in the binary encoding the embedded catalog uses too
//!   ([`benchfleet_store::pack`]), with the chunk's time span, tiers and 32-bit hashes of its
//!   suites and names beside it; a GIN index on those hashes finds a benchmark's chunks across
//!   runs, the primary key (run, chunk) a run's. No row and no index entry per record
//!   (`chunks.rs`). Stores of layout 1 (a `bf_records` row per record) are upgraded in place on
//!   connect, resumably (`upgrade.rs`); stores of newer builds are refused.
//! - **Daily summaries**: the table `bf_daily_summary` (day, suite, name, metric, count, mean,
//!   min, max, p95 over successful runs), recomputed and replaced in one transaction by
//!   [`PgStore::refresh_daily_summary`]; read with [`PgStore::daily_summary`].
//! - **Batched writes**: a batch of entries is one transaction (a few statements, whatever its
//!   size).
//! - **Blobs**: hot records of a write batch in one `bf_hot_packs` row (`hot.rs`: the records
//!   end to end, a 48-byte directory entry each); every other blob one `bf_blobs` row. Bytes are
//!   stored uncompressed out of line, so range reads fetch only the TOAST chunks they need.
//! - **Resilience**: a connection pool; transient failures (connection reset or terminated,
//!   refused while the server restarts, serialization failure, deadlock, server shutting down or
//!   starting up) are retried with exponential backoff, for at most [`PgOptions::retry_for`];
//!   an unreachable server is a clear error naming host and port after
//!   [`PgOptions::connect_timeout`], never a hang.
//!
//! Several stores can share one database in separate schemas ([`PgOptions::schema`]).
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace.
//!
//! ```no_run
//! # async fn demo() -> Result<(), benchfleet_store::StoreError> {
//! use benchfleet_postgres::{PgOptions, PgStore};
//! use benchfleet_store::{Catalog, RunFilter};
//! let store = PgStore::connect("postgres://bench@127.0.0.1:5432/bench", PgOptions::default()).await?;
//! let runs = store.find_runs(&RunFilter::default()).await?;
//! store.refresh_daily_summary().await?;
//! # let _ = runs; Ok(()) }
//! ```

mod alerts;
mod blob;
mod catalog;
mod chunks;
mod hot;
mod legacy;
mod months;
mod queue;
mod upgrade;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use benchfleet_store::{ErrorKind, Result, StoreError};

pub use catalog::{DailySummary, SummaryQuery};
pub use upgrade::{LAYOUT, UpgradeStop};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How to connect and behave.
#[derive(Clone, Debug, PartialEq)]
pub struct PgOptions {
    /// Schema holding benchfleet's tables (created if missing). `None`: the connection's default
    /// (`public`). Lets several stores share a database.
    pub schema: Option<String>,
    /// Connection pool size.
    pub max_connections: u32,
    /// Give up connecting (or waiting for a pooled connection) after this long.
    pub connect_timeout: Duration,
    /// Attempts for an operation that fails transiently (1 = no retry).
    pub max_attempts: u32,
    /// First backoff between attempts; doubles each time up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Stop retrying an operation once this much time has passed since its first attempt (so
    /// a server that stays down is an error, not a hang), whatever `max_attempts` says.
    pub retry_for: Duration,
    /// `application_name` of the connections (shown in `pg_stat_activity`).
    pub application_name: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: None,
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            max_attempts: 8,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            retry_for: Duration::from_secs(30),
            application_name: "benchfleet".into(),
        }
    }
}

/// A PostgreSQL-backed [`Catalog`](benchfleet_store::Catalog) and
/// [`BlobStore`](benchfleet_store::BlobStore).
pub struct PgStore {
    pool: PgPool,
    /// `postgres://user@host:port/db[?schema]`, never the password.
    name: String,
    /// `host:port` (or the socket path), for error messages.
    addr: String,
    opts: PgOptions,
    /// The fleet worker's own connection, holding its liveness lock (see [`queue`]).
    fleet_lock: tokio::sync::Mutex<Option<queue::LockConn>>,
    /// Notifications of ready work, for [`benchfleet_store::Queue::wait_for_work`].
    listener: tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("name", &self.name)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

use benchfleet_model::redact_url;

fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

impl PgStore {
    /// Connect, create the schema if asked, refuse a store of a newer build, apply pending
    /// migrations and upgrade an older catalog layout in place. Fails with a message naming host
    /// and port if the server cannot be reached within [`PgOptions::connect_timeout`].
    pub async fn connect(url: &str, opts: PgOptions) -> Result<PgStore> {
        Self::connect_stopping(url, opts, UpgradeStop::Never).await
    }

    /// [`PgStore::connect`], stopping where `stop` says: for tests of the upgrade.
    #[doc(hidden)]
    pub async fn connect_stopping(
        url: &str,
        opts: PgOptions,
        stop: UpgradeStop,
    ) -> Result<PgStore> {
        let shown = redact_url(url);
        let conf = |msg: String| StoreError::new(ErrorKind::Other, &shown, "connect", msg);
        let mut co = PgConnectOptions::from_str(url).map_err(|e| {
            let text = e.to_string().replace(url, &shown);
            conf(format!(
                "invalid PostgreSQL URL (expected postgres://user[:password]@host[:port]/database): {text}"
            ))
        })?;
        co = co.application_name(&opts.application_name);
        let addr = format!("{}:{}", co.get_host(), co.get_port());
        let db = co.get_database().unwrap_or("").to_string();
        let mut name = format!("postgres://{}@{addr}/{db}", co.get_username());
        if let Some(schema) = &opts.schema {
            if !valid_schema(schema) {
                return Err(conf(format!(
                    "schema name `{schema}` must be lowercase letters, digits and `_` (at most 63), starting with a letter or `_`"
                )));
            }
            name.push_str(&format!("?schema={schema}"));
            co = co.options([("search_path", schema.as_str())]);
        }
        let unreachable = |e: &dyn fmt::Display| {
            StoreError::new(
                ErrorKind::Transient,
                &name,
                "connect",
                format!(
                    "cannot reach PostgreSQL at {addr} within {:?}: {e}; check that the server runs and that host and port are right",
                    opts.connect_timeout
                ),
            )
        };
        let pool_opts = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(opts.connect_timeout)
            .test_before_acquire(true);
        let pool = match tokio::time::timeout(
            opts.connect_timeout + Duration::from_secs(1),
            pool_opts.connect_with(co),
        )
        .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => {
                return Err(match &e {
                    sqlx::Error::Database(_) => map_sqlx(&name, &addr, "connect", None, e),
                    _ => unreachable(&e),
                });
            }
            Err(_) => return Err(unreachable(&"connection attempt timed out")),
        };
        let store = PgStore {
            pool,
            name,
            addr,
            opts,
            fleet_lock: tokio::sync::Mutex::new(None),
            listener: tokio::sync::Mutex::new(None),
        };
        if let Some(schema) = &store.opts.schema {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            let pool = &store.pool;
            store
                .retry("create schema", None, || {
                    let sql = sql.clone();
                    async move {
                        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await {
                            Ok(_) => Ok(()),
                            // `IF NOT EXISTS` is not race-free: when another process creates the
                            // schema at the same moment, this one sees a unique violation (or
                            // duplicate_schema). Either way the schema now exists.
                            Err(sqlx::Error::Database(db))
                                if matches!(db.code().as_deref(), Some("23505" | "42P06")) =>
                            {
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                })
                .await?;
        }
        store.refuse_newer().await?;
        let subset;
        let migrator = match stop {
            UpgradeStop::MigrationsUpTo(v) => {
                subset = sqlx::migrate::Migrator {
                    migrations: MIGRATOR
                        .iter()
                        .filter(|m| m.version <= v)
                        .cloned()
                        .collect(),
                    ..sqlx::migrate::Migrator::DEFAULT
                };
                &subset
            }
            _ => &MIGRATOR,
        };
        store
            .retry("migrate", None, || async {
                migrator.run(&store.pool).await.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(e) => e,
                    other => sqlx::Error::Migrate(Box::new(other)),
                })
            })
            .await?;
        if !matches!(stop, UpgradeStop::MigrationsUpTo(_)) {
            store.upgrade(stop).await?;
        }
        Ok(store)
    }

    /// The pool, for administration and tests (e.g. terminating connections).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applied migration versions, oldest first.
    pub async fn migration_versions(&self) -> Result<Vec<i64>> {
        self.retry("migration versions", None, || async {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
        })
        .await
    }

    /// Versions of the migrations embedded in this build.
    pub fn embedded_migrations() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    /// Run `f`, retrying transient failures with exponential backoff.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        op: &'static str,
        key: Option<&str>,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, sqlx::Error>>,
    {
        let mut delay = self.opts.initial_backoff;
        let mut attempt = 1;
        let start = std::time::Instant::now();
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if is_transient(&e)
                        && attempt < self.opts.max_attempts
                        && start.elapsed() + delay < self.opts.retry_for =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.opts.max_backoff);
                    attempt += 1;
                }
                Err(e) => {
                    let mut err = map_sqlx(&self.name, &self.addr, op, key, e);
                    if attempt > 1 {
                        err.message
                            .push_str(&format!(" (after {attempt} attempts)"));
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// Whether retrying may help: connection trouble (reset, refused while the server restarts, no
/// pooled connection within the timeout), serialization failures, deadlocks, a server shutting
/// down (57P01) or starting up (57P03).
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || c.starts_with("57P") || c == "40001" || c == "40P01"
        }),
        _ => false,
    }
}

pub(crate) fn map_sqlx(
    backend: &str,
    addr: &str,
    op: &'static str,
    key: Option<&str>,
    e: sqlx::Error,
) -> StoreError {
    let (kind, message) = match &e {
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Transient,
            format!(
                "no connection to PostgreSQL at {addr}: timed out connecting or waiting for a pooled connection; check that the server runs"
            ),
        ),
        sqlx::Error::Io(io) => (
            ErrorKind::Transient,
            format!("connection to PostgreSQL at {addr} failed: {io}"),
        ),
        sqlx::Error::RowNotFound => (ErrorKind::NotFound, "no such row".to_string()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            (ErrorKind::Decode, e.to_string())
        }
        other if is_transient(other) => (ErrorKind::Transient, other.to_string()),
        other => (ErrorKind::Other, other.to_string()),
    };
    let mut err = StoreError::new(kind, backend, op, message).with_source(e);
    if let Some(k) = key {
        err = err.with_key(k);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["bf", "_x", "bench_2024"] {
            assert!(valid_schema(good), "{good}");
        }
        for bad in ["", "1x", "Bf", "a-b", "a\"b", &"x".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_url_is_explained_without_the_password() {
        let err = PgStore::connect("postgres://u:hunter2@h:notaport/db", PgOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("invalid PostgreSQL URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn unreachable_server_names_host_and_port_without_hanging() {
        // A port nothing listens on: bind one, learn its number, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let opts = PgOptions {
            connect_timeout: Duration::from_millis(500),
            ..PgOptions::default()
        };
        let url = format!("postgres://u:hunter2@127.0.0.1:{port}/db");
        let err = PgStore::connect(&url, opts).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("cannot reach PostgreSQL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(err.kind, ErrorKind::Transient);
    }
}
