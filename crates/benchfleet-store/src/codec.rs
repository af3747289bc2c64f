//! The tiers' encodings and the location strings that name them.
//!
//! - hot: `records/ab/cd/<record sha256>` — the canonical bytes as they are.
//! - warm: one zstd frame per record, compressed with the suite's dictionary, the frames of one
//!   migration batch packed end to end in one object `warm/ab/cd/<pack sha256>`. The location
//!   `<pack key>@<offset>+<length>?dict=<dictionary sha256>` (no `?dict=` without a dictionary)
//!   is the index: one range read, one frame decompression. A pack is one object instead of a
//!   file (an inode, a directory entry, a flush, and a discard when deleted) per record.
//!   Locations without `@` name a whole object holding one frame (`warm/ab/cd/<record
//!   sha256>-<dict id>`, as stores written before packs have them) and stay readable.
//!   Dictionaries live under `dicts/ab/cd/<sha256 of the dictionary>`.
//! - cold: `cold/ab/cd/<segment sha256>`, a segment of independent xz streams (blocks); the
//!   location `<segment key>#<block offset>+<block length>@<offset>+<length>` is the index: one
//!   range read of the block, one block decompression, one slice.

use std::io::{Read as _, Write as _};

use benchfleet_model::Digest;

use crate::{BlobKey, ErrorKind, Result, StoreError, Tier, content};

/// Namespace of hot records.
pub const HOT_NS: &str = "records";
/// Namespace of warm records.
pub const WARM_NS: &str = "warm";
/// Namespace of warm dictionaries (content-addressed).
pub const DICT_NS: &str = "dicts";
/// Namespace of the suite → dictionary pointers.
pub const SUITE_DICT_NS: &str = "dict-suites";
/// Namespace of cold segments (content-addressed).
pub const COLD_NS: &str = "cold";
/// Namespace of migration journals (in the hot store).
pub const JOURNAL_NS: &str = "tier-journal";

/// Where a record's bytes are, parsed from [`RecordEntry::location`](crate::RecordEntry).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Hot {
        key: BlobKey,
    },
    Warm {
        key: BlobKey,
        dict: Option<Digest>,
        /// `(offset, length)` of the record's frame in a pack; `None`: the whole object.
        frame: Option<(u64, u64)>,
    },
    Cold {
        segment: BlobKey,
        block_offset: u64,
        block_len: u64,
        offset: u64,
        len: u64,
    },
}

fn bad_location(loc: &str, why: &str) -> StoreError {
    StoreError::new(
        ErrorKind::Decode,
        "catalog",
        "parse location",
        format!("malformed record location ({why}); run `benchfleet tier verify`"),
    )
    .with_key(loc)
}

/// `OFFSET+LENGTH` of a location.
fn offset_len(loc: &str, s: &str) -> Result<(u64, u64)> {
    let (a, b) = s
        .split_once('+')
        .ok_or_else(|| bad_location(loc, "expected OFFSET+LENGTH"))?;
    let n = |x: &str| {
        x.parse::<u64>()
            .map_err(|_| bad_location(loc, "offset or length is not a number"))
    };
    Ok((n(a)?, n(b)?))
}

/// The hot-tier key of a record that started at `started_at`:
/// `records/<day>/<time>-<sha256>`, where `<day>` counts days since 1970 (zero-padded) and
/// `<time>` is the start in nanoseconds, padded so that keys sort by time. Records measured
/// together, and records a migration moves together (oldest first), are then neighbours in a
/// sorted store: a batch writes or deletes a few adjacent B-tree pages, not one page per record.
/// (Stores written before this layout used `records/ab/cd/<sha256>`; those keys stay valid, as
/// every read goes through the location the catalog holds.)
pub fn hot_key(started_at: benchfleet_model::Timestamp, digest: &Digest) -> BlobKey {
    let ns = started_at.unix_nanos();
    let day = ns.max(0) / 86_400_000_000_000;
    // The sign bit flipped: the order of i64 as the order of u64 (20 digits fit any u64).
    let ordered = (ns as u64) ^ (1 << 63);
    BlobKey::new(format!(
        "{HOT_NS}/{day:06}/{ordered:020}-{}",
        digest.to_hex()
    ))
    .expect("a hot key is a valid blob key")
}

impl Location {
    pub fn hot(started_at: benchfleet_model::Timestamp, digest: &Digest) -> Self {
        Location::Hot {
            key: hot_key(started_at, digest),
        }
    }

    /// A record's frame at `offset..offset + len` of the warm pack `pack`.
    pub fn warm_frame(pack: BlobKey, dict: Option<Digest>, offset: u64, len: u64) -> Self {
        Location::Warm {
            key: pack,
            dict,
            frame: Some((offset, len)),
        }
    }

    pub fn tier(&self) -> Tier {
        match self {
            Location::Hot { .. } => Tier::Hot,
            Location::Warm { .. } => Tier::Warm,
            Location::Cold { .. } => Tier::Cold,
        }
    }

    /// The blob holding the record (for cold, the whole segment).
    pub fn key(&self) -> &BlobKey {
        match self {
            Location::Hot { key } | Location::Warm { key, .. } => key,
            Location::Cold { segment, .. } => segment,
        }
    }

    /// Parse a catalog location for `tier`.
    pub fn parse(tier: Tier, loc: &str) -> Result<Self> {
        let key = |s: &str| BlobKey::new(s).map_err(|_| bad_location(loc, "invalid blob key"));
        match tier {
            Tier::Hot => Ok(Location::Hot { key: key(loc)? }),
            Tier::Warm => {
                let (object, dict) = match loc.split_once("?dict=") {
                    Some((k, d)) => (
                        k,
                        Some(
                            d.parse()
                                .map_err(|_| bad_location(loc, "dictionary id is not a digest"))?,
                        ),
                    ),
                    None => (loc, None),
                };
                let (k, frame) = match object.split_once('@') {
                    Some((k, span)) => (k, Some(offset_len(loc, span)?)),
                    None => (object, None),
                };
                Ok(Location::Warm {
                    key: key(k)?,
                    dict,
                    frame,
                })
            }
            Tier::Cold => {
                let (seg, rest) = loc
                    .split_once('#')
                    .ok_or_else(|| bad_location(loc, "no `#` before the block"))?;
                let (block, rec) = rest
                    .split_once('@')
                    .ok_or_else(|| bad_location(loc, "no `@` before the offset"))?;
                let (block_offset, block_len) = offset_len(loc, block)?;
                let (offset, len) = offset_len(loc, rec)?;
                Ok(Location::Cold {
                    segment: key(seg)?,
                    block_offset,
                    block_len,
                    offset,
                    len,
                })
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Hot { key } => write!(f, "{key}"),
            Location::Warm { key, dict, frame } => {
                write!(f, "{key}")?;
                if let Some((offset, len)) = frame {
                    write!(f, "@{offset}+{len}")?;
                }
                match dict {
                    Some(d) => write!(f, "?dict={d}"),
                    None => Ok(()),
                }
            }
            Location::Cold {
                segment,
                block_offset,
                block_len,
                offset,
                len,
            } => write!(f, "{segment}#{block_offset}+{block_len}@{offset}+{len}"),
        }
    }
}

fn codec_err(op: &'static str, key: &impl std::fmt::Display, e: std::io::Error) -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        "codec",
        op,
        format!("{e}; the stored object is damaged (run `benchfleet tier verify`)"),
    )
    .with_key(key)
    .with_source(e)
}

/// Train a zstd dictionary of at most `max_bytes` on `samples`; `None` when there is too little
/// material for one to help (zstd refuses, or the samples are tiny).
pub fn train_dictionary(samples: &[&[u8]], max_bytes: usize) -> Option<Vec<u8>> {
    let total: usize = samples.iter().map(|s| s.len()).sum();
    if max_bytes == 0 || samples.len() < 8 || total < 4 * 1024 {
        return None;
    }
    // zstd wants roughly 10–100x the dictionary size in samples.
    let size = max_bytes.min(total / 10).max(1024);
    match zstd::dict::from_samples(samples, size) {
        Ok(d) if !d.is_empty() => Some(d),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("zstd dictionary training declined: {e}");
            None
        }
    }
}

/// Compresses warm records with one prepared dictionary (reused for a whole batch).
pub struct WarmEncoder {
    inner: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for WarmEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WarmEncoder")
    }
}

impl WarmEncoder {
    pub fn new(level: i32, dict: Option<&[u8]>) -> Result<Self> {
        let inner = match dict {
            Some(d) => zstd::bulk::Compressor::with_dictionary(level, d),
            None => zstd::bulk::Compressor::new(level),
        }
        .map_err(|e| codec_err("zstd init", &"warm", e))?;
        Ok(WarmEncoder { inner })
    }

    pub fn compress(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        self.inner
            .compress(bytes)
            .map_err(|e| codec_err("zstd compress", &"warm", e))
    }
}

/// Compress a batch of warm records in parallel (rayon's pool): the dictionary is prepared once
/// and shared, each worker reuses one compression context for all the records it takes. The
/// frames are identical to [`WarmEncoder`]'s, in input order.
pub fn warm_compress_batch(
    level: i32,
    dict: Option<&[u8]>,
    records: &[&[u8]],
) -> Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    let prepared = dict.map(|d| zstd::dict::EncoderDictionary::copy(d, level));
    let make = || match &prepared {
        Some(p) => zstd::bulk::Compressor::with_prepared_dictionary(p),
        None => zstd::bulk::Compressor::new(level),
    };
    records
        .par_iter()
        .with_min_len(32)
        .map_init(make, |c, r| match c {
            Ok(c) => c
                .compress(r)
                .map_err(|e| codec_err("zstd compress", &"warm", e)),
            Err(e) => Err(codec_err(
                "zstd init",
                &"warm",
                std::io::Error::new(e.kind(), e.to_string()),
            )),
        })
        .collect()
}

/// Decompress warm frames and check each against its record's digest, in parallel (rayon's
/// pool, one decompression context per thread). One result per frame, in input order:
/// [`ErrorKind::Corrupt`] for a frame that does not decompress to its size or digest.
/// `frames` are `(key, frame, digest, size)`.
pub fn warm_verify_batch(
    backend: &str,
    frames: &[(&BlobKey, &[u8], &Digest, usize)],
    dict: Option<&PreparedDict>,
) -> Vec<Result<()>> {
    use rayon::prelude::*;
    frames
        .par_iter()
        .with_min_len(32)
        .map(|(key, frame, digest, size)| {
            let plain = warm_decompress(key, frame, dict, *size)?;
            content::verify(backend, key, digest, &plain)
        })
        .collect()
}

/// Check many `(key, bytes, digest)` against their digests in parallel (SHA-256 on rayon's pool).
pub fn verify_batch(backend: &str, items: &[(&BlobKey, &[u8], &Digest)]) -> Vec<Result<()>> {
    use rayon::prelude::*;
    items
        .par_iter()
        .with_min_len(32)
        .map(|(key, bytes, digest)| content::verify(backend, key, digest, bytes))
        .collect()
}

/// A warm dictionary prepared for decompression (built once per dictionary, shared).
pub struct PreparedDict(zstd::dict::DecoderDictionary<'static>);

impl std::fmt::Debug for PreparedDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedDict")
    }
}

/// Prepare a dictionary for [`warm_decompress`]. `dict` must be verified against its id first:
/// zstd only fails on a dictionary with the dictionary magic and a damaged header, which a
/// verified dictionary (trained by zstd itself) never has.
pub fn prepare_dictionary(dict: &[u8]) -> PreparedDict {
    PreparedDict(zstd::dict::DecoderDictionary::copy(dict))
}

thread_local! {
    /// One decompression context per thread: creating one costs more than decompressing a record.
    static DCTX: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// Decompress one warm record of `size` bytes.
pub fn warm_decompress(
    key: &BlobKey,
    bytes: &[u8],
    dict: Option<&PreparedDict>,
    size: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    let res = DCTX.with(|cell| {
        let mut dctx = cell.borrow_mut();
        match dict {
            Some(d) => dctx.decompress_using_ddict(&mut out, bytes, d.0.as_ddict()),
            None => dctx.decompress(&mut out, bytes),
        }
    });
    match res {
        Ok(n) if n == size => Ok(out),
        Ok(n) => Err(codec_err(
            "zstd decompress",
            key,
            std::io::Error::other(format!("decompressed to {n} bytes, expected {size}")),
        )),
        Err(code) => Err(codec_err(
            "zstd decompress",
            key,
            std::io::Error::other(zstd::zstd_safe::get_error_name(code)),
        )),
    }
}

fn xz_stream(level: u32, block_bytes: usize) -> std::io::Result<liblzma::stream::Stream> {
    let mut opts = liblzma::stream::LzmaOptions::new_preset(level)?;
    // A dictionary larger than the block buys nothing and costs memory on both sides.
    let dict = u32::try_from(block_bytes.next_power_of_two().max(4096)).unwrap_or(u32::MAX);
    opts.dict_size(dict);
    let mut filters = liblzma::stream::Filters::new();
    filters.lzma2(&opts);
    Ok(liblzma::stream::Stream::new_stream_encoder(
        &filters,
        liblzma::stream::Check::Crc32,
    )?)
}

/// Compress one cold block as a complete xz stream.
pub fn xz_compress(level: u32, block: &[u8]) -> Result<Vec<u8>> {
    let run = || -> std::io::Result<Vec<u8>> {
        let stream = xz_stream(level, block.len())?;
        let mut enc =
            liblzma::write::XzEncoder::new_stream(Vec::with_capacity(block.len() / 4), stream);
        enc.write_all(block)?;
        enc.finish()
    };
    run().map_err(|e| codec_err("xz compress", &"cold block", e))
}

/// Decompress one cold block (a complete xz stream) of `expected` bytes at most.
pub fn xz_decompress(key: &impl std::fmt::Display, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 6);
    liblzma::read::XzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| codec_err("xz decompress", key, e))?;
    Ok(out)
}

/// Where one record went in a segment under construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub digest: Digest,
    pub block_offset: u64,
    pub block_len: u64,
    pub offset: u64,
    pub len: u64,
}

/// Packs records into independent xz blocks of about `block_bytes` each.
#[derive(Debug)]
pub struct SegmentBuilder {
    level: u32,
    block_bytes: usize,
    segment: Vec<u8>,
    block: Vec<u8>,
    pending: Vec<(Digest, u64, u64)>,
    placed: Vec<Placement>,
}

impl SegmentBuilder {
    pub fn new(level: u32, block_bytes: usize) -> Self {
        SegmentBuilder {
            level,
            block_bytes,
            segment: Vec::new(),
            block: Vec::with_capacity(block_bytes),
            pending: Vec::new(),
            placed: Vec::new(),
        }
    }

    /// Append a record; closes the current block when it reaches the block size.
    pub fn push(&mut self, digest: Digest, bytes: &[u8]) -> Result<()> {
        self.pending
            .push((digest, self.block.len() as u64, bytes.len() as u64));
        self.block.extend_from_slice(bytes);
        if self.block.len() >= self.block_bytes {
            self.close_block()?;
        }
        Ok(())
    }

    fn close_block(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let compressed = xz_compress(self.level, &self.block)?;
        let block_offset = self.segment.len() as u64;
        let block_len = compressed.len() as u64;
        self.segment.extend_from_slice(&compressed);
        for (digest, offset, len) in self.pending.drain(..) {
            self.placed.push(Placement {
                digest,
                block_offset,
                block_len,
                offset,
                len,
            });
        }
        self.block.clear();
        Ok(())
    }

    /// Compressed bytes so far (closed blocks only).
    pub fn compressed_len(&self) -> usize {
        self.segment.len()
    }

    pub fn is_empty(&self) -> bool {
        self.placed.is_empty() && self.pending.is_empty()
    }

    /// Close the last block; the segment's bytes and where each record is.
    pub fn finish(mut self) -> Result<(Vec<u8>, Vec<Placement>)> {
        self.close_block()?;
        Ok((self.segment, self.placed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel batch codec makes the same frames as one encoder record by record, they
    /// verify, and a damaged frame or a wrong digest is reported for that record only.
    #[test]
    fn parallel_warm_batch_matches_the_sequential_encoder() {
        let records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                format!(
                    "{{\"run\":{i},\"name\":\"bench-{}\",\"wall\":{}}}",
                    i % 7,
                    i * 31
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let dict = train_dictionary(&refs, 2048);
        for dict in [None, dict.as_deref()] {
            let batch = warm_compress_batch(3, dict, &refs).unwrap();
            let mut enc = WarmEncoder::new(3, dict).unwrap();
            let one_by_one: Vec<Vec<u8>> = refs.iter().map(|r| enc.compress(r).unwrap()).collect();
            assert_eq!(batch, one_by_one, "dict: {}", dict.is_some());
            let prepared = dict.map(prepare_dictionary);
            let digests: Vec<Digest> = refs.iter().map(|r| Digest::of(r)).collect();
            let keys: Vec<BlobKey> = digests
                .iter()
                .map(|d| content::key_for(WARM_NS, d))
                .collect();
            let mut frames: Vec<_> = (0..refs.len())
                .map(|i| (&keys[i], &batch[i][..], &digests[i], refs[i].len()))
                .collect();
            let damaged = [0xffu8; 8];
            frames[5].1 = &damaged;
            frames[9].2 = &digests[10];
            let verdicts = warm_verify_batch("test", &frames, prepared.as_ref());
            for (i, v) in verdicts.iter().enumerate() {
                match i {
                    5 | 9 => assert_eq!(v.as_ref().unwrap_err().kind, ErrorKind::Corrupt, "{i}"),
                    _ => assert!(v.is_ok(), "{i}: {v:?}"),
                }
            }
        }
    }

    #[test]
    fn locations_round_trip() {
        let d = Digest::of(b"record");
        let dict = Digest::of(b"dict");
        let seg = content::key_for(COLD_NS, &Digest::of(b"segment"));
        for loc in [
            Location::hot(benchfleet_model::Timestamp(1_700_000_000_000_000_000), &d),
            Location::hot(benchfleet_model::Timestamp(-5), &d),
            // Stores written before time-ordered hot keys.
            Location::Hot {
                key: content::key_for(HOT_NS, &d),
            },
            Location::warm_frame(content::key_for(WARM_NS, &d), Some(dict), 0, 77),
            Location::warm_frame(content::key_for(WARM_NS, &d), None, 4096, 1),
            // Stores written before packs: one object per record.
            Location::Warm {
                key: BlobKey::new(format!("{WARM_NS}/ab/cd/{}-raw", d.to_hex())).unwrap(),
                dict: None,
                frame: None,
            },
            Location::Warm {
                key: BlobKey::new(format!("{WARM_NS}/ab/cd/{}-{}", d.to_hex(), dict.short(16)))
                    .unwrap(),
                dict: Some(dict),
                frame: None,
            },
            Location::Cold {
                segment: seg,
                block_offset: 12,
                block_len: 3456,
                offset: 789,
                len: 1011,
            },
        ] {
            let text = loc.to_string();
            assert_eq!(Location::parse(loc.tier(), &text).unwrap(), loc, "{text}");
        }
    }

    #[test]
    fn malformed_locations_are_decode_errors() {
        for (tier, loc) in [
            (Tier::Hot, "../x"),
            (Tier::Warm, "warm/ab?dict=zz"),
            (Tier::Warm, "warm/ab@12"),
            (Tier::Warm, "warm/ab@1+x?dict=zz"),
            (Tier::Warm, "warm/ab@-1+2"),
            (Tier::Cold, "cold/ab"),
            (Tier::Cold, "cold/ab#1+2"),
            (Tier::Cold, "cold/ab#1+2@x+3"),
            (Tier::Cold, "cold/ab#12@3+4"),
        ] {
            let err = Location::parse(tier, loc).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Decode, "{loc}");
        }
    }

    #[test]
    fn segment_blocks_decode_independently() {
        let records: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 97)).into_bytes())
            .collect();
        let mut b = SegmentBuilder::new(6, 4096);
        for r in &records {
            b.push(Digest::of(r), r).unwrap();
        }
        let (segment, placed) = b.finish().unwrap();
        assert_eq!(placed.len(), records.len());
        let blocks: std::collections::BTreeSet<u64> =
            placed.iter().map(|p| p.block_offset).collect();
        assert!(blocks.len() > 1, "expected several blocks");
        for (p, r) in placed.iter().zip(&records) {
            let block = &segment[p.block_offset as usize..(p.block_offset + p.block_len) as usize];
            let plain = xz_decompress(&"test", block).unwrap();
            assert_eq!(
                &plain[p.offset as usize..(p.offset + p.len) as usize],
                &r[..]
            );
        }
    }

    #[test]
    fn warm_round_trip_with_and_without_dictionary() {
        let records: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!(
                    "{{\"suite\":\"s\",\"name\":\"bench-{}\",\"wall_ns\":{}}}",
                    i % 7,
                    i * 7919
                )
                .into_bytes()
            })
            .collect();
        let samples: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let dict = train_dictionary(&samples, 4096);
        assert!(dict.is_some(), "200 similar samples train a dictionary");
        for d in [None, dict.as_deref()] {
            let prepared = d.map(prepare_dictionary);
            let mut enc = WarmEncoder::new(3, d).unwrap();
            for r in &records {
                let z = enc.compress(r).unwrap();
                let key = BlobKey::new("k").unwrap();
                assert_eq!(
                    warm_decompress(&key, &z, prepared.as_ref(), r.len()).unwrap(),
                    *r
                );
            }
        }
        // A damaged frame is reported, not returned.
        let mut enc = WarmEncoder::new(3, None).unwrap();
        let mut z = enc.compress(&records[0]).unwrap();
        let mid = z.len() / 2;
        z[mid] ^= 0xff;
        let key = BlobKey::new("k").unwrap();
        if let Ok(out) = warm_decompress(&key, &z, None, records[0].len()) {
            assert_ne!(out, records[0]);
        }
    }
}
