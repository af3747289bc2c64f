//! End-to-end launcher overhead: run a command N times through `benchfleet_metrics::run` and
//! print the total wall time, to compare with `hyperfine -N --runs N <command>`.
//!
//! ```text
//! cargo build --release -p benchfleet-metrics --example overhead
//! time target/release/examples/overhead 1000 true
//! time hyperfine -N --runs 1000 true
//! ```
//!
//! What a suite's runner looks like to the launcher (`-j 2`: every job pinned; a job with a
//! `memory` resource limited; a heap and several threads): `BENCHFLEET_PIN=0`,
//! `BENCHFLEET_LIMIT_MB=512`, `BENCHFLEET_HEAP_MB=64`, `BENCHFLEET_THREADS=4:1`, e.g.
//!
//! ```text
//! BENCHFLEET_PIN=0 BENCHFLEET_HEAP_MB=64 BENCHFLEET_THREADS=4:1 target/release/examples/overhead 2000 true
//! ```

use std::time::Instant;

use benchfleet_metrics::{ProcessSpec, run};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let program = args.next().unwrap_or_else(|| "true".into());
    let rest: Vec<String> = args.collect();
    let mut spec = ProcessSpec::new(program, rest);
    // `BENCHFLEET_PIN=0,1`: pin every run to these CPUs; `BENCHFLEET_LIMIT_MB=N`: a memory limit.
    if let Ok(cpus) = std::env::var("BENCHFLEET_PIN") {
        spec.cpus = Some(cpus.split(',').filter_map(|c| c.parse().ok()).collect());
    }
    if let Some(mb) = std::env::var("BENCHFLEET_LIMIT_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        spec.memory_limit = Some(mb << 20);
    }
    // `BENCHFLEET_HEAP_MB=N`: N MiB of touched heap in this process, as a runner holding a
    // suite has (what a fork must copy the page tables of).
    let heap: Vec<u8> = std::env::var("BENCHFLEET_HEAP_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or_else(Vec::new, |mb| vec![1u8; mb << 20]);
    // `BENCHFLEET_STDERR_TAIL=0` measures the cost of the stderr memory file.
    if let Some(tail) = std::env::var("BENCHFLEET_STDERR_TAIL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        spec.stderr_tail = tail;
    }
    // `BENCHFLEET_BASELINE=std|std-pgroup`: a bare std::process::Command loop (what hyperfine
    // does, without any measurement), to separate launcher cost from the cost of spawning at all.
    if let Ok(mode) = std::env::var("BENCHFLEET_BASELINE") {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let start = Instant::now();
        for _ in 0..runs {
            let mut cmd = Command::new(&spec.program);
            cmd.args(&spec.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if mode == "std-pgroup" {
                cmd.process_group(0);
            }
            let _ = cmd.status();
        }
        println!(
            "{runs} runs in {:.3} s end-to-end ({mode} baseline)",
            start.elapsed().as_secs_f64()
        );
        return;
    }
    // `BENCHFLEET_PAD=1`: a random environment padding per run (as `bench` does);
    // `BENCHFLEET_KILL=1`: runs are cancellable (a pidfd is polled, as in `bench`).
    let mut env =
        std::env::var_os("BENCHFLEET_PAD").map(|_| benchfleet_metrics::EnvRandomizer::new(1, 4096));
    let kill = std::env::var_os("BENCHFLEET_KILL").map(|_| benchfleet_metrics::Kill::new());
    // `BENCHFLEET_THREADS=N:MS`: N other threads that wake every MS milliseconds (a runtime's
    // workers, a storing thread), to see what sharing the address space costs the spawns.
    if let Some((n, ms)) = std::env::var("BENCHFLEET_THREADS").ok().and_then(|v| {
        let (n, ms) = v.split_once(':')?;
        Some((n.parse::<u32>().ok()?, ms.parse::<u64>().ok()?))
    }) {
        for _ in 0..n {
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            });
        }
    }
    let start = Instant::now();
    let (mut wall, mut spawn, mut failures) = (0u128, 0u128, 0u32);
    for _ in 0..runs {
        if let Some(e) = &mut env {
            spec.env_padding = Some(e.next_padding());
        }
        let r = match &kill {
            Some(k) => benchfleet_metrics::run_cancellable(&spec, k),
            None => run(&spec),
        };
        wall += u128::from(r.measurement.wall_ns);
        spawn += u128::from(r.spawn_ns);
        failures += u32::from(!r.outcome.is_success());
    }
    let total = start.elapsed();
    std::hint::black_box(&heap);
    let n = u128::from(runs.max(1));
    println!(
        "{runs} runs in {:.3} s end-to-end; mean measured wall {:.1} µs, mean spawn {:.1} µs, {failures} failed",
        total.as_secs_f64(),
        wall as f64 / n as f64 / 1e3,
        spawn as f64 / n as f64 / 1e3,
    );
}
