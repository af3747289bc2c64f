//! Scheduler benchmarks (issue 3): per-task overhead on a 100,000-node random DAG of no-op tasks
//! next to bare tokio spawn + join of as many tasks, and ready-node detection on 10,000 nodes.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p benchfleet-sched --bench sched`
//! Per-task time = reported time / elements (criterion also prints elements/s).

#[path = "support/mod.rs"]
mod generator;

use std::hint::black_box;

use benchfleet_sched::{Options, Placement, Readiness, TaskOutcome, run};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use generator::random_dag;

const N: usize = 100_000;

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dag = random_dag(N, 42);
    let mut g = c.benchmark_group("noop_100k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));

    g.bench_function("tokio_spawn_join", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| tokio::spawn(async move { black_box(i) }))
                    .collect();
                for h in handles {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    g.bench_function("tokio_joinset", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..N {
                    set.spawn(async move { black_box(i) });
                }
                while let Some(r) = set.join_next().await {
                    black_box(r.unwrap());
                }
            })
        })
    });
    g.bench_function("tokio_spawn_join_yield", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| {
                        tokio::spawn(async move {
                            tokio::task::yield_now().await;
                            black_box(i)
                        })
                    })
                    .collect();
                for h in handles {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    let cores = Options::default().concurrency;
    for concurrency in [cores, 64, 1024] {
        let options = Options {
            concurrency,
            ..Options::default()
        };
        // Ready at the first poll: completes inline, no spawn.
        g.bench_function(format!("sched_dag_j{concurrency}"), |b| {
            b.iter(|| {
                let s = rt
                    .block_on(run(
                        &dag,
                        &options,
                        |_, _| async { TaskOutcome::Succeeded },
                        |e| {
                            black_box(e);
                        },
                    ))
                    .unwrap();
                assert!(s.all_succeeded());
            })
        });
        // Yields once: the first poll is Pending, so every attempt is polled again later (by the
        // scheduler's task: Placement::Local, the default).
        g.bench_function(format!("sched_dag_yield_j{concurrency}"), |b| {
            b.iter(|| {
                let s = rt
                    .block_on(run(
                        &dag,
                        &options,
                        |_, _| async {
                            tokio::task::yield_now().await;
                            TaskOutcome::Succeeded
                        },
                        |e| {
                            black_box(e);
                        },
                    ))
                    .unwrap();
                assert!(s.all_succeeded());
            })
        });
        // The same, with every pending attempt `tokio::spawn`ed (Placement::Spawned).
        let spawned = Options {
            placement: Placement::Spawned,
            ..options.clone()
        };
        g.bench_function(format!("sched_dag_yield_spawned_j{concurrency}"), |b| {
            b.iter(|| {
                let s = rt
                    .block_on(run(
                        &dag,
                        &spawned,
                        |_, _| async {
                            tokio::task::yield_now().await;
                            TaskOutcome::Succeeded
                        },
                        |e| {
                            black_box(e);
                        },
                    ))
                    .unwrap();
                assert!(s.all_succeeded());
            })
        });
    }
    g.finish();
}

fn readiness(c: &mut Criterion) {
    let dag = random_dag(10_000, 7);
    let mut g = c.benchmark_group("ready_10k");
    g.throughput(Throughput::Elements(dag.len() as u64));
    // Whole synchronous schedule: build counters and priorities, then pop + complete every node.
    g.bench_function("new_pop_complete_all", |b| {
        b.iter(|| {
            let mut r = Readiness::new(&dag).unwrap();
            let mut done = 0;
            while let Some(id) = r.pop() {
                r.complete(&dag, id);
                done += 1;
            }
            assert_eq!(done, dag.len());
        })
    });
    g.finish();
}

criterion_group!(benches, overhead, readiness);
criterion_main!(benches);
