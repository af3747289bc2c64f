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
pub struct Dag<T> {
    tasks: Vec<T>,
    deps: Vec<Vec<NodeId>>,
    dependents: Vec<Vec<NodeId>>,
    edges: usize,
}

impl<T> fmt::Debug for Dag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dag")
            .field("nodes", &self.tasks.len())
            .field("edges", &self.edges)
            .finish_non_exhaustive()
    }
}

impl<T> Default for Dag<T> {
    fn default() -> Self {
        Dag {
            tasks: Vec::new(),
            deps: Vec::new(),
            dependents: Vec::new(),
            edges: 0,
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
            deps: Vec::with_capacity(n),
            dependents: Vec::with_capacity(n),
            edges: 0,
        }
    }

    /// Adds a node and returns its id (ids are handed out in declaration order: 0, 1, 2, ...).
    ///
    /// # Panics
    /// If the DAG already holds `u32::MAX` nodes.
    pub fn add_node(&mut self, task: T) -> NodeId {
        let id = NodeId::from_index(self.tasks.len());
        self.tasks.push(task);
        self.deps.push(Vec::new());
        self.dependents.push(Vec::new());
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
        self.deps[node.index()].push(depends_on);
        self.dependents[depends_on.index()].push(node);
        self.edges += 1;
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
        self.edges
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
        &self.deps[id.index()]
    }

    /// The nodes that depend on `id`, in the order they were added.
    pub fn dependents(&self, id: NodeId) -> &[NodeId] {
        &self.dependents[id.index()]
    }

    /// `Ok` if the graph has no cycle, else one cycle with the nodes forming it.
    pub fn check_acyclic(&self) -> Result<(), CycleError> {
        self.topological_order().map(|_| ())
    }

    /// The nodes in an order where every node comes after all its dependencies (Kahn's algorithm,
    /// ties by declaration order of discovery), or one cycle.
    pub fn topological_order(&self) -> Result<Vec<NodeId>, CycleError> {
        let n = self.tasks.len();
        let mut indeg: Vec<u32> = self.deps.iter().map(|d| d.len() as u32).collect();
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
            for &d in &self.dependents[id.index()] {
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
            cur = *self.deps[cur.index()]
                .iter()
                .find(|d| indeg[d.index()] > 0)
                .expect("a node left by Kahn's algorithm has a dependency left too");
        }
    }
}
