//! `Task::exclusive`: such a node runs alone (nothing starts beside it, it starts only when
//! nothing runs), other nodes still run in parallel, and a DAG with many nodes and an exclusive
//! one always finishes.

mod common;

use benchfleet_sched::{Dag, Event, NodeId, NodeState, Options, Task, run};
use common::{Step, paused_runtime, perform};

/// A node that yields a few times (so attempts overlap), optionally exclusive.
struct Node {
    exclusive: bool,
    step: Step,
}

impl Task for Node {
    fn exclusive(&self) -> bool {
        self.exclusive
    }
}

/// What a run showed: final states, and the most attempts running at once.
struct Seen {
    states: Vec<NodeState>,
    most_at_once: usize,
}

/// Runs the DAG (`exclusive` flags, `steps`, edges `(node, needs)`) at `concurrency` and checks
/// from the events that no attempt ever overlapped an exclusive one.
fn check(nodes: &[(bool, Step)], edges: &[(usize, usize)], concurrency: usize) -> Seen {
    let mut dag = Dag::new();
    for &(exclusive, step) in nodes {
        dag.add_node(Node { exclusive, step });
    }
    for &(n, d) in edges {
        dag.add_dependency(NodeId::from_index(n), NodeId::from_index(d));
    }
    let options = Options {
        concurrency,
        ..Options::default()
    };
    let mut running: Vec<usize> = Vec::new();
    let mut most_at_once = 0;
    let summary = paused_runtime()
        .block_on(run(
            &dag,
            &options,
            |ctx, node: &Node| perform(ctx, node.step, None),
            |e| match *e {
                Event::Started { node, .. } => {
                    let i = node.index();
                    assert!(
                        !running.iter().any(|&r| nodes[r].0),
                        "{i} started beside exclusive {running:?}"
                    );
                    assert!(
                        !nodes[i].0 || running.is_empty(),
                        "exclusive {i} started beside {running:?}"
                    );
                    running.push(i);
                    most_at_once = most_at_once.max(running.len());
                }
                Event::Finished { node, .. } => running.retain(|&r| r != node.index()),
                _ => {}
            },
        ))
        .unwrap();
    Seen {
        states: summary.states,
        most_at_once,
    }
}

#[test]
fn exclusive_nodes_run_alone_and_others_in_parallel() {
    use Step::*;
    let job = (false, Yield);
    let bench = (true, Yield);
    /// (nodes, edges, concurrency, most attempts at once)
    type Case = (Vec<(bool, Step)>, Vec<(usize, usize)>, usize, usize);
    let cases: Vec<Case> = vec![
        // Independent jobs overlap; benchmarks do not overlap anything.
        (vec![job, job, bench, job, job], vec![], 4, 2),
        (vec![bench, job, job, job], vec![], 4, 3),
        (vec![bench, bench, bench], vec![], 4, 1),
        // The quickstart's shape: one job, then benchmarks needing it.
        (
            vec![job, bench, bench, bench, bench, bench],
            vec![(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)],
            8,
            1,
        ),
        // A benchmark in the middle of a chain of jobs, and jobs after it.
        (
            vec![job, job, bench, job, job],
            vec![(2, 0), (3, 2), (4, 2)],
            4,
            2,
        ),
        // A cached benchmark (completes at its first poll) still starts alone.
        (vec![job, job, (true, Cache), job], vec![], 4, 2),
        // With one slot nothing changes.
        (vec![job, bench, job], vec![], 1, 1),
    ];
    for (nodes, edges, concurrency, most) in cases {
        let seen = check(&nodes, &edges, concurrency);
        assert!(
            seen.states.iter().all(|s| s.is_success()),
            "{nodes:?}: {:?}",
            seen.states
        );
        assert_eq!(
            seen.most_at_once, most,
            "{nodes:?} {edges:?} -j {concurrency}"
        );
    }
}

#[test]
fn many_jobs_and_one_exclusive_node_all_finish() {
    // 300 jobs in a loose DAG with the exclusive node in the middle: nothing is starved.
    let n = 301;
    let nodes: Vec<(bool, Step)> = (0..n).map(|i| (i == 150, Step::Yield)).collect();
    let edges: Vec<(usize, usize)> = (1..n).filter(|i| i % 3 == 0).map(|i| (i, i / 2)).collect();
    let seen = check(&nodes, &edges, 4);
    assert!(seen.states.iter().all(|s| *s == NodeState::Succeeded));
    assert!(seen.most_at_once > 1, "jobs still run in parallel");
}
