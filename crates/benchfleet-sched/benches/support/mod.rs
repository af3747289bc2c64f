//! Random DAG generator shared by the benches and examples (deterministic, no dependency).

use benchfleet_sched::{Dag, NodeId, Task};

/// An in-process no-op task.
#[derive(Clone, Copy, Debug, Default)]
pub struct Noop;

impl Task for Noop {}

/// `n` nodes; node `i` depends on 0 to 3 (uniformly) random earlier nodes, duplicates removed.
pub fn random_dag(n: usize, seed: u64) -> Dag<Noop> {
    let mut state = seed;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut dag = Dag::with_capacity(n);
    for i in 0..n {
        let id = dag.add_node(Noop);
        if i == 0 {
            continue;
        }
        let k = (next() % 4) as usize;
        let mut deps: Vec<usize> = (0..k).map(|_| (next() % i as u64) as usize).collect();
        deps.sort_unstable();
        deps.dedup();
        for d in deps {
            dag.add_dependency(id, NodeId::from_index(d));
        }
    }
    dag
}
