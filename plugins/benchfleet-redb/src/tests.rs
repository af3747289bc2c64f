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

#[test]
fn a_locked_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _first = RedbStore::open(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&*path.to_string_lossy()) && text.contains("locked"),
        "{text}"
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
    let db = Database::create(&path).unwrap();
    assert_eq!(layout_of(&db).unwrap(), Some(LAYOUT_VERSION));
    // A table missing: the layout does not count as complete, and opening creates it.
    {
        let txn = db.begin_write().unwrap();
        txn.delete_table(RECORDS_BY_NAME).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(layout_of(&db).unwrap(), None);
    drop(db);
    drop(RedbStore::open(&path).unwrap());
    let db = Database::create(&path).unwrap();
    assert_eq!(layout_of(&db).unwrap(), Some(LAYOUT_VERSION));
    // A layout from another build is refused, naming both versions.
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("layout_version", LAYOUT_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    drop(db);
    let err = RedbStore::open(&path).unwrap_err().to_string();
    assert!(
        err.contains(&format!("layout version {}", LAYOUT_VERSION + 1)),
        "{err}"
    );
}
