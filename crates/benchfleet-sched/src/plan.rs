//! Static analysis of a DAG without running it.

use std::time::Duration;

use crate::ready::{node_weights, remaining_path};
use crate::{CycleError, Dag, NodeId, Task};

/// What a DAG would cost to run, computed without running anything.
///
/// Weights: a node's [`Task::estimate`]; a node without one counts as the mean of the given
/// estimates; when no node has an estimate every node counts 1 and lengths are node counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Number of nodes.
    pub nodes: usize,
    /// Number of dependency edges (as declared).
    pub edges: usize,
    /// A heaviest chain of nodes, in execution order (first has no dependency). Empty if the DAG is.
    pub critical_path: Vec<NodeId>,
    /// Sum of the weights along `critical_path`, as a duration; `None` if no node has an estimate
    /// (then the length is `critical_path.len()` nodes).
    pub critical_path_estimate: Option<Duration>,
    /// Sum of all weights as a duration; `None` if no node has an estimate.
    pub total_estimate: Option<Duration>,
    /// Number of levels (level of a node = 1 + the highest level among its dependencies).
    pub levels: usize,
    /// Maximum width: the size of the largest level. Every level is an antichain, so this is a
    /// lower bound of the maximum antichain (equal to it on layered graphs such as sweeps).
    pub max_width: usize,
    /// Theoretical speedup with unlimited workers: total weight / critical path weight (1.0 for an
    /// empty DAG).
    pub speedup: f64,
}

impl Plan {
    /// Analyses `dag`. Fails on a cycle.
    pub fn of<T: Task>(dag: &Dag<T>) -> Result<Plan, CycleError> {
        let order = dag.topological_order()?;
        let (weights, estimated) = node_weights(dag);
        let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        let path_weight = remaining_path(dag, &order, weights.clone());

        // The critical path: from the heaviest source, repeatedly to the heaviest dependent.
        let mut critical_path = Vec::new();
        let mut cur = order
            .iter()
            .copied()
            .filter(|&v| dag.dependencies(v).is_empty())
            .max_by_key(|&v| (path_weight[v.index()], std::cmp::Reverse(v)));
        while let Some(v) = cur {
            critical_path.push(v);
            cur = dag
                .dependents(v)
                .iter()
                .copied()
                .max_by_key(|&d| (path_weight[d.index()], std::cmp::Reverse(d)));
        }
        let critical: u128 = critical_path
            .iter()
            .map(|v| u128::from(weights[v.index()]))
            .sum();

        let mut level = vec![0u32; dag.len()];
        let mut width: Vec<usize> = Vec::new();
        for &v in &order {
            let l = dag
                .dependencies(v)
                .iter()
                .map(|d| level[d.index()] + 1)
                .max()
                .unwrap_or(0);
            level[v.index()] = l;
            if width.len() <= l as usize {
                width.resize(l as usize + 1, 0);
            }
            width[l as usize] += 1;
        }

        let as_duration = |ns: u128| Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX));
        Ok(Plan {
            nodes: dag.len(),
            edges: dag.edge_count(),
            critical_path_estimate: estimated.then(|| as_duration(critical)),
            total_estimate: estimated.then(|| as_duration(total)),
            critical_path,
            levels: width.len(),
            max_width: width.iter().copied().max().unwrap_or(0),
            speedup: if critical == 0 {
                1.0
            } else {
                total as f64 / critical as f64
            },
        })
    }
}
