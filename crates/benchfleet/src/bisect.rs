//! `bisect`: the first commit between a good and a bad one where a benchmark got slower, by
//! binary search over the first-parent commits. Each commit is measured with
//! [`crate::commits::run_commit`] (so every measurement is an ordinary stored run), its samples
//! are every successful run of the benchmark stored at that commit with the same suite content
//! (so steps measured before are reused), and each verdict is [`benchfleet_analysis::compare`]'s:
//! significance plus the noise band.

use std::path::Path;

use benchfleet_analysis::{CompareConfig, Comparison, Verdict, compare};
use benchfleet_model::RunStatus;
use benchfleet_store::{RecordQuery, Storage};

use crate::Error;
use crate::commits::{self, run_commit};
use crate::git::{CommitInfo, GitError, Repo};
use crate::history::Metric;
use crate::runner::RunOptions;
use crate::suite::Suite;

/// How to bisect.
#[derive(Clone, Debug)]
pub struct BisectConfig {
    /// The benchmark (name after expansion).
    pub benchmark: String,
    pub metric: Metric,
    /// Significance level and noise band of every verdict; its bootstrap gives the final CI.
    pub compare: CompareConfig,
    /// At most this many successful runs per commit; a commit still undecided then makes the
    /// bisection inconclusive.
    pub max_runs: usize,
    /// SHA-256 of the suite file ([`commits::suite_digest`]): only runs of the same content are
    /// reused.
    pub digest: String,
    /// Where the temporary worktrees go.
    pub worktrees: std::path::PathBuf,
}

/// Which side a midpoint is on, from its comparisons with the good end (`vs_good`: good → it)
/// and the bad end (`vs_bad`: it → bad); `None` while it cannot be placed. Slower than good and
/// not faster than bad: bad; the other way round: good. Significantly between the two (a
/// slowdown in steps, or the few percent separate invocations differ by): the side of the larger
/// step, so bisect follows the biggest slowdown.
fn place(vs_good: &Comparison, vs_bad: &Comparison) -> Option<StepVerdict> {
    match (
        vs_good.verdict == Verdict::Regressed,
        vs_bad.verdict == Verdict::Regressed,
    ) {
        (true, false) => Some(StepVerdict::Bad),
        (false, true) => Some(StepVerdict::Good),
        (true, true) if vs_good.mean_ratio.ln() >= vs_bad.mean_ratio.ln() => Some(StepVerdict::Bad),
        (true, true) => Some(StepVerdict::Good),
        (false, false) => None,
    }
}

/// What a measured commit turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepVerdict {
    /// Like the good end, and faster than the bad one.
    Good,
    /// Slower than the good end, and like the bad one.
    Bad,
}

/// One midpoint of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub commit: CommitInfo,
    /// Position in the range after the good commit (1 = its first child, … `of` = the bad one).
    pub position: usize,
    pub verdict: StepVerdict,
    /// Successful runs of the benchmark at this commit.
    pub samples: usize,
    /// Of which measured in this bisection (0: the step was reused from storage).
    pub new_samples: usize,
}

/// Why a bisection ended without a first bad commit.
#[derive(Clone, Debug, PartialEq)]
pub enum Inconclusive {
    /// The bad commit is not slower than the good one beyond noise (or it is faster).
    EndsAlike { comparison: Box<Comparison> },
    /// A commit is like neither end after `max_runs` runs: the change is within noise there,
    /// or the slowdown came in several steps.
    Undecided {
        commit: CommitInfo,
        vs_good: Box<Comparison>,
        vs_bad: Box<Comparison>,
    },
    /// The benchmark (or a job it needs) failed at an end of the range.
    Failed { commit: CommitInfo, message: String },
    /// Every commit left between the last good and the first bad one failed (each was skipped,
    /// as `git bisect skip` does): the first bad commit is one of `candidates` (the skipped
    /// commits and the first bad one, oldest first).
    OnlySkippedLeft {
        last_good: CommitInfo,
        candidates: Vec<CommitInfo>,
    },
    /// Ctrl-C.
    Interrupted,
}

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    FirstBad {
        first_bad: CommitInfo,
        /// Its first parent, the last good commit.
        last_good: CommitInfo,
        /// The first bad commit against the last good one.
        comparison: Box<Comparison>,
    },
    Inconclusive(Inconclusive),
}

/// A whole bisection.
#[derive(Clone, Debug, PartialEq)]
pub struct BisectOutcome {
    pub good: CommitInfo,
    pub bad: CommitInfo,
    /// Commits after the good one up to the bad one.
    pub candidates: usize,
    /// The midpoints, in the order they were decided.
    pub steps: Vec<Step>,
    /// Suite runs this bisection stored.
    pub runs: usize,
    /// Midpoints where the suite failed, skipped, with the failure, in the order they were met.
    pub skipped: Vec<(CommitInfo, String)>,
    pub finding: Finding,
}

/// Progress, for display.
#[derive(Clone, Debug, PartialEq)]
pub enum BisectEvent {
    /// About to measure `commit` (it has `have` successful runs so far).
    Measuring {
        commit: CommitInfo,
        position: usize,
        have: usize,
    },
    /// A midpoint was decided.
    Step(Step),
    /// The suite failed at a midpoint: it is skipped and a commit next to it is tried instead.
    Skipped {
        commit: CommitInfo,
        position: usize,
        message: String,
    },
}

/// Check the input before anything is measured: the benchmark is in the suite, both commits
/// exist, `good` is an ancestor of `bad` on its first-parent line. Returns the sub-suite (the
/// benchmark and what it needs), good and bad SHAs and the commits after good up to bad.
pub fn prepare(
    repo: &Repo,
    suite: &Suite,
    benchmark: &str,
    good: &str,
    bad: &str,
) -> Result<(Suite, String, Vec<String>), Error> {
    let sub = suite
        .only(benchmark)
        .filter(|s| {
            s.nodes
                .iter()
                .any(|n| n.name == benchmark && n.kind == benchfleet_model::NodeKind::Benchmark)
        })
        .ok_or_else(|| Error::Suite {
            path: suite.source.clone(),
            line: 0,
            col: 0,
            message: format!(
                "no benchmark named `{benchmark}` in suite `{}`; its benchmarks: {}",
                suite.name,
                suite.benchmark_names().join(", ")
            ),
        })?;
    let (g, b) = (repo.resolve(good)?, repo.resolve(bad)?);
    if g == b || !repo.is_ancestor(&g, &b)? {
        let hint = if g == b {
            "; they are the same commit".to_owned()
        } else if repo.is_ancestor(&b, &g)? {
            format!("; they are the wrong way round: try `--good {bad} --bad {good}`")
        } else {
            "; they are on different lines of history".to_owned()
        };
        return Err(GitError::NotAncestor {
            what: "--good/--bad".into(),
            older: good.to_owned(),
            newer: bad.to_owned(),
            hint,
        }
        .into());
    }
    let commits = repo.first_parent(&g, &b)?;
    Ok((sub, g, commits))
}

/// Successful values of the benchmark's metric stored at `sha` with this suite content, and the
/// failure message of its latest failed run there, if any.
async fn samples(
    storage: &Storage,
    suite: &str,
    sha: &str,
    cfg: &BisectConfig,
) -> Result<Vec<f64>, Error> {
    let mut values = Vec::new();
    for run in commits::runs_at(storage, suite, sha, &cfg.digest).await? {
        let entries = storage
            .catalog
            .query_records(&RecordQuery {
                run_id: Some(run.run_id.clone()),
                name: Some(cfg.benchmark.clone()),
                ..Default::default()
            })
            .await?;
        values.extend(
            entries
                .iter()
                .filter(|e| e.outcome.is_success())
                .map(|e| cfg.metric.value(&e.measurement))
                .filter(|v| v.is_finite()),
        );
    }
    Ok(values)
}

/// Binary search between `good` and the last of `commits` (the bad one). `suite` is the
/// sub-suite from [`prepare`]; `opts` carries the cancel token and user tags (commit tags are
/// added here). Every measurement is stored; stored ones are reused.
#[allow(clippy::too_many_arguments)]
pub async fn bisect(
    repo: &Repo,
    suite: &Suite,
    good: &str,
    commits: &[String],
    storage: &Storage,
    opts: &RunOptions,
    cfg: &BisectConfig,
    on_event: &mut (dyn FnMut(BisectEvent) + Send),
) -> Result<BisectOutcome, Error> {
    let mut line = Vec::with_capacity(commits.len() + 1);
    line.push(repo.commit_info(good)?);
    for c in commits {
        line.push(repo.commit_info(c)?);
    }
    let bad_end = line.last().expect("the bad commit").clone();
    let branch = repo.branch_of(&bad_end.sha)?;
    let mut s = Search {
        repo,
        suite,
        storage,
        opts,
        cfg,
        branch,
        runs: 0,
        skipped: Vec::new(),
    };
    let quick = CompareConfig {
        bootstrap: None,
        ..cfg.compare
    };
    let outcome = |s: &Search, steps, finding| BisectOutcome {
        good: line[0].clone(),
        bad: bad_end.clone(),
        candidates: commits.len(),
        steps,
        runs: s.runs,
        skipped: s.skipped.clone(),
        finding,
    };
    let mut steps = Vec::new();
    let n = line.len() - 1;

    // The ends must differ: the bad one slower than the good one beyond noise.
    let (g, b) = loop {
        let g = s.samples(&line[0]).await?;
        let b = s.samples(&line[n]).await?;
        let next = if g.len() < 2 {
            0
        } else if b.len() < 2 {
            n
        } else {
            let c = compare(&g, &b, &cfg.compare)?;
            let room = |v: &Vec<f64>| v.len() < cfg.max_runs;
            match c.verdict {
                Verdict::Regressed => break (g, b),
                Verdict::Unchanged | Verdict::Inconclusive if room(&g) || room(&b) => {
                    if room(&g) && (g.len() <= b.len() || !room(&b)) {
                        0
                    } else {
                        n
                    }
                }
                _ => {
                    let stop = Inconclusive::EndsAlike {
                        comparison: Box::new(c),
                    };
                    return Ok(outcome(&s, steps, Finding::Inconclusive(stop)));
                }
            }
        };
        if let Some(stop) = s.measure(&line[next], next, on_event).await? {
            return Ok(outcome(&s, steps, Finding::Inconclusive(stop)));
        }
    };

    let (mut lo, mut hi) = (0usize, n);
    // Positions of the midpoints where the suite failed: never measured again in this bisection.
    let mut skipped = std::collections::BTreeSet::new();
    'search: while hi - lo > 1 {
        let Some(mid) = midpoint(lo, hi, &skipped) else {
            let stop = Inconclusive::OnlySkippedLeft {
                last_good: line[lo].clone(),
                candidates: line[lo + 1..=hi].to_vec(),
            };
            return Ok(outcome(&s, steps, Finding::Inconclusive(stop)));
        };
        let commit = &line[mid];
        let before = s.samples(commit).await?.len();
        let verdict = loop {
            let x = s.samples(commit).await?;
            if x.len() >= 2 {
                let vs_good = compare(&g, &x, &quick)?;
                let vs_bad = compare(&x, &b, &quick)?;
                match place(&vs_good, &vs_bad) {
                    Some(side) => break (side, x.len()),
                    None if x.len() >= cfg.max_runs => {
                        let stop = Inconclusive::Undecided {
                            commit: commit.clone(),
                            vs_good: Box::new(vs_good),
                            vs_bad: Box::new(vs_bad),
                        };
                        return Ok(outcome(&s, steps, Finding::Inconclusive(stop)));
                    }
                    None => {}
                }
            }
            match s.measure(commit, mid, on_event).await? {
                None => {}
                Some(Inconclusive::Failed { message, .. }) => {
                    on_event(BisectEvent::Skipped {
                        commit: commit.clone(),
                        position: mid,
                        message: message.clone(),
                    });
                    s.skipped.push((commit.clone(), message));
                    skipped.insert(mid);
                    continue 'search;
                }
                Some(stop) => return Ok(outcome(&s, steps, Finding::Inconclusive(stop))),
            }
        };
        let step = Step {
            commit: commit.clone(),
            position: mid,
            verdict: verdict.0,
            samples: verdict.1,
            new_samples: verdict.1.saturating_sub(before),
        };
        on_event(BisectEvent::Step(step.clone()));
        steps.push(step);
        match verdict.0 {
            StepVerdict::Bad => hi = mid,
            StepVerdict::Good => lo = mid,
        }
    }
    let last_good = s.samples(&line[lo]).await?;
    let first_bad = s.samples(&line[hi]).await?;
    let comparison = compare(&last_good, &first_bad, &cfg.compare)?;
    let finding = Finding::FirstBad {
        first_bad: line[hi].clone(),
        last_good: line[lo].clone(),
        comparison: Box::new(comparison),
    };
    Ok(outcome(&s, steps, finding))
}

/// The commit to test between `lo` and `hi` (exclusive): the middle one, or when it was skipped
/// the nearest one that was not (alternating below and above, as `git bisect skip` moves away
/// from a broken commit). `None` when every commit between them was skipped.
fn midpoint(lo: usize, hi: usize, skipped: &std::collections::BTreeSet<usize>) -> Option<usize> {
    let mid = lo + (hi - lo) / 2;
    (0..hi - lo)
        .flat_map(|d| [mid.checked_sub(d), mid.checked_add(d)])
        .flatten()
        .find(|&c| c > lo && c < hi && !skipped.contains(&c))
}

struct Search<'a> {
    repo: &'a Repo,
    suite: &'a Suite,
    storage: &'a Storage,
    opts: &'a RunOptions,
    cfg: &'a BisectConfig,
    branch: Option<String>,
    /// Suite runs stored so far.
    runs: usize,
    /// Midpoints skipped so far, with their failures.
    skipped: Vec<(CommitInfo, String)>,
}

impl Search<'_> {
    async fn samples(&self, commit: &CommitInfo) -> Result<Vec<f64>, Error> {
        samples(self.storage, &self.suite.name, &commit.sha, self.cfg).await
    }

    /// One more suite run at `commit`; `Some` when the search must stop (a failure, Ctrl-C).
    async fn measure(
        &mut self,
        commit: &CommitInfo,
        position: usize,
        on_event: &mut (dyn FnMut(BisectEvent) + Send),
    ) -> Result<Option<Inconclusive>, Error> {
        if self.opts.cancel.is_cancelled() {
            return Ok(Some(Inconclusive::Interrupted));
        }
        on_event(BisectEvent::Measuring {
            commit: commit.clone(),
            position,
            have: self.samples(commit).await?.len(),
        });
        let mut tags = self.opts.tags.clone();
        tags.extend(commits::commit_tags(
            commit,
            self.branch.as_deref(),
            position,
            &self.cfg.digest,
        ));
        tags.insert(commits::TAG_BISECT.into(), self.cfg.benchmark.clone());
        let opts = RunOptions {
            tags,
            ..self.opts.clone()
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = run_commit(
            self.repo,
            commit,
            self.suite,
            self.storage,
            &opts,
            &self.cfg.worktrees,
            tx,
        )
        .await?;
        self.runs += 1;
        Ok(match outcome.run.status {
            RunStatus::Succeeded => None,
            RunStatus::Interrupted => Some(Inconclusive::Interrupted),
            _ => Some(Inconclusive::Failed {
                commit: commit.clone(),
                message: outcome
                    .failures
                    .first()
                    .map(|(name, why)| format!("`{name}`: {why}"))
                    .unwrap_or_else(|| format!("the run ended {}", outcome.run.status.as_str())),
            }),
        })
    }
}

/// Where worktrees go under a storage root.
pub fn worktrees_under(root: &Path) -> std::path::PathBuf {
    root.join("worktrees")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(base: f64, new: f64) -> Comparison {
        let cfg = CompareConfig::default();
        let a: Vec<f64> = (0..20)
            .map(|i| base * (1.0 + 0.001 * f64::from(i % 5)))
            .collect();
        let b: Vec<f64> = (0..20)
            .map(|i| new * (1.0 + 0.001 * f64::from(i % 5)))
            .collect();
        compare(&a, &b, &cfg).unwrap()
    }

    #[test]
    fn a_skipped_midpoint_gives_way_to_its_nearest_neighbours() {
        let skip = |v: &[usize]| v.iter().copied().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(midpoint(0, 32, &skip(&[])), Some(16));
        assert_eq!(midpoint(0, 32, &skip(&[16])), Some(15));
        assert_eq!(midpoint(0, 32, &skip(&[16, 15])), Some(17));
        assert_eq!(midpoint(0, 32, &skip(&[15, 16, 17])), Some(14));
        assert_eq!(midpoint(16, 18, &skip(&[])), Some(17));
        assert_eq!(midpoint(16, 18, &skip(&[17])), None);
        assert_eq!(midpoint(3, 7, &skip(&[4, 5, 6])), None);
        assert_eq!(midpoint(3, 7, &skip(&[5, 4])), Some(6));
        assert_eq!(midpoint(5, 6, &skip(&[])), None);
    }

    #[test]
    fn a_midpoint_is_placed_by_its_comparisons_with_both_ends() {
        // Like good, faster than bad: good. Slower than good, like bad: bad.
        assert_eq!(
            place(&cmp(24.0, 24.0), &cmp(24.0, 34.0)),
            Some(StepVerdict::Good)
        );
        assert_eq!(
            place(&cmp(24.0, 34.0), &cmp(34.0, 34.0)),
            Some(StepVerdict::Bad)
        );
        // Between both ends: the larger step decides (the CI case: 1.42x from good, 1.025x to bad).
        assert_eq!(
            place(&cmp(24.13, 34.31), &cmp(34.31, 35.17)),
            Some(StepVerdict::Bad)
        );
        assert_eq!(
            place(&cmp(24.0, 25.0), &cmp(25.0, 34.0)),
            Some(StepVerdict::Good)
        );
        // Like both ends (the ends alike), or faster than both: not placed.
        assert_eq!(place(&cmp(24.0, 24.0), &cmp(24.0, 24.0)), None);
        assert_eq!(place(&cmp(24.0, 20.0), &cmp(20.0, 20.0)), None);
    }
}
