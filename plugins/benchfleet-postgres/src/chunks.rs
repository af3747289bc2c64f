//! Record entries packed per run in `bf_chunks` (migration 0004): up to
//! [`CHUNK_RECORDS`] entries of one run in one row, encoded by [`benchfleet_store::pack`] (the
//! layout the embedded catalog uses too), with the columns queries select on beside them.
//!
//! Writers of one run are serialised by a transaction-level advisory lock on the run, so that
//! appends to the run's last chunk and tier moves never overwrite each other; readers never
//! wait. An entry is "already present" when a chunk of its run whose time span covers its start
//! holds its digest (re-puts carry the same start time; redb's catalog has the same per-run
//! rule).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{PgConnection, Row};

use benchfleet_model::{Digest, RunId};
use benchfleet_store::pack::{self, CHUNK_RECORDS};
use benchfleet_store::{ErrorKind, RecordEntry, RecordQuery, StoreError, Tier};

/// FNV-1a (32 bits) of `tag` then `s`: the `keys` column's hash of a suite (`s`) or name (`n`).
/// Stored: it must never change.
pub(crate) fn key_hash(tag: u8, s: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in std::iter::once(tag).chain(s.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// Buckets of job names in `keys`: a job's name is indexed coarsely, by one of this many
/// values, a benchmark's exactly. History and compare ask for benchmarks across runs; a DAG of
/// 10,000 jobs would otherwise add 10,000 distinct keys (about 50 bytes each in the GIN index)
/// to the catalog per suite. A job's entries stay findable by name: its bucket leads to a few
/// more chunks, which are decoded and filtered exactly like every other.
const JOB_BUCKETS: u32 = 1024;

/// The `keys` value of a job named `name`: a small number, never a benchmark's full hash in
/// practice (and a collision only makes a query decode a chunk more).
pub(crate) fn job_key(name: &str) -> i32 {
    (key_hash(b'j', name) as u32 % JOB_BUCKETS) as i32
}

/// The `keys` a query needs a chunk to have all of (suite), and one of (name: as a benchmark or
/// as a job); empty: any chunk.
pub(crate) fn query_keys(q: &RecordQuery) -> (Vec<i32>, Vec<i32>) {
    let all = q.suite.iter().map(|s| key_hash(b's', s)).collect();
    let any = q
        .name
        .iter()
        .flat_map(|n| [key_hash(b'n', n), job_key(n)])
        .collect();
    (all, any)
}

/// A chunk row as written.
pub(crate) struct ChunkRow {
    pub run_id: String,
    pub seq: i32,
    pub first_ns: i64,
    pub last_ns: i64,
    pub tiers: i16,
    /// `{k1,k2,…}`, cast to int4[] by the statement (UNNEST cannot take ragged arrays).
    pub keys: String,
    pub pack: Vec<u8>,
}

impl ChunkRow {
    pub(crate) fn of(run_id: &str, seq: i32, entries: &[RecordEntry]) -> ChunkRow {
        let (first_ns, last_ns) = entries.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
            (lo.min(e.started_at.0), hi.max(e.started_at.0))
        });
        let tiers = entries.iter().fold(0u8, |m, e| m | pack::tier_bit(e.tier));
        let mut keys: Vec<i32> = entries
            .iter()
            .flat_map(|e| {
                let name = match e.kind {
                    benchfleet_model::NodeKind::Benchmark => key_hash(b'n', &e.name),
                    benchfleet_model::NodeKind::Job => job_key(&e.name),
                };
                [key_hash(b's', &e.suite), name]
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let keys = format!(
            "{{{}}}",
            keys.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        ChunkRow {
            run_id: run_id.to_owned(),
            seq,
            first_ns,
            last_ns,
            tiers: i16::from(tiers),
            keys,
            pack: pack::encode(entries),
        }
    }
}

/// A decode error of a stored chunk, as the sqlx error the statements' callers expect.
fn decode_err(e: StoreError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

fn parse_run(run: &str) -> Result<RunId, sqlx::Error> {
    run.parse().map_err(|e| {
        decode_err(StoreError::new(
            ErrorKind::Decode,
            "postgres",
            "decode record chunk",
            format!("run id `{run}` of a record chunk: {e}"),
        ))
    })
}

/// Decode a chunk of run `run`.
pub(crate) fn decode(run: &str, value: &[u8]) -> Result<Vec<RecordEntry>, sqlx::Error> {
    pack::decode(&parse_run(run)?, value).map_err(decode_err)
}

/// Take the writers' lock of each run (transaction-level, in one order, so two writers never
/// wait for each other in a cycle).
pub(crate) async fn lock_runs(conn: &mut PgConnection, runs: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k)
         FROM (SELECT DISTINCT hashtextextended(current_schema() || '.bf_chunks ' || r, 0) AS k
               FROM unnest($1::text[]) AS r) AS s
         ORDER BY k",
    )
    .bind(runs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A chunk read for rewriting.
struct Stored {
    seq: i32,
    entries: Vec<RecordEntry>,
}

/// The chunks of each run whose span meets `lo..=hi`, and (with `tails`) each run's last chunk,
/// decoded. `spans`: (run, lo, hi).
async fn read_chunks(
    conn: &mut PgConnection,
    spans: &[(&str, i64, i64)],
    tails: bool,
) -> Result<HashMap<String, (Vec<Stored>, Option<i32>)>, sqlx::Error> {
    let runs: Vec<&str> = spans.iter().map(|s| s.0).collect();
    let los: Vec<i64> = spans.iter().map(|s| s.1).collect();
    let his: Vec<i64> = spans.iter().map(|s| s.2).collect();
    let rows = sqlx::query(
        "SELECT u.run_id, c.seq, c.pack, m.top
         FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u(run_id, lo, hi)
         CROSS JOIN LATERAL (SELECT max(seq) AS top FROM bf_chunks WHERE run_id = u.run_id) AS m
         LEFT JOIN bf_chunks c ON c.run_id = u.run_id
              AND ((c.first_ns <= u.hi AND c.last_ns >= u.lo) OR ($4 AND c.seq = m.top))",
    )
    .bind(&runs)
    .bind(&los)
    .bind(&his)
    .bind(tails)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<String, (Vec<Stored>, Option<i32>)> = HashMap::new();
    for r in rows {
        let run: String = r.try_get("run_id")?;
        let top: Option<i32> = r.try_get("top")?;
        let seq: Option<i32> = r.try_get("seq")?;
        let slot = out.entry(run.clone()).or_insert_with(|| (Vec::new(), top));
        if let Some(seq) = seq {
            let value: Vec<u8> = r.try_get("pack")?;
            slot.0.push(Stored {
                seq,
                entries: decode(&run, &value)?,
            });
        }
    }
    Ok(out)
}

/// Per run: its entries (first of each digest wins), and the span of their start times.
fn by_run(entries: &[RecordEntry]) -> BTreeMap<&str, (Vec<&RecordEntry>, i64, i64)> {
    let mut seen = HashSet::with_capacity(entries.len());
    let mut runs: BTreeMap<&str, (Vec<&RecordEntry>, i64, i64)> = BTreeMap::new();
    for e in entries {
        if !seen.insert((e.run_id.as_str(), e.digest)) {
            continue;
        }
        let slot = runs
            .entry(e.run_id.as_str())
            .or_insert((Vec::new(), i64::MAX, i64::MIN));
        slot.1 = slot.1.min(e.started_at.0);
        slot.2 = slot.2.max(e.started_at.0);
        slot.0.push(e);
    }
    runs
}

const INSERT_CHUNKS: &str = "
INSERT INTO bf_chunks (run_id, seq, first_ns, last_ns, tiers, keys, pack)
SELECT run_id, seq, first_ns, last_ns, tiers, keys::int4[], pack
FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::int8[], $5::int2[], $6::text[], $7::bytea[])
     AS t(run_id, seq, first_ns, last_ns, tiers, keys, pack)";

const UPDATE_CHUNKS: &str = "
UPDATE bf_chunks AS c
SET first_ns = t.first_ns, last_ns = t.last_ns, tiers = t.tiers, keys = t.keys::int4[],
    pack = t.pack
FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::int8[], $5::int2[], $6::text[], $7::bytea[])
     AS t(run_id, seq, first_ns, last_ns, tiers, keys, pack)
WHERE c.run_id = t.run_id AND c.seq = t.seq";

/// Write `rows` with `sql` (one of the two statements above).
async fn write_rows(
    conn: &mut PgConnection,
    sql: &'static str,
    rows: &[ChunkRow],
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let run: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let seq: Vec<i32> = rows.iter().map(|r| r.seq).collect();
    let first: Vec<i64> = rows.iter().map(|r| r.first_ns).collect();
    let last: Vec<i64> = rows.iter().map(|r| r.last_ns).collect();
    let tiers: Vec<i16> = rows.iter().map(|r| r.tiers).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.keys.as_str()).collect();
    let packs: Vec<&[u8]> = rows.iter().map(|r| r.pack.as_slice()).collect();
    let done = sqlx::query(sql)
        .bind(&run)
        .bind(&seq)
        .bind(&first)
        .bind(&last)
        .bind(&tiers)
        .bind(&keys)
        .bind(&packs)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Insert `entries` (idempotent, see the module) in the transaction of `conn`: appended to each
/// run's last chunk while it has room, then in new chunks.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    entries: &[RecordEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let runs = by_run(entries);
    let names: Vec<&str> = runs.keys().copied().collect();
    lock_runs(conn, &names).await?;
    let spans: Vec<(&str, i64, i64)> = runs.iter().map(|(r, v)| (*r, v.1, v.2)).collect();
    let mut stored = read_chunks(conn, &spans, true).await?;
    let (mut new_rows, mut changed) = (Vec::new(), Vec::new());
    for (run, (fresh, _, _)) in &runs {
        let (chunks, top) = stored.remove(*run).unwrap_or_default();
        let present: HashSet<Digest> = chunks
            .iter()
            .flat_map(|c| c.entries.iter().map(|e| e.digest))
            .collect();
        let mut fresh: Vec<RecordEntry> = fresh
            .iter()
            .filter(|e| !present.contains(&e.digest))
            .map(|e| (*e).clone())
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let next = top.map_or(0, |t| t + 1);
        if let Some(tail) = top.and_then(|t| chunks.into_iter().find(|c| c.seq == t))
            && tail.entries.len() < CHUNK_RECORDS
        {
            let room = (CHUNK_RECORDS - tail.entries.len()).min(fresh.len());
            let mut all = tail.entries;
            all.extend(fresh.drain(..room));
            changed.push(ChunkRow::of(run, tail.seq, &all));
        }
        for (seq, part) in (next..).zip(fresh.chunks(CHUNK_RECORDS)) {
            new_rows.push(ChunkRow::of(run, seq, part));
        }
    }
    write_rows(conn, UPDATE_CHUNKS, &changed).await?;
    write_rows(conn, INSERT_CHUNKS, &new_rows).await?;
    Ok(())
}

/// Set tier and location of stored entries (found by run and digest) in the transaction of
/// `conn`. `Ok(Some(digest))`: that entry has no stored row; nothing was written.
pub(crate) async fn move_entries(
    conn: &mut PgConnection,
    entries: &[RecordEntry],
) -> Result<Option<Digest>, sqlx::Error> {
    let runs = by_run(entries);
    let names: Vec<&str> = runs.keys().copied().collect();
    lock_runs(conn, &names).await?;
    let spans: Vec<(&str, i64, i64)> = runs.iter().map(|(r, v)| (*r, v.1, v.2)).collect();
    let mut stored = read_chunks(conn, &spans, false).await?;
    let mut changed = Vec::new();
    for (run, (moved, _, _)) in &runs {
        let (found, _) = stored.remove(*run).unwrap_or_default();
        let mut chunks: Vec<(i32, Vec<RecordEntry>, bool)> = found
            .into_iter()
            .map(|s| (s.seq, s.entries, false))
            .collect();
        let mut at: HashMap<Digest, (usize, usize)> = HashMap::new();
        for (ci, (_, es, _)) in chunks.iter().enumerate() {
            for (ei, e) in es.iter().enumerate() {
                at.entry(e.digest).or_insert((ci, ei));
            }
        }
        for m in moved {
            let Some(&(ci, ei)) = at.get(&m.digest) else {
                return Ok(Some(m.digest));
            };
            let slot = &mut chunks[ci];
            let e = &mut slot.1[ei];
            if e.tier != m.tier || e.location != m.location {
                e.tier = m.tier;
                e.location.clone_from(&m.location);
                slot.2 = true;
            }
        }
        for (seq, es, dirty) in &chunks {
            if *dirty {
                changed.push(ChunkRow::of(run, *seq, es));
            }
        }
    }
    write_rows(conn, UPDATE_CHUNKS, &changed).await?;
    Ok(None)
}

/// Tier bit of `t` as the `tiers` column holds it.
pub(crate) fn tier_bit(t: Tier) -> i16 {
    i16::from(pack::tier_bit(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hashes_are_fnv1a_and_tagged() {
        // FNV-1a 32 of "" is the offset basis; of "a" a known value.
        let fnv = |bytes: &[u8]| {
            let mut h: u32 = 0x811c_9dc5;
            for b in bytes {
                h ^= u32::from(*b);
                h = h.wrapping_mul(0x0100_0193);
            }
            h
        };
        assert_eq!(fnv(b"a"), 0xe40c_292c);
        assert_eq!(key_hash(b'n', "gzip"), fnv(b"ngzip") as i32);
        assert_ne!(key_hash(b'n', "x"), key_hash(b's', "x"));
    }
}
