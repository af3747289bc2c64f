//! Ready-node detection latency per completion (issue 3, benchmark 3).
//!
//! Builds a 10,000-node random DAG (each node 0-3 random earlier dependencies), then replays a
//! whole schedule on the synchronous core: pop every ready node, complete them one by one, and
//! time each `Readiness::complete` call (decrement the dependents' counters, queue the ones that
//! became ready). Repeats ROUNDS times and prints percentiles.
//!
//! `CARGO_TARGET_DIR=... cargo run --release -p benchfleet-sched --example ready_latency`

#[path = "../benches/support/mod.rs"]
mod support;

use std::time::Instant;

use benchfleet_sched::Readiness;

const NODES: usize = 10_000;
const ROUNDS: usize = 50;

fn main() {
    let dag = support::random_dag(NODES, 7);
    let mut complete_ns: Vec<u64> = Vec::with_capacity(NODES * ROUNDS);
    let mut pop_complete_ns: Vec<u64> = Vec::with_capacity(NODES * ROUNDS);
    let mut setup_ns = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut ready = Readiness::new(&dag).expect("random DAGs are acyclic");
        setup_ns.push(t.elapsed().as_nanos() as u64);
        let mut done = 0;
        loop {
            let t0 = Instant::now();
            let Some(id) = ready.pop() else { break };
            let t1 = Instant::now();
            ready.complete(&dag, id);
            let t2 = Instant::now();
            complete_ns.push((t2 - t1).as_nanos() as u64);
            pop_complete_ns.push((t2 - t0).as_nanos() as u64);
            done += 1;
        }
        assert_eq!(done, NODES);
    }
    let edges = dag.edge_count();
    println!("ready-node detection on a {NODES}-node random DAG ({edges} edges), {ROUNDS} rounds");
    report("complete()", &mut complete_ns);
    report("pop()+complete()", &mut pop_complete_ns);
    report("Readiness::new (whole DAG)", &mut setup_ns);
}

fn report(what: &str, v: &mut [u64]) {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
    println!(
        "{what:<28} n={:<7} mean={mean:.0} ns  p50={} ns  p99={} ns  p99.9={} ns  max={} ns",
        v.len(),
        p(0.5),
        p(0.99),
        p(0.999),
        v[v.len() - 1]
    );
}
