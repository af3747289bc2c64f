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
