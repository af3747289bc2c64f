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
