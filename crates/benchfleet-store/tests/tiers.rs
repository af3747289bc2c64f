//! Behaviour of the tiered store over in-memory backends: migration by age, byte-identical
//! reads, crash safety at every phase, verification, gc, cache and batching.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use benchfleet_model::{
    Measurement, NodeKind, Outcome, RunId, RunRecord, SCHEMA_VERSION, Timestamp,
};
use benchfleet_store::mem::{MemBlobStore, MemCatalog};
use benchfleet_store::{
    BatchPolicy, BatchWriter, BlobKey, BlobMeta, BlobStore, Capability, Catalog, ErrorKind,
    FaultAction, FaultPlan, MigrateOptions, Phase, ProblemKind, PutOutcome, RecordEntry,
    RecordQuery, Result, RunFilter, Storage, Tier, TierPolicy, TierStores, content,
};

const DAY: i64 = 86_400;
const NOW: i64 = 20_000 * DAY;

fn run_id(n: u32) -> RunId {
    format!("01HZY3K4MZ8Q6X2V1B0C9D{n:04}").parse().unwrap()
}

/// A realistic record: the fields the runner fills, with varying numbers.
fn record(run: u32, suite: &str, name: &str, iteration: u32, age_days: i64) -> RunRecord {
    let seed = u64::from(run * 1000 + iteration);
    let mut tags = BTreeMap::new();
    tags.insert(
        "git.commit".into(),
        format!("{:040x}", seed * 2_654_435_761),
    );
    tags.insert("branch".into(), "main".into());
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run_id(run),
        suite: suite.into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        command: format!(
            "gzip -{} -c /tmp/benchfleet/out/generate/input.txt",
            run % 9 + 1
        ),
        parameters: BTreeMap::from([("level".into(), (run % 9 + 1).to_string())]),
        iteration,
        started_at: Timestamp(
            (NOW - age_days * DAY) * 1_000_000_000 + i64::from(iteration) * 1_000_000,
        ),
        measurement: Measurement {
            wall_ns: 12_000_000 + seed * 7919 % 1_000_000,
            user_ns: 9_000_000 + seed * 104_729 % 800_000,
            sys_ns: 1_000_000 + seed * 1_299_709 % 200_000,
            max_rss_bytes: 4_000_000 + seed * 31 % 100_000,
            minor_faults: 300 + seed % 17,
            ..Default::default()
        },
        outcome: Outcome::Success,
        stderr_tail: None,
        tags,
    }
}

/// Records of three suites at ages that land in every tier.
fn sample_records() -> Vec<RunRecord> {
    let mut out = Vec::new();
    for (run, age) in [(1, 200), (2, 120), (3, 40), (4, 9), (5, 1)] {
        for suite in ["alpha", "beta"] {
            for name in ["gzip-1", "gzip-9", "sort"] {
                for it in 0..12 {
                    out.push(record(run, suite, name, it, age));
                }
            }
        }
    }
    out
}

fn small_policy() -> TierPolicy {
    TierPolicy {
        cold_block_bytes: 4 * 1024,
        cold_segment_bytes: 4 * 1024,
        migrate_batch_records: 50,
        ..TierPolicy::default()
    }
}

fn storage_with(blobs: Arc<dyn BlobStore>, catalog: Arc<dyn Catalog>) -> Storage {
    Storage::tiered(catalog, TierStores::single(blobs), small_policy())
}

fn opts(now_days: i64) -> MigrateOptions {
    MigrateOptions {
        now: Some(Timestamp::from_unix_seconds(now_days * DAY)),
        ..Default::default()
    }
}

async fn all_entries(s: &Storage) -> Vec<RecordEntry> {
    s.catalog
        .query_records(&RecordQuery::default())
        .await
        .unwrap()
}

/// Every record reads back byte-identical to what was written.
async fn assert_identical(s: &Storage, written: &[RunRecord]) {
    let entries = all_entries(s).await;
    assert_eq!(entries.len(), written.len());
    let by_digest: BTreeMap<_, _> = written.iter().map(|r| (r.digest(), r)).collect();
    for e in &entries {
        let bytes = s.read_bytes(e).await.unwrap();
        assert_eq!(&bytes[..], &by_digest[&e.digest].canonical_bytes()[..]);
        assert_eq!(&s.read_record(e).await.unwrap(), by_digest[&e.digest]);
    }
}

fn tier_counts(entries: &[RecordEntry]) -> BTreeMap<Tier, usize> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(e.tier).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn migration_places_records_by_age_and_reads_are_identical() {
    let blobs = Arc::new(MemBlobStore::new());
    let s = storage_with(blobs.clone(), Arc::new(MemCatalog::new()));
    let records = sample_records();
    s.write_records(&records).await.unwrap();

    let report = benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();
    let per_age = records.len() / 5;
    assert_eq!(report.to_cold, 2 * per_age, "ages 200 and 120 days");
    assert_eq!(report.to_warm, 2 * per_age, "ages 40 and 9 days");
    let entries = all_entries(&s).await;
    for e in &entries {
        let age = (NOW - e.started_at.0 / 1_000_000_000) / DAY;
        let want = s
            .policy
            .tier_for(e.started_at, Timestamp::from_unix_seconds(NOW));
        assert_eq!(e.tier, want, "age {age}");
    }
    assert_identical(&s, &records).await;

    // Only the target objects remain: one per hot record, one pack per warm batch (72 records
    // of each suite in batches of 50: two packs per suite), no journals, no orphans.
    let status = benchfleet_store::status(&s).await.unwrap();
    assert_eq!(status.orphans, 0, "{status:?}");
    assert_eq!(status.pending_journals, 0);
    let keys = blobs.keys();
    let count = |ns: &str| keys.iter().filter(|k| k.has_prefix(ns)).count();
    assert_eq!(count("records/"), per_age);
    assert_eq!(warm_packs(&entries), 4);
    assert_eq!(count("warm/"), 4);
    assert!(count("cold/") >= 2, "several segments expected at 4 KiB");
    assert_eq!(status.dictionaries, 2, "one dictionary per suite");
    let warm = &status.tiers[1];
    let cold = &status.tiers[2];
    assert!(warm.ratio > 1.5, "warm ratio {}", warm.ratio);
    // Tiny 4 KiB blocks here; the benchmark reports ratios at the default sizes.
    assert!(cold.ratio > 3.0, "cold ratio {}", cold.ratio);

    // Migrating again at the same time does nothing.
    let again = benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();
    assert_eq!((again.to_warm, again.to_cold, again.batches), (0, 0, 0));
}

#[tokio::test]
async fn records_move_through_all_three_tiers() {
    let s = storage_with(Arc::new(MemBlobStore::new()), Arc::new(MemCatalog::new()));
    let records: Vec<RunRecord> = (0..40).map(|i| record(7, "q", "sort", i, 0)).collect();
    s.write_records(&records).await.unwrap();
    for (days_later, tier) in [(0, Tier::Hot), (10, Tier::Warm), (100, Tier::Cold)] {
        benchfleet_store::migrate(&s, &opts(NOW / DAY + days_later))
            .await
            .unwrap();
        let entries = all_entries(&s).await;
        assert_eq!(tier_counts(&entries), BTreeMap::from([(tier, 40)]));
        assert_identical(&s, &records).await;
        let v = benchfleet_store::verify(&s).await.unwrap();
        assert!(v.is_ok() && v.checked == 40 && v.orphans == 0, "{v:?}");
    }
}

/// A warm pack whose records reach the cold age at different times stays while any record
/// is left in it, reads stay identical meanwhile, and the pack goes with its last record.
#[tokio::test]
async fn a_warm_pack_is_deleted_with_its_last_record() {
    let blobs = Arc::new(MemBlobStore::new());
    let s = storage_with(blobs.clone(), Arc::new(MemCatalog::new()));
    // 40 records 30 days old and 40 records 5 days old, one suite: the first pack of 50 holds
    // both ages.
    let records: Vec<RunRecord> = (0..80)
        .map(|i| record(1 + i / 40, "q", "sort", i, if i < 40 { 30 } else { 5 }))
        .collect();
    s.write_records(&records).await.unwrap();
    let warm_objects = || {
        blobs
            .keys()
            .iter()
            .filter(|k| k.has_prefix("warm/"))
            .count()
    };
    benchfleet_store::migrate(&s, &opts(NOW / DAY + 10))
        .await
        .unwrap();
    assert_eq!(
        tier_counts(&all_entries(&s).await),
        BTreeMap::from([(Tier::Warm, 80)])
    );
    assert_eq!(warm_objects(), 2);
    // 75 days later only the older half is past warm_days (90).
    benchfleet_store::migrate(&s, &opts(NOW / DAY + 75))
        .await
        .unwrap();
    let entries = all_entries(&s).await;
    assert_eq!(
        tier_counts(&entries),
        BTreeMap::from([(Tier::Warm, 40), (Tier::Cold, 40)])
    );
    assert_eq!(warm_objects(), warm_packs(&entries), "the mixed pack stays");
    assert_eq!(warm_objects(), 2);
    assert_identical(&s, &records).await;
    let v = benchfleet_store::verify(&s).await.unwrap();
    assert!(v.is_ok() && v.orphans == 0, "{v:?}");
    benchfleet_store::migrate(&s, &opts(NOW / DAY + 100))
        .await
        .unwrap();
    assert_eq!(
        tier_counts(&all_entries(&s).await),
        BTreeMap::from([(Tier::Cold, 80)])
    );
    assert_eq!(warm_objects(), 0, "every pack went with its last record");
    assert_identical(&s, &records).await;
}

/// Crash at `phase` event `n`, then check nothing is lost or doubled, then resume.
async fn crash_and_resume(phase: Phase, n: u64) {
    let blobs = Arc::new(MemBlobStore::new());
    let s = storage_with(blobs.clone(), Arc::new(MemCatalog::new()));
    let records = sample_records();
    s.write_records(&records).await.unwrap();
    let crash = MigrateOptions {
        fault: Some(Arc::new(FaultPlan::new(phase, n, FaultAction::Error))),
        ..opts(NOW / DAY)
    };
    let err = benchfleet_store::migrate(&s, &crash).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{phase:?}:{n}: {err}");

    // After the crash: every record listed once and intact, wherever it is.
    let v = benchfleet_store::verify(&s).await.unwrap();
    assert!(v.is_ok(), "{phase:?}:{n}: {:?}", v.problems);
    assert_eq!(v.checked as usize, records.len());
    assert_identical(&s, &records).await;

    // Rerunning finishes the work; gc then finds nothing left over.
    benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();
    let entries = all_entries(&s).await;
    let per_age = records.len() / 5;
    assert_eq!(
        tier_counts(&entries),
        BTreeMap::from([
            (Tier::Hot, per_age),
            (Tier::Warm, 2 * per_age),
            (Tier::Cold, 2 * per_age)
        ]),
        "{phase:?}:{n}"
    );
    assert_identical(&s, &records).await;
    let gc = benchfleet_store::gc(&s).await.unwrap();
    // Objects written before the crash in a batch composed differently may be left; nothing
    // referenced is ever removed.
    let v = benchfleet_store::verify(&s).await.unwrap();
    assert!(
        v.is_ok() && v.orphans == 0 && v.pending_journals == 0,
        "{phase:?}:{n}: {v:?} after {gc:?}"
    );
    let keys = blobs.keys();
    assert_eq!(
        keys.iter().filter(|k| k.has_prefix("records/")).count(),
        per_age
    );
    assert_eq!(
        keys.iter().filter(|k| k.has_prefix("warm/")).count(),
        warm_packs(&entries),
        "{phase:?}:{n}: one warm object per pack in use"
    );
}

/// Distinct warm packs the entries' frames are in; every warm entry must be a frame of one.
fn warm_packs(entries: &[RecordEntry]) -> usize {
    use benchfleet_store::codec::Location;
    let packs: std::collections::BTreeSet<BlobKey> = entries
        .iter()
        .filter(|e| e.tier == Tier::Warm)
        .map(
            |e| match Location::parse(Tier::Warm, &e.location).unwrap() {
                Location::Warm {
                    key,
                    frame: Some(_),
                    ..
                } => key,
                other => panic!("warm record outside a pack: {other}"),
            },
        )
        .collect();
    packs.len()
}

#[tokio::test]
async fn a_crash_at_any_phase_loses_nothing_and_rerun_finishes() {
    for phase in Phase::ALL {
        // Count the phase's events in an uninterrupted migration, then crash at the first, the
        // last and points in between.
        let s = storage_with(Arc::new(MemBlobStore::new()), Arc::new(MemCatalog::new()));
        s.write_records(&sample_records()).await.unwrap();
        let counter = Arc::new(FaultPlan::new(phase, u64::MAX, FaultAction::Error));
        let count = MigrateOptions {
            fault: Some(counter.clone()),
            ..opts(NOW / DAY)
        };
        benchfleet_store::migrate(&s, &count).await.unwrap();
        let total = counter.seen();
        assert!(total >= 4, "{phase:?} has {total} events");
        let mut points = vec![1, 2, total / 3, total / 2, total - 1, total];
        points.dedup();
        for n in points {
            crash_and_resume(phase, n).await;
        }
    }
}

#[tokio::test]
async fn verify_reports_flipped_bytes_and_missing_objects_by_record() {
    let blobs = Arc::new(MemBlobStore::new());
    let s = storage_with(blobs.clone(), Arc::new(MemCatalog::new()));
    let records = sample_records();
    s.write_records(&records).await.unwrap();
    benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();
    let entries = all_entries(&s).await;
    let pick = |t: Tier| entries.iter().find(|e| e.tier == t).unwrap().clone();
    let flip = |key: &BlobKey, at: fn(usize) -> usize| {
        let keys = blobs.keys();
        let key = keys.iter().find(|k| *k == key).unwrap();
        let mut b = futures_bytes(&blobs, key);
        let i = at(b.len());
        b[i] ^= 0x01;
        assert!(blobs.overwrite(key, Bytes::from(b)));
    };
    let hot = pick(Tier::Hot);
    let warm = pick(Tier::Warm);
    let cold = pick(Tier::Cold);
    flip(&BlobKey::new(&hot.location).unwrap(), |len| len / 2);
    // A byte inside this record's frame of its warm pack.
    let benchfleet_store::codec::Location::Warm {
        key: pack,
        frame: Some((offset, len)),
        ..
    } = benchfleet_store::codec::Location::parse(Tier::Warm, &warm.location).unwrap()
    else {
        panic!("warm record outside a pack: {}", warm.location)
    };
    {
        let mut b = futures_bytes(&blobs, &pack);
        b[(offset + len - 2) as usize] ^= 0x01;
        assert!(blobs.overwrite(&pack, Bytes::from(b)));
    }
    let cold_loc = benchfleet_store::codec::Location::parse(Tier::Cold, &cold.location).unwrap();
    let benchfleet_store::codec::Location::Cold {
        block_offset,
        block_len,
        ..
    } = &cold_loc
    else {
        unreachable!()
    };
    let mid = (*block_offset + *block_len / 2) as usize;
    {
        let key = cold_loc.key();
        let mut b = futures_bytes(&blobs, key);
        b[mid] ^= 0x01;
        blobs.overwrite(key, Bytes::from(b));
    }
    let missing = entries
        .iter()
        .filter(|e| e.tier == Tier::Hot)
        .nth(1)
        .unwrap()
        .clone();
    blobs
        .delete(&BlobKey::new(&missing.location).unwrap())
        .await
        .unwrap();

    let v = benchfleet_store::verify(&s).await.unwrap();
    assert!(!v.is_ok());
    let kind_of = |d| v.problems.iter().find(|p| p.digest == d).map(|p| p.kind);
    assert_eq!(kind_of(hot.digest), Some(ProblemKind::Corrupt));
    assert_eq!(kind_of(warm.digest), Some(ProblemKind::Corrupt));
    assert_eq!(kind_of(cold.digest), Some(ProblemKind::Corrupt));
    assert_eq!(kind_of(missing.digest), Some(ProblemKind::Missing));
    // A damaged cold block damages the records sharing it, and only those.
    let same_block: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.location
                .starts_with(&format!("{}#{block_offset}+", cold_loc.key()))
        })
        .collect();
    assert_eq!(v.problems.len(), 3 + same_block.len(), "{:?}", v.problems);
    // Reads report corruption instead of returning wrong bytes.
    let fresh = storage_with(blobs.clone(), s.catalog.clone());
    let err = fresh.read_bytes(&warm).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
}

fn futures_bytes(blobs: &MemBlobStore, key: &BlobKey) -> Vec<u8> {
    futures::executor::block_on(blobs.get(key))
        .unwrap()
        .to_vec()
}

/// Counts every read, to check how the cold tier is read.
#[derive(Debug, Default)]
struct Counting {
    inner: MemBlobStore,
    gets: Mutex<Vec<(String, Option<Range<u64>>)>>,
}

#[async_trait]
impl BlobStore for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn capability(&self) -> Capability {
        Capability::FULL
    }
    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        self.inner.put_if_absent(key, bytes).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        self.gets.lock().unwrap().push((key.to_string(), None));
        self.inner.get(key).await
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        self.inner.list(prefix).await
    }
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        self.gets
            .lock()
            .unwrap()
            .push((key.to_string(), Some(range.clone())));
        self.inner.get_range(key, range).await
    }
}

#[tokio::test]
async fn a_cold_record_is_one_range_read_of_one_block_then_cached() {
    let hot: Arc<dyn BlobStore> = Arc::new(MemBlobStore::new());
    let cold = Arc::new(Counting::default());
    let catalog: Arc<dyn Catalog> = Arc::new(MemCatalog::new());
    let tiers = TierStores {
        hot: hot.clone(),
        warm: hot.clone(),
        cold: cold.clone(),
    };
    let s = Storage::tiered(catalog.clone(), tiers.clone(), small_policy());
    let records: Vec<RunRecord> = (0..200).map(|i| record(9, "c", "gzip-6", i, 365)).collect();
    s.write_records(&records).await.unwrap();
    benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();

    // A fresh process: empty cache.
    let reader = Storage::tiered(catalog, tiers, small_policy());
    let entries = all_entries(&reader).await;
    let e = &entries[entries.len() / 2];
    cold.gets.lock().unwrap().clear();
    reader.read_bytes(e).await.unwrap();
    let gets = cold.gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 1, "{gets:?}");
    let (key, range) = &gets[0];
    let range = range
        .clone()
        .expect("a range read, never the whole segment");
    let seg_len = cold
        .inner
        .head(&BlobKey::new(key).unwrap())
        .await
        .unwrap()
        .unwrap()
        .size;
    assert!(range.end - range.start < seg_len, "{range:?} of {seg_len}");

    // Records of the same block now come from the cache; so does the record itself.
    cold.gets.lock().unwrap().clear();
    let block = e.location.split('@').next().unwrap().to_owned();
    for other in entries.iter().filter(|x| x.location.starts_with(&block)) {
        reader.read_bytes(other).await.unwrap();
    }
    assert!(cold.gets.lock().unwrap().is_empty());
    assert!(reader.cache_stats().hits > 0);
    assert!(reader.cache_stats().bytes <= reader.cache_stats().capacity);
}

#[tokio::test]
async fn a_read_racing_a_migration_follows_the_catalog() {
    let s = storage_with(Arc::new(MemBlobStore::new()), Arc::new(MemCatalog::new()));
    let records: Vec<RunRecord> = (0..20).map(|i| record(3, "r", "sort", i, 30)).collect();
    let stale = s.write_records(&records).await.unwrap();
    benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap();
    // `stale` still says hot; the hot copy is gone; the read finds the warm one.
    let fresh = storage_with(s.tiers.hot.clone(), s.catalog.clone());
    for (e, r) in stale.iter().zip(&records) {
        assert_eq!(e.tier, Tier::Hot);
        assert_eq!(&fresh.read_record(e).await.unwrap(), r);
    }
}

/// A catalog without `move_records`: the default refuses and nothing changes.
#[derive(Debug, Default)]
struct NoMove(MemCatalog);

#[async_trait]
impl benchfleet_store::AlertCatalog for NoMove {
    async fn put_alerts(&self, a: &[benchfleet_store::Alert]) -> Result<usize> {
        self.0.put_alerts(a).await
    }
    async fn get_alert(&self, id: &str) -> Result<Option<benchfleet_store::Alert>> {
        self.0.get_alert(id).await
    }
    async fn find_alerts(
        &self,
        f: &benchfleet_store::AlertFilter,
    ) -> Result<Vec<benchfleet_store::Alert>> {
        self.0.find_alerts(f).await
    }
    async fn triage_alerts(
        &self,
        ids: &[String],
        u: &benchfleet_store::TriageUpdate,
    ) -> Result<Vec<benchfleet_store::Alert>> {
        self.0.triage_alerts(ids, u).await
    }
}

#[async_trait]
impl Catalog for NoMove {
    fn name(&self) -> &str {
        "nomove"
    }
    async fn put_run(&self, run: &benchfleet_model::RunInfo) -> Result<()> {
        self.0.put_run(run).await
    }
    async fn get_run(&self, id: &RunId) -> Result<Option<benchfleet_model::RunInfo>> {
        self.0.get_run(id).await
    }
    async fn find_runs(&self, f: &RunFilter) -> Result<Vec<benchfleet_model::RunInfo>> {
        self.0.find_runs(f).await
    }
    async fn insert_records(&self, e: &[RecordEntry]) -> Result<()> {
        self.0.insert_records(e).await
    }
    async fn query_records(&self, q: &RecordQuery) -> Result<Vec<RecordEntry>> {
        self.0.query_records(q).await
    }
}

#[tokio::test]
async fn a_catalog_without_move_records_is_refused_without_loss() {
    let s = storage_with(Arc::new(MemBlobStore::new()), Arc::new(NoMove::default()));
    let records: Vec<RunRecord> = (0..20).map(|i| record(3, "r", "sort", i, 30)).collect();
    s.write_records(&records).await.unwrap();
    let err = benchfleet_store::migrate(&s, &opts(NOW / DAY))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("move_records"), "{err}");
    assert_identical(&s, &records).await;
    assert!(benchfleet_store::verify(&s).await.unwrap().is_ok());
}

#[tokio::test]
async fn the_batch_writer_groups_concurrent_writes_into_one_transaction() {
    let s = storage_with(Arc::new(MemBlobStore::new()), Arc::new(MemCatalog::new()));
    for (policy, writes, want_batches) in [
        // Flushed by count: 10 single-record writes, batches of 5.
        (
            BatchPolicy {
                max_records: 5,
                max_bytes: usize::MAX,
                max_delay: Duration::from_secs(3600),
            },
            10,
            2,
        ),
        // Flushed by bytes: every record exceeds the byte bound.
        (
            BatchPolicy {
                max_records: 1000,
                max_bytes: 1,
                max_delay: Duration::from_secs(3600),
            },
            4,
            4,
        ),
    ] {
        let (writer, task) = BatchWriter::spawn(s.clone(), policy);
        let mut handles = Vec::new();
        for i in 0..writes {
            let w = writer.clone();
            let r = record(11, "b", &format!("n{want_batches}"), i, 0);
            handles.push(tokio::spawn(
                async move { (w.write(vec![r.clone()]).await, r) },
            ));
        }
        for h in handles {
            let (entries, r) = h.await.unwrap();
            let entries = entries.unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].digest, r.digest());
        }
        drop(writer);
        let stats = task.await.unwrap();
        assert_eq!(
            (stats.batches, stats.records),
            (want_batches, u64::from(writes))
        );
    }
    // Flushed by time: a lone write does not wait for company forever.
    let (writer, task) = BatchWriter::spawn(
        s.clone(),
        BatchPolicy {
            max_records: 1000,
            max_bytes: usize::MAX,
            max_delay: Duration::from_millis(1),
        },
    );
    writer
        .write(vec![record(12, "b", "t", 0, 0)])
        .await
        .unwrap();
    drop(writer);
    assert_eq!(task.await.unwrap().batches, 1);
    assert_eq!(all_entries(&s).await.len(), 10 + 4 + 1);
}

#[test]
fn fault_plans_parse() {
    for (text, ok) in [
        ("flip:1", true),
        ("copy:17", true),
        (" delete : 3 ", true),
        ("flip", false),
        ("flip:0", false),
        ("nap:1", false),
        ("copy:x", false),
    ] {
        let got = FaultPlan::parse(text);
        assert_eq!(got.is_ok(), ok, "{text}: {got:?}");
    }
    let p = FaultPlan::parse("verify:4").unwrap();
    assert_eq!(
        (p.phase, p.after, p.action),
        (Phase::Verify, 4, FaultAction::Abort)
    );
}

/// A catalog whose `insert_records` waits at a gate: a batch writer caught between storing its
/// blobs and cataloging them.
#[derive(Debug)]
struct Gated {
    inner: MemCatalog,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl benchfleet_store::AlertCatalog for Gated {
    async fn put_alerts(&self, a: &[benchfleet_store::Alert]) -> Result<usize> {
        self.inner.put_alerts(a).await
    }
    async fn get_alert(&self, id: &str) -> Result<Option<benchfleet_store::Alert>> {
        self.inner.get_alert(id).await
    }
    async fn find_alerts(
        &self,
        f: &benchfleet_store::AlertFilter,
    ) -> Result<Vec<benchfleet_store::Alert>> {
        self.inner.find_alerts(f).await
    }
    async fn triage_alerts(
        &self,
        ids: &[String],
        u: &benchfleet_store::TriageUpdate,
    ) -> Result<Vec<benchfleet_store::Alert>> {
        self.inner.triage_alerts(ids, u).await
    }
}

#[async_trait]
impl Catalog for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    async fn put_run(&self, run: &benchfleet_model::RunInfo) -> Result<()> {
        self.inner.put_run(run).await
    }
    async fn get_run(&self, id: &RunId) -> Result<Option<benchfleet_model::RunInfo>> {
        self.inner.get_run(id).await
    }
    async fn find_runs(&self, f: &RunFilter) -> Result<Vec<benchfleet_model::RunInfo>> {
        self.inner.find_runs(f).await
    }
    async fn insert_records(&self, e: &[RecordEntry]) -> Result<()> {
        let _pass = self.gate.acquire().await.expect("gate open");
        self.inner.insert_records(e).await
    }
    async fn query_records(&self, q: &RecordQuery) -> Result<Vec<RecordEntry>> {
        self.inner.query_records(q).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_the_blobs_of_a_pending_batch_writer() {
    let blobs = Arc::new(MemBlobStore::new());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let catalog = Arc::new(Gated {
        inner: MemCatalog::new(),
        gate: gate.clone(),
    });
    let writing = storage_with(blobs.clone(), catalog.clone());
    let (writer, task) = BatchWriter::spawn(
        writing.clone(),
        BatchPolicy {
            max_records: 1,
            ..BatchPolicy::default()
        },
    );
    let r = record(21, "g", "pending", 0, 0);
    let key = benchfleet_store::codec::hot_key(r.started_at, &r.digest());
    let pending = tokio::spawn({
        let (w, r) = (writer.clone(), r.clone());
        async move { w.write(vec![r]).await }
    });
    // The blob is stored; its catalog row waits at the gate.
    while blobs.head(&key).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // gc from "another process": its own Storage over the same backends.
    let collecting = storage_with(blobs.clone(), catalog.clone());
    let report = benchfleet_store::gc(&collecting).await.unwrap();
    assert_eq!((report.removed, report.kept), (0, 1), "{report:?}");
    assert_eq!(report.active_writers.len(), 1, "{report:?}");
    assert!(
        report.active_writers[0].starts_with("write by pid"),
        "{report:?}"
    );
    assert!(blobs.head(&key).await.unwrap().is_some());

    gate.add_permits(1000);
    pending.await.unwrap().unwrap();
    drop(writer);
    task.await.unwrap();
    // Once the writer is done and has released its lease, true orphans go; its record stays.
    writing.release_lease().await.unwrap();
    let (orphan, _) = content::put(&*blobs, "records", Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let report = benchfleet_store::gc(&collecting).await.unwrap();
    assert!(report.active_writers.is_empty(), "{report:?}");
    assert_eq!(
        report.keys,
        [content::key_for("records", &orphan).to_string()],
        "{report:?}"
    );
    assert!(blobs.head(&key).await.unwrap().is_some());
    assert_identical(&collecting, &[r]).await;
}

/// Which leases protect their holder's work: expired ones and those of dead processes on this
/// host do not (gc removes them and goes on); others do (gc removes nothing).
#[tokio::test]
async fn gc_ignores_expired_leases_and_dead_local_holders() {
    use benchfleet_store::lease::{LEASE_NS, LeaseInfo, host_name};
    let now = Timestamp::from_unix_seconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .0;
    let hour = 3_600_000_000_000i64;
    let me = std::process::id();
    for (what, host, pid, expires_at, live) in [
        ("expired, this process", host_name(), me, now - hour, false),
        (
            "fresh, dead process on this host",
            host_name(),
            999_999_999,
            now + hour,
            false,
        ),
        ("fresh, this process", host_name(), me, now + hour, true),
        (
            "fresh, another host",
            "elsewhere.example".to_owned(),
            1,
            now + hour,
            true,
        ),
    ] {
        let blobs = Arc::new(MemBlobStore::new());
        let s = storage_with(blobs.clone(), Arc::new(MemCatalog::new()));
        let info = LeaseInfo {
            host,
            pid,
            purpose: "write".into(),
            expires_at,
        };
        let lease = BlobKey::new(format!("{LEASE_NS}/test-{expires_at}")).unwrap();
        blobs
            .put_if_absent(&lease, serde_json::to_vec(&info).unwrap().into())
            .await
            .unwrap();
        content::put(&*blobs, "records", Bytes::from_static(b"orphan"))
            .await
            .unwrap();
        let report = benchfleet_store::gc(&s).await.unwrap();
        assert_eq!(info.is_live(now), live, "{what}");
        assert_eq!(report.removed, u64::from(!live), "{what}: {report:?}");
        assert_eq!(report.kept, u64::from(live), "{what}: {report:?}");
        assert_eq!(report.stale_leases, u64::from(!live), "{what}: {report:?}");
        assert_eq!(blobs.head(&lease).await.unwrap().is_some(), live, "{what}");
    }
}
