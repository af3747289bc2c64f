//! `tier status`, `tier verify` and `tier gc`: what each tier holds, whether every record is
//! intact, and removal of objects that interrupted work left unreferenced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use benchfleet_model::{Digest, RunId};

use crate::codec::{COLD_NS, DICT_NS, HOT_NS, JOURNAL_NS, Location, SUITE_DICT_NS, WARM_NS};
use crate::{
    BlobKey, CatalogFootprint, RecordEntry, RecordQuery, Result, Storage, Tier, TierPolicy, content,
};

/// Records and bytes of one tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TierStatus {
    pub tier: Tier,
    /// Catalog entries in the tier.
    pub records: u64,
    /// Their canonical (uncompressed) size.
    pub bytes: u64,
    /// Bytes the tier's objects occupy in the backend (warm: packs of record frames; cold:
    /// segments).
    pub stored_bytes: u64,
    /// Objects holding them (hot: one per record; warm: packs, one per migration batch, and
    /// one per record from stores written before packs; cold: segments).
    pub objects: u64,
    /// `bytes / stored_bytes` (1.0 for an empty tier).
    pub ratio: f64,
    /// Backend name.
    pub backend: String,
}

/// The catalog's own size next to the records it describes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CatalogStatus {
    /// Backend name.
    pub backend: String,
    /// Bytes of the catalog's own tables ([`CatalogFootprint::catalog_bytes`]).
    pub bytes: u64,
    /// Bytes of its whole database file, where it has one (for the embedded default this
    /// includes the hot tier's records).
    pub file_bytes: Option<u64>,
    /// `bytes` / canonical bytes of every record it describes (0 with no records): the
    /// catalog's overhead.
    pub overhead: f64,
}

/// What `tier status` reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusReport {
    pub tiers: Vec<TierStatus>,
    /// The catalog's own size; `None` when its backend cannot tell.
    pub catalog: Option<CatalogStatus>,
    pub dictionaries: u64,
    pub dictionary_bytes: u64,
    /// Migration batches interrupted after verification (finished by the next `migrate`/`gc`).
    pub pending_journals: u64,
    /// Objects in the tier namespaces that no catalog entry references (`tier gc` removes them).
    pub orphans: u64,
    pub orphan_bytes: u64,
}

/// Everything stored under the tier namespaces, split into referenced and orphaned.
struct Inventory {
    /// (tier, key) → size for every object in a tier namespace.
    objects: BTreeMap<(Tier, BlobKey), u64>,
    referenced: BTreeSet<(Tier, BlobKey)>,
    dicts: BTreeMap<BlobKey, u64>,
    dicts_referenced: BTreeSet<BlobKey>,
    journals: u64,
}

async fn inventory(storage: &Storage, entries: &[RecordEntry]) -> Result<Inventory> {
    let mut objects = BTreeMap::new();
    let mut seen_stores: Vec<(Tier, &str)> = Vec::new();
    for (tier, ns) in [
        (Tier::Hot, HOT_NS),
        (Tier::Warm, WARM_NS),
        (Tier::Cold, COLD_NS),
    ] {
        let store = storage.tiers.get(tier);
        seen_stores.push((tier, store.name()));
        for m in store.list(&format!("{ns}/")).await? {
            objects.insert((tier, m.key), m.size);
        }
    }
    let mut referenced = BTreeSet::new();
    let mut dicts_referenced = BTreeSet::new();
    for e in entries {
        if let Ok(loc) = Location::parse(e.tier, &e.location) {
            if let Location::Warm { dict: Some(d), .. } = &loc {
                dicts_referenced.insert(content::key_for(DICT_NS, d));
            }
            referenced.insert((e.tier, loc.key().clone()));
        }
    }
    let warm = &storage.tiers.warm;
    // Dictionaries a suite points at are kept for later migrations of that suite.
    for m in warm.list(&format!("{SUITE_DICT_NS}/")).await? {
        if let Ok(b) = warm.get(&m.key).await
            && let Some(d) = std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse::<Digest>().ok())
        {
            dicts_referenced.insert(content::key_for(DICT_NS, &d));
        }
    }
    let dicts = warm
        .list(&format!("{DICT_NS}/"))
        .await?
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    let journals = storage
        .tiers
        .hot
        .list(&format!("{JOURNAL_NS}/"))
        .await?
        .len() as u64;
    Ok(Inventory {
        objects,
        referenced,
        dicts,
        dicts_referenced,
        journals,
    })
}

/// Records and bytes per tier, compression ratios, dictionaries, orphans.
pub async fn status(storage: &Storage) -> Result<StatusReport> {
    let entries = storage
        .catalog
        .query_records(&RecordQuery::default())
        .await?;
    let inv = inventory(storage, &entries).await?;
    let mut tiers: Vec<TierStatus> = [Tier::Hot, Tier::Warm, Tier::Cold]
        .into_iter()
        .map(|tier| TierStatus {
            tier,
            backend: storage.tiers.get(tier).name().to_owned(),
            ..Default::default()
        })
        .collect();
    let idx = |t: Tier| t as usize;
    for e in &entries {
        let s = &mut tiers[idx(e.tier)];
        s.records += 1;
        s.bytes += e.size;
    }
    let mut report = StatusReport {
        pending_journals: inv.journals,
        ..Default::default()
    };
    for ((tier, key), size) in &inv.objects {
        if inv.referenced.contains(&(*tier, key.clone())) {
            let s = &mut tiers[idx(*tier)];
            s.stored_bytes += size;
            s.objects += 1;
        } else {
            report.orphans += 1;
            report.orphan_bytes += size;
        }
    }
    for (key, size) in &inv.dicts {
        if inv.dicts_referenced.contains(key) {
            report.dictionaries += 1;
            report.dictionary_bytes += size;
        } else {
            report.orphans += 1;
            report.orphan_bytes += size;
        }
    }
    for s in &mut tiers {
        s.ratio = if s.stored_bytes == 0 {
            1.0
        } else {
            s.bytes as f64 / s.stored_bytes as f64
        };
    }
    let raw: u64 = tiers.iter().map(|t| t.bytes).sum();
    report.catalog = storage
        .catalog
        .footprint()
        .await?
        .map(|f: CatalogFootprint| CatalogStatus {
            backend: storage.catalog.name().to_owned(),
            bytes: f.catalog_bytes,
            file_bytes: f.file_bytes,
            overhead: if raw == 0 {
                0.0
            } else {
                f.catalog_bytes as f64 / raw as f64
            },
        });
    report.tiers = tiers;
    Ok(report)
}

/// What is wrong with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The object the catalog points at does not exist.
    Missing,
    /// The bytes read do not hash to the record's digest (or cannot be decompressed).
    Corrupt,
    /// Two catalog entries carry the same digest.
    Duplicate,
    /// Any other read failure (backend error, malformed location).
    Unreadable,
}

/// A record `tier verify` could not read back intact.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub digest: Digest,
    pub run_id: RunId,
    pub name: String,
    pub iteration: u32,
    pub tier: Tier,
    pub location: String,
    pub message: String,
}

/// What `tier verify` found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Catalog entries checked.
    pub checked: u64,
    /// Entries read back intact, per tier.
    pub intact: BTreeMap<Tier, u64>,
    pub problems: Vec<Problem>,
    pub pending_journals: u64,
    pub orphans: u64,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Re-read and re-hash every record in the catalog, from whichever tier holds it, bypassing
/// any cache.
pub async fn verify(storage: &Storage) -> Result<VerifyReport> {
    // A private cache: blocks are decompressed once per verify, never trusted from earlier reads.
    let fresh = Storage::tiered(
        storage.catalog.clone(),
        storage.tiers.clone(),
        TierPolicy {
            cache_bytes: 64 * 1024 * 1024,
            ..storage.policy.clone()
        },
    );
    let entries = storage
        .catalog
        .query_records(&RecordQuery::default())
        .await?;
    let inv = inventory(storage, &entries).await?;
    let mut report = VerifyReport {
        pending_journals: inv.journals,
        orphans: inv
            .objects
            .keys()
            .filter(|k| !inv.referenced.contains(*k))
            .count() as u64
            + inv
                .dicts
                .keys()
                .filter(|k| !inv.dicts_referenced.contains(*k))
                .count() as u64,
        ..Default::default()
    };
    let mut seen: HashMap<Digest, usize> = HashMap::new();
    for e in &entries {
        report.checked += 1;
        let problem = |kind: ProblemKind, message: String| Problem {
            kind,
            digest: e.digest,
            run_id: e.run_id.clone(),
            name: e.name.clone(),
            iteration: e.iteration,
            tier: e.tier,
            location: e.location.clone(),
            message,
        };
        *seen.entry(e.digest).or_default() += 1;
        if seen[&e.digest] == 2 {
            report.problems.push(problem(
                ProblemKind::Duplicate,
                "the catalog lists this record more than once".into(),
            ));
        }
        match fresh.read_uncached(e).await {
            Ok(_) => *report.intact.entry(e.tier).or_default() += 1,
            Err(err) => {
                let kind = match err.kind {
                    crate::ErrorKind::NotFound => ProblemKind::Missing,
                    crate::ErrorKind::Corrupt => ProblemKind::Corrupt,
                    _ => ProblemKind::Unreadable,
                };
                report.problems.push(problem(kind, err.to_string()));
            }
        }
    }
    Ok(report)
}

/// What `tier gc` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Interrupted migration batches finished first.
    pub resumed_batches: usize,
    pub removed: u64,
    pub removed_bytes: u64,
    /// Keys removed (for the log).
    pub keys: Vec<String>,
    /// Live writer leases (a running suite or migration): while any exists, orphans are kept,
    /// since they may be blobs written just before their catalog rows. Rerun gc afterwards.
    pub active_writers: Vec<String>,
    /// Orphans kept because of `active_writers`.
    pub kept: u64,
    /// Leases of writers that died or expired, removed.
    pub stale_leases: u64,
    /// Bytes the catalog gave back to the file system afterwards
    /// ([`Catalog::reclaim_space`](crate::Catalog::reclaim_space)).
    pub reclaimed_bytes: u64,
}

/// Finish interrupted migrations, then delete every object in the tier namespaces that no
/// catalog entry references: copies a crash left before a flip, sources left after one, hot
/// records whose catalog insert never happened, unused dictionaries.
///
/// Safe while suites run or migrations are under way: a record's bytes are written before its
/// catalog entry, so every writer holds a lease ([`lease`](crate::lease)) and, while any live
/// lease exists, gc deletes nothing (it reports the holders in
/// [`GcReport::active_writers`] and what it kept). Leases are checked *after* the objects are
/// listed, so a blob seen as an orphan was written before the check by a writer that either
/// still holds its lease (kept) or is gone (a true orphan).
pub async fn gc(storage: &Storage) -> Result<GcReport> {
    let resumed_batches = crate::migrate::resume(storage).await?;
    let entries = storage
        .catalog
        .query_records(&RecordQuery::default())
        .await?;
    let inv = inventory(storage, &entries).await?;
    let mut report = GcReport {
        resumed_batches,
        ..Default::default()
    };
    let now = crate::lease::now_nanos();
    for (key, info) in crate::lease::leases(&*storage.tiers.hot).await? {
        if info.is_live(now) {
            report.active_writers.push(info.to_string());
        } else {
            storage.tiers.hot.delete(&key).await?;
            report.stale_leases += 1;
        }
    }
    if !report.active_writers.is_empty() {
        report.kept = inv
            .objects
            .keys()
            .filter(|k| !inv.referenced.contains(*k))
            .count() as u64
            + inv
                .dicts
                .keys()
                .filter(|k| !inv.dicts_referenced.contains(*k))
                .count() as u64;
        return Ok(report);
    }
    // One batched delete per tier.
    let mut doomed: BTreeMap<Tier, Vec<BlobKey>> = BTreeMap::new();
    let orphans = inv
        .objects
        .iter()
        .filter(|(k, _)| !inv.referenced.contains(*k))
        .map(|((tier, key), size)| (*tier, key, size));
    let unused_dicts = inv
        .dicts
        .iter()
        .filter(|(k, _)| !inv.dicts_referenced.contains(*k))
        .map(|(key, size)| (Tier::Warm, key, size));
    for (tier, key, size) in orphans.chain(unused_dicts) {
        doomed.entry(tier).or_default().push(key.clone());
        report.removed += 1;
        report.removed_bytes += size;
        report.keys.push(key.to_string());
    }
    for (tier, keys) in doomed {
        storage.tiers.get(tier).delete_many(keys).await?;
    }
    if report.removed > 0 || report.resumed_batches > 0 {
        report.reclaimed_bytes = storage.catalog.reclaim_space().await?;
    }
    Ok(report)
}
