//! [`Queue`] behaviours: the rules of `benchfleet_store::queue` (readiness, claims within
//! capacity, priority, machine-class pinning, retries, skips, cancellation, fenced completion),
//! each one test of [`queue_conformance!`](crate::queue_conformance). Two workers are two
//! handles ([`QueueHarness::connect`]), as two processes would hold.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use benchfleet_model::{RunId, RunStatus};
use benchfleet_store::{
    Capacity, Catalog, Claim, Completion, Finish, LeaseTimes, NodeEnd, Queue, QueueState,
    QueuedNode, RecordEntry, RecordQuery, Submission, Tier, WorkerInfo,
};

use crate::{QueueHarness, data};

/// A node of pool `default` with no declared resources and no retry.
fn node(name: &str, needs: &[u32], rank: u32) -> QueuedNode {
    QueuedNode {
        name: name.to_owned(),
        pool: "default".into(),
        benchmark: false,
        cpus: 0.0,
        memory_bytes: 0,
        needs: needs.to_vec(),
        rank,
        max_attempts: 1,
    }
}

fn submission(n: u32, nodes: Vec<QueuedNode>, keep_going: bool) -> Submission {
    Submission {
        run: data::run(n, "fleet", 1_000 + i64::from(n)),
        suite_text: format!("[suite]\nname = \"fleet{n}\"\n"),
        source: format!("fleet{n}.toml"),
        keep_going,
        nodes,
    }
}

fn worker(id: &str, class: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.to_owned(),
        host: "testhost".into(),
        machine_class: class.to_owned(),
        pools: vec!["default".into()],
        labels: BTreeMap::new(),
        jobs: 8,
        cpus: 4.0,
        memory_bytes: 1 << 30,
    }
}

fn slots(n: usize) -> Capacity {
    Capacity {
        slots: n,
        cpus: 4.0,
        memory_bytes: 1 << 30,
    }
}

/// The names of the claimed nodes, sorted.
fn names(sub: &Submission, claims: &[Claim]) -> Vec<String> {
    let mut v: Vec<String> = claims
        .iter()
        .map(|c| sub.nodes[c.node as usize].name.clone())
        .collect();
    v.sort();
    v
}

fn entries_for(run: &RunId, name: &str, count: u32, salt: i64) -> Vec<RecordEntry> {
    (0..count)
        .map(|i| {
            data::entry(
                run,
                "fleet",
                name,
                i,
                10_000 + salt * 100 + i64::from(i),
                Tier::Hot,
            )
        })
        .collect()
}

async fn records_of(catalog: &Arc<dyn Catalog>, run: &RunId) -> Vec<RecordEntry> {
    catalog
        .query_records(&RecordQuery {
            run_id: Some(run.clone()),
            ..RecordQuery::default()
        })
        .await
        .expect("query records")
}

async fn state_of(q: &Arc<dyn Queue>, run: &RunId) -> String {
    q.progress(run)
        .await
        .expect("progress")
        .expect("a submitted run has progress")
        .state
}

async fn accepted(q: &Arc<dyn Queue>, w: &str, c: &Claim, end: NodeEnd) -> Option<RunStatus> {
    match q.complete(w, c, end, &[]).await.expect("complete") {
        Completion::Accepted { run_finished } => run_finished,
        Completion::Refused { reason } => panic!("completion refused: {reason}"),
    }
}

/// A diamond a → (b, c) → d: only `a` is ready; completing it makes `b` and `c` ready in the
/// same step, `d` only after both; the records of every completion are in the catalog, once;
/// the last completion ends the run `succeeded`, and the catalog's run row says so.
pub async fn needs_order_and_records_once<H: QueueHarness>(h: &H) {
    let (q, catalog) = h.make_queue().await;
    let sub = submission(
        1,
        vec![
            node("a", &[], 0),
            node("b", &[0], 1),
            node("c", &[0], 1),
            node("d", &[1, 2], 2),
        ],
        false,
    );
    let run = sub.run.run_id.clone();
    q.submit(&sub).await.expect("submit");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    assert!(q.has_work(&w.pools).await.expect("has_work"));

    let first = q.claim(&w, slots(8)).await.expect("claim");
    assert_eq!(names(&sub, &first), ["a"], "only the root is ready");
    assert_eq!(first[0].attempt, 1, "attempts are counted at claim");
    assert!(q.claim(&w, slots(8)).await.expect("claim").is_empty());

    let recs = entries_for(&run, "a", 3, 0);
    let done = q
        .complete(&w.id, &first[0], NodeEnd::Succeeded, &recs)
        .await
        .expect("complete a");
    assert_eq!(done, Completion::Accepted { run_finished: None });
    let mid = q.claim(&w, slots(8)).await.expect("claim");
    assert_eq!(names(&sub, &mid), ["b", "c"]);
    assert_eq!(accepted(&q, &w.id, &mid[0], NodeEnd::Succeeded).await, None);
    assert!(
        q.claim(&w, slots(8)).await.expect("claim").is_empty(),
        "d waits for both b and c"
    );
    assert_eq!(accepted(&q, &w.id, &mid[1], NodeEnd::Succeeded).await, None);
    let last = q.claim(&w, slots(8)).await.expect("claim");
    assert_eq!(names(&sub, &last), ["d"]);
    let recs_d = entries_for(&run, "d", 2, 1);
    let done = q
        .complete(&w.id, &last[0], NodeEnd::Succeeded, &recs_d)
        .await
        .expect("complete d");
    assert_eq!(
        done,
        Completion::Accepted {
            run_finished: Some(RunStatus::Succeeded)
        }
    );
    assert_eq!(
        records_of(&catalog, &run).await.len(),
        recs.len() + recs_d.len()
    );
    let row = catalog
        .get_run(&run)
        .await
        .expect("get_run")
        .expect("run row");
    assert_eq!(row.status, RunStatus::Succeeded);
    assert_eq!(state_of(&q, &run).await, "succeeded");
    assert!(!q.has_work(&w.pools).await.expect("has_work"));
}

/// A node allowed two attempts fails twice: the first failure puts it back (attempt 2 at the
/// next claim), the second fails it and skips its dependents transitively; with keep-going an
/// independent node still runs, and the run ends `failed`.
pub async fn failures_retry_then_skip_dependents<H: QueueHarness>(h: &H) {
    let (q, _catalog) = h.make_queue().await;
    let mut flaky = node("flaky", &[], 0);
    flaky.max_attempts = 2;
    let sub = submission(
        2,
        vec![
            flaky,
            node("child", &[0], 1),
            node("grandchild", &[1], 2),
            node("other", &[], 3),
        ],
        true,
    );
    let run = sub.run.run_id.clone();
    q.submit(&sub).await.expect("submit");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    // A failure with attempts left is ready again after the queue's retry backoff; `other`
    // (independent, lower priority) may be claimed meanwhile.
    let mut attempts = 0;
    let mut other = None;
    for _ in 0..200 {
        if attempts == 2 {
            break;
        }
        let Some(c) = q.claim(&w, slots(1)).await.expect("claim").pop() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if sub.nodes[c.node as usize].name == "other" {
            other = Some(c);
            continue;
        }
        assert_eq!(
            sub.nodes[c.node as usize].name, "flaky",
            "its dependents wait"
        );
        attempts += 1;
        assert_eq!(c.attempt, attempts, "attempts are counted at claim");
        let end = NodeEnd::Failed {
            message: format!("exit {attempts}"),
        };
        assert_eq!(accepted(&q, &w.id, &c, end).await, None);
    }
    assert_eq!(attempts, 2, "the retry was claimed again");
    let p = q.progress(&run).await.expect("progress").expect("run");
    assert_eq!((p.failed, p.skipped), (1, 2), "{p:?}");
    let other = match other {
        Some(c) => c,
        None => q
            .claim(&w, slots(8))
            .await
            .expect("claim")
            .pop()
            .expect("other"),
    };
    assert_eq!(
        sub.nodes[other.node as usize].name, "other",
        "keep-going runs the independent node"
    );
    assert!(q.claim(&w, slots(8)).await.expect("claim").is_empty());
    assert_eq!(
        accepted(&q, &w.id, &other, NodeEnd::Succeeded).await,
        Some(RunStatus::Failed)
    );
    let p = q.progress(&run).await.expect("progress").expect("run");
    assert!(
        p.failures.iter().any(|(n, _)| n == "flaky"),
        "the failure is explained: {p:?}"
    );
}

/// A worker's group commit ([`Queue::complete_many`]): every claim of the group is decided as
/// its own completion would be. Two parents finishing together make their common child ready;
/// a final failure skips its dependent and a failure with attempts left is claimed again; a
/// claim that is not the worker's is refused and its records are not stored; a run the group
/// ends is reported once; the answers come in the order given.
pub async fn grouped_completions_decide_each_claim<H: QueueHarness>(h: &H) {
    let (q, catalog) = h.make_queue().await;
    let mut retried = node("retried", &[], 3);
    retried.max_attempts = 2;
    let a = submission(
        9,
        vec![
            node("p1", &[], 0),
            node("p2", &[], 1),
            node("child", &[0, 1], 2),
            retried,
            node("broken", &[], 4),
            node("below-broken", &[4], 5),
        ],
        true,
    );
    let b = submission(10, vec![node("solo", &[], 0)], false);
    let (run_a, run_b) = (a.run.run_id.clone(), b.run.run_id.clone());
    q.submit(&a).await.expect("submit a");
    q.submit(&b).await.expect("submit b");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    let claims = q.claim(&w, slots(8)).await.expect("claim");
    let by_name = |name: &str| -> Claim {
        claims
            .iter()
            .find(|c| {
                let sub = if c.run_id == run_a { &a } else { &b };
                sub.nodes[c.node as usize].name == name
            })
            .unwrap_or_else(|| panic!("`{name}` was claimed: {claims:?}"))
            .clone()
    };
    let (p1, p2, retried, broken, solo) = (
        by_name("p1"),
        by_name("p2"),
        by_name("retried"),
        by_name("broken"),
        by_name("solo"),
    );
    assert_eq!(claims.len(), 5, "child and below-broken wait: {claims:?}");
    let not_mine = Claim {
        node: 7,
        ..solo.clone()
    };
    let (rec_p1, rec_p2) = (
        entries_for(&run_a, "p1", 2, 20),
        entries_for(&run_a, "p2", 1, 21),
    );
    let rec_solo = entries_for(&run_b, "solo", 1, 22);
    let rec_forged = entries_for(&run_b, "forged", 1, 23);
    let (ok, failed) = (
        NodeEnd::Succeeded,
        NodeEnd::Failed {
            message: "exit 1".into(),
        },
    );
    let f = |claim, end, records| Finish {
        claim,
        end,
        records,
    };
    let answers = q
        .complete_many(
            &w.id,
            &[
                f(&p1, &ok, &rec_p1),
                f(&not_mine, &ok, &rec_forged),
                f(&retried, &failed, &[]),
                f(&p2, &ok, &rec_p2),
                f(&broken, &failed, &[]),
                f(&solo, &ok, &rec_solo),
            ],
        )
        .await
        .expect("complete many");
    let none = Completion::Accepted { run_finished: None };
    assert_eq!(answers.len(), 6);
    assert_eq!(answers[0], none);
    assert!(
        matches!(answers[1], Completion::Refused { .. }),
        "{answers:?}"
    );
    assert_eq!(&answers[2..5], &[none.clone(), none.clone(), none.clone()]);
    assert_eq!(
        answers[5],
        Completion::Accepted {
            run_finished: Some(RunStatus::Succeeded)
        }
    );
    assert_eq!(state_of(&q, &run_b).await, "succeeded");
    let digests = |v: &[RecordEntry]| {
        let mut d: Vec<_> = v.iter().map(|e| e.digest).collect();
        d.sort();
        d
    };
    assert_eq!(
        digests(&records_of(&catalog, &run_b).await),
        digests(&rec_solo),
        "the refused claim's records are not stored"
    );
    let mut want_a = rec_p1.clone();
    want_a.extend(rec_p2.iter().cloned());
    assert_eq!(
        digests(&records_of(&catalog, &run_a).await),
        digests(&want_a)
    );
    let p = q.progress(&run_a).await.expect("progress").expect("run a");
    assert_eq!((p.succeeded, p.failed, p.skipped), (2, 1, 1), "{p:?}");

    // The child of both parents and the failed node's retry are ready (the retry after the
    // queue's backoff); completing both in one group ends run A, reported once.
    let mut next = Vec::new();
    for _ in 0..200 {
        next.extend(q.claim(&w, slots(8)).await.expect("claim"));
        if next.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names(&a, &next), ["child", "retried"]);
    let retry = next.iter().find(|c| c.node == retried.node).expect("retry");
    assert_eq!(retry.attempt, 2);
    let group: Vec<Finish<'_>> = next.iter().map(|c| f(c, &ok, &[])).collect();
    let answers = q.complete_many(&w.id, &group).await.expect("complete many");
    let ended: Vec<_> = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                Completion::Accepted {
                    run_finished: Some(_)
                }
            )
        })
        .collect();
    assert_eq!(
        ended,
        [&Completion::Accepted {
            run_finished: Some(RunStatus::Failed)
        }],
        "{answers:?}"
    );
    assert_eq!(state_of(&q, &run_a).await, "failed");
}

/// A worker presumed dead (its liveness severed, as SIGKILL drops its connection): `maintain`
/// takes its claim back, another worker claims the node as attempt 2, the dead worker's late
/// completion is refused and stores nothing, and the node's records are the second worker's,
/// once.
pub async fn late_completion_is_refused<H: QueueHarness>(h: &H) {
    let (q1, catalog) = h.make_queue().await;
    let q2 = h.connect(&q1).await;
    let sub = submission(3, vec![node("only", &[], 0)], false);
    let run = sub.run.run_id.clone();
    q1.submit(&sub).await.expect("submit");
    let (w1, w2) = (worker("w1", "mc-a"), worker("w2", "mc-a"));
    q1.register(&w1).await.expect("register w1");
    q2.register(&w2).await.expect("register w2");
    let c1 = q1.claim(&w1, slots(1)).await.expect("claim");
    assert_eq!(c1.len(), 1);
    assert!(q2.claim(&w2, slots(1)).await.expect("claim").is_empty());

    h.sever(&q1, &w1.id).await;
    let times = LeaseTimes {
        lease: Duration::from_secs(3600),
        dead_after: Duration::ZERO,
    };
    let mut c2 = Vec::new();
    for _ in 0..100 {
        q2.maintain(times).await.expect("maintain");
        c2 = q2.claim(&w2, slots(1)).await.expect("claim");
        if !c2.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c2.len(), 1, "the dead worker's node is claimed again");
    assert_eq!(c2[0].attempt, 2);

    let late = q1
        .complete(
            &w1.id,
            &c1[0],
            NodeEnd::Succeeded,
            &entries_for(&run, "only", 2, 0),
        )
        .await
        .expect("late complete");
    assert!(matches!(late, Completion::Refused { .. }), "{late:?}");
    assert!(
        records_of(&catalog, &run).await.is_empty(),
        "nothing stored"
    );
    let mine = entries_for(&run, "only", 3, 1);
    let done = q2
        .complete(&w2.id, &c2[0], NodeEnd::Succeeded, &mine)
        .await
        .expect("complete");
    assert_eq!(
        done,
        Completion::Accepted {
            run_finished: Some(RunStatus::Succeeded)
        }
    );
    let got = records_of(&catalog, &run).await;
    let mut want: Vec<_> = mine.iter().map(|e| e.digest).collect();
    let mut have: Vec<_> = got.iter().map(|e| e.digest).collect();
    want.sort();
    have.sort();
    assert_eq!(have, want);
}

/// The first benchmark claimed pins the run's machine class: a worker of another class gets
/// the run's jobs but none of its benchmarks; the pinning worker gets the rest of them.
pub async fn machine_class_pins_benchmarks<H: QueueHarness>(h: &H) {
    let (qa, _catalog) = h.make_queue().await;
    let qb = h.connect(&qa).await;
    let bench = |name: &str, rank| QueuedNode {
        benchmark: true,
        ..node(name, &[], rank)
    };
    let sub = submission(
        4,
        vec![
            bench("b1", 0),
            bench("b2", 1),
            bench("b3", 2),
            node("job", &[], 3),
        ],
        false,
    );
    let run = sub.run.run_id.clone();
    qa.submit(&sub).await.expect("submit");
    let (a, b) = (worker("wa", "mc-aaa"), worker("wb", "mc-bbb"));
    qa.register(&a).await.expect("register");
    qb.register(&b).await.expect("register");
    let first = qa.claim(&a, slots(1)).await.expect("claim");
    assert_eq!(names(&sub, &first), ["b1"]);
    let other = qb.claim(&b, slots(8)).await.expect("claim");
    assert_eq!(
        names(&sub, &other),
        ["job"],
        "jobs run anywhere, benchmarks stay"
    );
    let p = qa.progress(&run).await.expect("progress").expect("run");
    assert_eq!(p.machine_class.as_deref(), Some("mc-aaa"));
    let rest = qa.claim(&a, slots(8)).await.expect("claim");
    assert_eq!(names(&sub, &rest), ["b2", "b3"]);
}

/// Claims take ready nodes within the free slots, CPUs and memory, highest priority (lowest
/// rank) first across runs, so a later run is not starved by an earlier one's backlog.
pub async fn claims_fit_capacity_in_priority_order<H: QueueHarness>(h: &H) {
    let (q, _catalog) = h.make_queue().await;
    let big = QueuedNode {
        cpus: 2.0,
        memory_bytes: 1 << 20,
        ..node("big", &[], 0)
    };
    let one = submission(5, vec![big, node("x1", &[], 1), node("x2", &[], 5)], false);
    let two = submission(6, vec![node("y0", &[], 0), node("y1", &[], 2)], false);
    q.submit(&one).await.expect("submit");
    q.submit(&two).await.expect("submit");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    let small = Capacity {
        slots: 1,
        cpus: 1.0,
        memory_bytes: 1 << 30,
    };
    let c = q.claim(&w, small).await.expect("claim");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].run_id, two.run.run_id, "`big` does not fit one CPU");
    assert_eq!(c[0].node, 0, "rank 0 of the second run");
    let c = q.claim(&w, slots(1)).await.expect("claim");
    assert_eq!(
        (c[0].run_id.clone(), c[0].node),
        (one.run.run_id.clone(), 0)
    );
    assert_eq!(
        (c[0].cpus, c[0].memory_bytes),
        (2.0, 1 << 20),
        "resources held"
    );
    let c = q.claim(&w, slots(2)).await.expect("claim");
    let ranks: Vec<(RunId, u32)> = c.iter().map(|c| (c.run_id.clone(), c.node)).collect();
    assert_eq!(
        ranks,
        [(one.run.run_id.clone(), 1), (two.run.run_id.clone(), 1)],
        "rank 1 before rank 2, within two slots"
    );
}

/// `cancel` stops a run: nothing more is claimed, its running claim is named at the worker's
/// next heartbeat, its completion is taken, and the run ends cancelled (stored `interrupted`);
/// cancelling again or an unknown run says `false`.
pub async fn cancel_stops_a_run<H: QueueHarness>(h: &H) {
    let (q, catalog) = h.make_queue().await;
    let sub = submission(
        7,
        vec![node("a", &[], 0), node("b", &[], 1), node("c", &[0], 2)],
        false,
    );
    let run = sub.run.run_id.clone();
    q.submit(&sub).await.expect("submit");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    let c = q.claim(&w, slots(1)).await.expect("claim");
    assert_eq!(names(&sub, &c), ["a"]);
    assert!(
        q.heartbeat(&w.id, false)
            .await
            .expect("heartbeat")
            .is_empty()
    );
    assert!(q.cancel(&run).await.expect("cancel"));
    assert!(q.claim(&w, slots(8)).await.expect("claim").is_empty());
    let stop = q.heartbeat(&w.id, false).await.expect("heartbeat");
    assert_eq!(stop.len(), 1);
    assert_eq!((stop[0].run_id.clone(), stop[0].node), (run.clone(), 0));
    let _ = q
        .complete(&w.id, &c[0], NodeEnd::Cancelled, &[])
        .await
        .expect("complete");
    q.maintain(LeaseTimes::default()).await.expect("maintain");
    assert_eq!(state_of(&q, &run).await, "cancelled");
    let row = catalog
        .get_run(&run)
        .await
        .expect("get_run")
        .expect("run row");
    assert_eq!(row.status, RunStatus::Interrupted);
    assert!(!q.cancel(&run).await.expect("cancel again"));
    assert!(!q.cancel(&data::run_id(999)).await.expect("cancel unknown"));
    assert!(!q.has_work(&w.pools).await.expect("has_work"));
}

/// `status` counts the queue per pool and lists the workers: a deregistered worker is `gone`
/// and its unfinished claim is ready again; a worker silent for longer than the lease is
/// `silent`.
pub async fn status_counts_pools_and_workers<H: QueueHarness>(h: &H) {
    let (q, _catalog) = h.make_queue().await;
    let sub = submission(
        8,
        vec![node("a", &[], 0), node("b", &[], 1), node("c", &[0], 2)],
        false,
    );
    q.submit(&sub).await.expect("submit");
    let w = worker("w1", "mc-a");
    q.register(&w).await.expect("register");
    let _claimed = q.claim(&w, slots(1)).await.expect("claim");
    let s = q.status(LeaseTimes::default()).await.expect("status");
    let pool = s.pools.iter().find(|p| p.pool == "default").expect("pool");
    assert_eq!(
        (pool.ready, pool.running, pool.waiting, pool.workers),
        (1, 1, 1, 1)
    );
    assert!(pool.oldest_ready_secs.is_some());
    assert_eq!(s.runs.len(), 1);
    let ws = s
        .workers
        .iter()
        .find(|x| x.info.id == "w1")
        .expect("worker listed");
    assert_eq!((ws.state.as_str(), ws.running), ("live", 1));

    tokio::time::sleep(Duration::from_millis(30)).await;
    let silent = LeaseTimes {
        lease: Duration::from_millis(10),
        dead_after: Duration::from_secs(3600),
    };
    let s = q.status(silent).await.expect("status");
    let ws = s
        .workers
        .iter()
        .find(|x| x.info.id == "w1")
        .expect("worker");
    assert_eq!(ws.state, "silent");

    q.deregister(&w.id).await.expect("deregister");
    let s = q.status(LeaseTimes::default()).await.expect("status");
    let ws = s
        .workers
        .iter()
        .find(|x| x.info.id == "w1")
        .expect("worker");
    assert_eq!(ws.state, "gone");
    let pool = s.pools.iter().find(|p| p.pool == "default").expect("pool");
    assert_eq!((pool.ready, pool.running), (2, 0), "its claim went back");
    let p = q
        .progress(&sub.run.run_id)
        .await
        .expect("progress")
        .expect("run");
    assert_eq!(p.state, QueueState::Running.as_str());
}
