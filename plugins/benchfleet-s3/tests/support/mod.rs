//! Shared by the S3 integration tests: where the server is, and fresh stores.
#![allow(dead_code)]

use std::time::Duration;

use benchfleet_s3::{S3Options, S3Retry, S3Store};

/// The test server's settings, from `BENCHFLEET_TEST_S3_*` (set by `cargo xtask test`).
#[derive(Clone)]
pub struct Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// `None` (after a note on stderr) when `BENCHFLEET_TEST_S3_ENDPOINT` is unset outside CI; with
/// `CI=true` the test fails, since CI must test against a real server.
pub fn server(test: &str) -> Option<Server> {
    let var = |k: &str| {
        std::env::var(format!("BENCHFLEET_TEST_S3_{k}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let endpoint = benchfleet_testkit::server::server_env("BENCHFLEET_TEST_S3_ENDPOINT", test)?;
    Some(Server {
        endpoint,
        bucket: var("BUCKET").unwrap_or_else(|| "benchfleet-test".into()),
        access_key: var("ACCESS_KEY").unwrap_or_default(),
        secret_key: var("SECRET_KEY").unwrap_or_default(),
        region: var("REGION").unwrap_or_else(|| "us-east-1".into()),
    })
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> String {
    benchfleet_testkit::server::unique_name("t", '-')
}

impl Server {
    pub fn options(&self, prefix: &str) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            bucket: self.bucket.clone(),
            access_key: Some(self.access_key.clone()),
            secret_key: Some(self.secret_key.clone()),
            allow_http: self.endpoint.starts_with("http://"),
            prefix: prefix.to_string(),
            retry: S3Retry {
                init_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(500),
                ..S3Retry::default()
            },
            ..S3Options::default()
        }
    }

    pub fn fresh(&self) -> S3Store {
        S3Store::new(self.options(&fresh_prefix())).expect("configure the S3 store")
    }
}
