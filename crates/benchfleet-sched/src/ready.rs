//! Readiness tracking: in-degree counters and a ready queue ordered by critical path.

use std::collections::BinaryHeap;
use std::fmt;

use crate::{CycleError, Dag, NodeId, Task};

/// Per-node weights for critical-path computations: the estimate in nanoseconds (at least 1);
/// a node without an estimate weighs the mean of the given estimates; if no node has an estimate
/// every node weighs 1 (critical path = longest chain of nodes). The flag says whether any
/// estimate was given.
pub(crate) fn node_weights<T: Task>(dag: &Dag<T>) -> (Vec<u64>, bool) {
    let est: Vec<Option<u64>> = dag
        .tasks()
        .iter()
        .map(|t| {
            t.estimate()
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1))
        })
        .collect();
    let (sum, count) = est
        .iter()
        .flatten()
        .fold((0u128, 0u128), |(s, c), &e| (s + u128::from(e), c + 1));
    if count == 0 {
        return (vec![1; dag.len()], false);
    }
    let mean = u64::try_from(sum / count).unwrap_or(u64::MAX).max(1);
    (est.into_iter().map(|e| e.unwrap_or(mean)).collect(), true)
}

/// For each node, the weight of the heaviest path starting at it (itself included) towards the
/// sinks, computed over `order` (a topological order) in reverse.
pub(crate) fn remaining_path<T>(dag: &Dag<T>, order: &[NodeId], mut weights: Vec<u64>) -> Vec<u64> {
    for &v in order.iter().rev() {
        let tail = dag
            .dependents(v)
            .iter()
            .map(|d| weights[d.index()])
            .max()
            .unwrap_or(0);
        weights[v.index()] = weights[v.index()].saturating_add(tail);
    }
    weights
}

/// Which nodes may start. Counts, for every node, its dependencies not yet completed; completing
/// a node costs O(its dependents · log ready). Ready nodes come out heaviest remaining critical
/// path first (see [`Readiness::priority`]), ties by declaration order.
///
/// This is the synchronous core of [`crate::run`], public for callers driving their own loop:
///
/// ```
/// use benchfleet_sched::{Dag, Readiness, Task};
/// struct Job;
/// impl Task for Job {}
/// let mut dag = Dag::new();
/// let (a, b, c) = (dag.add_node(Job), dag.add_node(Job), dag.add_node(Job));
/// dag.add_dependency(c, a);
/// let mut ready = Readiness::new(&dag).unwrap();
/// assert_eq!(ready.pop(), Some(a)); // a heads the longer chain a -> c
/// assert_eq!(ready.pop(), Some(b));
/// assert_eq!(ready.pop(), None);
/// assert_eq!(ready.complete(&dag, a), 1);
/// assert_eq!(ready.pop(), Some(c));
/// ```
pub struct Readiness {
    remaining: Vec<u32>,
    priority: Vec<u64>,
    heap: BinaryHeap<u128>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("nodes", &self.remaining.len())
            .field("ready", &self.heap.len())
            .finish_non_exhaustive()
    }
}

#[inline]
fn key(priority: u64, id: NodeId) -> u128 {
    // Max-heap: higher priority first, then lower index (stored inverted).
    (u128::from(priority) << 32) | u128::from(u32::MAX - id.raw())
}

#[inline]
fn unkey(k: u128) -> NodeId {
    NodeId::from_index((u32::MAX - (k as u32)) as usize)
}

impl Readiness {
    /// Checks acyclicity, computes priorities and queues the nodes without dependencies.
    pub fn new<T: Task>(dag: &Dag<T>) -> Result<Self, CycleError> {
        let order = dag.topological_order()?;
        let (weights, _) = node_weights(dag);
        let priority = remaining_path(dag, &order, weights);
        drop(order);
        let remaining: Vec<u32> = dag
            .node_ids()
            .map(|id| dag.dependencies(id).len() as u32)
            .collect();
        let heap: Vec<u128> = dag
            .node_ids()
            .filter(|id| remaining[id.index()] == 0)
            .map(|id| key(priority[id.index()], id))
            .collect();
        Ok(Readiness {
            remaining,
            priority,
            heap: BinaryHeap::from(heap),
        })
    }

    /// The weight of the heaviest path from `id` to a sink, `id` included (estimates in ns, or node
    /// counts when no task has an estimate).
    pub fn priority(&self, id: NodeId) -> u64 {
        self.priority[id.index()]
    }

    /// Takes the ready node with the highest priority.
    pub fn pop(&mut self) -> Option<NodeId> {
        self.heap.pop().map(unkey)
    }

    /// The ready node [`Readiness::pop`] would return, without taking it.
    pub fn peek(&self) -> Option<NodeId> {
        self.heap.peek().copied().map(unkey)
    }

    /// Puts a node (back) into the ready queue, e.g. one popped but not admitted, or a retry.
    pub fn push(&mut self, id: NodeId) {
        self.heap.push(key(self.priority[id.index()], id));
    }

    /// Number of queued ready nodes.
    pub fn ready_len(&self) -> usize {
        self.heap.len()
    }

    /// Records that `id` completed successfully: each dependent whose last dependency this was
    /// becomes ready. Returns how many did. Call at most once per node.
    pub fn complete<T>(&mut self, dag: &Dag<T>, id: NodeId) -> usize {
        let mut n = 0;
        for &d in dag.dependents(id) {
            let c = &mut self.remaining[d.index()];
            *c -= 1;
            if *c == 0 {
                self.heap.push(key(self.priority[d.index()], d));
                n += 1;
            }
        }
        n
    }

    /// Heap bytes held per node (counters and priorities; the ready queue adds 16 bytes per
    /// ready node).
    pub const BYTES_PER_NODE: usize = size_of::<u32>() + size_of::<u64>();
}
