//! The git repository a suite is measured in: resolving revisions, listing first-parent commits,
//! facts about a commit, and temporary worktrees. Everything goes through the `git` command
//! line (`std::process::Command`), the way a user would type it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a git operation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "`{}` is not inside a git repository; run benchfleet in a git checkout (or `git init` one)",
        dir.display()
    )]
    NotARepo { dir: PathBuf },

    #[error(
        "`{0}` is not a commit range; write it as A..B (e.g. `v1.0..main` or `HEAD~10..HEAD`): the first-parent commits after A up to and including B"
    )]
    NotARange(String),

    #[error(
        "`{rev}` is not a commit of the repository at `{}`; check the name (`git log --oneline` lists commits)",
        dir.display()
    )]
    UnknownRevision { rev: String, dir: PathBuf },

    #[error(
        "the range `{0}` holds no commit: its start is not older than its end on the first-parent line"
    )]
    EmptyRange(String),

    #[error(
        "{what}: `{older}` must be an ancestor of `{newer}` on its first-parent line, but it is not{hint}"
    )]
    NotAncestor {
        what: String,
        older: String,
        newer: String,
        /// What to do, e.g. that the two were given the wrong way round.
        hint: String,
    },

    #[error("cannot run git: {0}; install git or put it on PATH")]
    Spawn(std::io::Error),

    /// git refused to do something the input cannot explain (a worktree it could not add).
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

impl GitError {
    /// Whether the user can fix this by changing their input (exit code 2 in the CLI).
    pub fn is_user_input(&self) -> bool {
        !matches!(self, GitError::Spawn(_) | GitError::Failed { .. })
    }
}

/// A git repository, named by its top-level directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub dir: PathBuf,
}

/// What is recorded about a measured commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full SHA-1 (or SHA-256) of the commit.
    pub sha: String,
    /// Committer date, strict ISO 8601.
    pub time: String,
    /// First line of the message.
    pub subject: String,
    /// Position on the first-parent line: 1 for a root commit, 2 for its child, …
    pub depth: u64,
}

impl CommitInfo {
    /// The first 12 characters of the SHA.
    pub fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(12)]
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(GitError::Spawn)
}

/// `git args` in `dir`, its trimmed stdout when it succeeds, `None` when git says no.
fn git_ok(dir: &Path, args: &[&str]) -> Result<Option<String>, GitError> {
    let out = git(dir, args)?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

fn git_must(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = git(dir, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `A..B` split into its two ends; anything else (one revision, `A...B`, an empty end) is not a
/// range.
pub fn parse_range(range: &str) -> Result<(String, String), GitError> {
    let not = || GitError::NotARange(range.to_owned());
    if range.contains("...") {
        return Err(not());
    }
    let (a, b) = range.split_once("..").ok_or_else(not)?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() || b.is_empty() || b.contains("..") {
        return Err(not());
    }
    Ok((a.to_owned(), b.to_owned()))
}

impl Repo {
    /// The repository `dir` is in.
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        match git_ok(dir, &["rev-parse", "--show-toplevel"])? {
            Some(top) if !top.is_empty() => Ok(Repo {
                dir: PathBuf::from(top),
            }),
            _ => Err(GitError::NotARepo {
                dir: dir.to_owned(),
            }),
        }
    }

    /// The full SHA of the commit `rev` names.
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        let unknown = || GitError::UnknownRevision {
            rev: rev.to_owned(),
            dir: self.dir.clone(),
        };
        // Never handed to git as an option.
        if rev.is_empty() || rev.starts_with('-') {
            return Err(unknown());
        }
        let spec = format!("{rev}^{{commit}}");
        match git_ok(&self.dir, &["rev-parse", "--verify", "--quiet", &spec])? {
            Some(sha) if !sha.is_empty() => Ok(sha),
            _ => Err(unknown()),
        }
    }

    /// Whether `older` is `newer` or one of its ancestors.
    pub fn is_ancestor(&self, older: &str, newer: &str) -> Result<bool, GitError> {
        let out = git(&self.dir, &["merge-base", "--is-ancestor", older, newer])?;
        Ok(out.status.success())
    }

    /// The first-parent commits after `from` up to and including `to` (full SHAs), oldest first.
    /// `from` must be an ancestor of `to` on `to`'s first-parent line.
    pub fn first_parent(&self, from: &str, to: &str) -> Result<Vec<String>, GitError> {
        let range = format!("{from}..{to}");
        let text = git_must(
            &self.dir,
            &["rev-list", "--first-parent", "--reverse", &range],
        )?;
        let commits: Vec<String> = text.lines().map(str::to_owned).collect();
        // On the first-parent line: the oldest listed commit's first parent is `from`.
        if let Some(oldest) = commits.first() {
            let parent = self.resolve(&format!("{oldest}^1")).ok();
            if parent.as_deref() != Some(from) {
                return Err(GitError::NotAncestor {
                    what: format!("range `{from}..{to}`"),
                    older: from.to_owned(),
                    newer: to.to_owned(),
                    hint: "; choose a start on the end's first-parent line (`git log --first-parent --oneline END`)".into(),
                });
            }
        }
        Ok(commits)
    }

    /// The commits of `range` (`A..B`), oldest first, checked: both ends exist, A is an ancestor
    /// of B on B's first-parent line, and the range holds at least one commit.
    pub fn range(&self, range: &str) -> Result<Vec<String>, GitError> {
        let (a, b) = parse_range(range)?;
        let (from, to) = (self.resolve(&a)?, self.resolve(&b)?);
        if !self.is_ancestor(&from, &to)? {
            let hint = if self.is_ancestor(&to, &from)? {
                format!("; `{b}` is older than `{a}`: write `{b}..{a}`")
            } else {
                "; they are on different lines of history".to_owned()
            };
            return Err(GitError::NotAncestor {
                what: format!("range `{range}`"),
                older: a,
                newer: b,
                hint,
            });
        }
        let commits = self.first_parent(&from, &to)?;
        if commits.is_empty() {
            return Err(GitError::EmptyRange(range.to_owned()));
        }
        Ok(commits)
    }

    /// Date, subject and first-parent depth of `sha`.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo, GitError> {
        let text = git_must(&self.dir, &["show", "-s", "--format=%H%n%cI%n%s", sha])?;
        let mut lines = text.lines();
        let full = lines.next().unwrap_or(sha).to_owned();
        let time = lines.next().unwrap_or_default().to_owned();
        let subject = lines.next().unwrap_or_default().to_owned();
        let depth = git_must(&self.dir, &["rev-list", "--first-parent", "--count", sha])?
            .parse()
            .unwrap_or(0);
        Ok(CommitInfo {
            sha: full,
            time,
            subject,
            depth,
        })
    }

    /// The branch `rev` stands for: the branch it names (or `HEAD`'s), else a local branch
    /// containing it (the checked-out one first). `None` when no branch contains it.
    pub fn branch_of(&self, rev: &str) -> Result<Option<String>, GitError> {
        if let Some(name) = git_ok(&self.dir, &["rev-parse", "--symbolic-full-name", rev])?
            && let Some(branch) = name.strip_prefix("refs/heads/")
        {
            return Ok(Some(branch.to_owned()));
        }
        let current = git_ok(&self.dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        let containing = git_ok(
            &self.dir,
            &[
                "for-each-ref",
                "--contains",
                rev,
                "--format=%(refname:short)",
                "refs/heads",
            ],
        )?
        .unwrap_or_default();
        let branches: Vec<&str> = containing.lines().filter(|l| !l.is_empty()).collect();
        Ok(current
            .filter(|c| branches.contains(&c.as_str()))
            .or_else(|| branches.first().map(|b| (*b).to_owned())))
    }

    /// Check out `sha` in a new detached worktree at `dir` (a leftover one there is removed
    /// first). It is removed when the returned guard is dropped.
    pub fn add_worktree(&self, sha: &str, dir: &Path) -> Result<Worktree, GitError> {
        if dir.exists() {
            remove_worktree(&self.dir, dir);
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| GitError::Failed {
                args: "worktree add".into(),
                stderr: format!("cannot create `{}`: {e}", parent.display()),
            })?;
        }
        let path = dir.display().to_string();
        git_must(
            &self.dir,
            &["worktree", "add", "--force", "--detach", &path, sha],
        )?;
        Ok(Worktree {
            repo: self.dir.clone(),
            dir: dir.to_owned(),
        })
    }
}

/// A temporary worktree, removed (with `git worktree remove --force`) when dropped.
#[derive(Debug)]
pub struct Worktree {
    repo: PathBuf,
    dir: PathBuf,
}

impl Worktree {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        remove_worktree(&self.repo, &self.dir);
    }
}

fn remove_worktree(repo: &Path, dir: &Path) {
    let path = dir.display().to_string();
    let removed = git(repo, &["worktree", "remove", "--force", "--force", &path])
        .is_ok_and(|o| o.status.success());
    if !removed {
        let _ = std::fs::remove_dir_all(dir);
        let _ = git(repo, &["worktree", "prune"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_need_two_ends() {
        assert_eq!(
            parse_range("v1..main").unwrap(),
            ("v1".to_owned(), "main".to_owned())
        );
        assert_eq!(
            parse_range("HEAD~3..HEAD").unwrap(),
            ("HEAD~3".to_owned(), "HEAD".to_owned())
        );
        for bad in ["main", "a...b", "..b", "a..", "a..b..c", ""] {
            assert!(
                matches!(parse_range(bad), Err(GitError::NotARange(_))),
                "{bad:?}"
            );
        }
    }
}
