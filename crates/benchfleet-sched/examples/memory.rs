//! Scheduler memory per node at 1,000,000 nodes (issue 3, benchmark 4).
//!
//! A counting global allocator measures heap bytes requested (live and peak) for: the `Dag` of
//! zero-sized no-op tasks (each node 0-3 random earlier dependencies), the `Readiness` core, and a
//! whole `run` (peak while running, above the DAG). RSS from /proc/self/statm is printed as a
//! cross-check (it includes allocator overhead and freed-but-kept pages).
//!
//! `CARGO_TARGET_DIR=... cargo run --release -p benchfleet-sched --example memory`

#[path = "../benches/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use benchfleet_sched::{Options, Readiness, TaskOutcome, run};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let now = if new_size >= layout.size() {
                LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size()
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed)
                    - (layout.size() - new_size)
            };
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NODES: usize = 1_000_000;

fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn per_node(bytes: usize) -> f64 {
    bytes as f64 / NODES as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base_live = LIVE.load(Ordering::Relaxed);
    let base_rss = rss();
    let dag = support::random_dag(NODES, 1);
    let dag_live = LIVE.load(Ordering::Relaxed) - base_live;
    let dag_rss = rss().saturating_sub(base_rss);
    println!("{NODES} nodes, {} edges", dag.edge_count());
    println!(
        "Dag (no-op tasks):         {:>7.1} bytes/node heap ({:.1} by RSS)",
        per_node(dag_live),
        per_node(dag_rss)
    );

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let ready = Readiness::new(&dag).unwrap();
    let ready_live = LIVE.load(Ordering::Relaxed) - before;
    let ready_peak = PEAK.load(Ordering::Relaxed) - before;
    println!(
        "Readiness:                 {:>7.1} bytes/node live, {:.1} peak while building",
        per_node(ready_live),
        per_node(ready_peak)
    );
    drop(ready);

    let before = LIVE.load(Ordering::Relaxed);
    let rss_before = rss();
    let mut worst = 0;
    for (label, yields) in [
        ("run, inline attempts", false),
        ("run, spawned attempts", true),
    ] {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let summary = rt
            .block_on(run(
                &dag,
                &Options::default(),
                move |_, _| async move {
                    if yields {
                        tokio::task::yield_now().await;
                    }
                    TaskOutcome::Succeeded
                },
                |_| {},
            ))
            .unwrap();
        let peak = PEAK.load(Ordering::Relaxed) - before;
        worst = worst.max(peak);
        assert!(summary.all_succeeded());
        let kept = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "{label:<26} {:>7.1} bytes/node peak above the Dag (RunSummary kept: {:.1})",
            per_node(peak),
            per_node(kept)
        );
        drop(summary);
    }
    println!(
        "RSS growth during the runs: {:.1} bytes/node",
        per_node(rss().saturating_sub(rss_before))
    );
    println!(
        "scheduler total (Dag + peak run state): {:.1} bytes/node (target <= 256)",
        per_node(dag_live + worst)
    );
}
