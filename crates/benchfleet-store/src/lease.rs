//! Writer leases: whoever may write blobs that no catalog row references yet (a running suite
//! between `put_many` and `insert_records`, a migration between copy and flip) holds a lease, so
//! [`gc`](crate::gc) never mistakes that work in progress for orphans.
//!
//! A lease is a small blob `tier-lease/<holder>-<expiry>` in the hot store holding a
//! [`LeaseInfo`]. It is renewed (a new blob, then the old one deleted) whenever less than half of
//! its time to live remains, and deleted when released. `gc` treats a lease as live unless it
//! has expired, or its holder ran on this host and that process no longer exists (a killed
//! `benchfleet` does not block `gc` until the lease expires). While any lease is live, `gc`
//! removes nothing and says who holds it.
//!
//! Why a lease and not a grace age on orphans: the blob stores do not all know a blob's age
//! (redb and PostgreSQL bytea keep none, and [`BlobMeta`](crate::BlobMeta) carries none), a batch
//! slower than the grace would still be cut down, and a grace would stop `gc` from cleaning up
//! right after an interrupted migration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{BlobKey, BlobStore, ErrorKind, PutOutcome, Result, StoreError};

/// Namespace of writer leases (in the hot store).
pub const LEASE_NS: &str = "tier-lease";

/// What a lease blob says about its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Host name of the holder (`gethostname`, or `unknown`).
    pub host: String,
    pub pid: u32,
    /// What it is doing, e.g. `write` or `migrate`.
    pub purpose: String,
    /// Unix time in nanoseconds after which the lease is void.
    pub expires_at: i64,
}

impl LeaseInfo {
    /// Whether the lease still protects its holder's work at unix time `now_nanos`.
    pub fn is_live(&self, now_nanos: i64) -> bool {
        if self.expires_at <= now_nanos {
            return false;
        }
        // A holder on this host that no longer runs cannot be writing.
        self.host != host_name() || process_exists(self.pid)
    }
}

impl std::fmt::Display for LeaseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} by pid {} on {}", self.purpose, self.pid, self.host)
    }
}

pub(crate) fn now_nanos() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// This host's name as leases record it (`/proc/sys/kernel/hostname`, `$HOSTNAME`, or `unknown`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` exists on this host. Without `/proc`, every process is assumed alive
/// (its lease then lasts until it expires).
fn process_exists(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A lease this process holds (or will take on first use). Shared by the clones of a
/// [`Storage`](crate::Storage).
#[derive(Debug)]
pub(crate) struct Lease {
    purpose: &'static str,
    ttl: Duration,
    holder: String,
    held: tokio::sync::Mutex<Option<(BlobKey, i64)>>,
}

fn key_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Lease {
    pub(crate) fn new(purpose: &'static str, ttl: Duration) -> Self {
        let holder = format!(
            "{}-{}-{}-{}",
            key_segment(&host_name()),
            std::process::id(),
            now_nanos(),
            NONCE.fetch_add(1, Ordering::Relaxed)
        );
        Lease {
            purpose,
            ttl,
            holder,
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// Make sure a live lease with at least half its time left is stored in `store`.
    pub(crate) async fn hold(&self, store: &dyn BlobStore) -> Result<()> {
        let mut held = self.held.lock().await;
        let now = now_nanos();
        let ttl = i64::try_from(self.ttl.as_nanos()).unwrap_or(i64::MAX);
        if let Some((_, expires)) = &*held
            && expires.saturating_sub(now) > ttl / 2
        {
            return Ok(());
        }
        let expires_at = now.saturating_add(ttl);
        let info = LeaseInfo {
            host: host_name(),
            pid: std::process::id(),
            purpose: self.purpose.into(),
            expires_at,
        };
        let key = BlobKey::new(format!("{LEASE_NS}/{}-{expires_at}", self.holder))?;
        let bytes = serde_json::to_vec(&info).map_err(|e| {
            StoreError::new(ErrorKind::Other, "lease", "encode lease", e.to_string())
        })?;
        if store.put_if_absent(&key, Bytes::from(bytes)).await? == PutOutcome::AlreadyExists {
            // Same holder, same nanosecond: it is ours already.
            tracing::debug!("lease {key} already stored");
        }
        if let Some((old, _)) = held.replace((key, expires_at)) {
            store.delete(&old).await?;
        }
        Ok(())
    }

    /// Give the lease up (idempotent).
    pub(crate) async fn release(&self, store: &dyn BlobStore) -> Result<()> {
        let mut held = self.held.lock().await;
        if let Some((key, _)) = held.take() {
            store.delete(&key).await?;
        }
        Ok(())
    }
}

/// Every lease stored in `store` with its key; undecodable ones are reported as live with an
/// unknown holder until they expire by their key's time.
pub(crate) async fn leases(store: &dyn BlobStore) -> Result<Vec<(BlobKey, LeaseInfo)>> {
    let mut out = Vec::new();
    for m in store.list(&format!("{LEASE_NS}/")).await? {
        let info = match store.get(&m.key).await {
            Ok(b) => serde_json::from_slice::<LeaseInfo>(&b).ok(),
            Err(e) if e.is_not_found() => continue, // released meanwhile
            Err(e) => return Err(e),
        };
        let info = info.unwrap_or_else(|| LeaseInfo {
            host: "unknown (undecodable lease)".into(),
            pid: 0,
            purpose: "unknown".into(),
            expires_at: m
                .key
                .as_str()
                .rsplit('-')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(i64::MAX),
        });
        out.push((m.key, info));
    }
    Ok(out)
}
