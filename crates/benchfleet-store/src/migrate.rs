//! Tier migration as a resumable state machine.
//!
//! Each batch goes through four phases, each finished before the next starts:
//!
//! 1. **copy** — read the source records (verified), compress them into the target tier
//!    (warm: one zstd frame per record with the suite's dictionary; cold: one segment of
//!    independent xz blocks) and write them (put-if-absent, one batch).
//! 2. **verify** — read every target back through the normal read path and check its SHA-256.
//!    Only then is a **journal** written (`tier-journal/<sha256>` in the hot store): the new
//!    catalog rows and the sources to delete.
//! 3. **flip** — [`Catalog::move_records`](crate::Catalog::move_records): every row of the batch
//!    points at the target, in one transaction.
//! 4. **delete** — the sources are deleted, then the journal.
//!
//! Where the sources are hot records kept in the catalog's own database (the embedded default),
//! phases 3 and 4 are one transaction ([`Catalog::move_records_deleting`](crate::Catalog::move_records_deleting))
//! and the batch needs no journal.
//!
//! Killing the process at any point loses nothing and shows nothing twice: before the flip
//! the catalog still points at the intact source (targets are unreferenced orphans, removed by
//! `tier gc`); after it, at the verified target (leftover sources are unreferenced). Every run of
//! [`migrate`] (and [`gc`](crate::gc)) first replays surviving journals (flip and delete are
//! idempotent), so rerunning finishes the work.
//!
//! [`FaultPlan`] aborts the process after the n-th event of a phase, for the kill tests
//! (`BENCHFLEET_FAULT_AFTER=flip:1`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use benchfleet_model::{Digest, Timestamp};

use crate::cache::CacheKey;
use crate::codec::{self, DICT_NS, JOURNAL_NS, Location, SUITE_DICT_NS, SegmentBuilder, WARM_NS};
use crate::{
    BlobKey, ErrorKind, PutOutcome, RecordEntry, RecordQuery, Result, Storage, StoreError, Tier,
    content,
};

/// Environment variable the CLI reads a [`FaultPlan`] from.
pub const FAULT_ENV: &str = "BENCHFLEET_FAULT_AFTER";

/// A migration phase, as named by fault plans and progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// After each record (warm) or segment (cold) written to the target tier.
    Copy,
    /// After each target record read back and verified.
    Verify,
    /// After each journal written.
    Journal,
    /// After each batch's catalog flip.
    Flip,
    /// After each source deleted.
    Delete,
    /// After each journal removed (a batch fully done).
    Done,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Copy,
        Phase::Verify,
        Phase::Journal,
        Phase::Flip,
        Phase::Delete,
        Phase::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copy => "copy",
            Phase::Verify => "verify",
            Phase::Journal => "journal",
            Phase::Flip => "flip",
            Phase::Delete => "delete",
            Phase::Done => "done",
        }
    }
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// `std::process::abort()`: the process dies on the spot, like SIGKILL (no destructors,
    /// no cleanup).
    Abort,
    /// Return an error from [`migrate`] immediately, skipping all further work (in-process tests).
    Error,
}

/// Inject a crash after the `after`-th event of `phase` (1-based).
#[derive(Debug)]
pub struct FaultPlan {
    pub phase: Phase,
    pub after: u64,
    pub action: FaultAction,
    seen: AtomicU64,
}

impl FaultPlan {
    pub fn new(phase: Phase, after: u64, action: FaultAction) -> Self {
        FaultPlan {
            phase,
            after,
            action,
            seen: AtomicU64::new(0),
        }
    }

    /// Parse `PHASE:N` (e.g. `flip:1`, `copy:17`) into an aborting plan.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let err = || {
            format!(
                "`{text}` is not PHASE:N with PHASE one of {} and N ≥ 1",
                Phase::ALL.map(Phase::as_str).join(", ")
            )
        };
        let (p, n) = text.split_once(':').ok_or_else(err)?;
        let phase = Phase::ALL
            .into_iter()
            .find(|x| x.as_str() == p.trim())
            .ok_or_else(err)?;
        let after: u64 = n.trim().parse().map_err(|_| err())?;
        if after == 0 {
            return Err(err());
        }
        Ok(FaultPlan::new(phase, after, FaultAction::Abort))
    }

    /// Events of the plan's phase seen so far (a plan with `after == u64::MAX` just counts).
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    fn hit(&self, phase: Phase) -> Result<()> {
        if phase != self.phase {
            return Ok(());
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.after {
            return Ok(());
        }
        match self.action {
            FaultAction::Abort => {
                eprintln!(
                    "fault injection: aborting after {} event {n}",
                    phase.as_str()
                );
                std::process::abort()
            }
            FaultAction::Error => Err(StoreError::new(
                ErrorKind::Other,
                "migration",
                "fault injection",
                format!("injected crash after {} event {n}", phase.as_str()),
            )),
        }
    }
}

/// Progress of a migration, reported after each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateProgress {
    pub target: Tier,
    pub done: usize,
    pub total: usize,
}

/// Callback receiving [`MigrateProgress`].
pub type ProgressFn = Arc<dyn Fn(MigrateProgress) + Send + Sync>;

/// How to run a migration.
#[derive(Clone, Default)]
pub struct MigrateOptions {
    /// The time ages are measured from (`--as-of`); `None` means now.
    pub now: Option<Timestamp>,
    pub fault: Option<Arc<FaultPlan>>,
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("now", &self.now)
            .field("fault", &self.fault)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a migration did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Interrupted batches finished from their journals.
    pub resumed_batches: usize,
    pub resumed_records: usize,
    pub to_warm: usize,
    pub to_cold: usize,
    pub batches: usize,
    /// Canonical bytes of the records moved.
    pub bytes_in: u64,
    /// Bytes written to the target tiers (records, segments, new dictionaries).
    pub bytes_out: u64,
    /// Bytes the catalog gave back to the file system afterwards
    /// ([`Catalog::reclaim_space`](crate::Catalog::reclaim_space)).
    pub reclaimed_bytes: u64,
}

/// The intent of one verified batch: the catalog rows to write and the sources to delete.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Journal {
    version: u32,
    /// New rows (tier and location changed).
    entries: Vec<RecordEntry>,
    /// (tier, location) of each source, in the same order.
    sources: Vec<(Tier, String)>,
}

fn now_timestamp() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

struct Ctx<'a> {
    storage: &'a Storage,
    opts: &'a MigrateOptions,
    report: MigrateReport,
    /// Renewed before each batch's copy.
    lease: Option<&'a crate::lease::Lease>,
    /// Warm packs some of whose records moved on (see [`reclaim_packs`]).
    spent_packs: BTreeSet<BlobKey>,
}

impl Ctx<'_> {
    async fn renew_lease(&self) -> Result<()> {
        match self.lease {
            Some(l) => l.hold(&*self.storage.tiers.hot).await,
            None => Ok(()),
        }
    }

    fn fault(&self, phase: Phase) -> Result<()> {
        match &self.opts.fault {
            Some(f) => f.hit(phase),
            None => Ok(()),
        }
    }
}

/// Move every record whose age (at `opts.now`) puts it in a colder tier there. Replays
/// interrupted batches first.
pub async fn migrate(storage: &Storage, opts: &MigrateOptions) -> Result<MigrateReport> {
    storage.policy.validate()?;
    // Targets are unreferenced until their batch flips: hold a lease so `gc` leaves them alone.
    let lease = crate::lease::Lease::new("migrate", storage.policy.writer_lease);
    lease.hold(&*storage.tiers.hot).await?;
    let result = migrate_leased(storage, opts, &lease).await;
    if let Err(e) = lease.release(&*storage.tiers.hot).await {
        tracing::warn!("could not release the migration lease (it expires by itself): {e}");
    }
    let mut report = result?;
    if report.to_warm + report.to_cold + report.resumed_records > 0 {
        // Moved entries were rewritten and hot sources deleted: give the freed pages back.
        report.reclaimed_bytes = storage.catalog.reclaim_space().await?;
    }
    Ok(report)
}

async fn migrate_leased(
    storage: &Storage,
    opts: &MigrateOptions,
    lease: &crate::lease::Lease,
) -> Result<MigrateReport> {
    let now = opts.now.unwrap_or_else(now_timestamp);
    let mut ctx = Ctx {
        storage,
        opts,
        report: MigrateReport::default(),
        lease: Some(lease),
        spent_packs: BTreeSet::new(),
    };
    resume_journals(&mut ctx).await?;

    // Cold first, so that records older than the warm age go hot → cold directly.
    let cold_cutoff = storage.policy.cutoff(Tier::Cold, now);
    let mut to_cold = Vec::new();
    for tier in [Tier::Hot, Tier::Warm] {
        to_cold.extend(
            storage
                .catalog
                .query_records(&RecordQuery {
                    tier: Some(tier),
                    until: Some(cold_cutoff),
                    ..Default::default()
                })
                .await?,
        );
    }
    to_cold.sort_by(|a, b| (&a.suite, a.started_at).cmp(&(&b.suite, b.started_at)));
    migrate_cold(&mut ctx, to_cold).await?;

    let to_warm = storage
        .catalog
        .query_records(&RecordQuery {
            tier: Some(Tier::Hot),
            until: Some(storage.policy.cutoff(Tier::Warm, now)),
            ..Default::default()
        })
        .await?;
    migrate_warm(&mut ctx, to_warm).await?;
    reclaim_packs(&mut ctx).await?;
    Ok(ctx.report)
}

/// Delete the warm packs in `ctx.spent_packs` that no catalog entry points into any more.
/// A pack still holding a record stays (and is reclaimed when its last record moves); one
/// missed here (a crash, a pack emptied by a resumed batch) is an orphan for `tier gc`.
async fn reclaim_packs(ctx: &mut Ctx<'_>) -> Result<()> {
    if ctx.spent_packs.is_empty() {
        return Ok(());
    }
    let live: BTreeSet<BlobKey> = ctx
        .storage
        .catalog
        .query_records(&RecordQuery {
            tier: Some(Tier::Warm),
            ..Default::default()
        })
        .await?
        .iter()
        .filter_map(|e| Location::parse(e.tier, &e.location).ok())
        .map(|l| l.key().clone())
        .collect();
    let empty: Vec<BlobKey> = std::mem::take(&mut ctx.spent_packs)
        .into_iter()
        .filter(|k| !live.contains(k))
        .collect();
    ctx.storage.tiers.warm.delete_many(empty).await
}

/// Finish every batch whose journal survived an interruption (flip, delete sources, drop the
/// journal). Returns the number of batches finished.
pub async fn resume(storage: &Storage) -> Result<usize> {
    let opts = MigrateOptions::default();
    let mut ctx = Ctx {
        storage,
        opts: &opts,
        report: MigrateReport::default(),
        lease: None,
        spent_packs: BTreeSet::new(),
    };
    resume_journals(&mut ctx).await?;
    Ok(ctx.report.resumed_batches)
}

async fn resume_journals(ctx: &mut Ctx<'_>) -> Result<()> {
    let hot = &ctx.storage.tiers.hot;
    for meta in hot.list(&format!("{JOURNAL_NS}/")).await? {
        let bytes = hot.get(&meta.key).await?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::new(
                ErrorKind::Decode,
                hot.name(),
                "read migration journal",
                format!(
                    "cannot decode ({e}); was it written by a newer benchfleet? Remove it only after \
                     checking `benchfleet tier verify`"
                ),
            )
            .with_key(&meta.key)
        })?;
        tracing::info!(
            "resuming interrupted migration batch {} ({} records)",
            meta.key,
            journal.entries.len()
        );
        ctx.report.resumed_batches += 1;
        ctx.report.resumed_records += journal.entries.len();
        apply(ctx, &meta.key, &journal).await?;
    }
    Ok(())
}

/// Phases 3 and 4 of a journaled batch. Idempotent.
///
/// Sources that are whole objects (hot records, warm objects of one record) are deleted here.
/// Warm packs hold the frames of many records, which may move at different times: they are
/// added to `ctx.spent_packs` and deleted by [`reclaim_packs`] once no record is left in them.
async fn apply(ctx: &mut Ctx<'_>, journal_key: &BlobKey, journal: &Journal) -> Result<()> {
    let storage = ctx.storage;
    storage.catalog.move_records(&journal.entries).await?;
    ctx.fault(Phase::Flip)?;
    // Sources per tier (cold is final: a segment is shared by many records and never a source).
    let mut sources: BTreeMap<Tier, Vec<BlobKey>> = BTreeMap::new();
    for (tier, location) in &journal.sources {
        match Location::parse(*tier, location)? {
            Location::Cold { .. } => {}
            Location::Warm {
                key,
                frame: Some(_),
                ..
            } => {
                ctx.spent_packs.insert(key);
            }
            loc => sources.entry(*tier).or_default().push(loc.key().clone()),
        }
    }
    // One batched delete per tier (one transaction or flush, not one per record). A kill test
    // aiming between single deletes gets them one by one, the order a backend without batched
    // deletes may leave behind.
    let one_by_one = ctx
        .opts
        .fault
        .as_ref()
        .is_some_and(|f| f.phase == Phase::Delete);
    // Where the hot store applies a batch in one transaction, the journal goes in the same
    // transaction as the hot sources: one commit fewer per batch, and still never a journal
    // gone while a source it names is left.
    let mut journal_pending = true;
    for (tier, mut keys) in sources {
        let store = storage.tiers.get(tier);
        if one_by_one {
            for key in &keys {
                store.delete(key).await?;
                ctx.fault(Phase::Delete)?;
            }
        } else {
            let n = keys.len();
            let with_journal = tier == Tier::Hot && store.capability().batch_put;
            if with_journal {
                keys.push(journal_key.clone());
            }
            store.delete_many(keys).await?;
            for _ in 0..n {
                ctx.fault(Phase::Delete)?;
            }
            journal_pending &= !with_journal;
        }
    }
    if journal_pending {
        storage.tiers.hot.delete(journal_key).await?;
    }
    ctx.fault(Phase::Done)?;
    Ok(())
}

/// Write the journal of a verified batch, then flip and delete. Where the sources are all hot
/// records kept in the catalog's own database, flip and delete are one transaction instead and
/// no journal is needed (there is no state between them to resume from).
async fn commit(ctx: &mut Ctx<'_>, old: &[RecordEntry], new: Vec<RecordEntry>) -> Result<()> {
    if ctx.storage.hot_in_catalog() && old.iter().all(|e| e.tier == Tier::Hot) {
        let sources = old
            .iter()
            .map(|e| Location::parse(Tier::Hot, &e.location).map(|l| l.key().clone()))
            .collect::<Result<Vec<_>>>()?;
        if ctx
            .storage
            .catalog
            .move_records_deleting(&new, &sources)
            .await?
        {
            ctx.fault(Phase::Flip)?;
            for _ in &sources {
                ctx.fault(Phase::Delete)?;
            }
            ctx.fault(Phase::Done)?;
            ctx.report.batches += 1;
            return Ok(());
        }
    }
    let journal = Journal {
        version: 1,
        sources: old.iter().map(|e| (e.tier, e.location.clone())).collect(),
        entries: new,
    };
    let bytes = serde_json::to_vec(&journal).map_err(|e| {
        StoreError::new(
            ErrorKind::Other,
            "migration",
            "encode journal",
            e.to_string(),
        )
    })?;
    let key = content::key_for(JOURNAL_NS, &Digest::of(&bytes));
    ctx.storage
        .tiers
        .hot
        .put_if_absent(&key, Bytes::from(bytes))
        .await?;
    ctx.fault(Phase::Journal)?;
    apply(ctx, &key, &journal).await?;
    ctx.report.batches += 1;
    Ok(())
}

fn progress(ctx: &Ctx<'_>, target: Tier, done: usize, total: usize) {
    if let Some(p) = &ctx.opts.progress {
        p(MigrateProgress {
            target,
            done,
            total,
        });
    }
}

async fn migrate_warm(ctx: &mut Ctx<'_>, entries: Vec<RecordEntry>) -> Result<()> {
    let total = entries.len();
    let mut by_suite: BTreeMap<String, Vec<RecordEntry>> = BTreeMap::new();
    for e in entries {
        by_suite.entry(e.suite.clone()).or_default().push(e);
    }
    let mut done = 0;
    for (suite, entries) in by_suite {
        for chunk in entries.chunks(ctx.storage.policy.migrate_batch_records) {
            warm_batch(ctx, &suite, chunk).await?;
            done += chunk.len();
            ctx.report.to_warm += chunk.len();
            progress(ctx, Tier::Warm, done, total);
        }
    }
    Ok(())
}

/// Key of the pointer from a suite to its dictionary.
fn suite_dict_key(suite: &str) -> BlobKey {
    content::key_for(SUITE_DICT_NS, &Digest::of(suite.as_bytes()))
}

/// The suite's dictionary (trained on `samples` and stored the first time).
async fn suite_dictionary(
    ctx: &mut Ctx<'_>,
    suite: &str,
    samples: &[&[u8]],
) -> Result<Option<(Digest, Bytes)>> {
    let storage = ctx.storage;
    let warm = &storage.tiers.warm;
    let pointer = suite_dict_key(suite);
    let read_pointer = |b: Bytes| -> Result<Digest> {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                StoreError::new(
                    ErrorKind::Corrupt,
                    warm.name(),
                    "read suite dictionary pointer",
                    "not a digest; delete it to train a new dictionary",
                )
                .with_key(&pointer)
            })
    };
    match warm.get(&pointer).await {
        Ok(b) => {
            let id = read_pointer(b)?;
            return Ok(Some((id, storage.dictionary(&id).await?)));
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    let Some(dict) = codec::train_dictionary(samples, storage.policy.warm_dictionary_bytes) else {
        return Ok(None);
    };
    let dict = Bytes::from(dict);
    let (id, outcome) = content::put(&**warm, DICT_NS, dict.clone()).await?;
    if outcome == PutOutcome::Created {
        ctx.report.bytes_out += dict.len() as u64;
    }
    if warm
        .put_if_absent(&pointer, Bytes::from(id.to_hex()))
        .await?
        == PutOutcome::AlreadyExists
    {
        // Someone else trained one first: use theirs.
        let id = read_pointer(warm.get(&pointer).await?)?;
        return Ok(Some((id, storage.dictionary(&id).await?)));
    }
    Ok(Some((id, dict)))
}

async fn warm_batch(ctx: &mut Ctx<'_>, suite: &str, old: &[RecordEntry]) -> Result<()> {
    let storage = ctx.storage;
    let sources = storage.read_many_uncached(old).await?;
    let dict = {
        let samples: Vec<&[u8]> = sources.iter().map(|b| &b[..]).collect();
        if storage.policy.warm_dictionary_bytes == 0 {
            None
        } else {
            suite_dictionary(ctx, suite, &samples).await?
        }
    };
    let dict_id = dict.as_ref().map(|(id, _)| *id);
    // Compression in parallel, one context per worker thread, the dictionary prepared once;
    // the frames packed end to end in one object.
    let (pack, spans) = {
        let refs: Vec<&[u8]> = sources.iter().map(|b| &b[..]).collect();
        let frames = codec::warm_compress_batch(
            storage.policy.warm_level,
            dict.as_ref().map(|(_, d)| &d[..]),
            &refs,
        )?;
        let mut pack = Vec::with_capacity(frames.iter().map(Vec::len).sum());
        let mut spans = Vec::with_capacity(frames.len());
        for z in &frames {
            spans.push((pack.len() as u64, z.len() as u64));
            pack.extend_from_slice(z);
        }
        (Bytes::from(pack), spans)
    };
    ctx.report.bytes_in += sources.iter().map(|b| b.len() as u64).sum::<u64>();
    drop(sources);
    let key = content::key_for(WARM_NS, &Digest::of(&pack));
    // Phase 1: copy (one object).
    ctx.renew_lease().await?;
    let warm = &storage.tiers.warm;
    if warm.put_if_absent(&key, pack.clone()).await? == PutOutcome::Created {
        ctx.report.bytes_out += pack.len() as u64;
    }
    for _ in old {
        ctx.fault(Phase::Copy)?;
    }
    // Phase 2: read the pack back from the warm store, decompress every frame and check it
    // against its record's SHA-256 (in parallel). A pack left by an interrupted run that does
    // not verify is replaced once.
    let prepared = match &dict_id {
        Some(id) => Some(storage.prepared_dictionary(id).await?),
        None => None,
    };
    let verify = || verify_pack(storage, &key, old, &spans, prepared.as_deref());
    if let Err(err) = verify().await {
        if err.kind != ErrorKind::Corrupt && !err.is_not_found() {
            return Err(err);
        }
        tracing::warn!("replacing a warm pack that does not verify: {err}");
        warm.delete(&key).await?;
        warm.put_if_absent(&key, pack).await?;
        verify().await?;
    }
    for _ in old {
        ctx.fault(Phase::Verify)?;
    }
    let new = old
        .iter()
        .zip(&spans)
        .map(|(e, (offset, len))| RecordEntry {
            tier: Tier::Warm,
            location: Location::warm_frame(key.clone(), dict_id, *offset, *len).to_string(),
            ..e.clone()
        })
        .collect();
    commit(ctx, old, new).await
}

/// Read a warm pack back whole and check every record's frame in it.
async fn verify_pack(
    storage: &Storage,
    key: &BlobKey,
    old: &[RecordEntry],
    spans: &[(u64, u64)],
    dict: Option<&codec::PreparedDict>,
) -> Result<()> {
    let warm = &storage.tiers.warm;
    let back = warm.get(key).await?;
    let expected = spans.last().map_or(0, |(o, l)| o + l);
    if back.len() as u64 != expected {
        return Err(StoreError::new(
            ErrorKind::Corrupt,
            warm.name(),
            "verify warm pack",
            format!("read back {} bytes, wrote {expected}", back.len()),
        )
        .with_key(key));
    }
    let frames: Vec<_> = old
        .iter()
        .zip(spans)
        .map(|(e, (o, l))| {
            let size = usize::try_from(e.size).unwrap_or(usize::MAX);
            (key, &back[*o as usize..(o + l) as usize], &e.digest, size)
        })
        .collect();
    codec::warm_verify_batch(warm.name(), &frames, dict)
        .into_iter()
        .collect()
}

async fn migrate_cold(ctx: &mut Ctx<'_>, entries: Vec<RecordEntry>) -> Result<()> {
    let total = entries.len();
    let policy = ctx.storage.policy.clone();
    let mut done = 0;
    let mut batch: Vec<RecordEntry> = Vec::new();
    let mut builder = SegmentBuilder::new(policy.cold_level, policy.cold_block_bytes);
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        // A chunk about a warm pack's size: each pack is read once or twice.
        let chunk: Vec<RecordEntry> = entries.by_ref().take(1024).collect();
        let sources = ctx.storage.read_many_uncached(&chunk).await?;
        for (e, bytes) in chunk.into_iter().zip(sources) {
            ctx.report.bytes_in += bytes.len() as u64;
            builder.push(e.digest, &bytes)?;
            batch.push(e);
            if builder.compressed_len() < policy.cold_segment_bytes {
                continue;
            }
            let full = std::mem::replace(
                &mut builder,
                SegmentBuilder::new(policy.cold_level, policy.cold_block_bytes),
            );
            done += batch.len();
            cold_segment(ctx, std::mem::take(&mut batch), full).await?;
            progress(ctx, Tier::Cold, done, total);
        }
    }
    if !builder.is_empty() {
        done += batch.len();
        cold_segment(ctx, batch, builder).await?;
        progress(ctx, Tier::Cold, done, total);
    }
    Ok(())
}

async fn cold_segment(
    ctx: &mut Ctx<'_>,
    old: Vec<RecordEntry>,
    builder: SegmentBuilder,
) -> Result<()> {
    let storage = ctx.storage;
    let (segment, placed) = builder.finish()?;
    let key = content::key_for(codec::COLD_NS, &Digest::of(&segment));
    let seg_len = segment.len() as u64;
    let segment = Bytes::from(segment);
    // Phase 1: copy.
    ctx.renew_lease().await?;
    if storage
        .tiers
        .cold
        .put_if_absent(&key, segment.clone())
        .await?
        == PutOutcome::Created
    {
        ctx.report.bytes_out += seg_len;
    }
    ctx.fault(Phase::Copy)?;
    // Phase 2: verify every record through the read path, from the stored segment. A segment
    // left by an interrupted run that does not verify is replaced once.
    let locs: Vec<Location> = placed
        .iter()
        .map(|p| Location::Cold {
            segment: key.clone(),
            block_offset: p.block_offset,
            block_len: p.block_len,
            offset: p.offset,
            len: p.len,
        })
        .collect();
    if let Err(err) = verify_segment(ctx, &key, &old, &locs, &placed).await {
        if err.kind != ErrorKind::Corrupt && !err.is_not_found() {
            return Err(err);
        }
        tracing::warn!("replacing a cold segment that does not verify: {err}");
        storage.tiers.cold.delete(&key).await?;
        storage.tiers.cold.put_if_absent(&key, segment).await?;
        verify_segment(ctx, &key, &old, &locs, &placed).await?;
    }
    let new = old
        .iter()
        .zip(&locs)
        .map(|(e, loc)| RecordEntry {
            tier: Tier::Cold,
            location: loc.to_string(),
            ..e.clone()
        })
        .collect();
    ctx.report.to_cold += old.len();
    commit(ctx, &old, new).await
}

async fn verify_segment(
    ctx: &Ctx<'_>,
    key: &BlobKey,
    old: &[RecordEntry],
    locs: &[Location],
    placed: &[codec::Placement],
) -> Result<()> {
    for p in placed {
        ctx.storage
            .forget(&CacheKey::Block(key.clone(), p.block_offset));
    }
    for (e, loc) in old.iter().zip(locs) {
        ctx.storage.read_location(&e.digest, e.size, loc).await?;
        ctx.fault(Phase::Verify)?;
    }
    Ok(())
}
