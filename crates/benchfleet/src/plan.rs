//! `benchfleet plan`: what a suite's DAG looks like before anything runs.

use std::collections::HashMap;
use std::time::Duration;

use benchfleet_sched::{Dag, NodeId, Plan, Resources, Task};
use benchfleet_store::{RecordQuery, RunFilter, Storage};

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
    let estimates = match storage {
        Some(s) => estimates(s, suite).await?,
        None => vec![None; suite.nodes.len()],
    };
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

/// The most runs of the suite read for estimates (newest first): nodes that none of them measured
/// count as the mean.
const ESTIMATE_RUNS: usize = 32;

/// Each node's estimate from the newest stored run of `suite` that measured it: the total wall
/// time of that run's records plus the node's warmups at their mean. One catalog query per run
/// (newest first, until every node has one), so planning is linear in the suite and holds one
/// run's entries at a time.
async fn estimates(storage: &Storage, suite: &Suite) -> Result<Vec<Option<Duration>>, Error> {
    let mut out = vec![None; suite.nodes.len()];
    let index: HashMap<&str, usize> = suite
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            suite: Some(suite.name.clone()),
            limit: Some(ESTIMATE_RUNS),
            ..Default::default()
        })
        .await?;
    let mut missing = out.len();
    for run in runs {
        if missing == 0 {
            break;
        }
        let entries = storage
            .catalog
            .query_records(&RecordQuery::run(&run.run_id))
            .await?;
        // (total wall, runs) of each node this run measured that has no estimate yet.
        let mut sums: HashMap<usize, (u64, u64)> = HashMap::new();
        for e in &entries {
            if let Some(&i) = index.get(e.name.as_str())
                && out[i].is_none()
            {
                let slot = sums.entry(i).or_default();
                slot.0 += e.measurement.wall_ns;
                slot.1 += 1;
            }
        }
        for (i, (total, n)) in sums {
            let mean = total / n.max(1);
            let warmup = u64::from(suite.nodes[i].policy.warmup);
            out[i] = Some(Duration::from_nanos(total + mean * warmup));
            missing -= 1;
        }
    }
    Ok(out)
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
