//! Shared by the PostgreSQL integration tests: where the server is, and fresh stores.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use benchfleet_postgres::{PgOptions, PgStore};

pub const ENV_URL: &str = "BENCHFLEET_TEST_POSTGRES_URL";

/// The test server's URL. `None` (after a note on stderr) when unset outside CI; when unset with
/// `CI=true` the test fails, since CI must test against a real server.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(ENV_URL) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{ENV_URL} is not set and CI=true: `cargo xtask test` starts a server and sets it"
                );
            }
            eprintln!(
                "{test}: skipped, {ENV_URL} is not set (run `cargo xtask test`, or point it at a server)"
            );
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "bft_{}_{}_{}",
        std::process::id(),
        t % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
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
