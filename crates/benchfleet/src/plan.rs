//! `benchfleet plan`: what a suite's DAG looks like before anything runs.

use std::collections::HashMap;
use std::time::Duration;

use benchfleet_sched::{Dag, NodeId, Plan, Resources, Task};
use benchfleet_store::{RecordQuery, Storage};

use crate::Error;
use crate::suite::Suite;

/// A suite's plan, with names instead of node ids.
#[derive(Clone, Debug, PartialEq)]
pub struct SuitePlan {
    pub nodes: usize,
    pub edges: usize,
    /// Node names along the critical path, in execution order.
    pub critical_path: Vec<String>,
    /// Estimated length of the critical path (when any estimate exists).
    pub critical_path_time: Option<Duration>,
    /// Estimated total work.
    pub total_time: Option<Duration>,
    pub max_width: usize,
    /// Total work / critical path: the speedup unlimited workers could reach.
    pub speedup: f64,
    /// How many nodes have an estimate from stored history.
    pub estimated_nodes: usize,
    pub host: Resources,
    pub budget: Resources,
    /// Replicas of each resource profile that fit the budget at once (the lesser of the CPU- and
    /// memory-bound counts).
    pub replicas: Vec<(&'static str, Resources, u64)>,
}

/// What `jobs` workers can reach on a DAG whose theoretical speedup (total work / critical path)
/// is `speedup`: `(guaranteed, at most)`. At most `min(jobs, speedup)`; and any schedule that
/// never leaves a worker idle while a node is ready (Graham's list scheduling, which the
/// scheduler is) takes at most work / jobs + critical path, so it reaches at least
/// `jobs · speedup / (jobs + speedup)`. Both are 1 for one job.
pub fn speedup_bounds(speedup: f64, jobs: usize) -> (f64, f64) {
    let p = jobs.max(1) as f64;
    let s = speedup.max(1.0);
    ((p * s / (p + s)).max(1.0), p.min(s))
}

struct Estimated(Option<Duration>);

impl Task for Estimated {
    fn estimate(&self) -> Option<Duration> {
        self.0
    }
}

/// Plan `suite`, estimating each node from its latest stored run in `storage` (if any): the
/// total wall time of that run's records plus its warmups at the mean.
pub async fn plan(
    suite: &Suite,
    storage: Option<&Storage>,
    host: Resources,
    budget: Resources,
) -> Result<SuitePlan, Error> {
    let mut estimates = Vec::with_capacity(suite.nodes.len());
    for node in &suite.nodes {
        let est = match storage {
            Some(s) => estimate(s, &suite.name, &node.name, node.policy.warmup).await?,
            None => None,
        };
        estimates.push(est);
    }
    let mut dag = Dag::with_capacity(suite.nodes.len());
    for e in &estimates {
        dag.add_node(Estimated(*e));
    }
    for (i, node) in suite.nodes.iter().enumerate() {
        for &d in &node.needs {
            dag.add_dependency(NodeId::from_index(i), NodeId::from_index(d));
        }
    }
    let p = Plan::of(&dag).map_err(|c| Error::Cycle {
        path: suite.source.display().to_string(),
        cycle: c
            .cycle
            .iter()
            .map(|id| suite.nodes[id.index()].name.clone())
            .collect(),
    })?;
    Ok(SuitePlan {
        nodes: p.nodes,
        edges: p.edges,
        critical_path: p
            .critical_path
            .iter()
            .map(|id| suite.nodes[id.index()].name.clone())
            .collect(),
        critical_path_time: p.critical_path_estimate,
        total_time: p.total_estimate,
        max_width: p.max_width,
        speedup: p.speedup,
        estimated_nodes: estimates.iter().filter(|e| e.is_some()).count(),
        host,
        budget,
        replicas: benchfleet_sched::replicas_per_profile(budget),
    })
}

async fn estimate(
    storage: &Storage,
    suite: &str,
    name: &str,
    warmup: u32,
) -> Result<Option<Duration>, Error> {
    let q = RecordQuery {
        suite: Some(suite.to_owned()),
        name: Some(name.to_owned()),
        ..Default::default()
    };
    let entries = storage.catalog.query_records(&q).await?;
    let Some(latest) = entries.iter().map(|e| &e.run_id).max() else {
        return Ok(None);
    };
    let mut by_run: HashMap<_, (u64, u64)> = HashMap::new();
    for e in entries.iter().filter(|e| &e.run_id == latest) {
        let slot = by_run.entry(&e.run_id).or_default();
        slot.0 += e.measurement.wall_ns;
        slot.1 += 1;
    }
    Ok(by_run.get(latest).map(|&(total, n)| {
        let mean = total / n.max(1);
        Duration::from_nanos(total + mean * u64::from(warmup))
    }))
}

#[cfg(test)]
mod tests {
    use super::speedup_bounds;

    #[test]
    fn speedup_bounds_follow_brent_and_graham() {
        // One job: no speedup, whatever the shape.
        assert_eq!(speedup_bounds(334.0, 1), (1.0, 1.0));
        // A chain: nothing to gain from more jobs.
        assert_eq!(speedup_bounds(1.0, 2), (1.0, 1.0));
        // Very wide: two jobs can nearly double (2 * 334 / 336 = 1.988...), never more.
        let (lo, hi) = speedup_bounds(334.0, 2);
        assert!((lo - 2.0 * 334.0 / 336.0).abs() < 1e-12 && hi == 2.0);
        // Narrower than the jobs: the width of the DAG is the limit.
        let (lo, hi) = speedup_bounds(6.25, 8);
        assert!((lo - 8.0 * 6.25 / 14.25).abs() < 1e-12 && hi == 6.25);
    }
}
