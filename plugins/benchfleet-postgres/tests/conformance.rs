//! The shared behaviour suites (blob store and catalog), run against a real PostgreSQL server
//! (`BENCHFLEET_TEST_POSTGRES_URL`; skipped with a note when unset, failing under `CI=true`).

mod support;

use benchfleet_postgres::PgStore;
use benchfleet_store::BlobKey;
use benchfleet_testkit::{CatalogHarness, Harness};

/// Each `make` connects a store in a fresh schema. Without a server, the whole test is skipped
/// before the harness is built (see `conformance!` below).
struct Pg(String);

impl Harness for Pg {
    type Store = PgStore;

    async fn make(&self) -> PgStore {
        support::fresh(&self.0).await
    }

    fn corrupt(&self, store: &PgStore, key: &BlobKey) -> bool {
        let pool = store.pool().clone();
        let key = key.as_str().to_owned();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async move { sqlx_update(&pool, &key).await })
        })
    }
}

async fn sqlx_update(pool: &sqlx::PgPool, key: &str) -> bool {
    // Flip the low bit of the first byte.
    sqlx::query(
        "UPDATE bf_blobs SET data = set_byte(data, 0, get_byte(data, 0) # 1)
         WHERE key = $1 AND size > 0",
    )
    .bind(key)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
    .unwrap_or(false)
}

impl CatalogHarness for Pg {
    type Catalog = PgStore;

    async fn make_catalog(&self) -> PgStore {
        support::fresh(&self.0).await
    }
}

mod blob {
    use super::*;

    /// Runs the blob behaviours; each test returns early (skipped) without a server.
    mod with_server {
        use super::*;
        benchfleet_testkit::blob_store_conformance!(match support::url("postgres conformance") {
            Some(url) => Pg(url),
            None => return,
        });
    }
}

mod catalog {
    use super::*;
    mod with_server {
        use super::*;
        benchfleet_testkit::catalog_conformance!(match support::url("postgres conformance") {
            Some(url) => Pg(url),
            None => return,
        });
    }
}

/// Queues in one schema per test; a second handle is a second store (a second worker process),
/// and severing a worker terminates the server session that holds its liveness lock.
struct PgQueue {
    url: String,
    schema: String,
}

impl PgQueue {
    fn new(url: String) -> PgQueue {
        PgQueue {
            url,
            schema: support::fresh_schema(),
        }
    }

    async fn store(&self) -> std::sync::Arc<PgStore> {
        std::sync::Arc::new(
            PgStore::connect(&self.url, support::options(&self.schema))
                .await
                .unwrap_or_else(|e| panic!("connect to the test server: {e}")),
        )
    }
}

impl benchfleet_testkit::QueueHarness for PgQueue {
    async fn make_queue(
        &self,
    ) -> (
        std::sync::Arc<dyn benchfleet_store::Queue>,
        std::sync::Arc<dyn benchfleet_store::Catalog>,
    ) {
        let s = self.store().await;
        (s.clone(), s)
    }

    async fn connect(
        &self,
        _queue: &std::sync::Arc<dyn benchfleet_store::Queue>,
    ) -> std::sync::Arc<dyn benchfleet_store::Queue> {
        self.store().await
    }

    async fn sever(&self, _queue: &std::sync::Arc<dyn benchfleet_store::Queue>, worker: &str) {
        let admin = sqlx::PgPool::connect(&self.url)
            .await
            .expect("admin connection");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.objsubid = 2
               AND l.classid::int8 = (hashtext('{schema}.bf_fleet')::int8 & 4294967295)
               AND l.objid::int8 = (SELECT lock_key FROM \"{schema}\".bf_fleet_workers WHERE id = $1)",
            schema = self.schema
        )))
        .bind(worker)
        .fetch_one(&admin)
        .await
        .expect("terminate the lock holder");
        assert_eq!(n, 1, "worker {worker} held one liveness lock");
    }
}

mod queue {
    use super::*;
    mod with_server {
        use super::*;
        benchfleet_testkit::queue_conformance!(match support::url("postgres queue conformance") {
            Some(url) => PgQueue::new(url),
            None => return,
        });
    }
}
