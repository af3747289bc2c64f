//! Property tests on random DAGs: exactly-once, dependencies first, concurrency and budget never
//! exceeded, retries counted with backoff, skip propagation, cycles reported, Plan consistent.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use benchfleet_sched::{
    Dag, Event, NodeId, NodeState, Options, Placement, Plan, Resources, RetryPolicy, SchedError,
    run,
};
use common::{Job, Step, paused_runtime, perform, threaded_runtime};
use proptest::prelude::*;

/// One random node: its dependencies (earlier nodes), what it does, what it needs.
#[derive(Clone, Debug)]
struct NodeGen {
    deps: Vec<prop::sample::Index>,
    /// 0 = succeed, 1 = cached, 2 = fail, 3.. = flake (retryable) that many - 2 times.
    behaviour: u8,
    max_attempts: u32,
    cpu: u64,
    mem: u64,
    /// Yield before and after the step (first poll Pending: the attempt is spawned), else the
    /// attempt may complete at its first poll, inline.
    yields: bool,
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (
        prop::collection::vec(any::<prop::sample::Index>(), 0..=3),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 2 => 3u8..6],
        1u32..4,
        0u64..=4,
        0u64..=4,
        any::<bool>(),
    )
        .prop_map(
            |(deps, behaviour, max_attempts, cpu, mem, yields)| NodeGen {
                deps,
                behaviour,
                max_attempts,
                cpu,
                mem,
                yields,
            },
        )
}

#[derive(Clone, Debug)]
struct Case {
    nodes: Vec<NodeGen>,
    concurrency: usize,
    budget: Option<(u64, u64)>,
    threaded: bool,
    jitter: f64,
    placement: Placement,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(node_gen(), 0..60),
        1usize..6,
        prop::option::of((4u64..10, 4u64..10)),
        any::<bool>(),
        0.0f64..=1.0,
        prop_oneof![Just(Placement::Local), Just(Placement::Spawned)],
    )
        .prop_map(
            |(nodes, concurrency, budget, threaded, jitter, placement)| Case {
                nodes,
                concurrency,
                budget,
                threaded,
                jitter,
                placement,
            },
        )
}

const BASE: Duration = Duration::from_millis(40);
const MAX: Duration = Duration::from_millis(100);

fn build(case: &Case) -> Dag<Job> {
    let mut dag = Dag::with_capacity(case.nodes.len());
    for (i, g) in case.nodes.iter().enumerate() {
        let script = match g.behaviour {
            0 => vec![Step::Succeed],
            1 => vec![Step::Cache],
            2 => vec![Step::Fail],
            k => {
                let mut s = vec![Step::FailRetryable; usize::from(k - 2)];
                s.push(Step::Succeed);
                s
            }
        };
        // Backoff only where time is virtual (paused runtime); real time stays instant.
        let (base, max) = if case.threaded {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (BASE, MAX)
        };
        let id = dag.add_node(Job {
            script,
            res: Resources::new(g.cpu, g.mem),
            retry: RetryPolicy::attempts(g.max_attempts)
                .with_backoff(base, max)
                .with_jitter(case.jitter),
            ..Job::default()
        });
        if i > 0 {
            let mut deps: Vec<usize> = g.deps.iter().map(|d| d.index(i)).collect();
            deps.sort();
            deps.dedup();
            for d in deps {
                dag.add_dependency(id, NodeId::from_index(d));
            }
        }
    }
    dag
}

/// The states a reference model expects: own outcome unless an ancestor failed.
fn expected(dag: &Dag<Job>) -> (Vec<NodeState>, Vec<u32>) {
    let mut states: Vec<NodeState> = Vec::with_capacity(dag.len());
    let mut attempts = Vec::with_capacity(dag.len());
    for id in dag.node_ids() {
        if dag
            .dependencies(id)
            .iter()
            .any(|d| !states[d.index()].is_success())
        {
            states.push(NodeState::Skipped);
            attempts.push(0);
            continue;
        }
        let job = dag.task(id);
        let max = job.retry.max_attempts.max(1);
        let mut a = 1;
        let state = loop {
            match job.step(a) {
                Step::Succeed => break NodeState::Succeeded,
                Step::Cache => break NodeState::Cached,
                Step::FailRetryable if a < max => a += 1,
                _ => break NodeState::Failed,
            }
        };
        states.push(state);
        attempts.push(a);
    }
    (states, attempts)
}

fn ancestors_of(dag: &Dag<Job>, id: NodeId) -> Vec<bool> {
    let mut seen = vec![false; dag.len()];
    let mut stack = vec![id];
    while let Some(v) = stack.pop() {
        for &d in dag.dependencies(v) {
            if !seen[d.index()] {
                seen[d.index()] = true;
                stack.push(d);
            }
        }
    }
    seen
}

#[derive(Default)]
struct Observed {
    /// Finished (successfully) as seen by the tasks themselves.
    done: Vec<AtomicUsize>,
    runs: Vec<AtomicUsize>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    cpu: AtomicU64,
    mem: AtomicU64,
    max_cpu: AtomicU64,
    max_mem: AtomicU64,
    order_violations: Mutex<Vec<String>>,
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let dag = build(&case);
    let obs = Arc::new(Observed {
        done: (0..dag.len()).map(|_| AtomicUsize::new(0)).collect(),
        runs: (0..dag.len()).map(|_| AtomicUsize::new(0)).collect(),
        ..Observed::default()
    });
    let deps: Arc<Vec<Vec<NodeId>>> = Arc::new(
        dag.node_ids()
            .map(|id| dag.dependencies(id).to_vec())
            .collect(),
    );
    let options = Options {
        concurrency: case.concurrency,
        budget: case.budget.map(|(c, m)| Resources::new(c, m)),
        placement: case.placement,
        ..Options::default()
    };
    let rt = if case.threaded {
        threaded_runtime()
    } else {
        paused_runtime()
    };
    let mut events = Vec::new();
    let summary = rt
        .block_on(run(
            &dag,
            &options,
            |ctx, job| {
                let obs = obs.clone();
                let deps = deps.clone();
                let step = job.step(ctx.attempt);
                let res = job.res;
                let yields = case.nodes[ctx.node.index()].yields;
                async move {
                    if yields {
                        tokio::task::yield_now().await;
                    }
                    let i = ctx.node.index();
                    obs.runs[i].fetch_add(1, Ordering::SeqCst);
                    for d in &deps[i] {
                        if obs.done[d.index()].load(Ordering::SeqCst) == 0 {
                            obs.order_violations
                                .lock()
                                .unwrap()
                                .push(format!("{} ran before {d}", ctx.node));
                        }
                    }
                    let r = obs.running.fetch_add(1, Ordering::SeqCst) + 1;
                    obs.max_running.fetch_max(r, Ordering::SeqCst);
                    let c = obs.cpu.fetch_add(res.cpu_millis, Ordering::SeqCst) + res.cpu_millis;
                    let m =
                        obs.mem.fetch_add(res.memory_bytes, Ordering::SeqCst) + res.memory_bytes;
                    obs.max_cpu.fetch_max(c, Ordering::SeqCst);
                    obs.max_mem.fetch_max(m, Ordering::SeqCst);
                    let out = perform(ctx, step, None).await;
                    if yields {
                        tokio::task::yield_now().await;
                    }
                    obs.running.fetch_sub(1, Ordering::SeqCst);
                    obs.cpu.fetch_sub(res.cpu_millis, Ordering::SeqCst);
                    obs.mem.fetch_sub(res.memory_bytes, Ordering::SeqCst);
                    if matches!(
                        out,
                        benchfleet_sched::TaskOutcome::Succeeded
                            | benchfleet_sched::TaskOutcome::Cached
                    ) {
                        obs.done[i].fetch_add(1, Ordering::SeqCst);
                    }
                    out
                }
            },
            |e| events.push(*e),
        ))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;

    let (states, attempts) = expected(&dag);
    prop_assert_eq!(&summary.states, &states);
    prop_assert_eq!(&summary.attempts, &attempts);
    let violations = obs.order_violations.lock().unwrap().clone();
    prop_assert!(violations.is_empty(), "{:?}", violations);
    for (i, a) in attempts.iter().enumerate() {
        // Every attempt ran exactly once: as many executions as attempts, one success at most.
        prop_assert_eq!(
            obs.runs[i].load(Ordering::SeqCst),
            *a as usize,
            "node {}",
            i
        );
        prop_assert!(obs.done[i].load(Ordering::SeqCst) <= 1);
    }
    prop_assert!(obs.max_running.load(Ordering::SeqCst) <= case.concurrency);
    if let Some((c, m)) = case.budget {
        prop_assert!(obs.max_cpu.load(Ordering::SeqCst) <= c);
        prop_assert!(obs.max_mem.load(Ordering::SeqCst) <= m);
    }

    // Events: Started only after every dependency Finished successfully; Skipped names a failed ancestor.
    let mut finished = vec![None; dag.len()];
    let mut running = 0usize;
    for e in &events {
        match *e {
            Event::Started { node, attempt } => {
                running += 1;
                prop_assert!(running <= case.concurrency);
                prop_assert!(attempt >= 1);
                for d in dag.dependencies(node) {
                    prop_assert!(
                        finished[d.index()].is_some_and(NodeState::is_success),
                        "{} started before {}",
                        node,
                        d
                    );
                }
            }
            Event::Finished { node, outcome } => {
                prop_assert!(finished[node.index()].is_none());
                finished[node.index()] = Some(outcome);
                running -= 1;
            }
            Event::Retrying {
                node,
                attempt,
                delay,
            } => {
                running -= 1;
                let policy = dag.task(node).retry;
                let full = policy.backoff(attempt - 1);
                prop_assert!(
                    delay <= full
                        && delay
                            >= full
                                .mul_f64(1.0 - case.jitter)
                                .saturating_sub(Duration::from_nanos(1)),
                    "{:?} vs {:?}",
                    delay,
                    full
                );
            }
            Event::Skipped { node, because } => {
                prop_assert_eq!(summary.states[node.index()], NodeState::Skipped);
                prop_assert!(summary.states[because.index()].is_failure());
                prop_assert!(
                    ancestors_of(&dag, node)[because.index()],
                    "{} is not upstream of {}",
                    because,
                    node
                );
            }
            Event::Cancelled => prop_assert!(false, "nothing cancelled the run"),
        }
    }
    prop_assert_eq!(running, 0);
    Ok(())
}

/// A random DAG plus back edges: a cycle exists iff a back edge was added, and the reported cycle
/// is made of real dependency edges.
fn check_cycle(
    n: usize,
    forward: Vec<(usize, usize)>,
    back: Vec<(usize, usize)>,
) -> Result<(), TestCaseError> {
    let mut dag = Dag::new();
    for _ in 0..n {
        dag.add_node(Job::default());
    }
    for &(a, b) in &forward {
        let (a, b) = (a % n, b % n);
        let (hi, lo) = (a.max(b), a.min(b));
        if hi != lo {
            dag.add_dependency(NodeId::from_index(hi), NodeId::from_index(lo));
        }
    }
    let mut has_back = false;
    for &(a, b) in &back {
        // lo depends on hi: together with a path hi -> ... -> lo this closes a cycle; a self edge always does.
        let (a, b) = (a % n, b % n);
        let (hi, lo) = (a.max(b), a.min(b));
        dag.add_dependency(NodeId::from_index(lo), NodeId::from_index(hi));
        has_back = true;
    }
    match dag.check_acyclic() {
        Ok(()) => {
            prop_assert!(Plan::of(&dag).is_ok());
            // Only forward edges, or back edges not closing a loop.
            let order = dag.topological_order().unwrap();
            let mut pos = vec![0; n];
            for (k, v) in order.iter().enumerate() {
                pos[v.index()] = k;
            }
            for v in dag.node_ids() {
                for d in dag.dependencies(v) {
                    prop_assert!(pos[d.index()] < pos[v.index()]);
                }
            }
        }
        Err(e) => {
            prop_assert!(has_back);
            prop_assert!(!e.cycle.is_empty());
            for (k, v) in e.cycle.iter().enumerate() {
                let next = e.cycle[(k + 1) % e.cycle.len()];
                prop_assert!(dag.dependencies(*v).contains(&next));
            }
            let rt = paused_runtime();
            let r = rt.block_on(run(
                &dag,
                &Options::default(),
                |_, _| async { benchfleet_sched::TaskOutcome::Succeeded },
                |_| {},
            ));
            prop_assert!(matches!(r, Err(SchedError::Cycle(_))));
        }
    }
    Ok(())
}

/// Plan agrees with brute force on small DAGs.
fn check_plan(case: Case, estimates: Vec<u64>) -> Result<(), TestCaseError> {
    let mut dag = build(&case);
    for (i, e) in estimates.iter().enumerate().take(dag.len()) {
        if *e > 0 {
            dag.task_mut(NodeId::from_index(i)).estimate = Some(Duration::from_millis(*e));
        }
    }
    let plan = Plan::of(&dag).unwrap();
    prop_assert_eq!(plan.nodes, dag.len());
    prop_assert_eq!(
        plan.edges,
        dag.node_ids()
            .map(|v| dag.dependencies(v).len())
            .sum::<usize>()
    );
    if dag.is_empty() {
        prop_assert!(plan.critical_path.is_empty());
        return Ok(());
    }
    let any_est = dag.tasks().iter().any(|t| t.estimate.is_some());
    let given: Vec<u64> = dag
        .tasks()
        .iter()
        .filter_map(|t| t.estimate.map(|d| d.as_nanos() as u64))
        .collect();
    let mean = if given.is_empty() {
        1
    } else {
        given.iter().sum::<u64>() / given.len() as u64
    };
    let w = |v: NodeId| dag.task(v).estimate.map_or(mean, |d| d.as_nanos() as u64);
    // Brute force longest path ending at each node (nodes are in topological order by construction).
    let mut best = vec![0u64; dag.len()];
    let mut level = vec![0usize; dag.len()];
    for v in dag.node_ids() {
        best[v.index()] = w(v)
            + dag
                .dependencies(v)
                .iter()
                .map(|d| best[d.index()])
                .max()
                .unwrap_or(0);
        level[v.index()] = dag
            .dependencies(v)
            .iter()
            .map(|d| level[d.index()] + 1)
            .max()
            .unwrap_or(0);
    }
    let longest = *best.iter().max().unwrap();
    let path = &plan.critical_path;
    prop_assert!(dag.dependencies(path[0]).is_empty());
    for pair in path.windows(2) {
        prop_assert!(dag.dependencies(pair[1]).contains(&pair[0]));
    }
    prop_assert!(dag.dependents(*path.last().unwrap()).is_empty());
    let path_weight: u64 = path.iter().map(|&v| w(v)).sum();
    prop_assert_eq!(path_weight, longest);
    prop_assert_eq!(
        plan.critical_path_estimate.map(|d| d.as_nanos() as u64),
        any_est.then_some(longest)
    );
    let mut width = vec![0usize; dag.len()];
    for l in &level {
        width[*l] += 1;
    }
    prop_assert_eq!(plan.max_width, *width.iter().max().unwrap());
    prop_assert_eq!(plan.levels, level.iter().max().unwrap() + 1);
    let total: u64 = dag.node_ids().map(w).sum();
    prop_assert!((plan.speedup - total as f64 / longest as f64).abs() < 1e-9);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_dags_run_correctly(c in case()) {
        check(c)?;
    }

    #[test]
    fn cycles_are_found(n in 1usize..30, forward in prop::collection::vec((0usize..30, 0usize..30), 0..60), back in prop::collection::vec((0usize..30, 0usize..30), 0..2)) {
        check_cycle(n, forward, back)?;
    }

    #[test]
    fn plan_matches_brute_force(c in case(), est in prop::collection::vec(0u64..50, 0..60)) {
        check_plan(c, est)?;
    }
}
