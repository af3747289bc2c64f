//! A suite measured at commits of a git repository (`run --commits A..B`, and each step of
//! [`crate::bisect`]): one suite run per commit, each in its own temporary worktree, through
//! the one execution core ([`crate::runner::run_suite`]). A commit already measured with the same
//! suite content is found by its tags and skipped; an unfinished one can be resumed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;

use benchfleet_model::{Digest, RunInfo, RunStatus};
use benchfleet_store::{RunFilter, Storage};

use crate::Error;
use crate::git::{CommitInfo, Repo};
use crate::runner::{RunOptions, RunOutcome, RunnerEvent, run_suite};
use crate::suite::Suite;

/// The measured commit's full SHA.
pub const TAG_COMMIT: &str = "git.commit";
/// Its committer date (ISO 8601).
pub const TAG_COMMIT_TIME: &str = "git.commit_time";
/// The branch of the range's end (or one containing it), when there is one.
pub const TAG_BRANCH: &str = "git.branch";
/// Its position in the range measured, `1` for the oldest.
pub const TAG_POSITION: &str = "git.position";
/// Its position on the first-parent line from the root commit (`1` for the root): what
/// `history --by commit` orders by.
pub const TAG_DEPTH: &str = "git.depth";
/// SHA-256 of the suite file: "the same suite content".
pub const TAG_SUITE_DIGEST: &str = "suite.digest";
/// The benchmark a `bisect` step measured: its run holds only that benchmark and what it needs,
/// so it never counts as the whole suite measured at its commit.
pub const TAG_BISECT: &str = "bisect.benchmark";

/// Which commits of a range to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    All,
    /// Every Nth commit, counted back from the newest (which is always measured).
    Every(usize),
    /// At most N commits, evenly spread, the oldest and the newest included.
    Max(usize),
}

/// The commits `sel` keeps of `commits` (oldest first), in the same order.
pub fn select<T: Clone>(commits: &[T], sel: Select) -> Vec<T> {
    let n = commits.len();
    let idx: Vec<usize> = match sel {
        Select::All => (0..n).collect(),
        Select::Every(k) => {
            let k = k.max(1);
            (0..n).filter(|i| (n - 1 - i).is_multiple_of(k)).collect()
        }
        Select::Max(m) if m >= n => (0..n).collect(),
        Select::Max(0) => Vec::new(),
        Select::Max(1) => vec![n - 1],
        Select::Max(m) => {
            let mut v: Vec<usize> = (0..m)
                .map(|j| ((j * (n - 1)) as f64 / (m - 1) as f64).round() as usize)
                .collect();
            v.dedup();
            v
        }
    };
    idx.into_iter().map(|i| commits[i].clone()).collect()
}

/// SHA-256 of the suite file's bytes, as recorded in [`TAG_SUITE_DIGEST`].
pub fn suite_digest(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::SuiteIo {
        path: path.to_owned(),
        source: e,
    })?;
    Ok(Digest::of(&bytes).to_hex())
}

/// The tags of a run at `commit`, `position` (1-based) in its range.
pub fn commit_tags(
    commit: &CommitInfo,
    branch: Option<&str>,
    position: usize,
    digest: &str,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert(TAG_COMMIT.into(), commit.sha.clone());
    tags.insert(TAG_COMMIT_TIME.into(), commit.time.clone());
    if let Some(b) = branch {
        tags.insert(TAG_BRANCH.into(), b.to_owned());
    }
    tags.insert(TAG_POSITION.into(), position.to_string());
    tags.insert(TAG_DEPTH.into(), commit.depth.to_string());
    tags.insert(TAG_SUITE_DIGEST.into(), digest.to_owned());
    tags
}

/// What to do at one commit of a range.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Measured already with the same suite content: this (succeeded) run.
    Skip(RunInfo),
    /// Continue this unfinished run of the commit (`--resume`).
    Resume(RunInfo),
    /// A new run.
    Run,
}

/// One commit of a range, with what to do there.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub commit: CommitInfo,
    /// 1-based position in the range.
    pub position: usize,
    pub action: Action,
}

/// Stored runs of `suite` at `sha` with the suite content `digest`, newest first.
pub async fn runs_at(
    storage: &Storage,
    suite: &str,
    sha: &str,
    digest: &str,
) -> Result<Vec<RunInfo>, Error> {
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            suite: Some(suite.to_owned()),
            ..Default::default()
        })
        .await?;
    Ok(runs
        .into_iter()
        .filter(|r| {
            r.tags.get(TAG_COMMIT).is_some_and(|c| c == sha)
                && r.tags.get(TAG_SUITE_DIGEST).is_some_and(|d| d == digest)
        })
        .collect())
}

/// What to do at each commit (with its 1-based position in the whole range): skip those with a
/// succeeded run of the whole suite with the same content (not a [`TAG_BISECT`] step's; unless
/// `remeasure`), resume the latest unfinished such run of the others when `resume`, else run
/// anew.
pub async fn plan(
    storage: &Storage,
    suite: &str,
    digest: &str,
    commits: Vec<(usize, CommitInfo)>,
    remeasure: bool,
    resume: bool,
) -> Result<Vec<Planned>, Error> {
    let mut out = Vec::with_capacity(commits.len());
    for (position, commit) in commits {
        let mut runs = runs_at(storage, suite, &commit.sha, digest).await?;
        runs.retain(|r| !r.tags.contains_key(TAG_BISECT));
        let done = runs
            .iter()
            .find(|r| r.status == RunStatus::Succeeded)
            .filter(|_| !remeasure);
        let action = match (done, runs.first()) {
            (Some(r), _) => Action::Skip(r.clone()),
            (None, Some(latest)) if resume && latest.status != RunStatus::Succeeded => {
                Action::Resume(latest.clone())
            }
            _ => Action::Run,
        };
        out.push(Planned {
            commit,
            position,
            action,
        });
    }
    Ok(out)
}

/// Where the worktree of `sha` goes under `root`.
pub fn worktree_dir(root: &Path, sha: &str) -> PathBuf {
    root.join(sha)
}

/// Run `suite` at `commit`: check it out in a temporary worktree under `worktrees`, run the suite
/// there (commands in the worktree, `{worktree}` replaced, relative `inputs` read from it,
/// no cached node result reused: each worktree is fresh), remove the worktree. `opts.tags` should
/// hold the commit's tags ([`commit_tags`]).
pub async fn run_commit(
    repo: &Repo,
    commit: &CommitInfo,
    suite: &Suite,
    storage: &Storage,
    opts: &RunOptions,
    worktrees: &Path,
    events: UnboundedSender<RunnerEvent>,
) -> Result<RunOutcome, Error> {
    let worktree = {
        let (repo, sha, dir) = (
            repo.clone(),
            commit.sha.clone(),
            worktree_dir(worktrees, &commit.sha),
        );
        tokio::task::spawn_blocking(move || repo.add_worktree(&sha, &dir))
            .await
            .map_err(|e| Error::Internal(format!("adding a worktree failed: {e}")))??
    };
    let at = suite.in_worktree(worktree.dir());
    let opts = RunOptions {
        base_dir: worktree.dir().to_owned(),
        use_cache: false,
        ..opts.clone()
    };
    let outcome = run_suite(&at, storage, &opts, events).await;
    tokio::task::spawn_blocking(move || drop(worktree))
        .await
        .map_err(|e| Error::Internal(format!("removing a worktree failed: {e}")))?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_keep_the_newest_commit() {
        let c: Vec<u32> = (1..=10).collect();
        assert_eq!(select(&c, Select::All), c);
        assert_eq!(select(&c, Select::Every(3)), [1, 4, 7, 10]);
        assert_eq!(select(&c, Select::Every(4)), [2, 6, 10]);
        assert_eq!(select(&c, Select::Every(1)), c);
        assert_eq!(select(&c, Select::Max(3)), [1, 6, 10]);
        assert_eq!(select(&c, Select::Max(2)), [1, 10]);
        assert_eq!(select(&c, Select::Max(1)), [10]);
        assert_eq!(select(&c, Select::Max(20)), c);
        assert_eq!(select(&c, Select::Max(10)), c);
    }
}
