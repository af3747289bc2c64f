//! The dependency graph: nodes holding tasks, edges "node depends on node".

use std::fmt;

/// Identifies a node of one [`Dag`]: its declaration index (0-based, in `add_node` order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The declaration index of this node (0 for the first `add_node`).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the node declared at `index`. Only meaningful for a DAG with more than `index` nodes.
    ///
    /// # Panics
    /// If `index` does not fit in `u32` (a DAG never holds that many nodes).
    pub fn from_index(index: usize) -> Self {
        NodeId(u32::try_from(index).expect("a Dag holds at most u32::MAX nodes"))
    }

    pub(crate) fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A dependency cycle: the DAG cannot be scheduled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {} (each node depends on the next; remove one of these dependencies)", render_cycle(.cycle))]
pub struct CycleError {
    /// The nodes forming one cycle, in order: each node depends on the next one, and the last
    /// depends on the first. A node depending on itself gives a one-element cycle.
    pub cycle: Vec<NodeId>,
}

fn render_cycle(cycle: &[NodeId]) -> String {
    let mut out = String::new();
    for id in cycle {
        out.push_str(&id.to_string());
        out.push_str(" -> ");
    }
    if let Some(first) = cycle.first() {
        out.push_str(&first.to_string());
    }
    out
}

/// A directed acyclic graph of tasks. Edges are added with [`Dag::add_dependency`]; acyclicity is
/// checked by [`Dag::check_acyclic`] and again by [`crate::run`] / [`crate::Plan::of`].
///
/// Duplicate edges are allowed and harmless (they are counted consistently on both sides).
///
/// Edges are kept as a list while the graph is built; the first query turns them into two
/// compressed adjacency arrays (both directions, in the order edges were added). A DAG may hold
/// 100,000 nodes, so a node costs a few words instead of two vectors of its own.
pub struct Dag<T> {
    tasks: Vec<T>,
    /// `(node, depends_on)`, in the order they were added.
    edges: Vec<(NodeId, NodeId)>,
    adjacency: std::sync::OnceLock<Adjacency>,
}

/// Both directions of the edges in compressed sparse rows: node `i`'s neighbours are
/// `targets[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Default)]
struct Adjacency {
    dependencies: Rows,
    dependents: Rows,
}

#[derive(Debug, Default)]
struct Rows {
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
}

impl Rows {
    /// Rows of `n` nodes from `(row, target)` pairs, each row in the pairs' order.
    fn of(n: usize, pairs: impl Iterator<Item = (NodeId, NodeId)> + Clone) -> Rows {
        let mut offsets = vec![0u32; n + 1];
        for (row, _) in pairs.clone() {
            offsets[row.index() + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut next: Vec<u32> = offsets[..n].to_vec();
        let mut targets = vec![NodeId(0); offsets[n] as usize];
        for (row, target) in pairs {
            let slot = &mut next[row.index()];
            targets[*slot as usize] = target;
            *slot += 1;
        }
        Rows { offsets, targets }
    }

    fn row(&self, id: NodeId) -> &[NodeId] {
        let i = id.index();
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

impl<T> fmt::Debug for Dag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dag")
            .field("nodes", &self.tasks.len())
            .field("edges", &self.edges.len())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Dag<T> {
    fn default() -> Self {
        Dag {
            tasks: Vec::new(),
            edges: Vec::new(),
            adjacency: std::sync::OnceLock::new(),
        }
    }
}

impl<T> Dag<T> {
    /// An empty DAG.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty DAG with room for `n` nodes.
    pub fn with_capacity(n: usize) -> Self {
        Dag {
            tasks: Vec::with_capacity(n),
            edges: Vec::with_capacity(n),
            adjacency: std::sync::OnceLock::new(),
        }
    }

    /// Adds a node and returns its id (ids are handed out in declaration order: 0, 1, 2, ...).
    ///
    /// # Panics
    /// If the DAG already holds `u32::MAX` nodes.
    pub fn add_node(&mut self, task: T) -> NodeId {
        let id = NodeId::from_index(self.tasks.len());
        self.tasks.push(task);
        self.adjacency = std::sync::OnceLock::new();
        id
    }

    /// Declares that `node` may start only after `depends_on` succeeded (or was cached).
    ///
    /// # Panics
    /// If either id does not belong to this DAG (like slice indexing).
    pub fn add_dependency(&mut self, node: NodeId, depends_on: NodeId) {
        assert!(
            node.index() < self.tasks.len() && depends_on.index() < self.tasks.len(),
            "add_dependency({node}, {depends_on}): id out of range for a Dag of {} nodes",
            self.tasks.len()
        );
        self.edges.push((node, depends_on));
        self.adjacency = std::sync::OnceLock::new();
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if the DAG has no node.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Number of dependency edges (as added, duplicates included).
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The task of node `id`. Panics if `id` is not from this DAG.
    pub fn task(&self, id: NodeId) -> &T {
        &self.tasks[id.index()]
    }

    /// Mutable access to the task of node `id`. Panics if `id` is not from this DAG.
    pub fn task_mut(&mut self, id: NodeId) -> &mut T {
        &mut self.tasks[id.index()]
    }

    /// All tasks, by node index.
    pub fn tasks(&self) -> &[T] {
        &self.tasks
    }

    /// All node ids in declaration order.
    pub fn node_ids(&self) -> impl ExactSizeIterator<Item = NodeId> + use<T> {
        (0..self.tasks.len() as u32).map(NodeId)
    }

    /// The nodes `id` depends on, in the order they were added.
    pub fn dependencies(&self, id: NodeId) -> &[NodeId] {
        self.adjacency().dependencies.row(id)
    }

    /// The nodes that depend on `id`, in the order they were added.
    pub fn dependents(&self, id: NodeId) -> &[NodeId] {
        self.adjacency().dependents.row(id)
    }

    fn adjacency(&self) -> &Adjacency {
        self.adjacency.get_or_init(|| {
            let n = self.tasks.len();
            let edges = self.edges.iter().copied();
            Adjacency {
                dependencies: Rows::of(n, edges.clone()),
                dependents: Rows::of(n, edges.map(|(node, dep)| (dep, node))),
            }
        })
    }

    /// `Ok` if the graph has no cycle, else one cycle with the nodes forming it.
    pub fn check_acyclic(&self) -> Result<(), CycleError> {
        self.topological_order().map(|_| ())
    }

    /// The nodes in an order where every node comes after all its dependencies (Kahn's algorithm,
    /// ties by declaration order of discovery), or one cycle.
    pub fn topological_order(&self) -> Result<Vec<NodeId>, CycleError> {
        let n = self.tasks.len();
        let adjacency = self.adjacency();
        let mut indeg: Vec<u32> = (0..n as u32)
            .map(|i| adjacency.dependencies.row(NodeId(i)).len() as u32)
            .collect();
        let mut order: Vec<NodeId> = Vec::with_capacity(n);
        order.extend(
            (0..n as u32)
                .filter(|&i| indeg[i as usize] == 0)
                .map(NodeId),
        );
        let mut head = 0;
        while head < order.len() {
            let id = order[head];
            head += 1;
            for &d in adjacency.dependents.row(id) {
                let c = &mut indeg[d.index()];
                *c -= 1;
                if *c == 0 {
                    order.push(d);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every node left has an unfinished dependency (its counter never reached 0). Walking
        // unfinished dependencies from any of them must revisit a node: that loop is a cycle.
        let start = (0..n).find(|&i| indeg[i] > 0).expect("some node is left");
        let mut seen_at: Vec<u32> = vec![u32::MAX; n];
        let mut path: Vec<NodeId> = Vec::new();
        let mut cur = NodeId(start as u32);
        loop {
            if seen_at[cur.index()] != u32::MAX {
                let from = seen_at[cur.index()] as usize;
                return Err(CycleError {
                    cycle: path.split_off(from),
                });
            }
            seen_at[cur.index()] = path.len() as u32;
            path.push(cur);
            cur = *adjacency
                .dependencies
                .row(cur)
                .iter()
                .find(|d| indeg[d.index()] > 0)
                .expect("a node left by Kahn's algorithm has a dependency left too");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn both_directions_keep_the_order_edges_were_added_in() {
        let mut dag = Dag::new();
        for i in 0..4 {
            dag.add_node(i);
        }
        let n = |i| NodeId(i);
        dag.add_dependency(n(3), n(1));
        dag.add_dependency(n(3), n(0));
        dag.add_dependency(n(2), n(0));
        dag.add_dependency(n(3), n(2));
        assert_eq!(dag.dependencies(n(3)), ids(&[1, 0, 2]));
        assert_eq!(dag.dependencies(n(0)), ids(&[]));
        assert_eq!(dag.dependents(n(0)), ids(&[3, 2]));
        assert_eq!(dag.dependents(n(2)), ids(&[3]));
        assert_eq!(dag.edge_count(), 4);
    }

    #[test]
    fn nodes_and_edges_added_after_a_query_are_seen() {
        let mut dag = Dag::new();
        let a = dag.add_node("a");
        let b = dag.add_node("b");
        dag.add_dependency(b, a);
        assert_eq!(dag.dependents(a), [b]);
        let c = dag.add_node("c");
        dag.add_dependency(c, a);
        dag.add_dependency(a, c);
        assert_eq!(dag.dependents(a), [b, c]);
        assert_eq!(dag.dependencies(a), [c]);
        assert_eq!(dag.dependencies(c), [a]);
        assert!(dag.check_acyclic().is_err(), "a and c form a cycle");
    }
}
