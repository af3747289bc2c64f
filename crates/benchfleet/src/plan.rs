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
