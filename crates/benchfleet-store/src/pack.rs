//! The binary encoding of a record chunk: up to [`CHUNK_RECORDS`] catalog entries of one run in
//! one value (a redb value, a PostgreSQL bytea): the catalogs' shared packed layout (issue 20).
//!
//! ```text
//! header (never compressed, read by queries to skip chunks without decoding them)
//!   u8   format (1)        u8  flags (bit 0: body is one zstd frame)
//!   i64  first started_at  i64 last started_at (little-endian)
//!   u8   tiers present (bit per tier)     varint entries
//!   varint bloom bytes, then the bloom filter over the entries' suites and names
//! body
//!   varint strings, each varint length + UTF-8 (suites, names, location keys: each once)
//!   per entry: digest (32 bytes), suite and name (string numbers), flags (kind, tier, how the
//!   location is kept), iteration, started_at (zigzag delta to the previous entry), the ten
//!   measurement counters, outcome, size, location
//! ```
//! Numbers are LEB128 varints. A hot location that is the record's default hot key
//! ([`codec::hot_key`]) is not stored at all; warm and cold locations keep their object key
//! (a content-addressed one as namespace and 32 bytes), dictionary id (32 bytes) and offsets;
//! anything else is kept verbatim. Decoding
//! gives back exactly the entries that were encoded.

use std::collections::HashMap;

use crate::codec::{self, Location};
use crate::{ErrorKind, RecordEntry, RecordQuery, RecordSample, StoreError, Tier};
use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, Timestamp};

/// Most entries in one chunk. A chunk is rewritten whole when an entry is appended or moved
/// between tiers, so this bounds that cost; larger chunks compress better.
pub const CHUNK_RECORDS: usize = 128;

const FORMAT: u8 = 1;
const FLAG_ZSTD: u8 = 1;
const HEADER_FIXED: usize = 1 + 1 + 8 + 8 + 1;
/// Bodies smaller than this are not worth a zstd frame.
const ZSTD_MIN: usize = 256;

/// What a query can learn from a chunk without decoding its entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Header<'a> {
    pub first: i64,
    pub last: i64,
    pub tiers: u8,
    pub entries: u64,
    bloom: &'a [u8],
    zstd: bool,
    body: &'a [u8],
}

pub fn tier_bit(t: Tier) -> u8 {
    match t {
        Tier::Hot => 1,
        Tier::Warm => 2,
        Tier::Cold => 4,
    }
}

impl Header<'_> {
    /// Whether the chunk may hold entries of `suite` (false positives possible, never false
    /// negatives).
    pub fn may_have_suite(&self, suite: &str) -> bool {
        bloom_has(self.bloom, b's', suite)
    }

    pub fn may_have_name(&self, name: &str) -> bool {
        bloom_has(self.bloom, b'n', name)
    }
}

fn corrupt(why: impl std::fmt::Display) -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        "catalog",
        "decode record chunk",
        format!("a record chunk of the catalog is damaged ({why}); restore a backup"),
    )
}

// ---- bloom filter -------------------------------------------------------------------------

fn fnv(tag: u8, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(tag).chain(s.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn bloom_bits(h: u64, bits: usize) -> impl Iterator<Item = usize> {
    let (h1, h2) = (h, (h >> 32) | 1);
    (0..3u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits as u64) as usize)
}

fn bloom_has(bloom: &[u8], tag: u8, s: &str) -> bool {
    if bloom.is_empty() {
        return true;
    }
    bloom_bits(fnv(tag, s), bloom.len() * 8).all(|b| bloom[b / 8] & (1 << (b % 8)) != 0)
}

fn bloom_of(keys: &[(u8, &str)]) -> Vec<u8> {
    // About ten bits per key: a few percent of false positives with three hashes.
    let bytes = (keys.len() * 10)
        .div_ceil(8)
        .next_power_of_two()
        .clamp(8, 256);
    let mut bloom = vec![0u8; bytes];
    for (tag, s) in keys {
        for b in bloom_bits(fnv(*tag, s), bytes * 8) {
            bloom[b / 8] |= 1 << (b % 8);
        }
    }
    bloom
}

// ---- varints --------------------------------------------------------------------------------

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zig(out: &mut Vec<u8>, v: i64) {
    put_var(out, ((v << 1) ^ (v >> 63)) as u64);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(corrupt("it ends early"));
        }
        let (a, b) = self.bytes.split_at(n);
        self.bytes = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().expect("eight bytes")))
    }

    fn var(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("a number is too long"))
    }

    fn zig(&mut self) -> Result<i64, StoreError> {
        let v = self.var()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn usize(&mut self) -> Result<usize, StoreError> {
        usize::try_from(self.var()?).map_err(|_| corrupt("a length is too large"))
    }
}

// ---- encoding -------------------------------------------------------------------------------

/// Strings of one chunk, each kept once.
#[derive(Default)]
struct Strings<'a> {
    list: Vec<&'a str>,
    index: HashMap<&'a str, u64>,
}

impl<'a> Strings<'a> {
    fn id(&mut self, s: &'a str) -> u64 {
        let next = self.list.len() as u64;
        *self.index.entry(s).or_insert_with(|| {
            self.list.push(s);
            next
        })
    }
}

// Location kinds (bits 3..6 of an entry's flags).
const LOC_VERBATIM: u8 = 0;
const LOC_HOT_DEFAULT: u8 = 1;
const LOC_WARM: u8 = 2;
const LOC_COLD: u8 = 3;
const LOC_HOT_KEY: u8 = 4;

/// How `e`'s location is kept: structured when it parses and prints back identically.
enum Loc<'a> {
    Verbatim(&'a str),
    HotDefault,
    /// A hot key of another shape (stores written before hot keys were ordered by time).
    HotKey(String),
    Warm {
        key: String,
        dict: Option<Digest>,
        frame: Option<(u64, u64)>,
    },
    Cold {
        segment: String,
        nums: [u64; 4],
    },
}

fn loc_of(e: &RecordEntry) -> Loc<'_> {
    let Ok(loc) = Location::parse(e.tier, &e.location) else {
        return Loc::Verbatim(&e.location);
    };
    if loc.to_string() != e.location {
        return Loc::Verbatim(&e.location);
    }
    match loc {
        Location::Hot { key } if key == codec::hot_key(e.started_at, &e.digest) => Loc::HotDefault,
        Location::Hot { key } => Loc::HotKey(key.to_string()),
        Location::Warm { key, dict, frame } => Loc::Warm {
            key: key.to_string(),
            dict,
            frame,
        },
        Location::Cold {
            segment,
            block_offset,
            block_len,
            offset,
            len,
        } => Loc::Cold {
            segment: segment.to_string(),
            nums: [block_offset, block_len, offset, len],
        },
    }
}

/// A content-addressed key `NS/ab/cd/<sha256 hex>` ([`crate::content::key_for`]):
/// its namespace and digest.
fn content_key(key: &str) -> Option<(&str, Digest)> {
    let (head, hex) = key.rsplit_once('/')?;
    let (head, cd) = head.rsplit_once('/')?;
    let (ns, ab) = head.rsplit_once('/')?;
    let digest: Digest = hex.parse().ok()?;
    (digest.to_hex() == hex && hex.get(0..2) == Some(ab) && hex.get(2..4) == Some(cd))
        .then_some((ns, digest))
}

/// A blob key: a content-addressed one as its namespace (a string number) and 32 bytes, any
/// other as a string number.
fn put_key<'a>(out: &mut Vec<u8>, strings: &mut Strings<'a>, key: &'a str) {
    match content_key(key) {
        Some((ns, digest)) => {
            out.push(1);
            put_var(out, strings.id(ns));
            out.extend_from_slice(digest.as_bytes());
        }
        None => {
            out.push(0);
            put_var(out, strings.id(key));
        }
    }
}

fn put_measurement(out: &mut Vec<u8>, m: &Measurement) {
    for v in m.counters() {
        put_var(out, v);
    }
}

/// Encode `entries` (all of one run, at most [`CHUNK_RECORDS`]) as one chunk value.
pub fn encode(entries: &[RecordEntry]) -> Vec<u8> {
    let locs: Vec<Loc<'_>> = entries.iter().map(loc_of).collect();
    let (first, last) = entries.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
        (lo.min(e.started_at.0), hi.max(e.started_at.0))
    });
    let mut strings = Strings::default();
    let mut body = Vec::with_capacity(entries.len() * 80);
    // Start times as deltas, the first from the header's `first`.
    let mut prev_t = first;
    for (e, loc) in entries.iter().zip(&locs) {
        body.extend_from_slice(e.digest.as_bytes());
        put_var(&mut body, strings.id(&e.suite));
        put_var(&mut body, strings.id(&e.name));
        let kind = match e.kind {
            NodeKind::Job => 0,
            NodeKind::Benchmark => 1,
        };
        let tier = match e.tier {
            Tier::Hot => 0,
            Tier::Warm => 1,
            Tier::Cold => 2,
        };
        let loc_kind = match loc {
            Loc::Verbatim(_) => LOC_VERBATIM,
            Loc::HotDefault => LOC_HOT_DEFAULT,
            Loc::HotKey(_) => LOC_HOT_KEY,
            Loc::Warm { .. } => LOC_WARM,
            Loc::Cold { .. } => LOC_COLD,
        };
        body.push(kind | (tier << 1) | (loc_kind << 3));
        put_var(&mut body, u64::from(e.iteration));
        put_zig(&mut body, e.started_at.0.wrapping_sub(prev_t));
        prev_t = e.started_at.0;
        put_measurement(&mut body, &e.measurement);
        match &e.outcome {
            Outcome::Success => body.push(0),
            Outcome::Failed { exit_code, signal } => {
                body.push(1 | u8::from(exit_code.is_some()) << 4 | u8::from(signal.is_some()) << 5);
                for v in [exit_code, signal].into_iter().flatten() {
                    put_zig(&mut body, i64::from(*v));
                }
            }
            Outcome::TimedOut { timeout_ns } => {
                body.push(2);
                put_var(&mut body, *timeout_ns);
            }
            Outcome::SpawnFailed { message } => {
                body.push(3);
                put_var(&mut body, strings.id(message));
            }
        }
        put_var(&mut body, e.size);
        match loc {
            Loc::Verbatim(s) => put_var(&mut body, strings.id(s)),
            Loc::HotDefault => {}
            Loc::HotKey(key) => put_key(&mut body, &mut strings, key),
            Loc::Warm { key, dict, frame } => {
                put_key(&mut body, &mut strings, key);
                // Bit 0: a dictionary follows; bit 1: a frame (offset, length) follows.
                body.push(u8::from(dict.is_some()) | u8::from(frame.is_some()) << 1);
                if let Some(d) = dict {
                    body.extend_from_slice(d.as_bytes());
                }
                if let Some((offset, len)) = frame {
                    put_var(&mut body, *offset);
                    put_var(&mut body, *len);
                }
            }
            Loc::Cold { segment, nums } => {
                put_key(&mut body, &mut strings, segment);
                for n in nums {
                    put_var(&mut body, *n);
                }
            }
        }
    }
    let mut plain = Vec::with_capacity(body.len() + strings.list.len() * 16 + 8);
    put_var(&mut plain, strings.list.len() as u64);
    for s in &strings.list {
        put_var(&mut plain, s.len() as u64);
        plain.extend_from_slice(s.as_bytes());
    }
    plain.extend_from_slice(&body);

    let mut keys: Vec<(u8, &str)> = Vec::new();
    for e in entries {
        keys.push((b's', &e.suite));
        keys.push((b'n', &e.name));
    }
    keys.sort_unstable();
    keys.dedup();
    let bloom = bloom_of(&keys);
    let tiers = entries.iter().fold(0u8, |m, e| m | tier_bit(e.tier));

    // Only full chunks are compressed: the one a run is still appending to is rewritten with
    // every append and stays plain (it is one per run).
    let compressed = (entries.len() >= CHUNK_RECORDS && plain.len() >= ZSTD_MIN)
        .then(|| zstd::bulk::compress(&plain, 3).ok())
        .flatten()
        .filter(|c| c.len() < plain.len());
    let mut out = Vec::with_capacity(HEADER_FIXED + 12 + bloom.len() + plain.len());
    out.push(FORMAT);
    out.push(if compressed.is_some() { FLAG_ZSTD } else { 0 });
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&last.to_le_bytes());
    out.push(tiers);
    put_var(&mut out, entries.len() as u64);
    put_var(&mut out, bloom.len() as u64);
    out.extend_from_slice(&bloom);
    out.extend_from_slice(compressed.as_deref().unwrap_or(&plain));
    out
}

// ---- decoding -------------------------------------------------------------------------------

/// A key written by `put_key`, not yet put together.
#[derive(Clone, Copy)]
enum RawKey<'a> {
    Verbatim(&'a str),
    /// A content-addressed key: namespace and digest bytes.
    Content(&'a str, &'a [u8]),
}

impl RawKey<'_> {
    fn build(self) -> String {
        match self {
            RawKey::Verbatim(s) => s.to_owned(),
            RawKey::Content(ns, digest) => {
                let hex = Digest::from_bytes(digest.try_into().expect("32 bytes")).to_hex();
                format!("{ns}/{}/{}/{hex}", &hex[0..2], &hex[2..4])
            }
        }
    }
}

fn read_key<'a>(
    r: &mut Reader<'a>,
    string: &impl Fn(u64) -> Result<&'a str, StoreError>,
) -> Result<RawKey<'a>, StoreError> {
    match r.u8()? {
        0 => Ok(RawKey::Verbatim(string(r.var()?)?)),
        1 => {
            let ns = string(r.var()?)?;
            Ok(RawKey::Content(ns, r.take(32)?))
        }
        _ => Err(corrupt("unknown key encoding")),
    }
}

/// A location as it lies in a chunk; [`RawLoc::build`] puts the string together.
enum RawLoc<'a> {
    Verbatim(&'a str),
    HotDefault,
    HotKey(RawKey<'a>),
    Warm {
        key: RawKey<'a>,
        dict: Option<&'a [u8]>,
        frame: Option<(u64, u64)>,
    },
    Cold {
        segment: RawKey<'a>,
        nums: [u64; 4],
    },
}

impl RawLoc<'_> {
    fn build(&self, started_at: Timestamp, digest: &Digest) -> String {
        match self {
            RawLoc::Verbatim(s) => (*s).to_owned(),
            RawLoc::HotDefault => codec::hot_key(started_at, digest).to_string(),
            RawLoc::HotKey(k) => k.build(),
            RawLoc::Warm { key, dict, frame } => {
                let mut loc = key.build();
                if let Some((offset, len)) = frame {
                    loc.push_str(&format!("@{offset}+{len}"));
                }
                if let Some(d) = dict {
                    let d = Digest::from_bytes((*d).try_into().expect("32 bytes"));
                    loc.push_str(&format!("?dict={d}"));
                }
                loc
            }
            RawLoc::Cold { segment, nums: n } => {
                format!("{}#{}+{}@{}+{}", segment.build(), n[0], n[1], n[2], n[3])
            }
        }
    }
}

/// One entry as it lies in a chunk: strings borrowed, the location not put together. Only
/// [`decode`] builds whole [`RecordEntry`]s; [`samples`] takes what a history needs.
struct Raw<'a> {
    digest: &'a [u8],
    suite: &'a str,
    name: &'a str,
    kind: NodeKind,
    tier: Tier,
    iteration: u32,
    started_at: Timestamp,
    measurement: Measurement,
    outcome: Outcome,
    size: u64,
    loc: RawLoc<'a>,
}

impl Raw<'_> {
    fn entry(self, run_id: &RunId) -> RecordEntry {
        let digest = Digest::from_bytes(self.digest.try_into().expect("32 bytes"));
        RecordEntry {
            location: self.loc.build(self.started_at, &digest),
            digest,
            run_id: run_id.clone(),
            suite: self.suite.to_owned(),
            name: self.name.to_owned(),
            kind: self.kind,
            iteration: self.iteration,
            started_at: self.started_at,
            measurement: self.measurement,
            outcome: self.outcome,
            size: self.size,
            tier: self.tier,
        }
    }

    /// [`RecordQuery::matches`] on the fields a chunk's entries differ in (a chunk is of one
    /// run: the query's run is checked on the chunk's key).
    fn matches(&self, q: &RecordQuery) -> bool {
        q.suite.as_deref().is_none_or(|s| s == self.suite)
            && q.name.as_deref().is_none_or(|n| n == self.name)
            && q.since.is_none_or(|t| self.started_at >= t)
            && q.until.is_none_or(|t| self.started_at < t)
            && q.tier.is_none_or(|t| self.tier == t)
    }
}

/// The header of a chunk value.
pub fn header(value: &[u8]) -> Result<Header<'_>, StoreError> {
    let mut r = Reader { bytes: value };
    let format = r.u8()?;
    if format != FORMAT {
        return Err(StoreError::new(
            ErrorKind::Decode,
            "catalog",
            "decode record chunk",
            format!(
                "record chunk format {format} is unknown to this build; was it written by a newer benchfleet?"
            ),
        ));
    }
    let flags = r.u8()?;
    let first = r.i64()?;
    let last = r.i64()?;
    let tiers = r.u8()?;
    let entries = r.var()?;
    let bloom_len = r.usize()?;
    let bloom = r.take(bloom_len)?;
    Ok(Header {
        first,
        last,
        tiers,
        entries,
        bloom,
        zstd: flags & FLAG_ZSTD != 0,
        body: r.bytes,
    })
}

/// Call `f` on every entry of a chunk, in the order they were encoded.
fn walk(
    value: &[u8],
    mut f: impl FnMut(Raw<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let h = header(value)?;
    let plain;
    let body = if h.zstd {
        // A chunk holds at most CHUNK_RECORDS entries; this bounds what a damaged frame can ask.
        plain =
            zstd::bulk::decompress(h.body, 64 << 20).map_err(|e| corrupt(format!("zstd: {e}")))?;
        &plain[..]
    } else {
        h.body
    };
    let mut r = Reader { bytes: body };
    let n_strings = r.usize()?;
    let mut strings = Vec::with_capacity(n_strings.min(4 * CHUNK_RECORDS + 8));
    for _ in 0..n_strings {
        let len = r.usize()?;
        let s = std::str::from_utf8(r.take(len)?).map_err(|_| corrupt("a string is not UTF-8"))?;
        strings.push(s);
    }
    let string = |i: u64| -> Result<&str, StoreError> {
        usize::try_from(i)
            .ok()
            .and_then(|i| strings.get(i).copied())
            .ok_or_else(|| corrupt("a string number is out of range"))
    };
    let count = usize::try_from(h.entries).map_err(|_| corrupt("too many entries"))?;
    let mut prev_t = h.first;
    for _ in 0..count {
        let digest = r.take(32)?;
        let suite = string(r.var()?)?;
        let name = string(r.var()?)?;
        let flags = r.u8()?;
        let kind = if flags & 1 == 0 {
            NodeKind::Job
        } else {
            NodeKind::Benchmark
        };
        let tier = match (flags >> 1) & 3 {
            0 => Tier::Hot,
            1 => Tier::Warm,
            2 => Tier::Cold,
            _ => return Err(corrupt("unknown tier")),
        };
        let iteration = u32::try_from(r.var()?).map_err(|_| corrupt("iteration too large"))?;
        let started_at = prev_t.wrapping_add(r.zig()?);
        prev_t = started_at;
        let mut m = [0u64; 10];
        for v in &mut m {
            *v = r.var()?;
        }
        let measurement = Measurement {
            wall_ns: m[0],
            user_ns: m[1],
            sys_ns: m[2],
            max_rss_bytes: m[3],
            minor_faults: m[4],
            major_faults: m[5],
            voluntary_context_switches: m[6],
            involuntary_context_switches: m[7],
            block_in: m[8],
            block_out: m[9],
        };
        let o = r.u8()?;
        let outcome = match o & 0x0f {
            0 => Outcome::Success,
            1 => {
                let mut num = |present: bool| -> Result<Option<i32>, StoreError> {
                    if !present {
                        return Ok(None);
                    }
                    i32::try_from(r.zig()?)
                        .map(Some)
                        .map_err(|_| corrupt("exit code out of range"))
                };
                let exit_code = num(o & 0x10 != 0)?;
                let signal = num(o & 0x20 != 0)?;
                Outcome::Failed { exit_code, signal }
            }
            2 => Outcome::TimedOut {
                timeout_ns: r.var()?,
            },
            3 => Outcome::SpawnFailed {
                message: string(r.var()?)?.to_owned(),
            },
            _ => return Err(corrupt("unknown outcome")),
        };
        let size = r.var()?;
        let loc = match flags >> 3 {
            LOC_VERBATIM => RawLoc::Verbatim(string(r.var()?)?),
            LOC_HOT_DEFAULT => RawLoc::HotDefault,
            LOC_HOT_KEY => RawLoc::HotKey(read_key(&mut r, &string)?),
            LOC_WARM => {
                let key = read_key(&mut r, &string)?;
                let parts = r.u8()?;
                let dict = if parts & 1 != 0 {
                    Some(r.take(32)?)
                } else {
                    None
                };
                let frame = if parts & 2 != 0 {
                    Some((r.var()?, r.var()?))
                } else {
                    None
                };
                RawLoc::Warm { key, dict, frame }
            }
            LOC_COLD => {
                let segment = read_key(&mut r, &string)?;
                let nums = [r.var()?, r.var()?, r.var()?, r.var()?];
                RawLoc::Cold { segment, nums }
            }
            _ => return Err(corrupt("unknown location kind")),
        };
        f(Raw {
            digest,
            suite,
            name,
            kind,
            tier,
            iteration,
            started_at: Timestamp(started_at),
            measurement,
            outcome,
            size,
            loc,
        })?;
    }
    Ok(())
}

/// Every entry of a chunk of run `run_id`, in the order they were encoded.
pub fn decode(run_id: &RunId, value: &[u8]) -> Result<Vec<RecordEntry>, StoreError> {
    let mut out = Vec::with_capacity(CHUNK_RECORDS);
    walk(value, |raw| {
        out.push(raw.entry(run_id));
        Ok(())
    })?;
    Ok(out)
}

/// The entries of a chunk of run `run_id` that match `q` (its run aside), as samples: no
/// name, suite or location is built.
pub fn samples(
    run_id: &RunId,
    value: &[u8],
    q: &RecordQuery,
    out: &mut Vec<RecordSample>,
) -> Result<(), StoreError> {
    walk(value, |raw| {
        if raw.matches(q) {
            out.push(RecordSample {
                run_id: run_id.clone(),
                started_at: raw.started_at,
                iteration: raw.iteration,
                measurement: raw.measurement,
                success: raw.outcome.is_success(),
            });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32, tier: Tier, outcome: Outcome) -> RecordEntry {
        let run_id: RunId = "01HZY3K4MZ8Q6X2V1B00000001".parse().unwrap();
        let digest = Digest::of(format!("record {i}").as_bytes());
        let started_at = Timestamp(1_700_000_000_000_000_000 + i64::from(i) * 1_000_003);
        let location = match tier {
            Tier::Hot if i.is_multiple_of(2) => codec::hot_key(started_at, &digest).to_string(),
            Tier::Hot if i % 4 == 1 => crate::content::key_for("records", &digest).to_string(),
            Tier::Hot => format!("records/ab/cd/{}", digest.to_hex()),
            Tier::Warm if i.is_multiple_of(2) => format!(
                "warm/packs/p1@{}+{}?dict={}",
                i * 100,
                90,
                Digest::of(b"dict")
            ),
            Tier::Warm if i % 3 == 1 => format!("warm/{}", digest.to_hex()),
            Tier::Warm => {
                let pack = crate::content::key_for("warm", &Digest::of(b"pack"));
                format!("{pack}@{}+90?dict={}", i * 90, Digest::of(b"dict"))
            }
            Tier::Cold if i.is_multiple_of(4) => {
                format!("cold/seg1#0+{}@{}+{}", 4000 + i, i * 470, 470)
            }
            Tier::Cold => {
                let seg = crate::content::key_for("cold", &Digest::of(b"seg"));
                format!("{seg}#{}+{}@{}+470", i * 1000, 4000 + i, i * 470)
            }
        };
        RecordEntry {
            digest,
            run_id,
            suite: if i.is_multiple_of(3) { "alpha" } else { "beta" }.into(),
            name: format!("node-{}", i % 7),
            kind: if i.is_multiple_of(2) {
                NodeKind::Job
            } else {
                NodeKind::Benchmark
            },
            iteration: i,
            started_at,
            measurement: Measurement {
                wall_ns: 1_000_000 + u64::from(i),
                user_ns: u64::from(i) * 7,
                sys_ns: u64::MAX - u64::from(i),
                max_rss_bytes: 2 << 20,
                minor_faults: 3,
                major_faults: 0,
                voluntary_context_switches: 1,
                involuntary_context_switches: 2,
                block_in: 0,
                block_out: 9,
            },
            outcome,
            size: 470 + u64::from(i),
            tier,
            location,
        }
    }

    fn sample() -> Vec<RecordEntry> {
        let outcomes = [
            Outcome::Success,
            Outcome::Failed {
                exit_code: Some(-3),
                signal: None,
            },
            Outcome::Failed {
                exit_code: None,
                signal: Some(9),
            },
            Outcome::TimedOut { timeout_ns: 5 },
            Outcome::SpawnFailed {
                message: "no such file".into(),
            },
        ];
        (0..CHUNK_RECORDS as u32)
            .map(|i| {
                let tier = [Tier::Hot, Tier::Warm, Tier::Cold][i as usize % 3];
                entry(i, tier, outcomes[i as usize % outcomes.len()].clone())
            })
            .collect()
    }

    #[test]
    fn chunks_decode_to_exactly_what_was_encoded() {
        let all = sample();
        for n in [1, 2, 5, all.len()] {
            let v = encode(&all[..n]);
            assert_eq!(
                decode(&all[0].run_id, &v).unwrap(),
                &all[..n],
                "{n} entries"
            );
        }
        // Out-of-order start times and odd locations survive too.
        let mut odd = all[..4].to_vec();
        odd.swap(0, 3);
        odd[1].location = "not a valid key ../x".into();
        odd[2].started_at = Timestamp(i64::MIN);
        odd[3].started_at = Timestamp(i64::MAX);
        let v = encode(&odd);
        assert_eq!(decode(&odd[0].run_id, &v).unwrap(), odd);
    }

    #[test]
    fn the_header_tells_span_tiers_and_names_without_decoding() {
        let all = sample();
        let v = encode(&all);
        let h = header(&v).unwrap();
        assert_eq!(h.entries, all.len() as u64);
        assert_eq!(h.first, all[0].started_at.0);
        assert_eq!(h.last, all.last().unwrap().started_at.0);
        assert_eq!(h.tiers, 7);
        for e in &all {
            assert!(h.may_have_name(&e.name) && h.may_have_suite(&e.suite));
        }
        let misses = (0..1000)
            .filter(|i| h.may_have_name(&format!("other-{i}")))
            .count();
        assert!(misses < 100, "{misses} false positives in 1000");
        let hot_only = encode(&all[..1]);
        assert_eq!(header(&hot_only).unwrap().tiers, tier_bit(Tier::Hot));
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let v = encode(&sample());
        for cut in [0, 1, 5, 20, v.len() / 2, v.len() - 1] {
            assert!(
                decode(&sample()[0].run_id, &v[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut newer = v.clone();
        newer[0] = 9;
        let err = decode(&sample()[0].run_id, &newer).unwrap_err();
        assert!(err.message.contains("newer benchfleet"), "{err}");
    }

    #[test]
    fn an_entry_costs_far_less_than_its_json_row() {
        let all = sample();
        let json: usize = all
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len())
            .sum();
        let packed = encode(&all).len();
        assert!(packed * 4 < json, "packed {packed} B vs JSON {json} B");
    }
}
