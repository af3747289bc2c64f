//! The catalog layout of issue 20 against a real server (`BENCHFLEET_TEST_POSTGRES_URL`; skipped
//! with a note when unset, failing under `CI=true`): the in-place upgrade of a layout-1 store
//! (with crashes at several points), refusal of a newer store, hot records packed per batch, and
//! the catalog's footprint.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use benchfleet_model::{
    Digest, Measurement, NodeKind, Outcome, RunId, RunInfo, RunRecord, SCHEMA_VERSION, Timestamp,
};
use benchfleet_postgres::{LAYOUT, PgStore, UpgradeStop};
use benchfleet_store::codec::hot_key;
use benchfleet_store::{
    BlobKey, BlobStore, Catalog, ErrorKind, PutOutcome, RecordEntry, RecordQuery, Storage, Tier,
};

fn run_id(n: u32) -> RunId {
    format!("01J0000000000000000000{n:04}").parse().unwrap()
}

/// Entries as a layout-1 store holds them: `runs` runs of three benchmarks, `per` iterations
/// each (one run much longer, so that it needs several chunks), tiers and locations of every
/// shape.
fn legacy_entries(runs: u32, per: u32) -> Vec<RecordEntry> {
    let mut out = Vec::new();
    for r in 0..runs {
        let n = if r == 3 { 150 } else { per };
        for name in ["alpha", "beta", "gamma"] {
            for it in 0..n {
                let t = 1_700_000_000_000_000_000
                    + i64::from(r) * 3_600_000_000_000
                    + i64::from(it) * 1_000_000;
                let digest = Digest::of(format!("{r}/{name}/{it}").as_bytes());
                let (tier, location) = match (r + it) % 4 {
                    0 | 1 => (Tier::Hot, hot_key(Timestamp(t), &digest).to_string()),
                    2 => (
                        Tier::Warm,
                        format!(
                            "warm/ab/cd/{}@{}+90?dict={}",
                            Digest::of(b"p").to_hex(),
                            it * 90,
                            Digest::of(b"d")
                        ),
                    ),
                    _ => (
                        Tier::Cold,
                        format!(
                            "cold/ab/cd/{}#0+4000@{}+470",
                            Digest::of(b"s").to_hex(),
                            it * 470
                        ),
                    ),
                };
                out.push(RecordEntry {
                    digest,
                    run_id: run_id(r),
                    suite: if r % 2 == 0 { "even" } else { "odd" }.into(),
                    name: name.into(),
                    kind: NodeKind::Benchmark,
                    iteration: it,
                    started_at: Timestamp(t),
                    measurement: Measurement {
                        wall_ns: 1_000_000 + u64::from(it) * 17,
                        user_ns: 500_000,
                        max_rss_bytes: 2 << 20,
                        ..Default::default()
                    },
                    outcome: if it == 1 {
                        Outcome::Failed {
                            exit_code: Some(2),
                            signal: None,
                        }
                    } else {
                        Outcome::Success
                    },
                    size: 470 + u64::from(it),
                    tier,
                    location,
                });
            }
        }
    }
    out
}

fn sorted(mut v: Vec<RecordEntry>) -> Vec<RecordEntry> {
    v.sort_by(|a, b| {
        (a.started_at, a.run_id.as_str(), &a.name, a.iteration).cmp(&(
            b.started_at,
            b.run_id.as_str(),
            &b.name,
            b.iteration,
        ))
    });
    v
}

fn queries() -> Vec<RecordQuery> {
    vec![
        RecordQuery::default(),
        RecordQuery::run(&run_id(3)),
        RecordQuery {
            suite: Some("odd".into()),
            name: Some("beta".into()),
            ..Default::default()
        },
        RecordQuery {
            name: Some("gamma".into()),
            tier: Some(Tier::Cold),
            ..Default::default()
        },
        RecordQuery {
            since: Some(Timestamp(
                1_700_000_000_000_000_000 + 50 * 3_600_000_000_000,
            )),
            until: Some(Timestamp(
                1_700_000_000_000_000_000 + 90 * 3_600_000_000_000,
            )),
            limit: Some(40),
            ..Default::default()
        },
    ]
}

/// `got == want`, reporting the first difference rather than both lists.
fn same(got: &[RecordEntry], want: &[RecordEntry], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of entries");
    if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
        panic!("{what}: got {g:?}\nwant {w:?}");
    }
}

fn expected(all: &[RecordEntry], q: &RecordQuery) -> Vec<RecordEntry> {
    let mut v = sorted(all.iter().filter(|e| q.matches(e)).cloned().collect());
    v.truncate(q.limit.unwrap_or(usize::MAX));
    v
}

/// (rows still in `bf_records`, digests in chunks) of a store stopped mid-upgrade.
async fn progress(store: &PgStore) -> (i64, Vec<Digest>) {
    let legacy: bool = sqlx::query_scalar(
        "SELECT to_regclass(quote_ident(current_schema()) || '.bf_records') IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let rows: i64 = if legacy {
        sqlx::query_scalar("SELECT count(*) FROM bf_records")
            .fetch_one(store.pool())
            .await
            .unwrap()
    } else {
        0
    };
    let moved = store
        .query_records(&RecordQuery::default())
        .await
        .expect("query chunks")
        .iter()
        .map(|e| e.digest)
        .collect();
    (rows, moved)
}

/// A store written in layout 1 (migrations 0001–0003, a row per record, hot records as
/// `bf_blobs` rows) upgrades in place: crashes inside the first batch, between batches and in
/// the final transaction lose nothing and the next connect goes on; afterwards every query
/// answers exactly what the old store held, runs and hot records read back as before, and new
/// writes work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout1_store_upgrades_in_place_through_crashes() {
    let Some(url) = support::url("a_layout1_store_upgrades_in_place_through_crashes") else {
        return;
    };
    let schema = support::fresh_schema();
    let opts = || support::options(&schema);
    let all = legacy_entries(150, 3);
    let old = PgStore::connect_stopping(&url, opts(), UpgradeStop::MigrationsUpTo(3))
        .await
        .expect("connect at migration 3");
    assert_eq!(old.migration_versions().await.unwrap(), vec![1, 2, 3]);
    old.write_layout1_records(&all)
        .await
        .expect("layout-1 rows");
    let run = RunInfo {
        schema_version: SCHEMA_VERSION,
        run_id: run_id(3),
        suite: "odd".into(),
        started_at: Timestamp(1_700_000_000_000_000_000),
        finished_at: None,
        status: benchfleet_model::RunStatus::Running,
        host: Default::default(),
        tags: Default::default(),
        source: "test".into(),
    };
    old.put_run(&run).await.expect("run row");
    // Hot records as layout 1 stored them: one bf_blobs row each.
    let hot: Vec<&RecordEntry> = all
        .iter()
        .filter(|e| e.tier == Tier::Hot)
        .take(20)
        .collect();
    for e in &hot {
        sqlx::query("INSERT INTO bf_blobs (key, size, data) VALUES ($1, 5, 'bytes'::bytea)")
            .bind(&e.location)
            .execute(old.pool())
            .await
            .unwrap();
    }
    drop(old);

    let want: BTreeSet<Digest> = all.iter().map(|e| e.digest).collect();
    let mut last_rows = all.len() as i64;
    // 150 runs in batches of 64: three batches, then the transaction that drops the old tables.
    // A crash inside the first batch, then after one more committed batch each time.
    for (k, round) in [0usize, 1, 1, 1].into_iter().zip(1..) {
        let err = PgStore::connect_stopping(&url, opts(), UpgradeStop::CrashAfterBatches(k))
            .await
            .expect_err("the simulated crash fails the connect");
        assert!(err.to_string().contains("simulated crash"), "{err}");
        let store = PgStore::connect_stopping(&url, opts(), UpgradeStop::MigrationsUpTo(4))
            .await
            .expect("look at the stopped upgrade");
        assert_eq!(store.layout().await.unwrap(), 1, "round {round}");
        let (rows, moved) = progress(&store).await;
        let moved_set: BTreeSet<Digest> = moved.iter().copied().collect();
        assert_eq!(
            moved.len(),
            moved_set.len(),
            "round {round}: duplicated entries"
        );
        assert_eq!(
            rows as usize + moved.len(),
            all.len(),
            "round {round}: entries lost"
        );
        let legacy_rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT digest FROM bf_records")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let mut union = moved_set.clone();
        union.extend(
            legacy_rows
                .iter()
                .map(|d| Digest::from_bytes(d.as_slice().try_into().unwrap())),
        );
        assert_eq!(union, want, "round {round}");
        if round == 1 {
            assert_eq!(
                rows,
                all.len() as i64,
                "nothing committed by a crash in batch 1"
            );
        } else {
            assert!(rows < last_rows, "round {round}: no progress ({rows})");
        }
        last_rows = rows;
    }
    assert_eq!(last_rows, 0, "every batch committed before the last crash");

    let store = PgStore::connect(&url, opts())
        .await
        .expect("finish the upgrade");
    assert_eq!(store.layout().await.unwrap(), LAYOUT);
    let gone: bool = sqlx::query_scalar(
        "SELECT to_regclass(quote_ident(current_schema()) || '.bf_records') IS NULL
            AND to_regclass(quote_ident(current_schema()) || '.bf_record_digests') IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(gone, "the layout-1 tables are dropped");
    for q in queries() {
        same(
            &store.query_records(&q).await.expect("query"),
            &expected(&all, &q),
            &format!("{q:?}"),
        );
    }
    assert_eq!(store.get_run(&run.run_id).await.unwrap(), Some(run));
    for e in &hot {
        let key = BlobKey::new(&e.location).unwrap();
        assert_eq!(store.get(&key).await.expect("legacy hot row"), "bytes");
        // Already present: a re-put keeps the row and writes no pack.
        assert_eq!(
            store
                .put_if_absent(&key, Bytes::from("other"))
                .await
                .unwrap(),
            PutOutcome::AlreadyExists
        );
    }
    // The upgraded store takes new entries (appended to the long run's last chunk) and moves.
    let mut more = legacy_entries(4, 1)
        .into_iter()
        .filter(|e| e.run_id == run_id(3))
        .map(|mut e| {
            e.iteration += 1_000;
            e.started_at.0 += 10_000_000_000;
            e.digest = Digest::of(format!("more {} {}", e.name, e.iteration).as_bytes());
            e
        })
        .collect::<Vec<_>>();
    store
        .insert_records(&more)
        .await
        .expect("insert after upgrade");
    for e in &mut more {
        e.tier = Tier::Cold;
        e.location = format!("cold/x#0+1@{}+1", e.iteration);
    }
    store.move_records(&more).await.expect("move after upgrade");
    let mut now = all.clone();
    now.extend(more);
    for q in queries() {
        same(
            &store.query_records(&q).await.unwrap(),
            &expected(&now, &q),
            &format!("after new writes: {q:?}"),
        );
    }
    // Connecting again changes nothing.
    let again = PgStore::connect(&url, opts()).await.expect("reconnect");
    same(
        &again.query_records(&RecordQuery::default()).await.unwrap(),
        &expected(&now, &RecordQuery::default()),
        "after a reconnect",
    );
}

/// A store that a newer build migrated (an unknown migration, or a newer catalog layout) is
/// refused with a message saying so, and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_a_newer_build_is_refused() {
    let Some(url) = support::url("a_store_of_a_newer_build_is_refused") else {
        return;
    };
    for what in ["layout", "migration"] {
        let schema = support::fresh_schema();
        let store = PgStore::connect(&url, support::options(&schema))
            .await
            .unwrap();
        let sql = match what {
            "layout" => "UPDATE bf_meta SET value = 3 WHERE key = 'layout'",
            _ => {
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (9999, 'from the future', true, '\\x00'::bytea, 0)"
            }
        };
        sqlx::query(sql).execute(store.pool()).await.unwrap();
        drop(store);
        let err = PgStore::connect(&url, support::options(&schema))
            .await
            .expect_err("a newer store must be refused");
        assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
        let text = err.to_string();
        assert!(text.contains("newer benchfleet"), "{text}");
        assert!(text.contains("upgrade benchfleet"), "{text}");
    }
}

fn record(i: u32, t: i64) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run_id(1),
        suite: "packs".into(),
        name: format!("n{i}"),
        kind: NodeKind::Job,
        command: format!("touch out/n{i}"),
        parameters: Default::default(),
        iteration: 0,
        started_at: Timestamp(t),
        measurement: Measurement {
            wall_ns: 1_000 + u64::from(i),
            ..Default::default()
        },
        outcome: Outcome::Success,
        stderr_tail: None,
        tags: Default::default(),
    }
}

async fn count(store: &PgStore, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Hot records of one batch go into one pack (other keys stay rows); every blob operation sees
/// them by key; deletes shrink the pack's directory and the last one deletes the pack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_records_are_packed_per_batch() {
    let Some(url) = support::url("hot_records_are_packed_per_batch") else {
        return;
    };
    let store = support::fresh(&url).await;
    let t0 = 1_750_000_000_000_000_000i64;
    let items: Vec<(BlobKey, Bytes)> = (0..50u32)
        .map(|i| {
            let bytes = Bytes::from(format!("record number {i}"));
            (
                hot_key(Timestamp(t0 + i64::from(i) * 7), &Digest::of(&bytes)),
                bytes,
            )
        })
        .collect();
    let mut batch = items.clone();
    batch.push((
        BlobKey::new("tier-journal/x").unwrap(),
        Bytes::from("journal"),
    ));
    batch.push(items[0].clone()); // repeated in the batch: written once
    let out = store.put_many(batch).await.expect("put_many");
    assert!(
        out[..51].iter().all(|o| *o == PutOutcome::Created),
        "{out:?}"
    );
    assert_eq!(out[51], PutOutcome::AlreadyExists);
    assert_eq!(count(&store, "bf_hot_packs").await, 1);
    assert_eq!(count(&store, "bf_blobs").await, 1);

    for (k, b) in &items {
        assert_eq!(&store.get(k).await.expect("get"), b);
        assert_eq!(
            store.head(k).await.unwrap().map(|m| m.size),
            Some(b.len() as u64)
        );
    }
    let (k, b) = &items[7];
    assert_eq!(store.get_range(k, 2..5).await.unwrap(), b.slice(2..5));
    assert_eq!(store.get_range(k, 3..1_000).await.unwrap(), b.slice(3..));
    assert!(store.get_range(k, 1_000..1_001).await.is_err());
    let keys: Vec<BlobKey> = items.iter().rev().map(|i| i.0.clone()).collect();
    let got = store.get_many(&keys).await.expect("get_many");
    assert_eq!(
        got,
        items.iter().rev().map(|i| i.1.clone()).collect::<Vec<_>>()
    );
    let listed: Vec<BlobKey> = store
        .list("records/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut want: Vec<BlobKey> = items.iter().map(|i| i.0.clone()).collect();
    want.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, want);
    assert_eq!(store.list("").await.unwrap().len(), 51);

    // Present already: nothing new is written.
    assert_eq!(
        store
            .put_if_absent(&items[3].0, Bytes::from("changed"))
            .await
            .unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(store.get(&items[3].0).await.unwrap(), items[3].1);
    assert_eq!(count(&store, "bf_hot_packs").await, 1);

    store
        .delete_many(items[..10].iter().map(|i| i.0.clone()).collect())
        .await
        .expect("delete some");
    for (k, _) in &items[..10] {
        assert!(store.head(k).await.unwrap().is_none());
        assert_eq!(store.get(k).await.unwrap_err().kind, ErrorKind::NotFound);
    }
    assert_eq!(store.get(&items[10].0).await.unwrap(), items[10].1);
    assert_eq!(count(&store, "bf_hot_packs").await, 1);
    store
        .delete_many(items[10..].iter().map(|i| i.0.clone()).collect())
        .await
        .expect("delete the rest");
    assert_eq!(
        count(&store, "bf_hot_packs").await,
        0,
        "an empty pack is deleted"
    );
    assert_eq!(store.list("records/").await.unwrap().len(), 0);
}

/// Records written through `Storage` (catalog and hot tier in this one database, one transaction
/// a batch) read back verified; a flipped byte in the pack is caught by the SHA-256 check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_records_are_verified_on_read() {
    let Some(url) = support::url("packed_records_are_verified_on_read") else {
        return;
    };
    let store = Arc::new(support::fresh(&url).await);
    let storage = Storage::new(store.clone(), store.clone());
    assert!(storage.hot_in_catalog());
    let t0 = 1_750_000_000_000_000_000i64;
    let records: Vec<RunRecord> = (0..300)
        .map(|i| record(i, t0 + i64::from(i) * 1_000))
        .collect();
    let entries = storage.write_records(&records).await.expect("write");
    assert_eq!(count(&store, "bf_hot_packs").await, 1);
    assert_eq!(
        count(&store, "bf_chunks").await,
        3,
        "300 entries of one run: 128 + 128 + 44"
    );
    for (e, r) in entries.iter().zip(&records).step_by(37) {
        assert_eq!(&storage.read_record(e).await.expect("read"), r);
    }
    let victim = &entries[42];
    let (pack, offset, _) = store
        .hot_slot(&BlobKey::new(&victim.location).unwrap())
        .await
        .unwrap()
        .expect("packed");
    sqlx::query(
        "UPDATE bf_hot_packs SET data = set_byte(data, $2, get_byte(data, $2) # 1) WHERE id = $1",
    )
    .bind(pack)
    .bind(offset as i32 + 3)
    .execute(store.pool())
    .await
    .unwrap();
    let fresh = Storage::new(store.clone(), store.clone());
    let err = fresh
        .read_record(victim)
        .await
        .expect_err("a damaged record");
    assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
    assert_eq!(
        &fresh.read_record(&entries[41]).await.unwrap(),
        &records[41]
    );
}

/// The footprint counts the catalog's tables only: blobs do not change it, entries do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footprint_counts_the_catalog_tables() {
    let Some(url) = support::url("footprint_counts_the_catalog_tables") else {
        return;
    };
    let store = support::fresh(&url).await;
    let before = store
        .footprint()
        .await
        .unwrap()
        .expect("a footprint")
        .catalog_bytes;
    assert!(before > 0);
    let blobs: Vec<(BlobKey, Bytes)> = (0..200u32)
        .map(|i| {
            let b = Bytes::from(vec![i as u8; 4_000]);
            (hot_key(Timestamp(i64::from(i)), &Digest::of(&b)), b)
        })
        .collect();
    store.put_many(blobs).await.unwrap();
    assert_eq!(
        store.footprint().await.unwrap().unwrap().catalog_bytes,
        before
    );
    let entries = legacy_entries(40, 30);
    store.insert_records(&entries).await.unwrap();
    let after = store.footprint().await.unwrap().unwrap().catalog_bytes;
    assert!(after > before, "{before} → {after}");
}

/// Records move hot → warm → cold with every tier in this database (hot records packed, warm
/// packs and cold segments as blob rows): `verify` finds every record intact after each move,
/// history-like queries answer the same entries with their new tiers, records read back equal,
/// and the emptied hot packs are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_moves_verify_after_each_step() {
    let Some(url) = support::url("tier_moves_verify_after_each_step") else {
        return;
    };
    let store = Arc::new(support::fresh(&url).await);
    let storage = Storage::new(store.clone(), store.clone());
    let t0 = 1_750_000_000_000_000_000i64;
    let records: Vec<RunRecord> = (0..400)
        .map(|i| record(i % 40, t0 + i64::from(i) * 1_000_000))
        .collect();
    let mut records = records;
    for (i, r) in records.iter_mut().enumerate() {
        r.iteration = i as u32 / 40;
        r.kind = if i % 2 == 0 {
            NodeKind::Job
        } else {
            NodeKind::Benchmark
        };
    }
    for batch in records.chunks(150) {
        storage.write_records(batch).await.expect("write");
    }
    let last_s = t0 / 1_000_000_000 + 1;
    let day = 86_400;
    for (step, (days, tier)) in [(30, Tier::Warm), (400, Tier::Cold)]
        .into_iter()
        .enumerate()
    {
        let report = benchfleet_store::migrate(
            &storage,
            &benchfleet_store::MigrateOptions {
                now: Some(Timestamp::from_unix_seconds(last_s + days * day)),
                ..Default::default()
            },
        )
        .await
        .expect("migrate");
        assert!(
            report.to_warm + report.to_cold > 0,
            "step {step}: {report:?}"
        );
        let v = benchfleet_store::verify(&storage).await.expect("verify");
        assert!(v.is_ok(), "step {step}: {:?}", v.problems);
        assert_eq!(v.checked, 400, "step {step}");
        let entries = store.query_records(&RecordQuery::default()).await.unwrap();
        assert!(entries.iter().all(|e| e.tier == tier), "step {step}");
        let n7 = store
            .query_records(&RecordQuery {
                suite: Some("packs".into()),
                name: Some("n7".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(n7.len(), 10, "step {step}: n7 in every iteration");
        for e in n7.iter().step_by(3) {
            let back = storage.read_record(e).await.expect("read");
            assert_eq!(back.name, "n7");
        }
        assert_eq!(count(&store, "bf_hot_packs").await, 0, "step {step}");
    }
}

/// A damaged chunk (bytes cut short, an unknown format) is a typed error naming its run, never
/// a panic; the other runs' entries stay readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_chunk_is_an_error() {
    let Some(url) = support::url("a_damaged_chunk_is_an_error") else {
        return;
    };
    let store = support::fresh(&url).await;
    let entries = legacy_entries(3, 40);
    store.insert_records(&entries).await.unwrap();
    for damage in [
        "UPDATE bf_chunks SET pack = substring(pack FROM 1 FOR 30) WHERE run_id = $1",
        "UPDATE bf_chunks SET pack = set_byte(pack, 0, 9) WHERE run_id = $1",
    ] {
        sqlx::query(damage)
            .bind(run_id(1).as_str())
            .execute(store.pool())
            .await
            .unwrap();
        let err = store
            .query_records(&RecordQuery::run(&run_id(1)))
            .await
            .expect_err("a damaged chunk must not read as entries");
        assert!(
            matches!(err.kind, ErrorKind::Corrupt | ErrorKind::Decode),
            "{err}"
        );
        assert!(err.to_string().contains(run_id(1).as_str()), "{err}");
        let other = store
            .query_records(&RecordQuery::run(&run_id(2)))
            .await
            .unwrap();
        assert_eq!(other, expected(&entries, &RecordQuery::run(&run_id(2))));
    }
}
