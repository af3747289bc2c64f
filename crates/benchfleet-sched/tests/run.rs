//! Behaviour of `run`: ordering, failures, skips, fail-fast, cancellation, retries, timeouts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use benchfleet_sched::{
    CancelToken, Dag, Event, NodeId, NodeState, Options, Resources, RetryPolicy, SchedError,
    StopReason, TaskOutcome, run,
};
use common::{Job, Step, paused_runtime, perform};

use NodeState::*;

type Edges = &'static [(usize, usize)];

fn id(i: usize) -> NodeId {
    NodeId::from_index(i)
}

fn dag(jobs: Vec<Job>, edges: &[(usize, usize)]) -> Dag<Job> {
    let mut dag = Dag::new();
    for j in jobs {
        dag.add_node(j);
    }
    for &(n, d) in edges {
        dag.add_dependency(id(n), id(d));
    }
    dag
}

struct Outcome {
    states: Vec<NodeState>,
    attempts: Vec<u32>,
    events: Vec<Event>,
    stopped: Option<StopReason>,
    messages: Vec<(NodeId, String)>,
}

/// Runs `dag` on a paused current-thread runtime (virtual time: backoffs and timeouts are instant).
fn exec(dag: &Dag<Job>, options: &Options) -> Result<Outcome, SchedError> {
    paused_runtime().block_on(async {
        let mut events = Vec::new();
        let s = run(
            dag,
            options,
            |ctx, job| perform(ctx.clone(), job.step(ctx.attempt), None),
            |e| events.push(*e),
        )
        .await?;
        Ok(Outcome {
            states: s.states,
            attempts: s.attempts,
            events,
            stopped: s.stopped,
            messages: s.messages,
        })
    })
}

fn jobs(steps: &[Step]) -> Vec<Job> {
    steps.iter().map(|s| Job::steps(&[*s])).collect()
}

fn one_at_a_time() -> Options {
    Options {
        concurrency: 1,
        ..Options::default()
    }
}

#[test]
fn final_states_and_skips() {
    use Step::*;
    // (steps, edges as (node, depends_on), expected states, expected (skipped, because) pairs)
    let cases: &[(&[Step], Edges, &[NodeState], Edges)] = &[
        (&[Succeed], &[], &[Succeeded], &[]),
        (&[Cache, Succeed], &[(1, 0)], &[Cached, Succeeded], &[]),
        (
            &[Fail, Succeed, Succeed, Succeed],
            &[(1, 0), (2, 1), (3, 0)],
            &[Failed, Skipped, Skipped, Skipped],
            &[(1, 0), (2, 0), (3, 0)],
        ),
        (
            &[Fail, Succeed, Succeed],
            &[(1, 0)],
            &[NodeState::Failed, Skipped, Succeeded],
            &[(1, 0)],
        ),
        // diamond: 0 -> {1, 2} -> 3, node 1 fails: 3 skipped because of 1, 2 still runs
        (
            &[Succeed, Fail, Succeed, Succeed],
            &[(1, 0), (2, 0), (3, 1), (3, 2)],
            &[Succeeded, NodeState::Failed, Succeeded, Skipped],
            &[(3, 1)],
        ),
        (
            &[Panic, Succeed],
            &[(1, 0)],
            &[NodeState::Failed, Skipped],
            &[(1, 0)],
        ),
        (&[Succeed, Succeed], &[], &[Succeeded, Succeeded], &[]),
    ];
    for (i, (steps, edges, expect, skips)) in cases.iter().enumerate() {
        let d = dag(jobs(steps), edges);
        let out = exec(&d, &Options::default()).unwrap();
        assert_eq!(out.states, *expect, "case {i}");
        let got: Vec<(usize, usize)> = out
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped { node, because } => Some((node.index(), because.index())),
                _ => None,
            })
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, *skips, "case {i}");
        assert_eq!(out.stopped, None, "case {i}");
        // Every started node has exactly one Finished; skipped nodes never start.
        for (n, state) in out.states.iter().enumerate() {
            let finished = out
                .events
                .iter()
                .filter(|e| matches!(e, Event::Finished { node, .. } if node.index() == n))
                .count();
            let started = out
                .events
                .iter()
                .filter(|e| matches!(e, Event::Started { node, .. } if node.index() == n))
                .count();
            assert_eq!(
                finished,
                usize::from(*state != Skipped),
                "case {i} node {n}"
            );
            assert_eq!(started, out.attempts[n] as usize, "case {i} node {n}");
        }
        for (n, msg) in &out.messages {
            assert!(
                out.states[n.index()].is_failure(),
                "case {i}: message for {n}: {msg}"
            );
        }
        assert_eq!(
            out.messages.len(),
            out.states.iter().filter(|s| s.is_failure()).count(),
            "case {i}"
        );
    }
}

#[test]
fn panic_message_is_kept() {
    let d = dag(jobs(&[Step::Panic]), &[]);
    let out = exec(&d, &Options::default()).unwrap();
    assert_eq!(out.states, [Failed]);
    assert!(
        out.messages[0].1.contains("boom in #0"),
        "{:?}",
        out.messages
    );
}

#[test]
fn ready_order_follows_critical_path_then_declaration() {
    let check =
        |n: usize, edges: &[(usize, usize)], estimates: Option<&[u64]>, expect: &[usize]| {
            let mut js = jobs(&vec![Step::Succeed; n]);
            if let Some(est) = estimates {
                for (j, e) in js.iter_mut().zip(est) {
                    j.estimate = Some(Duration::from_secs(*e));
                }
            }
            let out = exec(&dag(js, edges), &one_at_a_time()).unwrap();
            let order: Vec<usize> = out
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Started { node, .. } => Some(node.index()),
                    _ => None,
                })
                .collect();
            assert_eq!(order, expect, "edges {edges:?} estimates {estimates:?}");
        };
    check(3, &[], None, &[0, 1, 2]);
    check(3, &[(2, 1)], None, &[1, 0, 2]); // 1 heads a 2-chain
    check(4, &[(3, 2), (2, 1)], None, &[1, 2, 0, 3]); // after 1, node 2 (chain 2) beats 0 (chain 1)
    check(3, &[], Some(&[1, 5, 3]), &[1, 2, 0]);
    check(3, &[(1, 0)], Some(&[1, 1, 10]), &[2, 0, 1]);
}

#[test]
fn fail_fast_stops_admission() {
    let d = dag(jobs(&[Step::Fail, Step::Succeed, Step::Succeed]), &[(1, 0)]);
    let out = exec(
        &d,
        &Options {
            keep_going: false,
            ..one_at_a_time()
        },
    )
    .unwrap();
    assert_eq!(out.states, [Failed, Skipped, Cancelled]);
    assert_eq!(out.stopped, Some(StopReason::FailFast { failed: id(0) }));
    assert_eq!(
        out.events
            .iter()
            .filter(|e| **e == Event::Cancelled)
            .count(),
        1
    );
    assert_eq!(out.attempts, [1, 0, 0]);
}

#[test]
fn fail_fast_lets_running_tasks_finish() {
    // Two slots: 0 and 1 run together; 1's failure stops admission, 0 still finishes.
    let d = dag(jobs(&[Step::Yield, Step::Fail, Step::Succeed]), &[]);
    let out = exec(
        &d,
        &Options {
            keep_going: false,
            concurrency: 2,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(out.states, [Succeeded, Failed, Cancelled]);
}

#[test]
fn cancellation_stops_admission_and_awaits_running() {
    let cancel = CancelToken::new();
    let d = dag(
        jobs(&[Step::WaitCancel, Step::Succeed, Step::Succeed]),
        &[(1, 0)],
    );
    let options = Options {
        cancel: cancel.clone(),
        concurrency: 1,
        ..Options::default()
    };
    let out = paused_runtime().block_on(async {
        let mut events = Vec::new();
        let canceller = cancel.clone();
        let s = run(
            &d,
            &options,
            |ctx, job| {
                if ctx.node == id(0) {
                    let c = canceller.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        c.cancel();
                    });
                }
                perform(ctx.clone(), job.step(ctx.attempt), None)
            },
            |e| events.push(*e),
        )
        .await
        .unwrap();
        (s, events)
    });
    let (s, events) = out;
    assert_eq!(s.states, [Succeeded, Cancelled, Cancelled]);
    assert_eq!(s.stopped, Some(StopReason::Cancelled));
    assert_eq!(events.iter().filter(|e| **e == Event::Cancelled).count(), 1);
    assert!(events.contains(&Event::Finished {
        node: id(0),
        outcome: Succeeded
    }));
    assert_eq!(s.attempts, [1, 0, 0]);
}

#[test]
fn already_cancelled_runs_nothing() {
    let options = Options {
        cancel: CancelToken::new(),
        ..Options::default()
    };
    options.cancel.cancel();
    let d = dag(jobs(&[Step::Succeed, Step::Succeed]), &[]);
    let out = exec(&d, &options).unwrap();
    assert_eq!(out.states, [Cancelled, Cancelled]);
    assert_eq!(out.attempts, [0, 0]);
    assert_eq!(out.events, [Event::Cancelled]);
}

#[test]
fn retries_count_attempts_and_back_off() {
    use Step::*;
    let base = Duration::from_millis(100);
    // (script, max_attempts, expected state, expected attempts)
    let cases: &[(&[Step], u32, NodeState, u32)] = &[
        (&[FailRetryable, FailRetryable, Succeed], 3, Succeeded, 3),
        (&[FailRetryable, FailRetryable, Succeed], 2, Failed, 2),
        (&[FailRetryable, Cache], 5, Cached, 2),
        (&[Fail, Succeed], 5, Failed, 1), // not retryable
        (&[Panic, Succeed], 5, Failed, 1),
        (&[FailRetryable], 0, Failed, 1),
        (&[FailRetryable], 1, Failed, 1),
        (&[FailRetryable], 6, Failed, 6),
        (&[Hang, Succeed], 2, Succeeded, 2), // timeouts are retried
        (&[Hang], 3, TimedOut, 3),
    ];
    for (i, (script, max, state, attempts)) in cases.iter().enumerate() {
        let job = Job {
            script: script.to_vec(),
            retry: RetryPolicy::attempts(*max)
                .with_backoff(base, Duration::from_millis(250))
                .with_jitter(0.0),
            timeout: Some(Duration::from_secs(1)),
            ..Job::default()
        };
        let d = dag(vec![job], &[]);
        let out = exec(&d, &Options::default()).unwrap();
        assert_eq!(
            (out.states[0], out.attempts[0]),
            (*state, *attempts),
            "case {i}"
        );
        let retries: Vec<(u32, Duration)> = out
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Retrying { attempt, delay, .. } => Some((*attempt, *delay)),
                _ => None,
            })
            .collect();
        // Exponential from 100 ms, capped at 250 ms; attempt = the next attempt's number.
        let expect: Vec<(u32, Duration)> = (2..=*attempts)
            .map(|a| {
                (
                    a,
                    Duration::from_millis([100, 200, 250, 250, 250][a as usize - 2]),
                )
            })
            .collect();
        assert_eq!(retries, expect, "case {i}");
    }
}

#[test]
fn retry_waits_for_its_backoff_in_virtual_time() {
    let job = Job {
        script: vec![Step::FailRetryable, Step::FailRetryable, Step::Succeed],
        retry: RetryPolicy::attempts(3)
            .with_backoff(Duration::from_secs(10), Duration::from_secs(60))
            .with_jitter(0.0),
        ..Job::default()
    };
    let d = dag(vec![job], &[]);
    let starts = paused_runtime().block_on(async {
        let t0 = tokio::time::Instant::now();
        let mut starts = Vec::new();
        run(
            &d,
            &Options::default(),
            |ctx, job| perform(ctx.clone(), job.step(ctx.attempt), None),
            |e| {
                if let Event::Started { .. } = e {
                    starts.push(t0.elapsed());
                }
            },
        )
        .await
        .unwrap();
        starts
    });
    // Virtual clock: the attempts start no earlier than 0 s, 10 s, 10 + 20 s.
    assert_eq!(starts.len(), 3);
    assert!(
        starts[1] >= Duration::from_secs(10) && starts[2] >= Duration::from_secs(30),
        "{starts:?}"
    );
}

#[test]
fn jitter_stays_within_its_fraction() {
    let p = RetryPolicy::attempts(10)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .with_jitter(0.5);
    for failed in 1..8 {
        let full = p.backoff(failed);
        for unit in [0.0, 0.25, 0.5, 0.999] {
            let d = p.jittered(failed, unit);
            assert!(
                d <= full && d >= full / 2,
                "attempt {failed} unit {unit}: {d:?} vs {full:?}"
            );
        }
    }
    assert_eq!(p.backoff(1), Duration::from_millis(100));
    assert_eq!(p.backoff(4), Duration::from_millis(800));
    assert_eq!(p.backoff(5), Duration::from_secs(1));
    assert_eq!(p.backoff(200), Duration::from_secs(1));
}

#[test]
fn timeout_drops_the_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let job = Job {
        script: vec![Step::Hang],
        timeout: Some(Duration::from_secs(3)),
        ..Job::default()
    };
    let d = dag(vec![job, Job::default()], &[(1, 0)]);
    let flag = dropped.clone();
    let s = paused_runtime().block_on(async {
        run(
            &d,
            &Options::default(),
            |ctx, job| perform(ctx.clone(), job.step(ctx.attempt), Some(flag.clone())),
            |_| {},
        )
        .await
        .unwrap()
    });
    assert_eq!(s.states, [TimedOut, Skipped]);
    assert!(dropped.load(Ordering::SeqCst));
    assert!(
        s.message(id(0)).unwrap().contains("timed out"),
        "{:?}",
        s.messages
    );
}

#[test]
fn stop_while_waiting_to_retry_keeps_the_failure() {
    // Node 0 flakes and waits 1 h before retrying; node 1 fails for good with fail-fast.
    let flaky = Job {
        script: vec![Step::FailRetryable, Step::Succeed],
        retry: RetryPolicy::attempts(3)
            .with_backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
        ..Job::default()
    };
    let slow_fail = Job {
        script: vec![Step::Fail],
        estimate: Some(Duration::from_millis(1)),
        ..Job::default()
    };
    let d = dag(vec![flaky, slow_fail, Job::default()], &[(2, 0)]);
    let out = exec(
        &d,
        &Options {
            keep_going: false,
            concurrency: 1,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(out.states, [Failed, Failed, Skipped]);
    assert_eq!(out.attempts, [1, 1, 0]);
}

#[test]
fn budget_errors_before_anything_runs() {
    let big = Job {
        res: Resources::profile("large").unwrap(),
        ..Job::default()
    };
    let d = dag(vec![Job::default(), big], &[]);
    let calls = AtomicUsize::new(0);
    let options = Options {
        budget: Some(Resources::profile("medium").unwrap()),
        ..Options::default()
    };
    let err = paused_runtime().block_on(async {
        run(
            &d,
            &options,
            |_, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { TaskOutcome::Succeeded }
            },
            |_| {},
        )
        .await
        .unwrap_err()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    match &err {
        SchedError::TooLarge {
            node,
            needs,
            budget,
        } => {
            assert_eq!(
                (*node, *needs, *budget),
                (
                    id(1),
                    Resources::new(4000, 4 << 30),
                    Resources::new(2000, 2 << 30)
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("#1"), "{err}");
}

#[test]
fn cycles_are_errors_naming_the_cycle() {
    // (nodes, edges, nodes that must be exactly the cycle found)
    let cases: &[(usize, Edges, &[usize])] = &[
        (1, &[(0, 0)], &[0]),
        (2, &[(0, 1), (1, 0)], &[0, 1]),
        (5, &[(1, 0), (2, 1), (3, 2), (1, 3), (4, 0)], &[1, 2, 3]),
        (4, &[(3, 0), (0, 3), (2, 1)], &[0, 3]),
    ];
    for (i, (n, edges, members)) in cases.iter().enumerate() {
        let d = dag(jobs(&vec![Step::Succeed; *n]), edges);
        let cycle = d.check_acyclic().unwrap_err().cycle;
        let mut sorted: Vec<usize> = cycle.iter().map(|c| c.index()).collect();
        sorted.sort();
        assert_eq!(sorted, *members, "case {i}");
        for (k, node) in cycle.iter().enumerate() {
            let next = cycle[(k + 1) % cycle.len()];
            assert!(
                d.dependencies(*node).contains(&next),
                "case {i}: {node} should depend on {next}"
            );
        }
        match exec(&d, &Options::default()) {
            Err(SchedError::Cycle(e)) => assert_eq!(e.cycle, cycle, "case {i}"),
            other => panic!("case {i}: {:?}", other.map(|o| o.states)),
        }
    }
}

#[test]
fn bad_options_are_errors() {
    let d = dag(jobs(&[Step::Succeed]), &[]);
    assert!(matches!(
        exec(
            &d,
            &Options {
                concurrency: 0,
                ..Options::default()
            }
        ),
        Err(SchedError::ZeroConcurrency)
    ));
    // Outside a runtime: polled once by a no-op waker, it must answer instead of panicking.
    let options = Options::default();
    let mut fut = std::pin::pin!(run(
        &d,
        &options,
        |_, _| async { TaskOutcome::Succeeded },
        |_| {}
    ));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(SchedError::NoRuntime)) => {}
        other => panic!("{:?}", other.map(|r| r.map(|s| s.states))),
    }
}

#[test]
fn empty_dag_runs_nothing() {
    let out = exec(&Dag::new(), &Options::default()).unwrap();
    assert!(out.states.is_empty() && out.events.is_empty());
}

#[test]
fn long_inline_runs_yield_and_still_see_cancellation() {
    // 2000 nodes ready at their first poll (more than the loop completes inline before yielding);
    // node 700 of a chain cancels the run from inside the executor.
    let n = 2000;
    let edges: Vec<(usize, usize)> = (1..n).map(|i| (i, i - 1)).collect();
    let d = {
        let mut d = Dag::new();
        for _ in 0..n {
            d.add_node(Job::default());
        }
        for &(a, b) in &edges {
            d.add_dependency(id(a), id(b));
        }
        d
    };
    for cancel_at in [None, Some(700)] {
        let options = Options::default();
        let token = options.cancel.clone();
        let s = paused_runtime().block_on(async {
            run(
                &d,
                &options,
                |ctx, job| {
                    if Some(ctx.node.index()) == cancel_at {
                        token.cancel();
                    }
                    perform(ctx.clone(), job.step(ctx.attempt), None)
                },
                |_| {},
            )
            .await
            .unwrap()
        });
        let counts = s.counts();
        match cancel_at {
            None => assert_eq!(counts.succeeded, n),
            Some(k) => {
                assert_eq!((counts.succeeded, counts.cancelled), (k + 1, n - k - 1));
                assert_eq!(s.stopped, Some(StopReason::Cancelled));
            }
        }
    }
}

#[test]
fn dropping_the_run_aborts_running_attempts() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dag(jobs(&[Step::Hang, Step::Succeed]), &[(1, 0)]);
    let flag = dropped.clone();
    paused_runtime().block_on(async {
        let options = Options::default();
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            run(
                &d,
                &options,
                |ctx, job| perform(ctx.clone(), job.step(ctx.attempt), Some(flag.clone())),
                |_| {},
            ),
        )
        .await;
        assert!(r.is_err(), "the hanging attempt cannot finish");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // Checked inside the runtime: its shutdown would drop the task anyway.
        assert!(dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn a_node_that_does_not_fit_is_passed_over_for_a_smaller_one() {
    // Budget 2 CPUs. By critical path the order is 0, 1, 2; while 0 (1 CPU) runs, 1 (2 CPUs) does
    // not fit, so 2 (1 CPU) starts before it.
    let job = |cpu: u64, est: u64, step: Step| Job {
        script: vec![step],
        res: Resources::new(cpu, 0),
        estimate: Some(Duration::from_secs(est)),
        ..Job::default()
    };
    let d = dag(
        vec![
            job(1000, 10, Step::Yield),
            job(2000, 5, Step::Succeed),
            job(1000, 1, Step::Yield),
        ],
        &[],
    );
    let options = Options {
        concurrency: 4,
        budget: Some(Resources::new(2000, 0)),
        ..Options::default()
    };
    let out = exec(&d, &options).unwrap();
    let order: Vec<usize> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Started { node, .. } => Some(node.index()),
            _ => None,
        })
        .collect();
    assert_eq!(order, [0, 2, 1]);
    assert_eq!(out.states, [Succeeded, Succeeded, Succeeded]);
}
