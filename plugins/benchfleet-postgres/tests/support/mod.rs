//! Shared by the PostgreSQL integration tests: where the server is, and fresh stores.
#![allow(dead_code)]

use benchfleet_postgres::{PgOptions, PgStore};

pub const ENV_URL: &str = "BENCHFLEET_TEST_POSTGRES_URL";

/// The test server's URL. `None` (after a note on stderr) when unset outside CI; when unset with
/// `CI=true` the test fails, since CI must test against a real server.
pub fn url(test: &str) -> Option<String> {
    benchfleet_testkit::server::server_env(ENV_URL, test)
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    benchfleet_testkit::server::unique_name("bft", '_')
}

pub fn options(schema: &str) -> PgOptions {
    PgOptions {
        schema: Some(schema.to_string()),
        max_connections: 4,
        ..PgOptions::default()
    }
}

/// A store in a schema of its own.
pub async fn fresh(url: &str) -> PgStore {
    let schema = fresh_schema();
    PgStore::connect(url, options(&schema))
        .await
        .unwrap_or_else(|e| panic!("connect to the test server: {e}"))
}
