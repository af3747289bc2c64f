//! Deterministic test data: pseudo-random bytes, run ids, runs and record entries.

use bytes::Bytes;

use benchfleet_model::{
    Digest, HostInfo, Measurement, NodeKind, Outcome, RunId, RunInfo, RunStatus, SCHEMA_VERSION,
    Timestamp,
};
use benchfleet_store::{RecordEntry, Tier};

/// `len` pseudo-random bytes from `seed` (splitmix64): incompressible, reproducible, and
/// different for different seeds.
pub fn bytes(seed: u64, len: usize) -> Bytes {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// The `n`-th of an increasing sequence of valid run ids (lexical order = `n` order).
pub fn run_id(n: u32) -> RunId {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut tail = [b'0'; 4];
    let mut v = n;
    for c in tail.iter_mut().rev() {
        *c = ALPHABET[(v % 32) as usize];
        v /= 32;
    }
    format!(
        "01HZY3K4MZ8Q6X2V1B0C9D{}",
        std::str::from_utf8(&tail).unwrap_or("0000")
    )
    .parse()
    .expect("generated run ids are valid")
}

/// A run row.
pub fn run(n: u32, suite: &str, started_at: i64) -> RunInfo {
    RunInfo {
        schema_version: SCHEMA_VERSION,
        run_id: run_id(n),
        suite: suite.to_owned(),
        started_at: Timestamp(started_at),
        finished_at: None,
        status: RunStatus::Running,
        host: HostInfo {
            hostname: "testhost".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            memory_bytes: 1 << 30,
        },
        tags: Default::default(),
        source: "conformance".into(),
    }
}

/// A record entry whose digest is derived from every identifying field (so it is unique).
pub fn entry(
    run: &RunId,
    suite: &str,
    name: &str,
    iteration: u32,
    started_at: i64,
    tier: Tier,
) -> RecordEntry {
    let digest = Digest::of(format!("{run}/{suite}/{name}/{iteration}/{started_at}").as_bytes());
    RecordEntry {
        digest,
        run_id: run.clone(),
        suite: suite.to_owned(),
        name: name.to_owned(),
        kind: NodeKind::Benchmark,
        iteration,
        started_at: Timestamp(started_at),
        measurement: Measurement {
            wall_ns: 1_000 + u64::from(iteration),
            max_rss_bytes: 4096,
            ..Default::default()
        },
        outcome: if iteration == 2 {
            Outcome::Failed {
                exit_code: Some(1),
                signal: None,
            }
        } else {
            Outcome::Success
        },
        size: 1024,
        tier,
        location: format!("records/{}", digest.to_hex()),
    }
}

/// The order `query_records` promises: (`started_at`, `run_id`, `name`, `iteration`).
pub fn record_order(a: &RecordEntry, b: &RecordEntry) -> std::cmp::Ordering {
    (a.started_at, &a.run_id, &a.name, a.iteration).cmp(&(
        b.started_at,
        &b.run_id,
        &b.name,
        b.iteration,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_increase_and_are_valid() {
        let ids: Vec<RunId> = [0, 1, 31, 32, 1000, 40_000]
            .into_iter()
            .map(run_id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn bytes_are_deterministic_and_seeded() {
        assert_eq!(bytes(7, 100), bytes(7, 100));
        assert_ne!(bytes(7, 100), bytes(8, 100));
        assert_eq!(bytes(7, 13).len(), 13);
        assert_eq!(bytes(7, 13), bytes(7, 100).slice(..13));
    }
}
