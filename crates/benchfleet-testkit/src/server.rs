//! For plugins whose behaviour suite needs a real server (PostgreSQL, S3, …): where it is, and
//! names that keep concurrent tests apart on it.
//!
//! `cargo xtask test` starts the servers and exports their addresses as `BENCHFLEET_TEST_*`
//! variables; developers can point the same variables at servers of their own.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of `var` when it is set and non-empty. Otherwise the test cannot run: with
/// `CI=true` that is a failure (CI must test against a real server), elsewhere a note on stderr
/// says `test` was skipped and `None` is returned.
pub fn server_env(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{var} is not set and CI=true: `cargo xtask test` starts a server and sets it"
                );
            }
            eprintln!(
                "{test}: skipped, {var} is not set (run `cargo xtask test`, or point it at a server)"
            );
            None
        }
    }
}

/// A name no other test uses, in this process or another: `PREFIX SEP pid SEP time SEP counter`.
pub fn unique_name(prefix: &str, sep: char) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{sep}{}{sep}{}{sep}{}",
        std::process::id(),
        t % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_their_shape() {
        let (a, b) = (unique_name("bft", '_'), unique_name("bft", '_'));
        assert_ne!(a, b);
        assert!(a.starts_with("bft_") && a.split('_').count() == 4, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }

    #[test]
    fn a_set_variable_is_returned() {
        // PATH is set in every test environment.
        assert!(server_env("PATH", "t").is_some());
    }
}
