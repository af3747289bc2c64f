//! The scenario suites of `config/examples/` (issue 19), at a small size: `vcs.toml` (git on
//! three generated repositories, jj through a tool matrix or skipped with the reason),
//! `dag-shapes/` (generated shapes: plan's numbers, scale, data passed between nodes) and the
//! sweep with replay (`sweep.toml` against `sweep-recompute.toml`, and the cache on a rerun).

use std::path::{Path, PathBuf};

use crate::support::{Out, Workdir};

/// `config/examples/` of this repository.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples")
}

/// Copy `names` (files or directories) of `config/examples/` into the same place under `w`, so
/// that the suites' relative paths work there.
fn copy_examples(w: &Workdir, names: &[&str]) {
    fn copy(from: &Path, to: &Path) {
        if from.is_dir() {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                copy(&e.path(), &to.join(e.file_name()));
            }
        } else {
            std::fs::copy(from, to).unwrap();
        }
    }
    let dest = w.path().join("config/examples");
    std::fs::create_dir_all(&dest).unwrap();
    for name in names {
        copy(&examples().join(name), &dest.join(name));
    }
}

/// Replace `from` by `to` in the copied suite `name`; `from` must be there (so the test notices
/// when the suite changes shape).
fn shrink(w: &Workdir, name: &str, from: &str, to: &str) {
    let path = w.path().join("config/examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{name} no longer contains {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// A directory of links to the programs the vcs suite runs (and nothing else: no `jj`), for
/// `PATH`.
fn tool_dir(w: &Workdir) -> PathBuf {
    let bin = w.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["sh", "git", "awk", "cp", "rm", "date", "cat", "mkdir"] {
        let found = std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{tool}` is not on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    bin
}

/// `benchfleet ARGS` in `w` with `bin` as the whole `PATH`.
fn run_with_path(w: &Workdir, bin: &Path, args: &[&str]) -> Out {
    Out(w
        .cmd(args)
        .env("PATH", bin)
        .output()
        .expect("run benchfleet"))
}

fn names_in(show: &serde_json::Value) -> Vec<String> {
    show["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The tags of the latest stored run.
fn latest_run_tags(w: &Workdir) -> serde_json::Value {
    let runs = w.json(&["history", "--format", "json"]);
    let runs = runs.as_array().expect("runs");
    runs.iter()
        .max_by_key(|r| r["run_id"].as_str().unwrap().to_owned())
        .expect("a run")["tags"]
        .clone()
}

#[test]
fn vcs_measures_git_on_three_sizes_and_jj_only_when_it_is_on_path() {
    let w = Workdir::new();
    copy_examples(&w, &["vcs.toml", "vcs"]);
    // Each size's COMMITS FILES BYTES, down to 6 commits of 5 files of 200 bytes.
    for line in ["100 100 1024", "1000 1000 4096", "5000 10000 4096"] {
        shrink(
            &w,
            "vcs.toml",
            &format!("{{out}}/repo {line}\""),
            "{out}/repo 6 5 200\"",
        );
    }
    shrink(
        &w,
        "vcs.toml",
        "warmup = 1\nmin_runs = 5\nmin_time = \"1s\"",
        "runs = 2",
    );
    let bin = tool_dir(&w);
    // plan says what this machine cannot run.
    let plan = run_with_path(&w, &bin, &["plan", "config/examples/vcs.toml"]);
    assert_eq!(plan.code(), 0, "{plan:?}");
    assert!(
        plan.stdout()
            .contains("skipped here: 21 nodes, for want of jj on PATH"),
        "{plan:?}"
    );

    // Without jj: git is measured on every size, every jj node is skipped with the reason, and
    // that is not a failure.
    let out = run_with_path(&w, &bin, &["run", "config/examples/vcs.toml"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let err = out.stderr();
    for line in [
        "SKIPPED jj-small: requires `jj`, which is not on PATH",
        "SKIPPED status-jj-large: requires `jj`, which is not on PATH",
        "SKIPPED commit-jj-medium: requires `jj`, which is not on PATH",
    ] {
        assert!(err.contains(line), "{line:?} missing: {out:?}");
    }
    assert!(!err.contains("FAILED"), "{out:?}");
    let show = w.json(&["show", "latest", "--format", "json"]);
    let mut names = names_in(&show);
    names.sort();
    let mut expected: Vec<String> = ["git-small", "git-medium", "git-large"]
        .map(String::from)
        .to_vec();
    for op in ["status", "log", "diff", "blame", "checkout", "commit"] {
        for size in ["small", "medium", "large"] {
            expected.push(format!("{op}-git-{size}"));
        }
    }
    expected.sort();
    assert_eq!(names, expected);
    let tags = latest_run_tags(&w);
    assert_eq!(tags["requires.missing"], "jj", "{tags}");
    // 3 jj preparation jobs and 6 operations x 3 sizes.
    assert_eq!(tags["requires.skipped"], "21", "{tags}");

    // The generated repositories are what the suite says: 6 commits on main, a branch `other`.
    let repo = w.path().join(".benchfleet/out/vcs/git-medium/repo");
    let log = std::process::Command::new("git")
        .args(["-C", repo.to_str().unwrap(), "rev-list", "--count", "main"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "6");

    // With a `jj` on PATH (a stand-in that succeeds), the jj side of the tool matrix runs too.
    std::fs::write(bin.join("jj"), "#!/bin/sh\nexit 0\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("jj"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run_with_path(&w, &bin, &["run", "config/examples/vcs.toml"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stderr().contains("SKIPPED"), "{out:?}");
    let names = names_in(&w.json(&["show", "latest", "--format", "json"]));
    assert!(names.contains(&"jj-large".to_owned()), "{names:?}");
    assert!(names.contains(&"blame-jj-small".to_owned()), "{names:?}");
    // The git side is unchanged, so it was cached rather than run again.
    assert!(!names.contains(&"status-git-small".to_owned()), "{names:?}");
    assert!(latest_run_tags(&w).get("requires.missing").is_none());
}

/// Run `dag-shapes/gen.sh ARGS` and return the suite it prints.
fn generate(args: &[&str]) -> String {
    let out = std::process::Command::new("sh")
        .arg(examples().join("dag-shapes/gen.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dag_shapes_are_what_their_generator_makes_and_plan_reports_their_shape() {
    let w = Workdir::new();
    // The committed suites are the generator's output, and plan reads each one's shape.
    for (file, args, facts) in [
        (
            "small.toml",
            &["layered", "50"][..],
            &[
                "50 nodes, 78 edges",
                "critical path: 8 nodes",
                "maximum width: 7",
                "theoretical speedup: 6.25x",
            ][..],
        ),
        (
            "large.toml",
            &["layered", "2000"],
            &["2000 nodes", "critical path: 46 nodes", "maximum width: 44"],
        ),
        (
            "wide.toml",
            &["wide", "1000"],
            &[
                "1002 nodes, 2000 edges",
                "critical path: 3 nodes",
                "maximum width: 1000",
                "theoretical speedup: 334.00x",
                "speedup at -j 2: 1.99x to 2.00x",
            ],
        ),
        (
            "deep.toml",
            &["deep", "1000"],
            &[
                "1000 nodes, 999 edges",
                "critical path: 1000 nodes: c00000 -> c00001",
                "(990 more)",
                "maximum width: 1",
                "theoretical speedup: 1.00x",
                "speedup at -j 2: 1.00x to 1.00x",
            ],
        ),
        (
            "mixed.toml",
            &["mixed", "10"],
            &[
                "31 nodes, 50 edges",
                "critical path: 4 nodes",
                "maximum width: 10",
            ],
        ),
    ] {
        let path = examples().join("dag-shapes").join(file);
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == generate(args),
            "{file} differs from `gen.sh {}`: regenerate it",
            args.join(" ")
        );
        let out = w.run(&["plan", path.to_str().unwrap(), "--jobs", "1,2"]);
        assert_eq!(out.code(), 0, "{out:?}");
        for fact in facts {
            assert!(out.stdout().contains(fact), "{file}: {fact:?}: {out:?}");
        }
        assert!(
            out.stdout().contains("speedup at -j 1: 1.00x to 1.00x"),
            "{out:?}"
        );
    }
    // Bad arguments: exit 2 with what is wrong.
    let bad = std::process::Command::new("sh")
        .arg(examples().join("dag-shapes/gen.sh"))
        .args(["round", "5"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown shape 'round'"));
}

#[test]
fn dag_shapes_run_at_a_small_size_scale_and_pass_data_between_nodes() {
    let w = Workdir::new();
    // Small shapes with little work per node: scale runs each at -j 1 and -j 2.
    for (name, args, nodes) in [
        ("wide.toml", &["wide", "6", "1000"][..], 8),
        ("deep.toml", &["deep", "5", "1000"], 5),
        ("layered.toml", &["layered", "12", "1000"], 12),
    ] {
        let suite = w.file(name, &generate(args));
        let out = w.run(&[
            "scale",
            suite.to_str().unwrap(),
            "--jobs",
            "1,2",
            "--format",
            "json",
        ]);
        assert_eq!(out.code(), 0, "{name}: {out:?}");
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        let levels = v["levels"].as_array().unwrap();
        assert_eq!(levels.len(), 2, "{v}");
        for level in levels {
            let run = level["run_id"].as_str().unwrap();
            let show = w.json(&["show", run, "--format", "json"]);
            assert_eq!(names_in(&show).len(), nodes, "{name} at {level}");
        }
    }
    // Mixed: real data through {out.NAME}; sizes divided by 1000 (1 B to 50 KB).
    let suite = w.file("mixed.toml", &generate(&["mixed", "5", "1000"]));
    let out = w.run(&["run", suite.to_str().unwrap(), "-j", "2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let sums =
        std::fs::read_to_string(w.path().join(".benchfleet/out/dag-mixed-5/collect/sums")).unwrap();
    // Two checksums per sum job: of the gunzipped data and of its producer's data.
    assert_eq!(sums.lines().count(), 10, "{sums}");
    let big = w.path().join(".benchfleet/out/dag-mixed-5/make004/data");
    assert_eq!(std::fs::metadata(big).unwrap().len(), 50_000);
}

#[test]
fn the_sweep_replays_cached_signals_and_a_changed_value_reruns_only_its_combinations() {
    let w = Workdir::new();
    copy_examples(&w, &["sweep.toml", "sweep-recompute.toml", "sweep"]);
    let full = "matrix = { fast = [5, 10, 20, 30, 50], slow = [60, 80, 100, 150, 200], fee = [0.0005, 0.001, 0.002, 0.003], stop = [0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 1.0] }";
    let small =
        "matrix = { fast = [5, 10], slow = [60, 80], fee = [0.001, 0.002], stop = [0.05, 1.0] }";
    for f in ["sweep.toml", "sweep-recompute.toml"] {
        shrink(&w, f, full, small);
        shrink(&w, f, "n=5000", "n=400");
    }
    // The suites as committed have at least 1,000 combinations.
    let plan = w.run(&["plan", examples().join("sweep.toml").to_str().unwrap()]);
    assert!(plan.stdout().contains("1002 nodes"), "{plan:?}");

    let run = |suite: &str| {
        let out = w.run(&["run", suite, "-j", "2"]);
        assert_eq!(out.code(), 0, "{out:?}");
        out.stderr()
    };
    // 16 combinations, prices and signals.
    let err = run("config/examples/sweep.toml");
    assert!(err.contains("(succeeded): 18 records stored"), "{err}");
    // Unchanged: everything comes from the cache.
    let err = run("config/examples/sweep.toml");
    assert!(err.contains("(succeeded): 0 records stored"), "{err}");
    // One stop value changed: only its 8 combinations run; prices, signals and the other 8 are
    // cache hits.
    shrink(&w, "sweep.toml", "stop = [0.05, 1.0]", "stop = [0.05, 0.5]");
    let err = run("config/examples/sweep.toml");
    assert!(err.contains("(succeeded): 8 records stored"), "{err}");
    let show = w.json(&["show", "latest", "--format", "json"]);
    assert!(
        names_in(&show).iter().all(|n| n.ends_with("-0.5")),
        "{show}"
    );

    // The recompute variant gets the same results, computing the signals in every combination:
    // 2 moving averages in each of 16 nodes, where replay computed each of 10 windows once.
    run("config/examples/sweep-recompute.toml");
    let out = w.path().join(".benchfleet/out");
    let read = |suite: &str, node: &str| {
        std::fs::read_to_string(out.join(suite).join(node).join("result")).unwrap()
    };
    for node in ["eval-5-60-0.001-0.05", "eval-10-80-0.002-0.05"] {
        let replayed = read("sweep", node);
        assert!(replayed.contains("return"), "{replayed}");
        assert_eq!(replayed, read("sweep-recompute", node), "{node}");
    }
    let count_ma = |dir: &Path| {
        walk(dir)
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ma-"))
            })
            .count()
    };
    assert_eq!(count_ma(&out.join("sweep")), 10);
    assert_eq!(count_ma(&out.join("sweep-recompute")), 32);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_bad_requires_value_is_refused_with_exit_2_naming_the_node() {
    let w = Workdir::new();
    let suite = w.file(
        "s.toml",
        "[suite]\nname = \"r\"\n[[job]]\nname = \"prep\"\ncommand = \"true\"\nrequires = [\"jj git\"]\n",
    );
    let out = w.run(&["run", suite.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
    let err = out.stderr();
    assert!(err.contains("s.toml"), "{out:?}");
    assert!(err.contains("job `prep`"), "{out:?}");
    assert!(err.contains("`requires` value \"jj git\""), "{out:?}");
    assert!(!w.path().join(".benchfleet").exists(), "nothing ran");
}
