//! PostgreSQL-specific behaviour against a real server (`BENCHFLEET_TEST_POSTGRES_URL`; skipped
//! with a note when unset, failing under `CI=true`): reconnecting after the server drops every
//! connection, concurrent migrations, time ranges across decades, the daily summary.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use benchfleet_model::{Digest, Measurement, NodeKind, Outcome, RunId, Timestamp};
use benchfleet_postgres::{PgOptions, PgStore, SummaryQuery};
use benchfleet_store::{BlobKey, BlobStore, Catalog, RecordEntry, RecordQuery, Tier};

const DAY_NS: i64 = 86_400 * 1_000_000_000;

fn run_id(n: u32) -> RunId {
    format!("01J0000000000000000000{n:04}").parse().unwrap()
}

fn entry(
    run: u32,
    name: &str,
    iteration: u32,
    started_ns: i64,
    wall_ns: u64,
    ok: bool,
) -> RecordEntry {
    let digest = Digest::of(format!("{run}/{name}/{iteration}/{started_ns}/{wall_ns}").as_bytes());
    RecordEntry {
        digest,
        run_id: run_id(run),
        suite: "pg".into(),
        name: name.into(),
        kind: NodeKind::Benchmark,
        iteration,
        started_at: Timestamp(started_ns),
        measurement: Measurement {
            wall_ns,
            user_ns: wall_ns / 2,
            max_rss_bytes: 1 << 20,
            ..Default::default()
        },
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failed {
                exit_code: Some(1),
                signal: None,
            }
        },
        size: 100,
        tier: Tier::Hot,
        location: format!("records/{}", digest.to_hex()),
    }
}

/// Terminate every connection of the application `app` (the store's pool), from another one.
async fn terminate(admin: &sqlx::PgPool, app: &str) -> u64 {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(app)
    .fetch_all(admin)
    .await
    .expect("pg_terminate_backend");
    killed.into_iter().filter(|k| *k).count() as u64
}

/// The server drops every connection of the store between (and during) batches; later inserts
/// succeed and nothing is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_connections_are_terminated() {
    let Some(url) = support::url("reconnects_after_connections_are_terminated") else {
        return;
    };
    let schema = support::fresh_schema();
    let app = format!("bf-test-{schema}");
    let store = PgStore::connect(
        &url,
        PgOptions {
            application_name: app.clone(),
            ..support::options(&schema)
        },
    )
    .await
    .expect("connect");
    let admin = sqlx::PgPool::connect(&url).await.expect("admin connection");
    let now = 1_750_000_000 * 1_000_000_000;
    let batch = move |b: u32| -> Vec<RecordEntry> {
        (0..50)
            .map(|i| {
                entry(
                    b,
                    "restart",
                    i,
                    now + i64::from(b * 100 + i) * 1000,
                    1000 + u64::from(i),
                    true,
                )
            })
            .collect()
    };
    let mut want = BTreeSet::new();
    for b in 0..3 {
        store
            .insert_records(&batch(b))
            .await
            .expect("insert before");
        want.extend(batch(b).iter().map(|e| e.digest));
    }
    let key = BlobKey::new("restart/blob").unwrap();
    store
        .put_if_absent(&key, "before".into())
        .await
        .expect("put");

    assert!(
        terminate(&admin, &app).await > 0,
        "the store had no connection to terminate"
    );

    // Keep terminating while a writer inserts more batches.
    let writer = {
        let store = std::sync::Arc::new(store);
        let s = store.clone();
        let task = tokio::spawn(async move {
            for b in 3..13 {
                s.insert_records(&batch(b)).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, benchfleet_store::StoreError>(())
        });
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            terminate(&admin, &app).await;
        }
        task.await
            .expect("writer panicked")
            .expect("inserts after termination");
        store
    };
    for b in 3..13 {
        want.extend(batch(b).iter().map(|e| e.digest));
    }
    let got = writer
        .query_records(&RecordQuery::default())
        .await
        .expect("query");
    let got_digests: BTreeSet<Digest> = got.iter().map(|e| e.digest).collect();
    assert_eq!(got.len(), got_digests.len(), "duplicated entries");
    assert_eq!(got_digests, want, "entries lost or invented");
    assert_eq!(
        writer.get(&key).await.expect("get after termination"),
        "before"
    );
}

/// Several processes (here: stores) connecting at once to a fresh schema all migrate safely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_migrate_once() {
    let Some(url) = support::url("concurrent_connects_migrate_once") else {
        return;
    };
    let schema = support::fresh_schema();
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { PgStore::connect(&url, support::options(&schema)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for c in connects {
        stores.push(c.await.expect("task").expect("concurrent connect"));
    }
    for s in &stores {
        assert_eq!(
            s.migration_versions().await.expect("versions"),
            PgStore::embedded_migrations()
        );
    }
    // And they share one catalog.
    stores[0]
        .insert_records(&[entry(1, "shared", 0, 0, 1, true)])
        .await
        .expect("insert");
    assert_eq!(
        stores[5]
            .query_records(&RecordQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Entries decades apart (one run, so one chunk spans them all) are found by exactly the time
/// ranges that hold them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_ranges_across_decades() {
    let Some(url) = support::url("time_ranges_across_decades") else {
        return;
    };
    let store = support::fresh(&url).await;
    let cases = [-86_400i64, 915_148_800, 1_906_416_000, 1_906_415_999];
    let entries: Vec<RecordEntry> = cases
        .iter()
        .enumerate()
        .map(|(i, s)| entry(7, "old", i as u32, s * 1_000_000_000, 5, true))
        .collect();
    store.insert_records(&entries).await.expect("insert");
    for (since, until) in [
        (-86_400i64, 0i64),
        (0, 2_000_000_000),
        (915_148_800, 915_148_801),
    ] {
        let q = RecordQuery {
            since: Some(Timestamp(since * 1_000_000_000)),
            until: Some(Timestamp(until * 1_000_000_000)),
            ..Default::default()
        };
        let got = store.query_records(&q).await.expect("query");
        let mut want: Vec<_> = entries.iter().filter(|e| q.matches(e)).cloned().collect();
        want.sort_by_key(|e| (e.started_at, e.run_id.clone(), e.name.clone(), e.iteration));
        assert_eq!(got, want, "{since}..{until}");
    }
}

/// Percentile with linear interpolation, as `percentile_cont`.
fn percentile_cont(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The daily summary, after a refresh, agrees with the same statistics computed here; failed
/// runs are left out; a second refresh (concurrently) picks up new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_summary_matches_the_data() {
    let Some(url) = support::url("daily_summary_matches_the_data") else {
        return;
    };
    let store = support::fresh(&url).await;
    let day0 = 1_750_032_000 * 1_000_000_000; // 2025-06-16 00:00:00 UTC
    let mut entries = Vec::new();
    for (d, name, n) in [(0i64, "a", 20u32), (0, "b", 7), (1, "a", 13)] {
        for i in 0..n {
            let wall = 1_000 + u64::from(i * i) * 37 % 997 + (d as u64) * 10;
            entries.push(entry(
                d as u32,
                name,
                i,
                day0 + d * DAY_NS + i64::from(i),
                wall,
                true,
            ));
        }
        entries.push(entry(d as u32, name, 999, day0 + d * DAY_NS + 5, 1, false));
    }
    store.insert_records(&entries).await.expect("insert");
    assert!(
        store
            .daily_summary(&SummaryQuery::default())
            .await
            .unwrap()
            .is_empty(),
        "summary shows data before a refresh"
    );
    store.refresh_daily_summary().await.expect("refresh");
    let rows = store
        .daily_summary(&SummaryQuery {
            metric: Some("wall_ns".into()),
            ..Default::default()
        })
        .await
        .expect("summary");
    let mut want = Vec::new();
    for (day, d) in [("2025-06-16", 0i64), ("2025-06-17", 1)] {
        for name in ["a", "b"] {
            let mut v: Vec<f64> = entries
                .iter()
                .filter(|e| e.name == name && e.outcome.is_success())
                .filter(|e| (e.started_at.0 - day0).div_euclid(DAY_NS) == d)
                .map(|e| e.measurement.wall_ns as f64)
                .collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            want.push((
                day.to_string(),
                name.to_string(),
                v.len() as i64,
                v.iter().sum::<f64>() / v.len() as f64,
                v[0],
                v[v.len() - 1],
                percentile_cont(&v, 0.95),
            ));
        }
    }
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for (r, w) in rows.iter().zip(&want) {
        assert_eq!((&r.day, &r.name, r.count), (&w.0, &w.1, w.2), "{r:?}");
        for (got, exp, what) in [
            (r.mean, w.3, "mean"),
            (r.min, w.4, "min"),
            (r.max, w.5, "max"),
            (r.p95, w.6, "p95"),
        ] {
            assert!(
                (got - exp).abs() <= 1e-9 * exp.abs().max(1.0),
                "{what} of {r:?}: want {exp}"
            );
        }
    }
    store
        .insert_records(&[entry(9, "c", 0, day0, 42, true)])
        .await
        .expect("insert more");
    store.refresh_daily_summary().await.expect("second refresh");
    let c = store
        .daily_summary(&SummaryQuery {
            name: Some("c".into()),
            ..Default::default()
        })
        .await
        .expect("summary of c");
    assert_eq!(c.len(), 4, "one row per metric: {c:?}");
    assert!(
        c.iter().all(|r| r.count == 1 && r.day == "2025-06-16"),
        "{c:?}"
    );
}

/// Re-inserting entries (whole batch, or mixed with new ones) leaves the stored ones as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinsert_keeps_first_version() {
    let Some(url) = support::url("reinsert_keeps_first_version") else {
        return;
    };
    let store = support::fresh(&url).await;
    let first = entry(3, "x", 0, 1_000, 10, true);
    store
        .insert_records(std::slice::from_ref(&first))
        .await
        .unwrap();
    let mut changed = first.clone();
    changed.tier = Tier::Warm;
    changed.location = "elsewhere".into();
    let new = entry(3, "x", 1, 2_000, 11, true);
    store
        .insert_records(&[changed.clone(), new.clone(), changed])
        .await
        .unwrap();
    let got = store.query_records(&RecordQuery::default()).await.unwrap();
    assert_eq!(got, vec![first, new]);
}

/// A migration's flip and its hot-source deletes commit together; a batch naming an unknown
/// record changes nothing (no row moves, no blob goes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_with_its_source_deletes_is_one_transaction() {
    let Some(url) = support::url("a_flip_with_its_source_deletes_is_one_transaction") else {
        return;
    };
    let store = support::fresh(&url).await;
    let entries: Vec<RecordEntry> = (0..6)
        .map(|i| {
            entry(
                9,
                "flip",
                i,
                1_700_000_000 * 1_000_000_000 + i64::from(i),
                5,
                true,
            )
        })
        .collect();
    let keys: Vec<BlobKey> = entries
        .iter()
        .map(|e| BlobKey::new(&e.location).unwrap())
        .collect();
    store
        .put_many(keys.iter().map(|k| (k.clone(), "x".into())).collect())
        .await
        .expect("put_many");
    store.insert_records(&entries).await.expect("insert");
    let warm = |e: &RecordEntry| RecordEntry {
        tier: Tier::Warm,
        location: format!("warm/{}", e.iteration),
        ..e.clone()
    };
    let moved: Vec<RecordEntry> = entries[..3].iter().map(warm).collect();
    assert!(
        store
            .move_records_deleting(&moved, &keys[..3])
            .await
            .expect("move_records_deleting")
    );
    let mut bad: Vec<RecordEntry> = entries[3..4].iter().map(warm).collect();
    bad.push(warm(&entry(9, "absent", 99, 5, 5, true)));
    let err = store
        .move_records_deleting(&bad, &keys[3..4])
        .await
        .expect_err("an unknown row must fail the batch");
    assert_eq!(err.kind, benchfleet_store::ErrorKind::NotFound, "{err}");

    let rows = store
        .query_records(&RecordQuery::default())
        .await
        .expect("query");
    assert_eq!(rows.len(), 6);
    for (e, k) in rows.iter().zip(&keys) {
        let moved = e.iteration < 3;
        assert_eq!(e.tier, if moved { Tier::Warm } else { Tier::Hot }, "{e:?}");
        assert_eq!(store.head(k).await.expect("head").is_some(), !moved, "{k}");
    }
    // get_many reads what is left in one query, in the order asked; a deleted key is NotFound.
    let left = store
        .get_many(&[keys[5].clone(), keys[4].clone()])
        .await
        .expect("get_many");
    assert_eq!(left, vec![bytes::Bytes::from("x"), bytes::Bytes::from("x")]);
    let err = store.get_many(&keys[..1]).await.expect_err("deleted key");
    assert_eq!(err.kind, benchfleet_store::ErrorKind::NotFound, "{err}");
}
