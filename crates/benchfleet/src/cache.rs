//! Content-addressed caching of node results.
//!
//! A node's key is SHA-256 over what determines its result: kind, program and arguments,
//! environment, working directory, parameters, run controls, the contents of its declared
//! `inputs`, and the keys of the nodes it needs (so a change upstream invalidates everything
//! downstream). When storage holds a complete, successful result for the key, the node is not run
//! again and is reported as `cached`.
//!
//! Cache entries are small JSON blobs under `cache/…` in the run's blob store, pointing at the
//! run whose records hold the result; an entry whose records have gone is ignored.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use benchfleet_model::{Digest, DigestHasher, RunId, RunRecord};
use benchfleet_store::{RecordQuery, Storage, content};

use crate::Error;
use crate::suite::{Node, Suite};

const NAMESPACE: &str = "cache";
/// Bump when the key's composition changes, so old entries stop matching.
const KEY_VERSION: &str = "benchfleet-cache-v1";

/// What a cache entry says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub run_id: RunId,
    pub name: String,
    /// Number of records the node stored.
    pub records: usize,
}

/// The cache key of every node, in suite order. `base` resolves relative input paths.
pub fn node_keys(suite: &Suite, base: &Path) -> Result<Vec<Digest>, Error> {
    let order = topological(suite);
    let mut keys: Vec<Option<Digest>> = vec![None; suite.nodes.len()];
    for i in order {
        let node = &suite.nodes[i];
        let mut h = Digest::hasher();
        h.field(KEY_VERSION)
            .field(node.kind.as_str())
            .field(&node.program);
        h.field((node.args.len() as u64).to_le_bytes());
        for a in &node.args {
            h.field(a);
        }
        for (k, v) in &node.settings().env {
            h.field(k).field(v);
        }
        h.field("cwd").field(
            node.settings()
                .cwd
                .as_deref()
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
        );
        for (k, v) in &node.parameters {
            h.field(k).field(v);
        }
        let p = &node.policy;
        h.field(format!(
            "{}/{:?}/{}/{:?}/{:?}/{:?}",
            p.warmup,
            p.runs,
            p.min_runs,
            p.max_runs,
            p.min_time,
            node.settings().timeout
        ));
        // Only nodes with hooks hash them, so keys of nodes without any stay as they were.
        for (field, c) in node.hooks().iter() {
            h.field(field).field(&c.program);
            h.field((c.args.len() as u64).to_le_bytes());
            for a in &c.args {
                h.field(a);
            }
        }
        // Only load nodes hash their (resolved) profile, so other keys stay as they were.
        if let Some(load) = &node.load {
            h.field("load")
                .field(serde_json::to_string(&load.profile).expect("profiles serialize"))
                .field(load.window.as_nanos().to_le_bytes());
        }
        // A benchmark's result is its machine's: only benchmark nodes hash the machine class,
        // so a shared catalog never replays another machine's measurement (jobs' keys stay).
        if node.kind == benchfleet_model::NodeKind::Benchmark {
            h.field("machine.class").field(crate::machine::class());
        }
        // Shell-mode results have the shell's spawn cost subtracted since it is measured per run:
        // results stored before that are not reused. Other keys stay as they were.
        if node.settings().shell.is_some() && node.load.is_none() {
            h.field("shell-overhead-subtracted");
        }
        for input in &node.settings().inputs {
            // Relative inputs are where the command sees them: under the node's working directory.
            let dir = node
                .settings()
                .cwd
                .as_ref()
                .map_or_else(|| base.to_owned(), |c| base.join(c));
            let path = dir.join(input);
            h.field("input").field(input.display().to_string());
            hash_path(&mut h, &path).map_err(|e| Error::Suite {
                path: suite.source.clone(),
                line: 0,
                col: 0,
                message: format!(
                    "input `{}` of {} `{}`: {e}; fix the path in `inputs`",
                    input.display(),
                    node.kind.as_str(),
                    node.name
                ),
            })?;
        }
        for &dep in &node.needs {
            h.field("needs")
                .field(keys[dep].expect("dependencies are keyed first").as_bytes());
        }
        keys[i] = Some(h.finish());
    }
    Ok(keys
        .into_iter()
        .map(|k| k.expect("every node keyed"))
        .collect())
}

fn topological(suite: &Suite) -> Vec<usize> {
    // Needs are resolved and acyclic by the time keys are computed; a simple DFS order suffices.
    let mut done = vec![false; suite.nodes.len()];
    let mut order = Vec::with_capacity(suite.nodes.len());
    fn visit(i: usize, suite: &Suite, done: &mut [bool], order: &mut Vec<usize>) {
        if done[i] {
            return;
        }
        done[i] = true;
        for &d in &suite.nodes[i].needs {
            visit(d, suite, done, order);
        }
        order.push(i);
    }
    for i in 0..suite.nodes.len() {
        visit(i, suite, &mut done, &mut order);
    }
    order
}

/// Hash a file's bytes, or a directory's entries (sorted, recursively, names and contents).
fn hash_path(h: &mut DigestHasher, path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        h.field("dir");
        for e in entries {
            h.field(
                e.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            hash_path(h, &e)?;
        }
    } else {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        h.field("file").field(meta.len().to_le_bytes());
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(())
}

/// The stored result for `key`, if complete and successful: its records, read back and verified.
pub async fn lookup(
    storage: &Storage,
    key: &Digest,
    node: &Node,
    out_dir: &std::path::Path,
) -> Option<Vec<RunRecord>> {
    let bytes = content_get(storage, key).await?;
    let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    if entry.name != node.name {
        return None;
    }
    let q = RecordQuery {
        run_id: Some(entry.run_id.clone()),
        name: Some(entry.name.clone()),
        ..Default::default()
    };
    let entries = storage.catalog.query_records(&q).await.ok()?;
    if entries.len() != entry.records || entries.iter().any(|e| !e.outcome.is_success()) {
        return None;
    }
    if !out_dir.is_dir() {
        // A job's outputs live in its output directory; without them the result cannot be replayed.
        return None;
    }
    let mut records = Vec::with_capacity(entries.len());
    for e in &entries {
        records.push(storage.read_record(e).await.ok()?);
    }
    Some(records)
}

async fn content_get(storage: &Storage, key: &Digest) -> Option<Bytes> {
    storage
        .blobs
        .get(&content::key_for(NAMESPACE, key))
        .await
        .ok()
}

/// Remember that `key` produced `records` successful records in `run_id`.
pub async fn remember(storage: &Storage, key: &Digest, entry: &CacheEntry) -> Result<(), Error> {
    let blob_key = content::key_for(NAMESPACE, key);
    let bytes = Bytes::from(serde_json::to_vec(entry).expect("cache entries serialize"));
    // Entries are replaced when a node is rerun (e.g. with --no-cache): delete, then put.
    storage.blobs.delete(&blob_key).await?;
    storage.blobs.put_if_absent(&blob_key, bytes).await?;
    Ok(())
}

/// The records a node stored in `run`, when they are all successful (a finished node).
pub async fn records_of(storage: &Storage, run: &RunId, name: &str) -> Option<Vec<RunRecord>> {
    let q = RecordQuery {
        run_id: Some(run.clone()),
        name: Some(name.to_owned()),
        ..Default::default()
    };
    let entries = storage.catalog.query_records(&q).await.ok()?;
    if entries.is_empty() || entries.iter().any(|e| !e.outcome.is_success()) {
        return None;
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        out.push(storage.read_record(e).await.ok()?);
    }
    Some(out)
}

/// How far a node got in the run being resumed, judged from the records it stored there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeProgress {
    /// Nothing usable is stored (never started, or a run failed): the node runs in full. A
    /// failed node's records stay stored beside the new ones, as before.
    #[default]
    NotRun,
    /// Interrupted part-way: `runs` successful measured runs are stored, fewer than the
    /// `planned` count. Resuming warms up again and adds only the missing runs, numbered on
    /// from `next_iteration`; the stored runs are kept and count.
    Partial {
        runs: u32,
        next_iteration: u32,
        planned: u32,
    },
    /// Every planned run is stored and successful: not run again.
    Finished,
}

/// A node's progress from its stored records `(iteration, wall_ns, success)`, in any order.
///
/// The planned number of runs is the one the runner chose when it measured the node's first
/// run: [`RunPolicy::run_count`](crate::suite::RunPolicy::run_count) of the wall time of its
/// lowest iteration (stored after any shell-cost subtraction, exactly as the runner used it).
/// So a node with `min_time` is judged by the same count it was being measured to, with no
/// marker in the records. Records of older versions are judged the same way.
pub fn progress_of(node: &Node, records: &[(u32, u64, bool)]) -> NodeProgress {
    let Some(&(_, first_wall, _)) = records.iter().min_by_key(|(it, _, _)| *it) else {
        return NodeProgress::NotRun;
    };
    if records.iter().any(|(_, _, ok)| !ok) {
        return NodeProgress::NotRun;
    }
    let planned = node
        .policy
        .run_count(std::time::Duration::from_nanos(first_wall));
    let runs = u32::try_from(records.len()).unwrap_or(u32::MAX);
    if runs >= planned {
        return NodeProgress::Finished;
    }
    let next_iteration = records.iter().map(|(it, _, _)| it + 1).max().unwrap_or(0);
    NodeProgress::Partial {
        runs,
        next_iteration,
        planned,
    }
}

/// How far each node of `suite` got in the earlier run `run` (by suite index): see
/// [`progress_of`]. A load node stores its records while it runs, so it is finished only when
/// its cache entry (`keys`, written once the whole load succeeded) points at `run`; otherwise
/// it runs again in full.
pub async fn finished_nodes(
    storage: &Storage,
    run: &benchfleet_model::RunInfo,
    suite: &Suite,
    keys: &[Digest],
) -> Result<Vec<NodeProgress>, Error> {
    let entries = storage
        .catalog
        .query_records(&RecordQuery::run(&run.run_id))
        .await?;
    let mut by_name: std::collections::HashMap<&str, Vec<(u32, u64, bool)>> =
        std::collections::HashMap::new();
    for e in &entries {
        by_name.entry(e.name.as_str()).or_default().push((
            e.iteration,
            e.measurement.wall_ns,
            e.outcome.is_success(),
        ));
    }
    let mut progress = Vec::with_capacity(suite.nodes.len());
    for (n, key) in suite.nodes.iter().zip(keys) {
        let stored = by_name.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
        let mut p = progress_of(n, stored);
        if n.load.is_some() && p != NodeProgress::NotRun {
            let entry = content_get(storage, key)
                .await
                .and_then(|b| serde_json::from_slice::<CacheEntry>(&b).ok());
            let done = entry.is_some_and(|e| e.run_id == run.run_id && e.name == n.name);
            p = if done {
                NodeProgress::Finished
            } else {
                NodeProgress::NotRun
            };
        }
        progress.push(p);
    }
    Ok(progress)
}

/// The latest run of `suite` that did not succeed (still `running` after a crash, interrupted, or
/// failed): what `run --resume` continues. `None` when the latest run succeeded or none exists.
pub async fn resumable_run(
    storage: &Storage,
    suite: &str,
) -> Result<Option<benchfleet_model::RunInfo>, Error> {
    let runs = storage
        .catalog
        .find_runs(&benchfleet_store::RunFilter {
            suite: Some(suite.to_owned()),
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    Ok(runs
        .into_iter()
        .next()
        .filter(|r| r.status != benchfleet_model::RunStatus::Succeeded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(node_lines: &str) -> Digest {
        let text = format!("[suite]\nname = \"k\"\n[[benchmark]]\nname = \"b\"\n{node_lines}");
        let file: benchfleet_model::SuiteFile = toml::from_str(&text).unwrap();
        let suite = crate::suite::expand(&file, Path::new("k.toml"), Path::new("/o")).unwrap();
        node_keys(&suite, Path::new("/")).unwrap()[0]
    }

    fn node_of(node_lines: &str) -> Node {
        let text = format!("[suite]\nname = \"k\"\n[[benchmark]]\nname = \"b\"\n{node_lines}");
        let file: benchfleet_model::SuiteFile = toml::from_str(&text).unwrap();
        let suite = crate::suite::expand(&file, Path::new("k.toml"), Path::new("/o")).unwrap();
        (*suite.nodes[0]).clone()
    }

    /// A node is finished only with as many successful runs as it planned; part-way, it resumes
    /// after its last iteration with the count chosen from its first run.
    #[test]
    fn progress_is_judged_by_the_planned_runs() {
        use NodeProgress::*;
        const MS: u64 = 1_000_000;
        let ok = |it: u32, ms: u64| (it, ms * MS, true);
        let partial = |runs, next_iteration, planned| Partial {
            runs,
            next_iteration,
            planned,
        };
        let fixed = "command = \"true\"\nruns = 10\n";
        // 1 s minimum time, at least 2 runs, at most 50.
        let timed = "command = \"true\"\nmin_time = 1\nmin_runs = 2\nmax_runs = 50\n";
        type Case<'a> = (&'a str, Vec<(u32, u64, bool)>, NodeProgress);
        let cases: Vec<Case> = vec![
            (fixed, vec![], NotRun),
            (
                fixed,
                (0..7).map(|i| ok(i, 300)).collect(),
                partial(7, 7, 10),
            ),
            (fixed, (0..10).map(|i| ok(i, 300)).collect(), Finished),
            (fixed, (0..12).map(|i| ok(i, 300)).collect(), Finished),
            // Any order; iterations continue after the highest.
            (fixed, vec![ok(2, 1), ok(0, 1), ok(1, 1)], partial(3, 3, 10)),
            // A failed run: measured again in full.
            (fixed, vec![ok(0, 1), (1, MS, false)], NotRun),
            // min_time: the count follows from the first (lowest) iteration's wall time.
            (timed, vec![ok(0, 100), ok(1, 900)], partial(2, 2, 10)),
            (timed, vec![ok(1, 900), ok(0, 600)], Finished),
            (timed, (0..9).map(|i| ok(i, 1)).collect(), partial(9, 9, 50)),
            (timed, vec![ok(0, 2000), ok(1, 2000)], Finished),
        ];
        for (lines, records, want) in cases {
            let node = node_of(lines);
            assert_eq!(progress_of(&node, &records), want, "{lines:?} {records:?}");
        }
        let job = {
            let text = "[suite]\nname = \"k\"\n[[job]]\nname = \"j\"\ncommand = \"true\"\n";
            let file: benchfleet_model::SuiteFile = toml::from_str(text).unwrap();
            crate::suite::expand(&file, Path::new("k.toml"), Path::new("/o"))
                .unwrap()
                .nodes[0]
                .clone()
        };
        assert_eq!(progress_of(&job, &[ok(0, 5)]), Finished);
    }

    /// Every part of a node that changes what runs changes its key; the same text, the same key.
    #[test]
    fn keys_change_with_everything_that_changes_what_runs() {
        let base = "command = \"true\"\n";
        let variants = [
            "command = \"false\"\n",
            "command = \"true\"\nenv = { A = \"1\" }\n",
            "command = \"true\"\ncwd = \"sub\"\n",
            "command = \"true\"\nruns = 3\n",
            "command = \"true\"\nsetup = \"make\"\n",
            "command = \"true\"\nprepare = \"sync\"\n",
            "command = \"true\"\nconclude = \"sync\"\n",
            "command = \"true\"\ncleanup = \"rm x\"\n",
            "command = \"true\"\nprepare = \"make\"\n",
            "command = \"true\"\nload = { duration = \"1s\" }\n",
            "command = \"true\"\nload = { duration = \"2s\" }\n",
            "command = \"true\"\nload = { duration = \"1s\", window = \"500ms\" }\n",
            "command = \"true\"\nload = { duration = \"1s\", rate = 10 }\n",
            "command = \"true\"\nload = { profile = \"stress\", steps = 2, duration = \"1s\" }\n",
        ];
        let k = key_of(base);
        assert_eq!(k, key_of(base), "deterministic");
        let mut seen = vec![k];
        for v in variants {
            let kv = key_of(v);
            assert!(!seen.contains(&kv), "{v:?} must have its own key");
            seen.push(kv);
        }
        // The key is over the resolved profile: the same load written two ways is one key.
        assert_eq!(
            key_of(
                "command = \"true\"\nload = { profile = \"stress\", steps = 2, duration = \"1s\" }\n"
            ),
            key_of(
                "command = \"true\"\nload = { profile = \"stress\", steps = 2, step_duration = \"500ms\" }\n"
            ),
        );
    }
}
