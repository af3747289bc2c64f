use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use benchfleet_model::{Digest, RunId, RunRecord};

use crate::cache::{ByteLru, CacheKey, CacheStats};
use crate::codec::{self, HOT_NS, Location};
use crate::lease::Lease;
use crate::{
    BlobStore, Catalog, ErrorKind, RecordEntry, RecordQuery, Result, StoreError, Tier, TierPolicy,
    content,
};

/// Namespace of hot, uncompressed records in the blob store.
pub const RECORDS_NS: &str = HOT_NS;

/// The blob store of each tier. They may be the same store: namespaces keep them apart.
#[derive(Clone, Debug)]
pub struct TierStores {
    pub hot: Arc<dyn BlobStore>,
    pub warm: Arc<dyn BlobStore>,
    pub cold: Arc<dyn BlobStore>,
}

impl TierStores {
    /// One store for every tier.
    pub fn single(store: Arc<dyn BlobStore>) -> Self {
        TierStores {
            hot: store.clone(),
            warm: store.clone(),
            cold: store,
        }
    }

    pub fn get(&self, tier: Tier) -> &Arc<dyn BlobStore> {
        match tier {
            Tier::Hot => &self.hot,
            Tier::Warm => &self.warm,
            Tier::Cold => &self.cold,
        }
    }
}

/// Records' hot-tier blobs (key and canonical bytes) and their catalog entries.
fn hot_items(records: &[RunRecord]) -> (Vec<(crate::BlobKey, Bytes)>, Vec<RecordEntry>) {
    let mut items = Vec::with_capacity(records.len());
    let mut entries = Vec::with_capacity(records.len());
    for r in records {
        let bytes = r.canonical_bytes();
        let digest = Digest::of(&bytes);
        let key = codec::hot_key(r.started_at, &digest);
        entries.push(entry_for(
            r,
            digest,
            bytes.len() as u64,
            Tier::Hot,
            key.to_string(),
        ));
        items.push((key, Bytes::from(bytes)));
    }
    (items, entries)
}

/// A catalog and the tiers' blob stores, composed: what the runner writes results into and
/// reads them from. Reads are transparent across tiers and go through a shared byte-bounded
/// LRU cache; every read is verified against the record's SHA-256.
#[derive(Clone, Debug)]
pub struct Storage {
    pub catalog: Arc<dyn Catalog>,
    /// The hot tier's blob store (new records, migration journals).
    pub blobs: Arc<dyn BlobStore>,
    pub tiers: TierStores,
    pub policy: TierPolicy,
    cache: Arc<ByteLru>,
    /// Warm dictionaries prepared for decompression, by id (few: one per suite).
    prepared: Arc<Mutex<HashMap<Digest, Arc<codec::PreparedDict>>>>,
    /// The writer lease shared by every clone (taken on the first write).
    lease: Arc<Lease>,
}

impl Storage {
    /// One blob store for every tier, default policy.
    pub fn new(catalog: Arc<dyn Catalog>, blobs: Arc<dyn BlobStore>) -> Self {
        Self::tiered(catalog, TierStores::single(blobs), TierPolicy::default())
    }

    /// A store per tier and a policy.
    pub fn tiered(catalog: Arc<dyn Catalog>, tiers: TierStores, policy: TierPolicy) -> Self {
        let cache = Arc::new(ByteLru::new(policy.cache_bytes));
        let lease = Arc::new(Lease::new("write", policy.writer_lease));
        Storage {
            catalog,
            blobs: tiers.hot.clone(),
            tiers,
            policy,
            cache,
            prepared: Arc::default(),
            lease,
        }
    }

    /// Take (or renew) this storage's writer lease, so that `tier gc` leaves blobs written
    /// before their catalog rows alone (see [`lease`](crate::lease)). [`Storage::write_records`]
    /// and the streaming puts call it themselves; a runner may call it up front.
    pub async fn hold_lease(&self) -> Result<()> {
        self.lease.hold(&*self.tiers.hot).await
    }

    /// Give the writer lease up once nothing more will be written (end of a run). Idempotent;
    /// the next write takes a new one. A process that dies without releasing does not block
    /// `gc` on its own host, and elsewhere only until the lease expires.
    pub async fn release_lease(&self) -> Result<()> {
        self.lease.release(&*self.tiers.hot).await
    }

    /// Whether the hot tier's blob store is the catalog itself (one database holding both, like
    /// the embedded default's redb file): then a batch's blobs and rows, and a migration's flip
    /// and source deletes, can commit together ([`Catalog::insert_records_with_blobs`],
    /// [`Catalog::move_records_deleting`]).
    pub fn hot_in_catalog(&self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.catalog), Arc::as_ptr(&self.tiers.hot))
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Store a batch of records in the hot tier: bytes first (one batch), then their catalog
    /// entries (one transaction). A crash between the two leaves only unreferenced blobs, which
    /// are harmless and collected by `tier gc`; nothing is ever referenced before it is durable.
    /// Where the hot tier lives in the catalog's own database both go in one transaction.
    pub async fn write_records(&self, records: &[RunRecord]) -> Result<Vec<RecordEntry>> {
        let (items, entries) = hot_items(records);
        self.hold_lease().await?;
        if self.hot_in_catalog()
            && self
                .catalog
                .insert_records_with_blobs(&items, &entries)
                .await?
        {
            return Ok(entries);
        }
        self.blobs.put_many(items).await?;
        self.catalog.insert_records(&entries).await?;
        Ok(entries)
    }

    /// Put records' bytes in the hot tier and return their catalog entries, without inserting
    /// them: for a caller that inserts the entries in a transaction of its own (the fleet's
    /// fenced completion). Bytes whose entries are never inserted are collected by `tier gc`.
    pub async fn put_record_blobs(&self, records: &[RunRecord]) -> Result<Vec<RecordEntry>> {
        let (items, entries) = hot_items(records);
        if items.is_empty() {
            return Ok(entries);
        }
        self.hold_lease().await?;
        self.blobs.put_many(items).await?;
        Ok(entries)
    }

    /// Stream a large output file into the hot tier ([`content::put_file`] under
    /// [`OUTPUTS_NS`](crate::OUTPUTS_NS)), content-addressed, without holding it in memory; the
    /// writer lease is held meanwhile. Use it for outputs over
    /// [`TierPolicy::stream_threshold_bytes`].
    pub async fn put_output_file(&self, path: &std::path::Path) -> Result<content::StreamedBlob> {
        self.hold_lease().await?;
        content::put_file(&*self.tiers.hot, content::OUTPUTS_NS, path).await
    }

    /// [`Storage::put_output_file`] for a reader (e.g. a child's stdout), spooled through a
    /// temporary file in `spool_dir` ([`content::put_reader`]).
    pub async fn put_output_reader<R: tokio::io::AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        spool_dir: &std::path::Path,
    ) -> Result<content::StreamedBlob> {
        self.hold_lease().await?;
        content::put_reader(&*self.tiers.hot, content::OUTPUTS_NS, reader, spool_dir).await
    }

    /// Read one record back, verified against its digest, from whichever tier holds it.
    pub async fn read_record(&self, entry: &RecordEntry) -> Result<RunRecord> {
        let bytes = self.read_bytes(entry).await?;
        RunRecord::from_canonical_bytes(&bytes).map_err(|e| {
            StoreError::new(
                ErrorKind::Decode,
                self.blobs.name(),
                "decode record",
                e.to_string(),
            )
            .with_key(entry.digest)
        })
    }

    /// A record's canonical bytes, verified. If the entry's location is gone (a migration moved
    /// the record after the entry was read), the catalog is asked again and the new location
    /// is read.
    pub async fn read_bytes(&self, entry: &RecordEntry) -> Result<Bytes> {
        if let Some(b) = self.cache.get(&CacheKey::Record(entry.digest)) {
            return Ok(b);
        }
        let bytes = match self.read_uncached(entry).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                let fresh = self.current_entry(entry).await?;
                match fresh {
                    Some(f) if f.location != entry.location || f.tier != entry.tier => {
                        self.read_uncached(&f).await?
                    }
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.cache
            .insert(CacheKey::Record(entry.digest), bytes.clone());
        Ok(bytes)
    }

    /// The catalog's current row for `entry`'s record.
    pub async fn current_entry(&self, entry: &RecordEntry) -> Result<Option<RecordEntry>> {
        let rows = self
            .catalog
            .query_records(&RecordQuery {
                run_id: Some(entry.run_id.clone()),
                name: Some(entry.name.clone()),
                since: Some(entry.started_at),
                until: Some(benchfleet_model::Timestamp(
                    entry.started_at.0.saturating_add(1),
                )),
                ..Default::default()
            })
            .await?;
        Ok(rows.into_iter().find(|r| r.digest == entry.digest))
    }

    /// Read without the record cache (blocks and dictionaries may still come from the cache).
    /// Always verified.
    pub(crate) async fn read_uncached(&self, entry: &RecordEntry) -> Result<Bytes> {
        let loc = Location::parse(entry.tier, &entry.location)?;
        self.read_location(&entry.digest, entry.size, &loc).await
    }

    /// [`Storage::read_uncached`] for a batch: hot records are fetched 16 at a time and their
    /// SHA-256s checked in parallel; each warm pack is read once for all its frames; cold
    /// records are read one by one (through the block cache).
    pub(crate) async fn read_many_uncached(&self, entries: &[RecordEntry]) -> Result<Vec<Bytes>> {
        if !entries.iter().all(|e| e.tier == Tier::Hot) {
            // Frames of one warm pack are sliced from one read of the pack; the rest one by one.
            let mut packs: HashMap<crate::BlobKey, Bytes> = HashMap::new();
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let loc = Location::parse(e.tier, &e.location)?;
                let Location::Warm {
                    key,
                    dict,
                    frame: Some((offset, len)),
                } = &loc
                else {
                    out.push(self.read_location(&e.digest, e.size, &loc).await?);
                    continue;
                };
                let pack = match packs.get(key) {
                    Some(p) => p.clone(),
                    None => {
                        let p = self.tiers.warm.get(key).await?;
                        packs.insert(key.clone(), p.clone());
                        p
                    }
                };
                let span = usize::try_from(*offset).unwrap_or(usize::MAX)
                    ..usize::try_from(offset + len).unwrap_or(usize::MAX);
                let Some(frame) = pack.get(span) else {
                    return Err(truncated(
                        self.tiers.warm.name(),
                        &loc,
                        offset + len,
                        pack.len(),
                    ));
                };
                let bytes = self.warm_decode(key, dict.as_ref(), frame, e.size).await?;
                content::verify(self.tiers.warm.name(), key, &e.digest, &bytes)?;
                out.push(bytes);
            }
            return Ok(out);
        }
        let locs = entries
            .iter()
            .map(|e| Location::parse(e.tier, &e.location))
            .collect::<Result<Vec<_>>>()?;
        let store = &self.tiers.hot;
        let keys: Vec<crate::BlobKey> = locs.iter().map(|l| l.key().clone()).collect();
        let fetched = store.get_many(&keys).await?;
        let items: Vec<_> = locs
            .iter()
            .zip(entries)
            .zip(&fetched)
            .map(|((l, e), b)| (l.key(), &b[..], &e.digest))
            .collect();
        for r in codec::verify_batch(store.name(), &items) {
            r?;
        }
        Ok(fetched)
    }

    pub(crate) async fn read_location(
        &self,
        digest: &Digest,
        size: u64,
        loc: &Location,
    ) -> Result<Bytes> {
        let store = self.tiers.get(loc.tier());
        let bytes = match loc {
            Location::Hot { key } => store.get(key).await?,
            Location::Warm { key, dict, frame } => {
                let raw = match frame {
                    None => store.get(key).await?,
                    Some((offset, len)) => {
                        let raw = store.get_range(key, *offset..offset + len).await?;
                        if raw.len() as u64 != *len {
                            return Err(truncated(store.name(), loc, *len, raw.len()));
                        }
                        raw
                    }
                };
                self.warm_decode(key, dict.as_ref(), &raw, size).await?
            }
            Location::Cold {
                segment,
                block_offset,
                block_len,
                offset,
                len,
            } => {
                let block = self.cold_block(segment, *block_offset, *block_len).await?;
                let (start, end) = (*offset as usize, (*offset + *len) as usize);
                if end > block.len() {
                    return Err(StoreError::new(
                        ErrorKind::Corrupt,
                        store.name(),
                        "read cold record",
                        format!(
                            "record at {start}..{end} lies outside its block of {} bytes",
                            block.len()
                        ),
                    )
                    .with_key(loc));
                }
                block.slice(start..end)
            }
        };
        content::verify(store.name(), loc.key(), digest, &bytes)?;
        Ok(bytes)
    }

    /// Decompress one warm frame (of a record of `size` bytes) with its dictionary.
    async fn warm_decode(
        &self,
        key: &crate::BlobKey,
        dict: Option<&Digest>,
        frame: &[u8],
        size: u64,
    ) -> Result<Bytes> {
        let prepared = match dict {
            Some(d) => Some(self.prepared_dictionary(d).await?),
            None => None,
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(Bytes::from(codec::warm_decompress(
            key,
            frame,
            prepared.as_deref(),
            size,
        )?))
    }

    /// A decompressed cold block: one range read, one xz stream.
    async fn cold_block(&self, segment: &crate::BlobKey, offset: u64, len: u64) -> Result<Bytes> {
        let key = CacheKey::Block(segment.clone(), offset);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        let raw = self
            .tiers
            .cold
            .get_range(segment, offset..offset + len)
            .await?;
        if raw.len() as u64 != len {
            return Err(truncated(
                self.tiers.cold.name(),
                &format!("{segment}#{offset}"),
                len,
                raw.len(),
            ));
        }
        let plain = Bytes::from(codec::xz_decompress(&format!("{segment}#{offset}"), &raw)?);
        self.cache.insert(key, plain.clone());
        Ok(plain)
    }

    /// A warm dictionary by id, verified against it.
    pub(crate) async fn dictionary(&self, id: &Digest) -> Result<Bytes> {
        let key = CacheKey::Dict(*id);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        let b = content::get(&*self.tiers.warm, codec::DICT_NS, id).await?;
        self.cache.insert(key, b.clone());
        Ok(b)
    }

    pub(crate) async fn prepared_dictionary(
        &self,
        id: &Digest,
    ) -> Result<Arc<codec::PreparedDict>> {
        let lock = |m: &Mutex<HashMap<Digest, Arc<codec::PreparedDict>>>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(id)
                .cloned()
        };
        if let Some(p) = lock(&self.prepared) {
            return Ok(p);
        }
        let bytes = self.dictionary(id).await?;
        // `dictionary` verified the bytes against `id`.
        let p = Arc::new(codec::prepare_dictionary(&bytes));
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*id, p.clone());
        Ok(p)
    }

    pub(crate) fn forget(&self, key: &CacheKey) {
        self.cache.remove(key);
    }

    /// Every record of a run, in catalog order.
    pub async fn read_run(&self, id: &RunId) -> Result<Vec<RunRecord>> {
        let entries = self.catalog.query_records(&RecordQuery::run(id)).await?;
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            out.push(self.read_record(e).await?);
        }
        Ok(out)
    }
}

/// A range read that came back short: the object was truncated.
fn truncated(backend: &str, what: &impl std::fmt::Display, want: u64, got: usize) -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        backend,
        "range read",
        format!(
            "expected {want} bytes but the object gave {got}; it is truncated (run `benchfleet tier verify`)"
        ),
    )
    .with_key(what)
}

/// The hot catalog row of `r`.
pub(crate) fn entry_for(
    r: &RunRecord,
    digest: Digest,
    size: u64,
    tier: Tier,
    location: String,
) -> RecordEntry {
    RecordEntry {
        digest,
        run_id: r.run_id.clone(),
        suite: r.suite.clone(),
        name: r.name.clone(),
        kind: r.kind,
        iteration: r.iteration,
        started_at: r.started_at,
        measurement: r.measurement,
        outcome: r.outcome.clone(),
        size,
        tier,
        location,
    }
}
