//! Git-native workflows: `run --commits A..B`, `history --by commit`, `bisect`, on a repository
//! generated here: a base commit, then 32 commits; commit 20 makes the benchmarked script slower
//! (`sleep 0.02` → `sleep 0.03`).

use std::path::Path;
use std::process::Command;

use crate::support::Workdir;

const SUITE: &str = r#"
[suite]
name = "range"

[[benchmark]]
name = "script"
command = "sh bench.sh"
runs = 10
warmup = 1
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The repository in `w`: returns the SHAs, `[base, commit 1, …, commit 32]`.
fn repo(w: &Workdir) -> Vec<String> {
    repo_broken_at(w, &[])
}

/// [`repo`], with the benchmarked script failing at the commits numbered in `broken`.
fn repo_broken_at(w: &Workdir, broken: &[usize]) -> Vec<String> {
    let d = w.path();
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["config", "user.name", "Test"]);
    git(d, &["config", "user.email", "test@example.com"]);
    let mut shas = Vec::new();
    for i in 0..=32 {
        let sleep = if i >= 20 { "0.03" } else { "0.02" };
        let script = if broken.contains(&i) {
            "echo broken >&2\nexit 1\n".to_owned()
        } else {
            format!("sleep {sleep}\n")
        };
        std::fs::write(d.join("bench.sh"), script).unwrap();
        std::fs::write(d.join("n.txt"), format!("{i}\n")).unwrap();
        git(d, &["add", "bench.sh", "n.txt"]);
        let date = format!("2026-01-01T00:{:02}:00Z", i);
        let msg = if i == 0 {
            "base".to_owned()
        } else {
            format!("commit {i}")
        };
        let out = Command::new("git")
            .args(["commit", "-q", "-m", &msg])
            .current_dir(d)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        shas.push(git(d, &["rev-parse", "HEAD"]));
    }
    w.file("suite.toml", SUITE);
    shas
}

/// `bisect` of the benchmark `script` between `good` and `bad`.
fn bisect_args<'a>(good: &'a str, bad: &'a str) -> Vec<&'a str> {
    vec![
        "bisect",
        "suite.toml",
        "--benchmark",
        "script",
        "--good",
        good,
        "--bad",
        bad,
    ]
}

/// No worktree is left behind, in git or on disk.
fn no_worktrees_left(w: &Workdir) {
    let list = git(w.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
    let dir = w.path().join(".benchfleet/worktrees");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_commit_range_is_measured_once_per_commit_and_ordered_by_commit() {
    let w = Workdir::new();
    let shas = repo(&w);
    let range = format!("{}..{}", shas[0], "main");
    let out = w.run(&["run", "suite.toml", "--commits", &range]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains("32 to measure, 0 already measured"),
        "{out:?}"
    );
    no_worktrees_left(&w);

    // One run per commit, tagged with the commit, its time, branch, position and depth.
    let runs = w.json(&["history", "--format", "json", "--limit", "100"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 32, "{runs:?}");
    let mut commits: Vec<&str> = runs
        .iter()
        .map(|r| r["tags"]["git.commit"].as_str().unwrap())
        .collect();
    commits.sort_unstable();
    let mut want: Vec<&str> = shas[1..].iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(commits, want);
    let twentieth = runs
        .iter()
        .find(|r| r["tags"]["git.commit"] == shas[20].as_str())
        .unwrap();
    assert_eq!(twentieth["tags"]["git.position"], "20");
    assert_eq!(twentieth["tags"]["git.depth"], "21");
    assert_eq!(twentieth["tags"]["git.branch"], "main");
    assert_eq!(twentieth["tags"]["git.commit_time"], "2026-01-01T00:20:00Z");
    assert_eq!(twentieth["status"], "succeeded");

    // Measured already with the same suite file: skipped, and said so.
    let again = w.run(&["run", "suite.toml", "--commits", &range, "--max", "4"]);
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(
        again
            .stderr()
            .contains("0 to measure, 4 already measured with this suite file (skipped)"),
        "{again:?}"
    );
    let runs = w.json(&["history", "--format", "json", "--limit", "100"]);
    assert_eq!(runs.as_array().unwrap().len(), 32);

    // In commit order, the change point is at commit 20.
    let h = w.json(&[
        "history",
        "--benchmark",
        "script",
        "--changes",
        "--by",
        "commit",
        "--format",
        "json",
    ]);
    let points = h["points"].as_array().unwrap();
    let order: Vec<&str> = points
        .iter()
        .map(|p| p["commit"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        shas[1..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let changes = h["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{h}");
    assert_eq!(changes[0]["commit"], shas[20].as_str(), "{h}");
    assert!(changes[0]["percent"].as_f64().unwrap() > 20.0, "{h}");

    // A plain run records only `git.commit`: its place is looked up in the repository (after
    // the range's run of the same commit, by time).
    let out = w.run(&["run", "suite.toml"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let h = w.json(&[
        "history",
        "--benchmark",
        "script",
        "--by",
        "commit",
        "--format",
        "json",
    ]);
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 33, "{h}");
    assert_eq!(points[31]["commit"], shas[32].as_str(), "{h}");
    assert_eq!(points[32]["commit"], shas[32].as_str(), "{h}");
    assert!(
        points[32]["time_ns"].as_i64() > points[31]["time_ns"].as_i64(),
        "{h}"
    );
}

#[test]
fn bisect_finds_the_first_slow_commit_and_reuses_its_steps() {
    let w = Workdir::new();
    let shas = repo(&w);
    let args = bisect_args(&shas[0], &shas[32]);
    let out = w.run(&args);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .contains(&format!("first bad commit: {}", shas[20])),
        "{out:?}"
    );
    assert!(out.stdout().contains("95% CI"), "{out:?}");
    no_worktrees_left(&w);
    // Every measurement is a stored run of the commit.
    let runs = w.json(&["history", "--format", "json", "--limit", "100"]);
    let runs = runs.as_array().unwrap();
    assert!(runs.len() >= 7, "two ends and five steps: {runs:?}");
    assert!(runs.iter().all(|r| r["tags"]["git.commit"].is_string()));

    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let again = w.json(&json_args);
    assert_eq!(again["first_bad_commit"], shas[20].as_str(), "{again}");
    let steps = again["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 6, "{again}");
    assert_eq!(again["runs"], 0, "every step reused: {again}");
    assert!(steps.iter().all(|s| s["new_samples"] == 0), "{again}");
    assert!(again["ratio"].as_f64().unwrap() > 1.2, "{again}");
    let runs_after = w.json(&["history", "--format", "json", "--limit", "100"]);
    assert_eq!(runs_after.as_array().unwrap().len(), runs.len());

    // A bisect step ran one benchmark, not the suite: `run --commits` measures those commits.
    let range = format!("{}..{}", shas[0], shas[32]);
    let out = w.run(&["run", "suite.toml", "--commits", &range, "--max", "2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains("2 to measure, 0 already measured"),
        "{out:?}"
    );
}

/// Like `git bisect skip`: a midpoint where the suite fails is skipped and a commit next to it
/// is tried. Commit 16 (the first midpoint) and commit 20 (the first slow one) are broken, so
/// the search goes on past 16 and ends with the first bad commit narrowed to 20 or 21.
#[test]
fn bisect_skips_commits_where_the_suite_fails() {
    let w = Workdir::new();
    let shas = repo_broken_at(&w, &[16, 20]);
    let args = bisect_args(&shas[0], &shas[32]);
    let out = w.run(&args);
    assert_eq!(out.code(), 1, "{out:?}");
    let text = out.stdout();
    assert!(
        text.starts_with("inconclusive: only skipped commits are left"),
        "{out:?}"
    );
    assert!(
        text.contains(&format!("one of {}, {}", shas[20], shas[21])),
        "{out:?}"
    );
    assert!(text.contains(&format!("after {}", shas[19])), "{out:?}");
    assert!(
        out.stderr()
            .contains(&format!("skipping commit {}", &shas[16][..10])),
        "{out:?}"
    );
    no_worktrees_left(&w);

    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let out = w.run(&json_args);
    assert_eq!(out.code(), 1, "{out:?}");
    let again: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(
        again["first_bad_candidates"],
        serde_json::json!([shas[20], shas[21]]),
        "{again}"
    );
    let skipped: Vec<&str> = again["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["commit"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, [shas[16].as_str(), shas[20].as_str()], "{again}");
    assert!(again["first_bad_commit"].is_null(), "{again}");
}

#[test]
fn bad_git_input_is_refused_with_exit_2() {
    let w = Workdir::new();
    let shas = repo(&w);
    let expect = |args: &[&str], words: &str| {
        let out = w.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr().contains(words), "{args:?}: {out:?}");
    };
    expect(
        &["run", "suite.toml", "--commits", "main"],
        "`main` is not a commit range; write it as A..B",
    );
    expect(
        &["run", "suite.toml", "--commits", "nope..main"],
        "`nope` is not a commit",
    );
    expect(
        &[
            "run",
            "suite.toml",
            "--commits",
            &format!("main..{}", shas[3]),
        ],
        "write `",
    );
    let bisect = |good: &str, bad: &str, name: &str| {
        [
            "bisect",
            "suite.toml",
            "--benchmark",
            name,
            "--good",
            good,
            "--bad",
            bad,
        ]
        .map(str::to_owned)
    };
    let b = bisect(&shas[32], &shas[0], "script");
    expect(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        "the wrong way round",
    );
    let b = bisect(&shas[0], &shas[32], "nope");
    expect(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        "no benchmark named `nope` in suite `range`; its benchmarks: script",
    );
    // Nothing was measured.
    let out = w.run(&["history", "--format", "json"]);
    assert_eq!(out.stdout().trim(), "[]", "{out:?}");

    // Outside a git repository.
    let plain = Workdir::new();
    plain.file("suite.toml", SUITE);
    let out = plain.run(&["run", "suite.toml", "--commits", "a..b"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr().contains("is not inside a git repository"),
        "{out:?}"
    );
    let out = plain.run(&[
        "bisect",
        "suite.toml",
        "--benchmark",
        "script",
        "--good",
        "a",
        "--bad",
        "b",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr().contains("is not inside a git repository"),
        "{out:?}"
    );
}

/// Ctrl-C stops at the commit being measured; `--resume` completes that commit's run under its
/// run id and then measures the commits not yet measured, skipping the finished one.
#[test]
fn ctrl_c_and_resume_work_per_commit() {
    use std::time::{Duration, Instant};
    let w = Workdir::with_fs_hot();
    let shas = repo(&w);
    let log = w.path().join("runs.log");
    w.file(
        "slow.toml",
        &format!(
            r#"
            [suite]
            name = "slow"
            [[benchmark]]
            name = "count"
            shell = "sh"
            command = "sleep 0.1; cat n.txt >> {}"
            runs = 5
            "#,
            log.display()
        ),
    );
    let lines = || std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
    let range = format!("{}..{}", shas[29], shas[32]);
    let child = w
        .cmd(&["run", "slow.toml", "--commits", &range])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the second commit has measured a run or two.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = crate::support::Out(child.wait_with_output().unwrap());
    assert_eq!(out.code(), 130, "{out:?}");
    assert!(out.stderr().contains("--resume` continues"), "{out:?}");
    no_worktrees_left(&w);
    let status_of = |runs: &serde_json::Value, sha: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["tags"]["git.commit"] == sha)
            .map(|r| {
                (
                    r["run_id"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    assert_eq!(status_of(&runs, &shas[30])[0].1, "succeeded");
    let (second, status) = status_of(&runs, &shas[31])[0].clone();
    assert_eq!(status, "interrupted");

    let out = w.run(&["run", "slow.toml", "--commits", &range, "--resume"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr()
            .contains("2 to measure, 1 already measured with this suite file (skipped)"),
        "{out:?}"
    );
    assert!(
        out.stderr().contains("resuming its unfinished run"),
        "{out:?}"
    );
    let runs = w.json(&["history", "--format", "json"]);
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs}");
    assert_eq!(
        status_of(&runs, &shas[31]),
        [(second.clone(), "succeeded".into())]
    );
    assert_eq!(status_of(&runs, &shas[32])[0].1, "succeeded");
    // Each commit ends with exactly its 5 runs, the resumed one's counted once.
    let records = crate::support::stored_records(&w);
    let of = |run: &str| records.iter().filter(|r| r["run_id"] == run).count();
    assert_eq!(of(&second), 5, "{records:?}");
    no_worktrees_left(&w);
}

/// When the bad commit is not slower than the good one (the same script at both ends), bisect
/// names no commit: it ends inconclusive (exit 1) with the comparison. Usually it says the ends
/// are alike after `--max-runs` runs per end; on a loaded machine the ends can look different by
/// chance (the between-invocation noise of issue 21), and then the midpoint cannot be told apart
/// from either end, which is inconclusive too. Either way it never blames a commit.
#[test]
fn bisect_is_inconclusive_when_the_ends_do_not_differ() {
    let w = Workdir::new();
    let shas = repo(&w);
    let out = w.run(&[
        "bisect",
        "suite.toml",
        "--benchmark",
        "script",
        "--good",
        &shas[2],
        "--bad",
        &shas[10],
        "--max-runs",
        "6",
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout().starts_with("inconclusive: "), "{out:?}");
    assert!(!out.stdout().contains("first bad commit"), "{out:?}");
    // Every measurement is stored: at least one suite run per end.
    let runs = w.json(&["history", "--format", "json"]);
    assert!(runs.as_array().unwrap().len() >= 2, "{runs}");
    no_worktrees_left(&w);
}
