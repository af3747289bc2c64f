use benchfleet_model::{Digest, RunId};
use benchfleet_store::{
    BlobKey, BlobStore, Catalog, ErrorKind, RecordEntry, RecordQuery, RunFilter, Tier,
};

use super::*;

fn run_id() -> RunId {
    "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap()
}

fn entry(iteration: u32) -> RecordEntry {
    RecordEntry {
        digest: Digest::of(&iteration.to_le_bytes()),
        run_id: run_id(),
        suite: "s".into(),
        name: "b".into(),
        kind: benchfleet_model::NodeKind::Benchmark,
        iteration,
        started_at: benchfleet_model::Timestamp(i64::from(iteration)),
        measurement: Default::default(),
        outcome: benchfleet_model::Outcome::Success,
        size: 1,
        tier: Tier::Hot,
        location: format!("k{iteration}"),
    }
}

fn run_info() -> benchfleet_model::RunInfo {
    benchfleet_model::RunInfo {
        schema_version: benchfleet_model::SCHEMA_VERSION,
        run_id: run_id(),
        suite: "s".into(),
        started_at: benchfleet_model::Timestamp(0),
        finished_at: None,
        status: benchfleet_model::RunStatus::Succeeded,
        host: Default::default(),
        tags: Default::default(),
        source: "test".into(),
    }
}

#[tokio::test]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/store.redb");
    let key = BlobKey::new("records/x").unwrap();
    let entries: Vec<RecordEntry> = (0..5).map(entry).collect();
    {
        let store = RedbStore::open(&path).unwrap();
        store.put_if_absent(&key, "payload".into()).await.unwrap();
        store.put_run(&run_info()).await.unwrap();
        store.insert_records(&entries).await.unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.get(&key).await.unwrap(), "payload");
    assert_eq!(store.get_run(&run_id()).await.unwrap(), Some(run_info()));
    assert_eq!(
        store.find_runs(&RunFilter::default()).await.unwrap(),
        vec![run_info()]
    );
    assert_eq!(
        store
            .query_records(&RecordQuery::run(&run_id()))
            .await
            .unwrap(),
        entries
    );
}

/// A holder that never lets go (here redb itself, as an older benchfleet would hold the file):
/// the store waits `wait_for_file`, then names the file in its error.
#[test]
fn a_database_held_by_something_else_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _held = redb::Database::create(&path).unwrap();
    let options = RedbOptions {
        wait_for_file: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let err = RedbStore::open_with(&path, options).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&*path.to_string_lossy()) && text.contains("locked"),
        "{text}"
    );
}

/// Two stores on one file take turns: each hands the file over between transactions when the
/// other waits, and each sees everything the other wrote. (Processes do the same through the
/// same file lock; `tests/e2e/share.rs` runs them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_take_turns_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let first = RedbStore::open(&path).unwrap();
    let mut a = run_info();
    a.run_id = "01JAAAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
    first.put_run(&a).await.unwrap();
    let second = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || RedbStore::open(path).unwrap())
            .await
            .unwrap()
    };
    assert_eq!(second.get_run(&a.run_id).await.unwrap(), Some(a.clone()));
    let mut b = run_info();
    b.run_id = "01JBBBBBBBBBBBBBBBBBBBBBBB".parse().unwrap();
    second.put_run(&b).await.unwrap();
    for round in 0..20 {
        let all = RunFilter::default();
        let (x, y) = tokio::join!(first.find_runs(&all), second.find_runs(&all));
        assert_eq!(x.unwrap().len(), 2 + round, "round {round}");
        assert_eq!(y.unwrap().len(), 2 + round, "round {round}");
        let mut r = run_info();
        r.run_id = format!("01JC{round:022}").parse().unwrap();
        let writer = if round % 2 == 0 { &first } else { &second };
        writer.put_run(&r).await.unwrap();
    }
    drop(first);
    assert_eq!(
        second.find_runs(&RunFilter::default()).await.unwrap().len(),
        22
    );
}

/// Snapshots being read when the other store asks for the file finish first: the file is
/// handed over only between transactions, never under a reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_flight_survive_hand_overs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // No page cache: every read goes to the file, as in a large store.
    let options = RedbOptions {
        cache_bytes: 0,
        ..Default::default()
    };
    let first = std::sync::Arc::new(RedbStore::open_with(&path, options).unwrap());
    let entries: Vec<RecordEntry> = (0..3000).map(entry).collect();
    first.insert_records(&entries).await.unwrap();
    let second = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || RedbStore::open(path).unwrap())
            .await
            .unwrap()
    };
    let reader = {
        let first = first.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                let got = first
                    .query_records(&RecordQuery::run(&run_id()))
                    .await
                    .unwrap();
                assert_eq!(got.len(), 3000);
            }
        })
    };
    for i in 0..30 {
        let mut r = run_info();
        r.run_id = format!("01JD{i:022}").parse().unwrap();
        second.put_run(&r).await.unwrap();
    }
    reader.await.unwrap();
    assert_eq!(
        first.find_runs(&RunFilter::default()).await.unwrap().len(),
        30
    );
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("garbage.redb", vec![0xA5u8; 8192]),
        ("short.redb", b"not a db".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Corrupt, "{name}: {err}");
        assert!(
            err.to_string().contains(&*path.to_string_lossy()),
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{name}: the file was modified"
        );
    }
}

#[tokio::test]
async fn concurrent_puts_and_catalog_writes_share_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("s.redb")).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = BlobKey::new(format!("k/{i}")).unwrap();
            store
                .put_if_absent(&key, i.to_string().into())
                .await
                .unwrap();
            store.insert_records(&[entry(i)]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.list("k/").await.unwrap().len(), 64);
    assert_eq!(
        store.query_records(&RecordQuery::default()).await.unwrap(),
        (0..64).map(entry).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn move_records_flips_tier_and_location_atomically_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let entries: Vec<RecordEntry> = (0..6).map(entry).collect();
    {
        let db = RedbStore::open(&path).unwrap();
        db.insert_records(&entries).await.unwrap();
        let moved: Vec<RecordEntry> = entries[..3]
            .iter()
            .map(|e| RecordEntry {
                tier: Tier::Warm,
                location: format!("warm/{}", e.iteration),
                ..e.clone()
            })
            .collect();
        db.move_records(&moved).await.unwrap();
        // Idempotent.
        db.move_records(&moved).await.unwrap();

        // A batch naming an unknown digest changes nothing.
        let mut bad = vec![RecordEntry {
            tier: Tier::Cold,
            location: "cold/x".into(),
            ..entries[4].clone()
        }];
        let mut unknown = entry(99);
        unknown.tier = Tier::Cold;
        bad.push(unknown);
        let err = db.move_records(&bad).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    }
    let db = RedbStore::open(&path).unwrap();
    for (q, want) in [
        (
            RecordQuery {
                tier: Some(Tier::Warm),
                ..Default::default()
            },
            vec![0, 1, 2],
        ),
        (
            RecordQuery {
                tier: Some(Tier::Hot),
                ..Default::default()
            },
            vec![3, 4, 5],
        ),
        (
            RecordQuery {
                tier: Some(Tier::Cold),
                ..Default::default()
            },
            vec![],
        ),
        // Indexes still find the moved rows.
        (
            RecordQuery {
                run_id: Some(run_id()),
                tier: Some(Tier::Warm),
                ..Default::default()
            },
            vec![0, 1, 2],
        ),
        (
            RecordQuery {
                name: Some("b".into()),
                ..Default::default()
            },
            vec![0, 1, 2, 3, 4, 5],
        ),
    ] {
        let got = db.query_records(&q).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.iteration).collect::<Vec<_>>(),
            want,
            "{q:?}"
        );
        for e in &got {
            let want_loc = if e.iteration < 3 {
                format!("warm/{}", e.iteration)
            } else {
                format!("k{}", e.iteration)
            };
            assert_eq!(e.location, want_loc);
        }
    }
}

#[tokio::test]
async fn blobs_and_rows_commit_together_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.redb");
    let entries: Vec<RecordEntry> = (0..4).map(entry).collect();
    let blobs: Vec<(BlobKey, bytes::Bytes)> = entries
        .iter()
        .map(|e| {
            (
                BlobKey::new(&e.location).unwrap(),
                format!("bytes of {}", e.iteration).into(),
            )
        })
        .collect();
    {
        let db = RedbStore::open(&path).unwrap();
        assert!(
            db.insert_records_with_blobs(&blobs, &entries)
                .await
                .unwrap()
        );
        // Idempotent, like put_if_absent and insert_records.
        assert!(
            db.insert_records_with_blobs(&blobs, &entries)
                .await
                .unwrap()
        );
    }
    let db = RedbStore::open(&path).unwrap();
    assert_eq!(
        db.query_records(&RecordQuery::default()).await.unwrap(),
        entries
    );
    for (k, b) in &blobs {
        assert_eq!(&db.get(k).await.unwrap(), b);
    }
}

#[tokio::test]
async fn a_flip_with_its_deletes_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.redb");
    let entries: Vec<RecordEntry> = (0..6).map(entry).collect();
    let keys: Vec<BlobKey> = entries
        .iter()
        .map(|e| BlobKey::new(&e.location).unwrap())
        .collect();
    let moved = |range: std::ops::Range<usize>| -> Vec<RecordEntry> {
        entries[range]
            .iter()
            .map(|e| RecordEntry {
                tier: Tier::Warm,
                location: format!("warm/{}", e.iteration),
                ..e.clone()
            })
            .collect()
    };
    {
        let db = RedbStore::open(&path).unwrap();
        let blobs: Vec<_> = keys
            .iter()
            .map(|k| (k.clone(), bytes::Bytes::from("x")))
            .collect();
        db.insert_records_with_blobs(&blobs, &entries)
            .await
            .unwrap();
        assert!(
            db.move_records_deleting(&moved(0..3), &keys[..3])
                .await
                .unwrap()
        );

        // An unknown row fails the whole call: no row moves, no blob goes.
        let mut bad = moved(3..4);
        bad.push(RecordEntry {
            tier: Tier::Warm,
            ..entry(99)
        });
        let err = db
            .move_records_deleting(&bad, &keys[3..4])
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    }
    let db = RedbStore::open(&path).unwrap();
    let rows = db.query_records(&RecordQuery::default()).await.unwrap();
    for e in &rows {
        let (tier, present) = if e.iteration < 3 {
            (Tier::Warm, false)
        } else {
            (Tier::Hot, true)
        };
        assert_eq!(e.tier, tier, "{e:?}");
        let k = BlobKey::new(format!("k{}", e.iteration)).unwrap();
        assert_eq!(db.head(&k).await.unwrap().is_some(), present, "{k}");
    }
}

mod migration {
    //! Migration with the hot tier inside this catalog (the embedded default's layout): flip and
    //! source deletes commit together, so no journal is written, and a crash after any event of
    //! any phase loses nothing and a rerun finishes.

    use std::sync::Arc;

    use benchfleet_model::{Measurement, NodeKind, Outcome, RunRecord, SCHEMA_VERSION, Timestamp};
    use benchfleet_store::mem::MemBlobStore;
    use benchfleet_store::{
        FaultAction, FaultPlan, MigrateOptions, Phase, RecordQuery, Storage, Tier, TierPolicy,
        TierStores,
    };

    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 20_000 * DAY;

    fn records() -> Vec<RunRecord> {
        let mut out = Vec::new();
        for (run, age) in [(1u32, 200i64), (2, 30), (3, 1)] {
            for it in 0..40u32 {
                out.push(RunRecord {
                    schema_version: SCHEMA_VERSION,
                    run_id: format!("01HZY3K4MZ8Q6X2V1B0C9D{run:04}").parse().unwrap(),
                    suite: "s".into(),
                    name: format!("bench-{}", it % 3),
                    kind: NodeKind::Benchmark,
                    command: format!("gzip -{run} -c input.txt"),
                    parameters: Default::default(),
                    iteration: it,
                    started_at: Timestamp((NOW - age * DAY) * 1_000_000_000 + i64::from(it)),
                    measurement: Measurement {
                        wall_ns: 1_000_000 + u64::from(it) * 7919,
                        ..Default::default()
                    },
                    outcome: Outcome::Success,
                    stderr_tail: None,
                    tags: Default::default(),
                });
            }
        }
        out
    }

    async fn storage(dir: &std::path::Path) -> Storage {
        let db = Arc::new(RedbStore::open(dir.join("catalog.redb")).unwrap());
        let tiers = TierStores {
            hot: db.clone(),
            warm: Arc::new(MemBlobStore::new()),
            cold: Arc::new(MemBlobStore::new()),
        };
        let policy = TierPolicy {
            cold_block_bytes: 4 * 1024,
            cold_segment_bytes: 4 * 1024,
            migrate_batch_records: 16,
            ..TierPolicy::default()
        };
        Storage::tiered(db, tiers, policy)
    }

    fn opts(fault: Option<Arc<FaultPlan>>) -> MigrateOptions {
        MigrateOptions {
            now: Some(Timestamp::from_unix_seconds(NOW)),
            fault,
            ..Default::default()
        }
    }

    /// Every record listed once, intact and byte-identical; the tiers as `want` (hot, warm, cold).
    async fn check(s: &Storage, want: Option<[usize; 3]>) {
        let originals = records();
        let rows = s
            .catalog
            .query_records(&RecordQuery::default())
            .await
            .unwrap();
        assert_eq!(rows.len(), originals.len());
        for (row, original) in rows.iter().zip(&originals) {
            assert_eq!(&s.read_record(row).await.unwrap(), original);
        }
        if let Some(want) = want {
            let n = |t| rows.iter().filter(|r| r.tier == t).count();
            assert_eq!([n(Tier::Hot), n(Tier::Warm), n(Tier::Cold)], want);
        }
        let v = benchfleet_store::verify(s).await.unwrap();
        assert!(v.is_ok(), "{:?}", v.problems);
        assert_eq!(v.pending_journals, 0);
    }

    #[tokio::test]
    async fn needs_no_journal_and_survives_a_crash_after_any_event() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path()).await;
        assert!(s.hot_in_catalog());
        let mut totals = Vec::new();
        for phase in Phase::ALL {
            let counter = Arc::new(FaultPlan::new(phase, u64::MAX, FaultAction::Error));
            let dir = tempfile::tempdir().unwrap();
            let s = storage(dir.path()).await;
            s.write_records(&records()).await.unwrap();
            benchfleet_store::migrate(&s, &opts(Some(counter.clone())))
                .await
                .unwrap();
            check(&s, Some([40, 40, 40])).await;
            totals.push((phase, counter.seen()));
        }
        for &(phase, total) in &totals {
            if phase == Phase::Journal {
                assert_eq!(
                    total, 0,
                    "a batch of hot sources in the catalog's database wrote a journal"
                );
                continue;
            }
            assert!(total >= 3, "{phase:?}: {total} events");
            for n in [1, total / 2, total] {
                let dir = tempfile::tempdir().unwrap();
                let s = storage(dir.path()).await;
                s.write_records(&records()).await.unwrap();
                let crash = Arc::new(FaultPlan::new(phase, n, FaultAction::Error));
                let err = benchfleet_store::migrate(&s, &opts(Some(crash)))
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("injected crash"), "{err}");
                check(&s, None).await;
                benchfleet_store::migrate(&s, &opts(None)).await.unwrap();
                check(&s, Some([40, 40, 40])).await;
                // Only the young records' blobs are left in the hot tier: no moved source.
                let hot_left = s.tiers.hot.list("records/").await.unwrap();
                assert_eq!(hot_left.len(), 40, "{phase:?}:{n}");
            }
        }
    }

    #[tokio::test]
    async fn a_hot_tier_in_another_database_is_not_the_catalogs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(RedbStore::open(dir.path().join("a.redb")).unwrap());
        let other = Arc::new(RedbStore::open(dir.path().join("b.redb")).unwrap());
        let s = Storage::tiered(db, TierStores::single(other), TierPolicy::default());
        assert!(!s.hot_in_catalog());
    }
}

/// Opening reads the layout; it writes only when tables are missing (a new file, or one from a
/// build with fewer tables), and refuses a layout it does not know.
#[test]
fn opening_checks_the_layout_and_creates_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    drop(RedbStore::open(&path).unwrap());
    let layout = |db: &Database| {
        let txn = db.begin_read().unwrap();
        let v = txn
            .open_table(META)
            .unwrap()
            .get("layout_version")
            .unwrap()
            .map(|v| v.value());
        let has = |name: &str| txn.list_tables().unwrap().any(|t| t.name() == name);
        (v, has("record_chunks"))
    };
    let db = Database::create(&path).unwrap();
    assert_eq!(layout(&db), (Some(LAYOUT_VERSION), true));
    // A table missing: opening creates it.
    {
        let txn = db.begin_write().unwrap();
        txn.delete_table(RECORD_CHUNKS).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(layout(&db), (Some(LAYOUT_VERSION), false));
    drop(db);
    drop(RedbStore::open(&path).unwrap());
    let db = Database::create(&path).unwrap();
    assert_eq!(layout(&db), (Some(LAYOUT_VERSION), true));
    // A layout from a newer build is refused, naming both versions and what to do.
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("layout_version", LAYOUT_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    drop(db);
    let err = RedbStore::open(&path).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("catalog layout {}", LAYOUT_VERSION + 1))
            && msg.contains("newer benchfleet")
            && msg.contains(&format!("layouts 1 to {LAYOUT_VERSION}")),
        "{msg}"
    );
    // Refusing changed nothing.
    let db = Database::create(&path).unwrap();
    assert_eq!(layout(&db), (Some(LAYOUT_VERSION + 1), true));
}

mod chunked {
    //! The record chunks: many entries per row, appended and moved through the writer's
    //! per-run state, which must agree with what is committed.
    use super::*;
    use benchfleet_model::{Measurement, NodeKind, Outcome, RunInfo, RunStatus, Timestamp};
    use benchfleet_store::codec;

    pub(super) fn run_n(n: u32) -> RunId {
        format!("01HZY3K4MZ8Q6X2V1B{n:08}").parse().unwrap()
    }

    /// `per_run` entries in each of `runs` runs of two suites, hot at their default keys,
    /// with varied outcomes; shuffled across runs like a parallel suite's inserts.
    pub(super) fn entries(runs: u32, per_run: u32) -> Vec<RecordEntry> {
        let mut out = Vec::new();
        for i in 0..per_run {
            for r in 0..runs {
                let digest = Digest::of(format!("{r}/{i}").as_bytes());
                let started_at = Timestamp(1_700_000_000_000_000_000 + i64::from(r * 7 + i) * 999);
                out.push(RecordEntry {
                    digest,
                    run_id: run_n(r),
                    suite: if r.is_multiple_of(2) { "alpha" } else { "beta" }.into(),
                    name: format!("node-{}", i % 13),
                    kind: if i.is_multiple_of(2) {
                        NodeKind::Job
                    } else {
                        NodeKind::Benchmark
                    },
                    iteration: i / 13,
                    started_at,
                    measurement: Measurement {
                        wall_ns: 1_000_000 + u64::from(i) * 31,
                        user_ns: 300_000,
                        sys_ns: 500_000 + u64::from(r),
                        max_rss_bytes: 2_000_000,
                        minor_faults: 90,
                        ..Default::default()
                    },
                    outcome: if i % 17 == 5 {
                        Outcome::Failed {
                            exit_code: Some(1),
                            signal: None,
                        }
                    } else {
                        Outcome::Success
                    },
                    size: 470,
                    tier: Tier::Hot,
                    location: codec::hot_key(started_at, &digest).to_string(),
                });
            }
        }
        out
    }

    pub(super) fn runs(n: u32) -> Vec<RunInfo> {
        (0..n)
            .map(|r| RunInfo {
                schema_version: benchfleet_model::SCHEMA_VERSION,
                run_id: run_n(r),
                suite: if r.is_multiple_of(2) { "alpha" } else { "beta" }.into(),
                started_at: Timestamp(1_700_000_000_000_000_000),
                finished_at: None,
                status: RunStatus::Succeeded,
                host: Default::default(),
                tags: Default::default(),
                source: "test".into(),
            })
            .collect()
    }

    pub(super) fn sorted(mut v: Vec<RecordEntry>) -> Vec<RecordEntry> {
        v.sort_by(crate::catalog::query_order);
        v
    }

    /// Every query shape the facade uses answers as `RecordQuery::matches` says.
    pub(super) async fn assert_queries(db: &RedbStore, all: &[RecordEntry]) {
        let t0 = all.iter().map(|e| e.started_at.0).min().unwrap();
        let queries = [
            RecordQuery::default(),
            RecordQuery::run(&run_n(1)),
            RecordQuery {
                name: Some("node-3".into()),
                ..Default::default()
            },
            RecordQuery {
                suite: Some("beta".into()),
                name: Some("node-4".into()),
                until: Some(Timestamp(t0 + 200_000)),
                ..Default::default()
            },
            RecordQuery {
                tier: Some(Tier::Warm),
                ..Default::default()
            },
            RecordQuery {
                tier: Some(Tier::Hot),
                since: Some(Timestamp(t0 + 50_000)),
                limit: Some(17),
                ..Default::default()
            },
        ];
        for q in queries {
            let mut want = sorted(all.iter().filter(|e| q.matches(e)).cloned().collect());
            want.truncate(q.limit.unwrap_or(usize::MAX));
            let got = db.query_records(&q).await.unwrap();
            assert_eq!(got.len(), want.len(), "{q:?}");
            assert!(got == want, "{q:?}");
        }
    }

    /// The writer keys its digest map by 8-byte prefixes: digests that share one are still told
    /// apart (stored once each, re-puts ignored, moved and refused exactly), also after a reopen.
    #[tokio::test]
    async fn digests_sharing_a_prefix_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let mut all = entries(1, 300);
        // Give entries 7, 150 and 299 the prefix of entry 0 (same first 8 bytes, different rest).
        let head: [u8; 8] = all[0].digest.as_bytes()[..8].try_into().unwrap();
        for i in [7, 150, 299] {
            let mut b = *all[i].digest.as_bytes();
            b[..8].copy_from_slice(&head);
            all[i].digest = Digest::from_bytes(b);
        }
        {
            let db = RedbStore::open(&path).unwrap();
            db.insert_records(&all[..200]).await.unwrap();
            // Re-puts of prefix-sharing digests are ignored; a new one is stored.
            db.insert_records(&[all[7].clone(), all[0].clone(), all[299].clone()])
                .await
                .unwrap();
        }
        let db = RedbStore::open(&path).unwrap();
        db.insert_records(&all[150..]).await.unwrap();
        assert_queries(&db, &all).await;
        // A digest sharing the prefix but never stored moves nothing.
        let mut bogus = all[7].clone();
        let mut b = *bogus.digest.as_bytes();
        b[31] ^= 0xff;
        bogus.digest = Digest::from_bytes(b);
        bogus.tier = Tier::Warm;
        let err = db.move_records(&[bogus]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        for i in [0, 7, 150, 299] {
            all[i].tier = Tier::Warm;
            all[i].location = format!("warm/packs/p@{i}+90");
        }
        let moved: Vec<RecordEntry> = [0, 7, 150, 299].iter().map(|&i| all[i].clone()).collect();
        db.move_records(&moved).await.unwrap();
        assert_queries(&db, &all).await;
        drop(db);
        let db = RedbStore::open(&path).unwrap();
        db.insert_records(&all[..]).await.unwrap();
        assert_queries(&db, &all).await;
    }

    #[tokio::test]
    async fn entries_fill_chunks_stay_idempotent_and_move_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let mut all = entries(3, 300);
        {
            let db = RedbStore::open(&path).unwrap();
            // One by one, then in batches, with repeats: the first insert of a digest wins.
            for e in &all[..50] {
                db.insert_records(std::slice::from_ref(e)).await.unwrap();
            }
            for batch in all[40..600].chunks(77) {
                db.insert_records(batch).await.unwrap();
            }
            let mut changed = all[10].clone();
            changed.size = 1;
            db.insert_records(&[changed]).await.unwrap();
        }
        let db = RedbStore::open(&path).unwrap();
        // After a reopen the writer rebuilds its state from the chunks.
        db.insert_records(&all[500..]).await.unwrap();
        db.insert_records(&all[..5]).await.unwrap();
        assert_queries(&db, &all).await;
        // Moves touch entries in many chunks of every run; a missing digest moves nothing.
        for (i, e) in all
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i.is_multiple_of(3))
        {
            e.tier = Tier::Warm;
            e.location = format!("warm/packs/p{}@{}+90", i / 100, i * 90);
        }
        let moved: Vec<RecordEntry> = all
            .iter()
            .filter(|e| e.tier == Tier::Warm)
            .cloned()
            .collect();
        let mut bogus = moved[..3].to_vec();
        bogus[1].digest = Digest::of(b"never stored");
        let err = db.move_records(&bogus).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("nothing was moved"), "{err}");
        db.move_records(&moved).await.unwrap();
        db.move_records(&moved[..10]).await.unwrap(); // idempotent
        assert_queries(&db, &all).await;
        drop(db);
        let db = RedbStore::open(&path).unwrap();
        assert_queries(&db, &all).await;
        // And inserts after the moves still append (not into a chunk's old copy).
        let more = entries(4, 310);
        let extra: Vec<RecordEntry> = more.into_iter().filter(|e| e.run_id == run_n(3)).collect();
        db.insert_records(&extra).await.unwrap();
        all.extend(extra);
        assert_queries(&db, &all).await;
    }

    /// The catalog's footprint counts its own tables, not the blobs sharing its file; freed
    /// pages are given back by compaction.
    #[tokio::test]
    async fn footprint_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let db = RedbStore::open(&path).unwrap();
        let all = entries(2, 500);
        let blobs: Vec<(BlobKey, bytes::Bytes)> = all
            .iter()
            .map(|e| {
                (
                    BlobKey::new(e.location.as_str()).unwrap(),
                    bytes::Bytes::from(vec![7u8; 4000]),
                )
            })
            .collect();
        let keys: Vec<BlobKey> = blobs.iter().map(|(k, _)| k.clone()).collect();
        assert!(db.insert_records_with_blobs(&blobs, &all).await.unwrap());
        let f = Catalog::footprint(&db).await.unwrap().unwrap();
        let file = f.file_bytes.unwrap();
        assert!(f.catalog_bytes > 0 && f.catalog_bytes * 10 < file, "{f:?}");
        // Packed entries: far below the 470 bytes of each record.
        assert!(f.catalog_bytes < all.len() as u64 * 94, "{f:?}");
        db.delete_many(keys).await.unwrap();
        let given = db.reclaim_space().await.unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            given > 0 && after + given == file,
            "{given} of {file}, now {after}"
        );
        assert!(after < file / 2, "{after} of {file}");
        // Nothing left to give: a second call leaves the file alone.
        assert_eq!(db.reclaim_space().await.unwrap(), 0);
        assert_queries(&db, &all).await;
        drop(db);
        let db = RedbStore::open(&path).unwrap();
        assert_queries(&db, &all).await;
    }
}

mod upgrade_v1 {
    //! Stores written with layout 1 (one JSON row and four index rows per record) open,
    //! upgrade in place and read back the same; an interrupted upgrade loses nothing.
    use super::chunked::{assert_queries, entries, run_n, runs, sorted};
    use super::*;
    use crate::upgrade::v1;

    fn fixture(dir: &std::path::Path) -> (std::path::PathBuf, Vec<RecordEntry>) {
        let path = dir.join("v1.redb");
        let all = entries(5, 160);
        let blobs: Vec<(BlobKey, Vec<u8>)> = all
            .iter()
            .map(|e| {
                (
                    BlobKey::new(e.location.as_str()).unwrap(),
                    format!("record {}", e.digest).into_bytes(),
                )
            })
            .collect();
        v1::write(&path, &runs(5), &all, &blobs);
        (path, all)
    }

    fn opts(fault: Option<UpgradeFault>) -> RedbOptions {
        RedbOptions {
            upgrade_batch_records: 150,
            upgrade_fault: fault,
            ..Default::default()
        }
    }

    /// Open (finishing any upgrade), check the old tables are gone, and read everything back.
    async fn assert_upgraded(path: &std::path::Path, all: &[RecordEntry]) {
        drop(RedbStore::open_with(path, opts(None)).unwrap());
        assert_eq!(v1::rows_left(path), None, "old tables dropped");
        let db = RedbStore::open_with(path, opts(None)).unwrap();
        assert_queries(&db, all).await;
        assert_eq!(
            db.query_records(&RecordQuery::default()).await.unwrap(),
            sorted(all.to_vec())
        );
        let found = db.find_runs(&RunFilter::default()).await.unwrap();
        assert_eq!(found.len(), 5);
        let alpha = db
            .find_runs(&RunFilter {
                suite: Some("alpha".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(alpha.len(), 3);
        for e in all.iter().step_by(37) {
            let k = BlobKey::new(e.location.as_str()).unwrap();
            assert_eq!(
                db.get(&k).await.unwrap(),
                format!("record {}", e.digest).into_bytes()
            );
        }
        assert!(db.get_run(&run_n(4)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_layout_1_store_upgrades_in_place_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (path, all) = fixture(dir.path());
        let before = std::fs::metadata(&path).unwrap().len();
        assert_eq!(v1::rows_left(&path), Some(all.len() as u64));
        drop(RedbStore::open_with(&path, opts(None)).unwrap());
        assert_upgraded(&path, &all).await;
        // The upgrade compacted the file: the old rows' pages are given back.
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after < before, "{after} >= {before}");
        // Writes go on after an upgrade.
        let db = RedbStore::open(&path).unwrap();
        let extra = entries(6, 3)
            .into_iter()
            .filter(|e| e.run_id == run_n(5))
            .collect::<Vec<_>>();
        db.insert_records(&extra).await.unwrap();
        let mut want = all.clone();
        want.extend(extra);
        assert_queries(&db, &want).await;
    }

    #[tokio::test]
    async fn an_interrupted_upgrade_loses_nothing_and_finishes_on_rerun() {
        // 800 rows in batches of 150: six batches.
        let faults = [
            UpgradeFault::BeforeCommitOfBatch(0),
            UpgradeFault::AfterBatches(1),
            UpgradeFault::BeforeCommitOfBatch(3),
            UpgradeFault::AfterBatches(5),
            UpgradeFault::BeforeFinish,
        ];
        for fault in faults {
            let dir = tempfile::tempdir().unwrap();
            let (path, all) = fixture(dir.path());
            let err = RedbStore::open_with(&path, opts(Some(fault))).unwrap_err();
            assert!(
                err.to_string().contains("fault injection"),
                "{fault:?}: {err}"
            );
            let left = v1::rows_left(&path).unwrap();
            let expect_left = match fault {
                UpgradeFault::BeforeCommitOfBatch(n) => 800 - 150 * n as u64,
                UpgradeFault::AfterBatches(n) => 800u64.saturating_sub(150 * n as u64),
                UpgradeFault::BeforeFinish => 0,
            };
            assert_eq!(left, expect_left, "{fault:?}");
            // A second interruption at a later point, then the rerun that finishes.
            let _ = RedbStore::open_with(&path, opts(Some(UpgradeFault::BeforeFinish)));
            assert_eq!(v1::rows_left(&path), Some(0), "{fault:?}");
            assert_upgraded(&path, &all).await;
        }
    }
}
