//! The dashboard's figures (docs/BENCHMARKS.md, "Dashboard"): API latency of a long history,
//! of a compare of two wide runs, and a catalog of many records for a resident-memory check.
//! Synthetic runs are written straight through the facade's storage (no processes measured),
//! then the server runs in this process and is asked over loopback HTTP.
//!
//! ```text
//! cargo run --release -p benchfleet-serve --example dashboard_figures -- history 10000
//! cargo run --release -p benchfleet-serve --example dashboard_figures -- history 10000 --postgres URL
//! cargo run --release -p benchfleet-serve --example dashboard_figures -- compare 1000
//! cargo run --release -p benchfleet-serve --example dashboard_figures -- generate DIR 1000000
//! cargo run --release -p benchfleet-serve --example dashboard_figures -- serve DIR
//! ```
//! `history` and `compare` print p50/p99 over their requests and, with `--hold SECS`, keep
//! serving (for page measurements) on the printed address; `generate` only writes a store under
//! `DIR/.benchfleet`, and `serve DIR` serves it (as `benchfleet serve` would), to read its RSS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use benchfleet::model::{
    HostInfo, Measurement, NodeKind, Outcome, RunId, RunInfo, RunRecord, RunStatus, SCHEMA_VERSION,
    Timestamp,
};
use benchfleet::store::Storage;
use benchfleet::{CatalogChoice, PgSettings, StorageSettings};

fn run_id(i: usize) -> RunId {
    format!("01J{i:023}").parse().expect("a run id")
}

const T0: i64 = 1_780_000_000_000_000_000;

fn run_info(i: usize, suite: &str) -> RunInfo {
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("git.commit".to_owned(), format!("{:040x}", i * 7919));
    tags.insert("machine.class".to_owned(), "mc-figures".to_owned());
    RunInfo {
        schema_version: SCHEMA_VERSION,
        run_id: run_id(i),
        suite: suite.to_owned(),
        started_at: Timestamp(T0 + i as i64 * 60_000_000_000),
        finished_at: Some(Timestamp(T0 + i as i64 * 60_000_000_000 + 30_000_000_000)),
        status: RunStatus::Succeeded,
        host: HostInfo {
            hostname: "figures".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            memory_bytes: 0,
        },
        tags,
        source: "dashboard_figures".into(),
    }
}

/// A deterministic wall time around `base` seconds (a step up at run `step_at`).
fn wall(base: f64, run: usize, it: usize, step_at: usize) -> u64 {
    let noise = ((run * 31 + it * 17) % 100) as f64 / 100.0 * 0.04 - 0.02;
    let level = if run >= step_at { 1.3 } else { 1.0 };
    (base * level * (1.0 + noise) * 1e9) as u64
}

fn record(run: &RunInfo, name: &str, it: usize, wall_ns: u64) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        suite: run.suite.clone(),
        name: name.to_owned(),
        kind: NodeKind::Benchmark,
        command: format!("./bench {name}"),
        parameters: Default::default(),
        iteration: it as u32,
        started_at: Timestamp(run.started_at.0 + it as i64 * 1_000_000_000),
        measurement: Measurement {
            wall_ns,
            user_ns: wall_ns / 2,
            sys_ns: wall_ns / 10,
            max_rss_bytes: 10 << 20,
            ..Default::default()
        },
        outcome: Outcome::Success,
        stderr_tail: None,
        tags: Default::default(),
    }
}

/// `runs` runs of `benchmarks` benchmarks × `iterations` records each.
async fn write_runs(storage: &Storage, runs: usize, benchmarks: usize, iterations: usize) {
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..runs {
        let info = run_info(i, "figures");
        storage.catalog.put_run(&info).await.expect("put_run");
        for b in 0..benchmarks {
            let name = format!("bench-{b:04}");
            for it in 0..iterations {
                batch.push(record(
                    &info,
                    &name,
                    it,
                    wall(0.01 + b as f64 * 1e-5, i, it, runs / 2),
                ));
            }
        }
        if batch.len() >= 5_000 || i + 1 == runs {
            storage.write_records(&batch).await.expect("write_records");
            batch.clear();
        }
        if (i + 1) % (runs / 10).max(1) == 0 {
            eprintln!(
                "  {} runs, {} records written ({:.1?})",
                i + 1,
                (i + 1) * benchmarks * iterations,
                started.elapsed()
            );
        }
    }
}

fn get(addr: &str, path: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, buf.len())
}

/// p50/p99 of `n` requests of `path`: `cold` ones each with a query parameter of its own (the
/// server ignores it, but its response cache cannot answer), else the same request again.
fn time_requests(addr: &str, path: &str, n: usize, cold: bool) {
    let (status, bytes) = get(addr, path);
    assert_eq!(status, 200, "{path}");
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let p = if cold {
                format!("{path}&_={i}")
            } else {
                path.to_owned()
            };
            let t = Instant::now();
            let (st, _) = get(addr, &p);
            assert_eq!(st, 200);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "GET {path} ({}): {bytes} bytes, {n} requests: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if cold { "uncached" } else { "cached" },
        q(0.5),
        q(0.99),
        ms[ms.len() - 1]
    );
}

async fn serve(storage: Storage) -> (String, tokio::task::JoinHandle<()>) {
    let opts = benchfleet_serve::ServeOptions::new("127.0.0.1:0".parse().unwrap());
    let server = benchfleet_serve::bind(storage, opts).await.expect("bind");
    let addr = server.local_addr().to_string();
    let h = tokio::spawn(async move {
        server.run(std::future::pending()).await.expect("serve");
    });
    (addr, h)
}

fn arg_after(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("");
    let dir = tempfile::tempdir().unwrap();
    let settings = |root: &std::path::Path| match arg_after(&args, "--postgres") {
        Some(url) => StorageSettings {
            catalog: CatalogChoice::Postgres {
                url,
                options: PgSettings {
                    schema: Some(format!("bffig_{}", std::process::id())),
                    ..Default::default()
                },
            },
            hot: benchfleet::BlobChoice::Fs {
                root: root.join("hot"),
            },
            ..StorageSettings::embedded(root)
        },
        None => StorageSettings::embedded(root),
    };
    let hold = arg_after(&args, "--hold").and_then(|s| s.parse::<u64>().ok());
    match what {
        "history" => {
            let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let storage = benchfleet::open_storage(&settings(dir.path()))
                .await
                .expect("open storage");
            eprintln!("writing {n} runs of one benchmark (3 runs each)");
            write_runs(&storage, n, 1, 3).await;
            let (addr, _h) = serve(storage).await;
            println!("serving on http://{addr}");
            let reqs = if n > 50_000 { 30 } else { 200 };
            let path = "/api/history?benchmark=bench-0000&metric=wall";
            time_requests(&addr, path, reqs, true);
            time_requests(&addr, path, reqs, false);
            // What the History page asks for.
            let columns = "/api/history?benchmark=bench-0000&metric=wall&format=columns";
            time_requests(&addr, columns, reqs, true);
            if let Some(s) = hold {
                tokio::time::sleep(Duration::from_secs(s)).await;
            }
        }
        "compare" => {
            let b: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000);
            let storage = benchfleet::open_storage(&settings(dir.path()))
                .await
                .expect("open storage");
            eprintln!("writing 2 runs of {b} benchmarks (10 runs each)");
            write_runs(&storage, 2, b, 10).await;
            let (addr, _h) = serve(storage).await;
            println!("serving on http://{addr}");
            let (a, c) = (run_id(0), run_id(1));
            let path = format!("/api/compare?a={a}&b={c}");
            time_requests(&addr, &path, 20, true);
            time_requests(&addr, &path, 20, false);
            if let Some(s) = hold {
                tokio::time::sleep(Duration::from_secs(s)).await;
            }
        }
        "generate" => {
            let root = std::path::PathBuf::from(args.get(1).expect("DIR"));
            let n: usize = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000);
            // 100 benchmarks × 10 runs per run: n / 1000 runs.
            let runs = (n / 1000).max(1);
            let storage = benchfleet::open_storage(&settings(&root.join(".benchfleet")))
                .await
                .expect("open storage");
            eprintln!("writing {runs} runs × 100 benchmarks × 10 records");
            write_runs(&storage, runs, 100, 10).await;
        }
        "serve" => {
            // The server alone on DIR/.benchfleet (what `benchfleet serve` runs), for its RSS.
            let root = std::path::PathBuf::from(args.get(1).expect("DIR"));
            let storage = benchfleet::open_storage(&settings(&root.join(".benchfleet")))
                .await
                .expect("open storage");
            let (addr, h) = serve(storage).await;
            println!("serving on http://{addr}");
            let _ = h.await;
        }
        _ => {
            eprintln!(
                "usage: dashboard_figures history N [--postgres URL] [--hold SECS] | compare B | generate DIR N | serve DIR"
            );
            std::process::exit(2);
        }
    }
}
