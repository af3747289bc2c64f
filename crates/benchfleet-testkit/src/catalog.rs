//! [`Catalog`] behaviours. Each function is one test of [`catalog_conformance!`]
//! (crate::catalog_conformance). Expected results are computed from the data with the
//! documented semantics ([`RecordQuery::matches`], [`RunFilter::matches`], the promised order),
//! never hard-coded.

use benchfleet_model::{RunInfo, RunStatus, Timestamp};
use benchfleet_store::{
    AlertCatalog, Catalog, ErrorKind, RecordEntry, RecordQuery, RecordSample, RunFilter, Tier,
    sample_order,
};

use crate::{CatalogHarness, data, skip};

/// Three runs in two suites, two benchmarks each, three iterations; some entries warm.
/// Deliberately shuffled (not in query order).
fn fixture() -> (Vec<RunInfo>, Vec<RecordEntry>) {
    let runs = vec![
        data::run(1, "alpha", 1_000),
        data::run(2, "beta", 2_000),
        data::run(3, "alpha", 3_000),
    ];
    let mut entries = Vec::new();
    for r in runs.iter().rev() {
        for name in ["zeta", "eta"] {
            for it in (0..3).rev() {
                // Same start time for both names of an iteration: the order must fall back to
                // the name. Iteration 0 of run 2 starts before run 1 ends (interleaved runs).
                let t = r.started_at.0 + i64::from(it) * 600;
                let tier = if it == 1 { Tier::Warm } else { Tier::Hot };
                entries.push(data::entry(&r.run_id, &r.suite, name, it, t, tier));
            }
        }
    }
    (runs, entries)
}

fn expected(all: &[RecordEntry], q: &RecordQuery) -> Vec<RecordEntry> {
    let mut want: Vec<RecordEntry> = all.iter().filter(|e| q.matches(e)).cloned().collect();
    want.sort_by(data::record_order);
    want.truncate(q.limit.unwrap_or(usize::MAX));
    want
}

fn ids(entries: &[RecordEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}@{} {}#{}", e.run_id, e.started_at.0, e.name, e.iteration))
        .collect()
}

/// Queries over [`fixture`] touching every filter, limits included.
fn fixture_queries(runs: &[RunInfo]) -> Vec<RecordQuery> {
    let (r1, r2) = (runs[0].run_id.clone(), runs[1].run_id.clone());
    let t = Timestamp;
    vec![
        RecordQuery::default(),
        RecordQuery::run(&r1),
        RecordQuery::run(&r2),
        RecordQuery {
            suite: Some("alpha".into()),
            ..Default::default()
        },
        RecordQuery {
            suite: Some("gamma".into()),
            ..Default::default()
        },
        RecordQuery {
            name: Some("eta".into()),
            ..Default::default()
        },
        RecordQuery {
            name: Some("et".into()),
            ..Default::default()
        },
        RecordQuery {
            since: Some(t(1_600)),
            ..Default::default()
        },
        RecordQuery {
            until: Some(t(2_000)),
            ..Default::default()
        },
        RecordQuery {
            since: Some(t(1_600)),
            until: Some(t(3_000)),
            ..Default::default()
        },
        RecordQuery {
            suite: Some("alpha".into()),
            name: Some("zeta".into()),
            since: Some(t(1_001)),
            ..Default::default()
        },
        RecordQuery {
            run_id: Some(r1.clone()),
            until: Some(t(1_600)),
            ..Default::default()
        },
        RecordQuery {
            run_id: Some(r1.clone()),
            suite: Some("beta".into()),
            ..Default::default()
        },
        RecordQuery {
            tier: Some(Tier::Warm),
            ..Default::default()
        },
        RecordQuery {
            name: Some("zeta".into()),
            tier: Some(Tier::Hot),
            limit: Some(3),
            ..Default::default()
        },
        RecordQuery {
            limit: Some(4),
            ..Default::default()
        },
        RecordQuery {
            limit: Some(0),
            ..Default::default()
        },
    ]
}

/// A batch inserted at once is queryable by run, suite, name, tier and time range (inclusive
/// `since`, exclusive `until`), with limit, in (started_at, run_id, name, iteration) order.
pub async fn query_records_filters_and_order<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let (runs, all) = fixture();
    cat.insert_records(&all)
        .await
        .unwrap_or_else(|e| panic!("{}: insert_records: {e}", cat.name()));
    let r1 = runs[0].run_id.clone();
    let queries = fixture_queries(&runs);
    for q in &queries {
        let got = cat
            .query_records(q)
            .await
            .unwrap_or_else(|e| panic!("{}: query {q:?}: {e}", cat.name()));
        let want = expected(&all, q);
        assert_eq!(ids(&got), ids(&want), "{}: query {q:?}", cat.name());
        assert_eq!(
            got,
            want,
            "{}: entries differ from those inserted for {q:?}",
            cat.name()
        );
    }
    // Sanity of the fixture itself, so the oracle above is not vacuous.
    assert_eq!(expected(&all, &RecordQuery::run(&r1)).len(), 6);
    assert!(
        expected(
            &all,
            &RecordQuery {
                tier: Some(Tier::Warm),
                ..Default::default()
            }
        )
        .len()
            < all.len()
    );
}

/// `query_samples` returns what `query_records` does for the same query, projected to samples
/// and ordered by (started_at, run_id, iteration), `limit` counted in that order.
pub async fn query_samples_project_query_records<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let (runs, all) = fixture();
    cat.insert_records(&all)
        .await
        .unwrap_or_else(|e| panic!("{}: insert_records: {e}", cat.name()));
    for q in &fixture_queries(&runs) {
        let got = cat
            .query_samples(q)
            .await
            .unwrap_or_else(|e| panic!("{}: query_samples {q:?}: {e}", cat.name()));
        let mut want: Vec<RecordSample> = all
            .iter()
            .filter(|e| q.matches(e))
            .map(RecordSample::from)
            .collect();
        want.sort_by(sample_order);
        want.truncate(q.limit.unwrap_or(usize::MAX));
        // Samples equal in (started_at, run_id, iteration) are equal here (the fixture's two
        // names of an iteration measure the same), so the order is fully determined.
        assert_eq!(got, want, "{}: query_samples {q:?}", cat.name());
    }
    let failed = cat
        .query_samples(&RecordQuery::run(&runs[0].run_id))
        .await
        .expect("query_samples");
    assert!(
        failed.iter().any(|s| !s.success) && failed.iter().any(|s| s.success),
        "{}: the fixture has failed and successful runs: {failed:?}",
        cat.name()
    );
}

/// Re-inserting entries (even with changed fields) whose digest is present changes nothing;
/// new digests in the same batch are added.
pub async fn insert_records_is_idempotent<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let (runs, all) = fixture();
    let (first, rest) = all.split_at(5);
    cat.insert_records(first).await.expect("first batch");
    let mut again: Vec<RecordEntry> = first.to_vec();
    for e in &mut again {
        e.location = "elsewhere".into();
        e.tier = Tier::Cold;
    }
    again.extend_from_slice(rest);
    again.extend_from_slice(rest); // duplicates inside one batch too
    cat.insert_records(&again).await.expect("second batch");
    cat.insert_records(&[]).await.expect("empty batch");
    let got = cat
        .query_records(&RecordQuery::default())
        .await
        .expect("query");
    assert_eq!(
        got,
        expected(&all, &RecordQuery::default()),
        "{}: after re-insert",
        cat.name()
    );
    let run_entries = cat
        .query_records(&RecordQuery::run(&runs[0].run_id))
        .await
        .expect("query run");
    assert_eq!(
        run_entries.len(),
        6,
        "{}: entries of one run after re-insert",
        cat.name()
    );
}

/// `put_run` inserts, then replaces the row (status, finish time, even suite); `get_run` and
/// `find_runs` see only the latest version; an unknown id is `None`.
pub async fn put_run_upserts<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let mut run = data::run(7, "alpha", 5_000);
    assert_eq!(
        cat.get_run(&run.run_id).await.expect("get_run"),
        None,
        "{}",
        cat.name()
    );
    cat.put_run(&run).await.expect("put_run");
    assert_eq!(
        cat.get_run(&run.run_id).await.expect("get_run").as_ref(),
        Some(&run),
        "{}",
        cat.name()
    );
    run.status = RunStatus::Succeeded;
    run.finished_at = Some(Timestamp(9_000));
    run.tags.insert("git.commit".into(), "abc123".into());
    cat.put_run(&run).await.expect("put_run again");
    assert_eq!(
        cat.get_run(&run.run_id).await.expect("get_run").as_ref(),
        Some(&run),
        "{}: after upsert",
        cat.name()
    );
    run.suite = "beta".into();
    cat.put_run(&run).await.expect("put_run with a new suite");
    let all = cat
        .find_runs(&RunFilter::default())
        .await
        .expect("find_runs");
    assert_eq!(all, vec![run.clone()], "{}: one row per run id", cat.name());
    for (suite, want) in [("beta", vec![run.clone()]), ("alpha", vec![])] {
        let filter = RunFilter {
            suite: Some(suite.into()),
            ..Default::default()
        };
        assert_eq!(
            cat.find_runs(&filter).await.expect("find_runs"),
            want,
            "{}: suite {suite}",
            cat.name()
        );
    }
    assert_eq!(
        cat.get_run(&data::run_id(8)).await.expect("get_run"),
        None,
        "{}",
        cat.name()
    );
}

/// `find_runs` returns matching runs newest first (run ids are time-ordered), honouring suite,
/// id prefix, since/until and limit.
pub async fn find_runs_newest_first_with_filters<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let runs: Vec<RunInfo> = (0..40u32)
        .map(|n| {
            data::run(
                n * 3 + 1,
                if n % 3 == 0 { "beta" } else { "alpha" },
                1_000 * i64::from(n),
            )
        })
        .collect();
    for r in runs.iter().rev() {
        cat.put_run(r).await.expect("put_run");
    }
    let prefix = runs[33].run_id.as_str()[..24].to_owned();
    let t = |s| Some(Timestamp(s));
    let filters = [
        RunFilter::default(),
        RunFilter {
            suite: Some("beta".into()),
            ..Default::default()
        },
        RunFilter {
            suite: Some("nope".into()),
            ..Default::default()
        },
        RunFilter {
            id_prefix: Some(prefix.clone()),
            ..Default::default()
        },
        RunFilter {
            id_prefix: Some(runs[5].run_id.to_string()),
            ..Default::default()
        },
        RunFilter {
            since: t(10_000),
            until: t(20_000),
            ..Default::default()
        },
        RunFilter {
            limit: Some(3),
            ..Default::default()
        },
        RunFilter {
            limit: Some(0),
            ..Default::default()
        },
        RunFilter {
            suite: Some("alpha".into()),
            since: t(5_000),
            limit: Some(4),
            ..Default::default()
        },
        RunFilter {
            suite: Some("beta".into()),
            id_prefix: Some(prefix),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut want: Vec<RunInfo> = runs.iter().filter(|r| f.matches(r)).cloned().collect();
        want.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        want.truncate(f.limit.unwrap_or(usize::MAX));
        let got = cat
            .find_runs(f)
            .await
            .unwrap_or_else(|e| panic!("{}: find_runs {f:?}: {e}", cat.name()));
        let names = |v: &[RunInfo]| v.iter().map(|r| r.run_id.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{}: find_runs {f:?}", cat.name());
        assert_eq!(got, want, "{}: rows differ for {f:?}", cat.name());
    }
}

/// `move_records` replaces tier and location of existing rows in one transaction: moved rows
/// read back moved (and still match by every other field), moving again is a no-op, a batch
/// naming one unknown digest is `NotFound` and changes nothing, an empty batch is fine. A catalog
/// that reports `Unsupported` (the trait's default) is skipped: it cannot commit migrations.
pub async fn move_records_is_atomic_and_idempotent<H: CatalogHarness>(h: &H) {
    let cat = h.make_catalog().await;
    let (runs, mut all) = fixture();
    cat.insert_records(&all).await.expect("insert_records");
    let moved_to = |e: &RecordEntry, tier: Tier| RecordEntry {
        tier,
        location: format!("{}/{}#{}", tier.as_str(), e.digest.to_hex(), e.iteration),
        ..e.clone()
    };
    // Every entry of run 1 to cold (some are hot, some warm), run 2's hot entries to warm.
    let batch: Vec<RecordEntry> = all
        .iter()
        .filter_map(|e| {
            if e.run_id == runs[0].run_id {
                Some(moved_to(e, Tier::Cold))
            } else if e.run_id == runs[1].run_id && e.tier == Tier::Hot {
                Some(moved_to(e, Tier::Warm))
            } else {
                None
            }
        })
        .collect();
    match cat.move_records(&batch).await {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::Unsupported => {
            skip(
                "move_records_is_atomic_and_idempotent",
                cat.name(),
                "move_records is not implemented (tier migration is refused)",
            );
            return;
        }
        Err(e) => panic!("{}: move_records: {e}", cat.name()),
    }
    for m in &batch {
        let slot = all
            .iter_mut()
            .find(|e| e.digest == m.digest)
            .expect("fixture entry");
        *slot = m.clone();
    }
    let check = |what: &str, got: Vec<RecordEntry>, q: &RecordQuery| {
        assert_eq!(
            got,
            expected(&all, q),
            "{}: {what}: query {q:?}",
            cat.name()
        );
    };
    let queries = [
        RecordQuery::default(),
        RecordQuery {
            tier: Some(Tier::Cold),
            ..Default::default()
        },
        RecordQuery {
            tier: Some(Tier::Hot),
            ..Default::default()
        },
        RecordQuery::run(&runs[1].run_id),
    ];
    for q in &queries {
        check(
            "after a move",
            cat.query_records(q).await.expect("query"),
            q,
        );
    }

    // Moving to where they already are succeeds and changes nothing; so does an empty batch.
    cat.move_records(&batch).await.expect("move again");
    cat.move_records(&[]).await.expect("empty batch");
    for q in &queries {
        check(
            "after moving again",
            cat.query_records(q).await.expect("query"),
            q,
        );
    }

    // One unknown digest: NotFound, and the known entry in the same batch stays where it was.
    let known = all
        .iter()
        .find(|e| e.run_id == runs[2].run_id && e.tier == Tier::Hot)
        .expect("a hot entry of run 3");
    let unknown = data::entry(&data::run_id(99), "alpha", "ghost", 0, 9_999, Tier::Hot);
    let bad = vec![moved_to(known, Tier::Warm), moved_to(&unknown, Tier::Warm)];
    let err = cat
        .move_records(&bad)
        .await
        .expect_err("a batch naming an unknown digest must fail");
    assert_eq!(err.kind, ErrorKind::NotFound, "{}: {err}", cat.name());
    for q in &queries {
        check(
            "after a refused batch",
            cat.query_records(q).await.expect("query"),
            q,
        );
    }
    // Sanity of the fixture: the batch moved both hot and warm entries, and left some alone.
    assert!(batch.iter().any(|e| e.tier == Tier::Warm));
    assert!(all.iter().any(|e| e.tier == Tier::Hot));
}

fn alert(n: u32, benchmark: &str, at: i64) -> benchfleet_store::Alert {
    use benchfleet_store::{Alert, AlertKind, Triage};
    let run_id = data::run_id(n);
    Alert {
        id: Alert::id_for(
            AlertKind::ChangePoint,
            Some("alpha"),
            benchmark,
            "wall",
            &run_id,
        ),
        kind: AlertKind::ChangePoint,
        suite: Some("alpha".into()),
        benchmark: benchmark.into(),
        metric: "wall".into(),
        run_id,
        baseline_run_id: Some(data::run_id(n + 100)),
        commit: None,
        at: Timestamp(at),
        detected_at: Timestamp(at + 1),
        before: 1.0,
        after: 1.5,
        percent: 50.0,
        p_value: Some(1e-4),
        state: Triage::Untriaged,
        note: String::new(),
        triaged_at: None,
    }
}

/// Alerts: stored once by id (storing again keeps the triage), listed newest first with
/// filters, triaged all-or-nothing (an unknown id changes nothing).
pub async fn alerts_are_stored_once_and_keep_their_triage<H: CatalogHarness>(h: &H) {
    use benchfleet_store::{AlertFilter, Triage, TriageUpdate};
    let cat = h.make_catalog().await;
    let name = cat.name().to_owned();
    let all = vec![
        alert(1, "zeta", 1_000),
        alert(2, "eta", 3_000),
        alert(3, "zeta", 2_000),
    ];
    assert_eq!(cat.put_alerts(&all).await.expect("put_alerts"), 3, "{name}");
    assert_eq!(
        cat.put_alerts(&all[..1]).await.expect("put_alerts again"),
        0,
        "{name}"
    );
    let listed = cat
        .find_alerts(&AlertFilter::default())
        .await
        .expect("find_alerts");
    let ats: Vec<i64> = listed.iter().map(|a| a.at.0).collect();
    assert_eq!(ats, [3_000, 2_000, 1_000], "{name}: newest first");
    assert_eq!(listed[0], all[1], "{name}: stored as given");
    let zeta = AlertFilter {
        benchmark: Some("zeta".into()),
        limit: Some(1),
        ..Default::default()
    };
    let got = cat.find_alerts(&zeta).await.expect("find_alerts zeta");
    assert_eq!(got, vec![all[2].clone()], "{name}");

    let update = TriageUpdate {
        state: Triage::Acknowledged,
        note: Some("looking into it".into()),
        at: Timestamp(9_000),
    };
    let ids = vec![all[0].id.clone(), all[1].id.clone()];
    let done = cat
        .triage_alerts(&ids, &update)
        .await
        .expect("triage_alerts");
    assert_eq!(done.len(), 2, "{name}");
    assert!(
        done.iter()
            .all(|a| a.state == Triage::Acknowledged && a.note == "looking into it")
    );
    // Storing a found alert again keeps its triage.
    cat.put_alerts(&all).await.expect("put_alerts after triage");
    let a0 = cat
        .get_alert(&all[0].id)
        .await
        .expect("get_alert")
        .expect("present");
    assert_eq!(
        (a0.state, a0.note.as_str()),
        (Triage::Acknowledged, "looking into it")
    );
    assert_eq!(a0.triaged_at, Some(Timestamp(9_000)), "{name}");
    let acked = AlertFilter {
        state: Some(Triage::Acknowledged),
        ..Default::default()
    };
    assert_eq!(
        cat.find_alerts(&acked).await.expect("find acked").len(),
        2,
        "{name}"
    );

    // One unknown id: NotFound, and nothing changes.
    let fixed = TriageUpdate {
        state: Triage::Fixed,
        note: None,
        at: Timestamp(10_000),
    };
    let err = cat
        .triage_alerts(&[all[2].id.clone(), "a0000000000000000".into()], &fixed)
        .await
        .expect_err("an unknown id must fail");
    assert_eq!(err.kind, ErrorKind::NotFound, "{name}: {err}");
    let a2 = cat
        .get_alert(&all[2].id)
        .await
        .expect("get_alert")
        .expect("present");
    assert_eq!(
        a2.state,
        Triage::Untriaged,
        "{name}: a refused triage changes nothing"
    );
    assert!(
        cat.get_alert("a0000000000000000")
            .await
            .expect("get_alert")
            .is_none()
    );
    // A triage without a note keeps the note.
    let again = cat.triage_alerts(&ids[..1], &fixed).await.expect("triage");
    assert_eq!(
        (again[0].state, again[0].note.as_str()),
        (Triage::Fixed, "looking into it")
    );
}

#[cfg(test)]
mod tests {
    //! The in-memory catalog of `benchfleet-store` runs the suite here (the store crate cannot
    //! depend on the kit).
    struct Mem;

    impl crate::CatalogHarness for Mem {
        type Catalog = benchfleet_store::mem::MemCatalog;
        async fn make_catalog(&self) -> Self::Catalog {
            benchfleet_store::mem::MemCatalog::new()
        }
    }

    crate::catalog_conformance!(Mem);
}
