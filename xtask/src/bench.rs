//! `cargo xtask bench <name>`: benchmarks that compare benchfleet with the tool a user would pick
//! instead, side by side in the same run. Results are printed as ratios; `docs/BENCHMARKS.md`
//! records them with these commands.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("dag-vs-ninja") => {
            let nodes = sizes(args, "--nodes", &[10_000])?;
            let rounds = arg(args, "--rounds", 3)?;
            let jobs = arg(args, "--jobs", 2)?;
            dag_vs_ninja(&nodes, rounds, jobs)
        }
        Some("verdicts") => verdicts(
            arg(args, "--pairs", 210)?,
            arg(args, "--iterations", 300_000)?,
            args.iter()
                .position(|a| a == "--invocations")
                .and_then(|i| args.get(i + 1))
                .map_or("3,5", String::as_str),
            args.iter()
                .position(|a| a == "--out")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str),
        ),
        _ => bail!(
            "usage: cargo xtask bench dag-vs-ninja [--nodes N[,N...]] [--rounds R] [--jobs J]\n       cargo xtask bench verdicts [--pairs 210] [--iterations 300000] [--invocations 3,5] [--out DIR]"
        ),
    }
}

/// A comma-separated list of sizes (`1000,10000,100000`).
fn sizes(args: &[String], name: &str, default: &[usize]) -> Result<Vec<usize>> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context(format!("{name} needs a value"))?
            .split(',')
            .map(|n| {
                n.trim().replace('_', "").parse().context(format!(
                    "{name} takes numbers separated by commas, not `{n}`"
                ))
            })
            .collect(),
        None => Ok(default.to_vec()),
    }
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context(format!("{name} needs a value"))?
            .parse()
            .context(format!("{name} takes a number")),
        None => Ok(default),
    }
}

/// A deterministic random DAG: node i depends on up to 3 distinct random earlier nodes.
pub fn random_dag(nodes: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    (0..nodes)
        .map(|i| {
            if i == 0 {
                return Vec::new();
            }
            let k = (next() % 4) as usize;
            let mut deps: Vec<usize> = (0..k).map(|_| (next() as usize) % i).collect();
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect()
}

/// The same DAG as a benchfleet suite (every node a `touch` of its own file) and a build.ninja.
pub fn write_dag(dir: &Path, dag: &[Vec<usize>]) -> Result<()> {
    let mut suite = String::from("[suite]\nname = \"dag\"\n[defaults]\ncache = false\n");
    let mut ninja = String::from("rule touch\n  command = touch $out\n");
    for (i, deps) in dag.iter().enumerate() {
        suite.push_str(&format!(
            "[[job]]\nname = \"n{i}\"\ncommand = [\"touch\", \"out/n{i}\"]\n"
        ));
        if !deps.is_empty() {
            let needs: Vec<String> = deps.iter().map(|d| format!("\"n{d}\"")).collect();
            suite.push_str(&format!("needs = [{}]\n", needs.join(", ")));
        }
        let inputs: Vec<String> = deps.iter().map(|d| format!("out/n{d}")).collect();
        ninja.push_str(&format!("build out/n{i}: touch | {}\n", inputs.join(" ")));
    }
    ninja.push_str("default");
    for i in 0..dag.len() {
        ninja.push_str(&format!(" out/n{i}"));
    }
    ninja.push('\n');
    std::fs::write(dir.join("suite.toml"), suite)?;
    std::fs::write(dir.join("build.ninja"), ninja)?;
    Ok(())
}

/// One timed process: wall time and its own peak resident set (`wait4`'s `ru_maxrss`).
struct Timed {
    wall: Duration,
    peak_rss_kib: u64,
}

fn timed(mut cmd: Command, what: &str) -> Result<Timed> {
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start {what}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers are to live locals. std's `Child` never
    // waits on drop, so the pid is reaped exactly once, here.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if reaped != pid {
        bail!("waiting for {what}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{what} failed (wait status {status})");
    }
    Ok(Timed {
        wall,
        peak_rss_kib: usage.ru_maxrss as u64,
    })
}

fn dag_vs_ninja(sizes: &[usize], rounds: usize, jobs: usize) -> Result<()> {
    if Command::new("ninja").arg("--version").output().is_err() {
        bail!("ninja is not installed: `apt-get install ninja-build`");
    }
    crate::run({
        let mut c = crate::cargo();
        c.args(["build", "--release", "-p", "benchfleet-cli"]);
        c
    })?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = std::fs::canonicalize(Path::new(&target).join("release/benchfleet"))?;
    let jobs_arg = jobs.to_string();
    let mut summary = Vec::new();
    for &nodes in sizes {
        let dag = random_dag(nodes, 42);
        let edges: usize = dag.iter().map(Vec::len).sum();
        println!("random DAG: {nodes} nodes, {edges} edges; both tools run {jobs} jobs at a time");
        let mut ratios = Vec::new();
        let mut per_node_us = Vec::new();
        let mut rss = Vec::new();
        for round in 1..=rounds {
            // Alternate which tool goes first, so drift on a shared machine hits both alike.
            let mut times = [Duration::ZERO; 2];
            for which in if round % 2 == 1 { [0, 1] } else { [1, 0] } {
                let dir = tempfile::tempdir()?;
                write_dag(dir.path(), &dag)?;
                std::fs::create_dir(dir.path().join("out"))?;
                let mut cmd = if which == 0 {
                    let mut c = Command::new("ninja");
                    c.args(["-j", &jobs_arg, "--quiet"]);
                    c
                } else {
                    let mut c = Command::new(&bin);
                    c.args(["run", "suite.toml", "-j", &jobs_arg, "--progress", "none"]);
                    c
                };
                cmd.current_dir(dir.path())
                    .stdout(std::process::Stdio::null());
                let what = if which == 0 { "ninja" } else { "benchfleet" };
                let t = timed(cmd, what)?;
                times[which] = t.wall;
                if which == 1 {
                    rss.push(t.peak_rss_kib);
                }
                let made = std::fs::read_dir(dir.path().join("out"))?.count();
                if made != nodes {
                    bail!("{what}: expected {nodes} outputs, found {made}");
                }
            }
            let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
            per_node_us.push(times[1].as_secs_f64() * 1e6 / nodes as f64);
            println!(
                "round {round}: ninja {:.2} s, benchfleet {:.2} s (peak RSS {} KiB), ratio benchfleet/ninja {ratio:.2}",
                times[0].as_secs_f64(),
                times[1].as_secs_f64(),
                rss.last().copied().unwrap_or(0),
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        per_node_us.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let us = per_node_us[per_node_us.len() / 2];
        let peak = rss.iter().copied().max().unwrap_or(0);
        println!(
            "{nodes} nodes: median ratio benchfleet/ninja {median:.2} (≤ 1.0 means benchfleet is as fast or faster), {us:.0} µs per node, peak RSS {peak} KiB ({:.2} KiB per node)",
            peak as f64 / nodes as f64
        );
        summary.push((nodes, median, us, peak));
    }
    if summary.len() > 1 {
        println!(
            "\n| nodes | median benchfleet/ninja | benchfleet µs per node | benchfleet peak RSS |"
        );
        println!("|---|---|---|---|");
        for (nodes, median, us, peak) in summary {
            println!(
                "| {nodes} | {median:.2}× | {us:.0} | {:.1} MiB |",
                peak as f64 / 1024.0
            );
        }
    }
    Ok(())
}

/// Issue 21's verdict rates on this machine (docs/STATISTICS.md): `pairs` rounds of a separate
/// `bench` of a fixed CPU loop (`awk`, `iterations` iterations), a separate one of the loop with
/// 10% more iterations, and one head-to-head `bench --reference` of both and the loop again; then
/// every comparison through the release binary's `compare` (one invocation a side, and each
/// of the comma-separated `invocations` counts a side) and the head-to-head verdicts from the exports, tallied. The files
/// stay in `out` (default: a directory under the target directory) to be re-tallied with
/// `xtask/scripts/verdicts.py BIN OUT`.
fn verdicts(pairs: usize, iterations: usize, invocations: &str, out: Option<&str>) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    let mut build = crate::cargo();
    build.current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "benchfleet-cli",
        "--no-default-features",
    ]);
    crate::run(build)?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("release/benchfleet");
    let out = out.map_or_else(|| target.join("verdicts"), std::path::PathBuf::from);
    let scripts = root.join("xtask/scripts");
    let mut collect = Command::new("sh");
    collect
        .arg(scripts.join("verdicts.sh"))
        .args(["collect"])
        .arg(&bin)
        .arg(&out)
        .args([pairs.to_string(), iterations.to_string()]);
    crate::run(collect)?;
    let mut tally = Command::new("python3");
    tally
        .arg(scripts.join("verdicts.py"))
        .arg(&bin)
        .arg(&out)
        .args(["--invocations", invocations]);
    crate::run(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_dags_point_backwards_and_are_deterministic() {
        let a = random_dag(500, 7);
        assert_eq!(a, random_dag(500, 7));
        assert_ne!(a, random_dag(500, 8));
        for (i, deps) in a.iter().enumerate() {
            assert!(
                deps.len() <= 3 && deps.iter().all(|&d| d < i),
                "node {i}: {deps:?}"
            );
        }
        assert!(a.iter().any(|d| d.len() == 3));
    }

    #[test]
    fn suite_and_ninja_files_describe_the_same_graph() {
        let dir = tempfile::tempdir().unwrap();
        let dag = random_dag(20, 1);
        write_dag(dir.path(), &dag).unwrap();
        let suite = std::fs::read_to_string(dir.path().join("suite.toml")).unwrap();
        let ninja = std::fs::read_to_string(dir.path().join("build.ninja")).unwrap();
        assert_eq!(suite.matches("[[job]]").count(), 20);
        assert_eq!(ninja.matches("build out/").count(), 20);
        let edges: usize = dag.iter().map(Vec::len).sum();
        assert_eq!(
            suite.matches("\"n").count() - 20,
            edges,
            "each need names one node"
        );
    }
}
