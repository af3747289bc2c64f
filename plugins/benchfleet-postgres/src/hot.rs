//! Hot records packed per write batch in `bf_hot_packs` (migration 0004) instead of one
//! `bf_blobs` row each. A key of the hot tier's own shape (`records/<day>/<time>-<sha256>`,
//! [`codec::hot_key`]) is found through the packs whose span of start times holds its time, then
//! in the pack's directory (48 bytes a record); its bytes are a `substring()` of the pack. Every
//! other key stays a `bf_blobs` row, and so do hot records written before packs existed.
//!
//! Writers of packs take one transaction-level advisory lock, so that put-if-absent stays atomic
//! across processes; readers never wait.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, Row};

use benchfleet_model::{Digest, Timestamp};
use benchfleet_store::codec;
use benchfleet_store::{BlobKey, ErrorKind, StoreError};

/// Bytes of one directory entry: start time (i64), SHA-256, offset and length (u32 each).
const DIR_ENTRY: usize = 8 + 32 + 4 + 4;
/// A pack holds at most this many bytes of records (a larger batch is split).
const PACK_BYTES: usize = 64 << 20;

/// The start time and digest of a key that is a hot key of the tier's own shape (rebuilt
/// exactly from them), which is what packs hold.
pub(crate) fn packed_key(key: &BlobKey) -> Option<(i64, Digest)> {
    let s = key.as_str();
    let rest = s.strip_prefix(codec::HOT_NS)?.strip_prefix('/')?;
    let (_day, rest) = rest.split_once('/')?;
    let (ordered, hex) = rest.split_once('-')?;
    let ordered: u64 = ordered.parse().ok()?;
    let digest: Digest = hex.parse().ok()?;
    let ns = (ordered ^ (1 << 63)) as i64;
    (codec::hot_key(Timestamp(ns), &digest) == *key).then_some((ns, digest))
}

/// A record's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub pack: i64,
    pub offset: u32,
    pub len: u32,
}

#[derive(Clone, Copy)]
struct DirEntry {
    ns: i64,
    digest: Digest,
    offset: u32,
    len: u32,
}

fn damaged(why: &str) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(StoreError::new(
        ErrorKind::Corrupt,
        "postgres",
        "read hot pack",
        format!("the directory of a hot record pack is damaged ({why}); restore a backup"),
    )))
}

fn parse_dir(dir: &[u8]) -> Result<Vec<DirEntry>, sqlx::Error> {
    if !dir.len().is_multiple_of(DIR_ENTRY) {
        return Err(damaged("its length is not a multiple of 48"));
    }
    Ok(dir
        .chunks_exact(DIR_ENTRY)
        .map(|c| DirEntry {
            ns: i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
            digest: Digest::from_bytes(c[8..40].try_into().expect("32 bytes")),
            offset: u32::from_le_bytes(c[40..44].try_into().expect("4 bytes")),
            len: u32::from_le_bytes(c[44..48].try_into().expect("4 bytes")),
        })
        .collect())
}

fn encode_dir(entries: &[DirEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * DIR_ENTRY);
    for e in entries {
        out.extend_from_slice(&e.ns.to_le_bytes());
        out.extend_from_slice(e.digest.as_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
    }
    out
}

/// The writers' lock of the packs (until the transaction ends).
async fn lock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.bf_hot_packs', 0))",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The packs whose span holds one of `times`: (id, directory).
async fn packs_at<'e, E>(exec: E, times: &[i64]) -> Result<Vec<(i64, Vec<DirEntry>)>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    if times.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT id, dir FROM bf_hot_packs WHERE id IN (
             SELECT p.id FROM unnest($1::int8[]) AS t(ns) JOIN bf_hot_packs p ON p.span @> t.ns)",
    )
    .bind(times)
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| {
            let dir: Vec<u8> = r.try_get("dir")?;
            Ok((r.try_get("id")?, parse_dir(&dir)?))
        })
        .collect()
}

/// Where each of `wanted` (start time, digest) is; absent ones are missing from the map.
pub(crate) async fn locate<'e, E>(
    exec: E,
    wanted: &[(i64, Digest)],
) -> Result<HashMap<(i64, Digest), Slot>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let mut times: Vec<i64> = wanted.iter().map(|w| w.0).collect();
    times.sort_unstable();
    times.dedup();
    let want: HashSet<&(i64, Digest)> = wanted.iter().collect();
    let mut out = HashMap::new();
    for (pack, dir) in packs_at(exec, &times).await? {
        for e in dir {
            let k = (e.ns, e.digest);
            if want.contains(&k) {
                out.entry(k).or_insert(Slot {
                    pack,
                    offset: e.offset,
                    len: e.len,
                });
            }
        }
    }
    Ok(out)
}

/// The bytes at each slot, in the order given (one query).
pub(crate) async fn read_slots<'e, E>(
    exec: E,
    slots: &[Slot],
) -> Result<Vec<Option<Vec<u8>>>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = slots.iter().map(|s| s.pack).collect();
    let offs: Vec<i64> = slots.iter().map(|s| i64::from(s.offset)).collect();
    let lens: Vec<i64> = slots.iter().map(|s| i64::from(s.len)).collect();
    let idx: Vec<i32> = (0..slots.len() as i32).collect();
    let rows = sqlx::query(
        "SELECT u.i, substring(p.data FROM (u.off + 1)::int4 FOR u.len::int4) AS bytes
         FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int4[]) AS u(id, off, len, i)
         JOIN bf_hot_packs p ON p.id = u.id",
    )
    .bind(&ids)
    .bind(&offs)
    .bind(&lens)
    .bind(&idx)
    .fetch_all(exec)
    .await?;
    let mut out = vec![None; slots.len()];
    for r in rows {
        let i: i32 = r.try_get("i")?;
        let bytes: Vec<u8> = r.try_get("bytes")?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(bytes);
        }
    }
    Ok(out)
}

/// Put the records `items` ((start time, digest), bytes) that no pack holds yet into new packs,
/// in the transaction of `conn`. Returns, per item, whether it was written (the first of a
/// repeated key only). `legacy`: keys that a `bf_blobs` row already holds.
pub(crate) async fn put(
    conn: &mut PgConnection,
    items: &[((i64, Digest), &[u8])],
    legacy: &HashSet<(i64, Digest)>,
) -> Result<Vec<bool>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    lock(conn).await?;
    let keys: Vec<(i64, Digest)> = items.iter().map(|i| i.0).collect();
    let present = locate(&mut *conn, &keys).await?;
    let mut seen = HashSet::with_capacity(items.len());
    let mut created = Vec::with_capacity(items.len());
    let mut packs: Vec<(Vec<DirEntry>, Vec<u8>)> = vec![(Vec::new(), Vec::new())];
    for ((ns, digest), bytes) in items {
        let k = (*ns, *digest);
        let fresh = !present.contains_key(&k) && !legacy.contains(&k) && seen.insert(k);
        created.push(fresh);
        if !fresh {
            continue;
        }
        let len = u32::try_from(bytes.len()).map_err(|_| {
            sqlx::Error::Encode(
                format!(
                    "a hot record of {} bytes is too large for a pack",
                    bytes.len()
                )
                .into(),
            )
        })?;
        if packs
            .last()
            .is_some_and(|p| !p.1.is_empty() && p.1.len() + bytes.len() > PACK_BYTES)
        {
            packs.push((Vec::new(), Vec::new()));
        }
        let (dir, data) = packs.last_mut().expect("one pack at least");
        dir.push(DirEntry {
            ns: *ns,
            digest: *digest,
            offset: data.len() as u32,
            len,
        });
        data.extend_from_slice(bytes);
    }
    for (dir, data) in packs.iter().filter(|p| !p.0.is_empty()) {
        let lo = dir.iter().map(|e| e.ns).min().expect("not empty");
        let hi = dir.iter().map(|e| e.ns).max().expect("not empty");
        sqlx::query(
            "INSERT INTO bf_hot_packs (span, dir, data)
             VALUES (int8range($1, CASE WHEN $2 = 9223372036854775807 THEN NULL ELSE $2 + 1 END),
                     $3, $4)",
        )
        .bind(lo)
        .bind(hi)
        .bind(encode_dir(dir))
        .bind(data.as_slice())
        .execute(&mut *conn)
        .await?;
    }
    Ok(created)
}

/// Delete the records `keys` from their packs in the transaction of `conn` (absent ones are
/// skipped): each pack's directory is rewritten without them, and a pack left empty is deleted.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    keys: &[(i64, Digest)],
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    lock(conn).await?;
    let mut times: Vec<i64> = keys.iter().map(|k| k.0).collect();
    times.sort_unstable();
    times.dedup();
    let gone: HashSet<&(i64, Digest)> = keys.iter().collect();
    let (mut drop_ids, mut upd_ids, mut upd_dirs) = (Vec::new(), Vec::new(), Vec::new());
    for (id, dir) in packs_at(&mut *conn, &times).await? {
        let left: Vec<DirEntry> = dir
            .iter()
            .copied()
            .filter(|e| !gone.contains(&(e.ns, e.digest)))
            .collect();
        if left.len() == dir.len() {
            continue;
        }
        if left.is_empty() {
            drop_ids.push(id);
        } else {
            upd_ids.push(id);
            upd_dirs.push(encode_dir(&left));
        }
    }
    if !drop_ids.is_empty() {
        sqlx::query("DELETE FROM bf_hot_packs WHERE id = ANY($1::int8[])")
            .bind(&drop_ids)
            .execute(&mut *conn)
            .await?;
    }
    if !upd_ids.is_empty() {
        sqlx::query(
            "UPDATE bf_hot_packs AS p SET dir = u.dir
             FROM unnest($1::int8[], $2::bytea[]) AS u(id, dir) WHERE p.id = u.id",
        )
        .bind(&upd_ids)
        .bind(&upd_dirs)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every record key the packs hold, with its size.
pub(crate) async fn list<'e, E>(exec: E) -> Result<Vec<(BlobKey, u64)>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let dirs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT dir FROM bf_hot_packs")
        .fetch_all(exec)
        .await?;
    let mut out = Vec::new();
    for d in dirs {
        for e in parse_dir(&d)? {
            out.push((codec::hot_key(Timestamp(e.ns), &e.digest), u64::from(e.len)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hot_keys_of_the_tiers_shape_are_packed() {
        let d = Digest::of(b"record");
        for ns in [0, 1_700_000_000_123_456_789, -5, i64::MAX, i64::MIN] {
            let key = codec::hot_key(Timestamp(ns), &d);
            assert_eq!(packed_key(&key), Some((ns, d)), "{key}");
        }
        for other in [
            format!("records/ab/cd/{}", d.to_hex()),
            "records/000001/x-y".to_owned(),
            format!("warm/000001/09223372036854775808-{}", d.to_hex()),
            // A day that does not match the time.
            format!("records/000007/09223372036854775808-{}", d.to_hex()),
        ] {
            let key = BlobKey::new(other.clone()).unwrap();
            assert_eq!(packed_key(&key), None, "{other}");
        }
    }

    #[test]
    fn directories_round_trip_and_damage_is_an_error() {
        let e = [
            DirEntry {
                ns: -3,
                digest: Digest::of(b"a"),
                offset: 0,
                len: 7,
            },
            DirEntry {
                ns: i64::MAX,
                digest: Digest::of(b"b"),
                offset: 7,
                len: u32::MAX,
            },
        ];
        let bytes = encode_dir(&e);
        assert_eq!(bytes.len(), 96);
        let back = parse_dir(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[1].ns, back[1].digest, back[1].len),
            (i64::MAX, Digest::of(b"b"), u32::MAX)
        );
        assert!(parse_dir(&bytes[..50]).is_err());
    }
}
