//! When records move between tiers and how each tier compresses them.

use std::time::Duration;

use benchfleet_model::Timestamp;

use crate::{ErrorKind, Result, StoreError, Tier};

/// The tiering policy: ages, compression levels and sizes. Built by the facade from configuration
/// (`[storage.policy]`); [`TierPolicy::default`] is the documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPolicy {
    /// Records older than this leave the hot tier (default 7 days).
    pub hot_max_age: Duration,
    /// Records older than this leave the warm tier for the cold one (default 90 days).
    pub warm_max_age: Duration,
    /// zstd level of the warm tier (default 3).
    pub warm_level: i32,
    /// Largest dictionary trained per suite for the warm tier; 0 disables dictionaries.
    pub warm_dictionary_bytes: usize,
    /// xz preset of the cold tier, 0–9 (default 6).
    pub cold_level: u32,
    /// Uncompressed bytes of records per independently compressed cold block (default 128 KiB).
    pub cold_block_bytes: usize,
    /// Target compressed size of one cold segment (default 2 MiB; segments end on a block).
    pub cold_segment_bytes: usize,
    /// Byte bound of the read cache (default 512 MiB; 0 disables it).
    pub cache_bytes: u64,
    /// Records per warm migration batch (one journal, one catalog transaction each).
    pub migrate_batch_records: usize,
    /// Outputs larger than this are streamed to the hot tier ([`put_file`](crate::put_file),
    /// [`put_reader`](crate::put_reader)) instead of held in memory (default 1 MiB).
    pub stream_threshold_bytes: u64,
    /// Time to live of a writer's lease ([`Storage::hold_lease`](crate::Storage::hold_lease));
    /// renewed at half-time while writing, so `tier gc` waits at most this long after a writer
    /// on another host died (default 10 minutes).
    pub writer_lease: Duration,
}

impl Default for TierPolicy {
    fn default() -> Self {
        TierPolicy {
            hot_max_age: Duration::from_secs(7 * 86_400),
            warm_max_age: Duration::from_secs(90 * 86_400),
            warm_level: 3,
            warm_dictionary_bytes: 16 * 1024,
            cold_level: 6,
            cold_block_bytes: 128 * 1024,
            cold_segment_bytes: 2 * 1024 * 1024,
            cache_bytes: 512 * 1024 * 1024,
            migrate_batch_records: 1000,
            stream_threshold_bytes: 1024 * 1024,
            writer_lease: Duration::from_secs(600),
        }
    }
}

impl TierPolicy {
    /// Check the policy for contradictions; the message names the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| {
            Err(StoreError::new(
                ErrorKind::Other,
                "tier policy",
                "validate",
                what,
            ))
        };
        if self.warm_max_age < self.hot_max_age {
            return bad(format!(
                "warm max age ({}s) is shorter than hot max age ({}s); records would skip the warm tier \
                 — make storage.policy.warm_days at least storage.policy.hot_days",
                self.warm_max_age.as_secs(),
                self.hot_max_age.as_secs()
            ));
        }
        if !(1..=22).contains(&self.warm_level) {
            return bad(format!(
                "warm zstd level {} is outside 1..=22",
                self.warm_level
            ));
        }
        if self.cold_level > 9 {
            return bad(format!(
                "cold xz level {} is outside 0..=9",
                self.cold_level
            ));
        }
        if self.cold_block_bytes < 1024 || self.cold_block_bytes > 64 * 1024 * 1024 {
            return bad(format!(
                "cold block size {} bytes is outside 1 KiB..64 MiB",
                self.cold_block_bytes
            ));
        }
        if self.cold_segment_bytes < self.cold_block_bytes / 8 {
            return bad(format!(
                "cold segment size {} bytes is far below the block size {}",
                self.cold_segment_bytes, self.cold_block_bytes
            ));
        }
        if self.migrate_batch_records == 0 {
            return bad("migration batch size is 0".into());
        }
        if self.writer_lease < Duration::from_secs(1) {
            return bad(format!(
                "writer lease of {:?} is under a second; writers would spend their time renewing it",
                self.writer_lease
            ));
        }
        Ok(())
    }

    /// The tier a record started at `started_at` belongs in at time `now`.
    pub fn tier_for(&self, started_at: Timestamp, now: Timestamp) -> Tier {
        let age = now.0.saturating_sub(started_at.0);
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        if age > nanos(self.warm_max_age) {
            Tier::Cold
        } else if age > nanos(self.hot_max_age) {
            Tier::Warm
        } else {
            Tier::Hot
        }
    }

    /// Records started before this (exclusive) belong in `tier` or a colder one at time `now`.
    pub fn cutoff(&self, tier: Tier, now: Timestamp) -> Timestamp {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match tier {
            Tier::Hot => Timestamp::MAX,
            Tier::Warm => Timestamp(now.0.saturating_sub(nanos(self.hot_max_age))),
            Tier::Cold => Timestamp(now.0.saturating_sub(nanos(self.warm_max_age))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn tier_by_age() {
        let p = TierPolicy::default();
        let now = Timestamp::from_unix_seconds(1_000 * DAY);
        for (age_days, want) in [
            (0, Tier::Hot),
            (7, Tier::Hot),
            (8, Tier::Warm),
            (90, Tier::Warm),
            (91, Tier::Cold),
            (-3, Tier::Hot),
        ] {
            let started = Timestamp::from_unix_seconds(now.0 / 1_000_000_000 - age_days * DAY);
            assert_eq!(p.tier_for(started, now), want, "age {age_days} days");
            // The cutoff agrees with tier_for.
            let colder_than_hot = started < p.cutoff(Tier::Warm, now);
            assert_eq!(colder_than_hot, want != Tier::Hot, "age {age_days} days");
        }
    }

    #[test]
    fn validation_names_the_setting() {
        let check = |edit: fn(&mut TierPolicy), needle: &str| {
            let mut p = TierPolicy::default();
            edit(&mut p);
            let err = p.validate().unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        };
        check(|p| p.warm_max_age = Duration::from_secs(1), "warm_days");
        check(|p| p.warm_level = 0, "zstd level 0");
        check(|p| p.cold_level = 10, "xz level 10");
        check(|p| p.cold_block_bytes = 10, "block size");
        check(|p| p.migrate_batch_records = 0, "batch");
        check(|p| p.writer_lease = Duration::ZERO, "writer lease");
        assert!(TierPolicy::default().validate().is_ok());
    }
}
