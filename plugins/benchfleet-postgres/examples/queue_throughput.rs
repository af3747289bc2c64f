//! Claim + complete throughput of the PostgreSQL queue (`--claims K`: each worker stops after K
//! claims, to time claims against a backlog of `--nodes`): `--nodes` independent no-op nodes, and
//! `--workers` workers, each a store of its own (its own pool and liveness lock, as a worker
//! process has), claiming up to `--batch` nodes a transaction and completing them `--complete`
//! at a time (default: the whole claim, as a worker's group commit does when they finish
//! together; `--complete 1`: one transaction per node). Also the enqueue time of the submission.
//!
//! ```text
//! cargo run --release -p benchfleet-postgres --example queue_throughput -- \
//!     postgres://postgres@127.0.0.1:55432/bench --nodes 20000 --workers 8 --batch 32
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use benchfleet_postgres::{PgOptions, PgStore};
use benchfleet_store::{
    Capacity, Completion, Finish, NodeEnd, Queue, QueuedNode, Submission, WorkerInfo,
};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:55432/bench".into());
    let nodes = arg(&args, "--nodes", 20_000);
    let workers = arg(&args, "--workers", 8);
    let batch = arg(&args, "--batch", 32);
    // Stop each worker after this many claims (to time claims against a large backlog).
    let max_claims = arg(&args, "--claims", usize::MAX);
    // Completions per transaction (1: one transaction per node); at most the claim batch.
    let complete_group = arg(&args, "--complete", batch).max(1);
    let schema = format!(
        "qbench_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    );
    let options = PgOptions {
        schema: Some(schema.clone()),
        max_connections: 4,
        ..PgOptions::default()
    };
    let first = Arc::new(
        PgStore::connect(&url, options.clone())
            .await
            .expect("connect"),
    );
    let sub = Submission {
        run: benchfleet_testkit::data::run(1, "qbench", 1),
        suite_text: String::new(),
        source: "queue_throughput".into(),
        keep_going: true,
        nodes: (0..nodes)
            .map(|i| QueuedNode {
                name: format!("n{i}"),
                pool: "default".into(),
                benchmark: false,
                cpus: 0.0,
                memory_bytes: 0,
                needs: Vec::new(),
                rank: i as u32,
                max_attempts: 1,
            })
            .collect(),
    };
    let t = Instant::now();
    first.submit(&sub).await.expect("submit");
    let enqueue = t.elapsed();

    let mut stores = vec![first];
    for _ in 1..workers {
        stores.push(Arc::new(
            PgStore::connect(&url, options.clone())
                .await
                .expect("connect"),
        ));
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let w = WorkerInfo {
                id: format!("bench-{i}"),
                host: "bench".into(),
                machine_class: "mc-bench".into(),
                pools: vec!["default".into()],
                labels: BTreeMap::new(),
                jobs: batch as u32,
                cpus: 1e9,
                memory_bytes: u64::MAX / 2,
            };
            store.register(&w).await.expect("register");
            let cap = Capacity {
                slots: batch,
                cpus: 1e9,
                memory_bytes: u64::MAX / 2,
            };
            let mut done = 0usize;
            let mut claim_ms = Vec::new();
            while claim_ms.len() < max_claims {
                let t = Instant::now();
                let claims = store.claim(&w, cap).await.expect("claim");
                claim_ms.push(t.elapsed().as_secs_f64() * 1e3);
                if claims.is_empty() {
                    break;
                }
                // Completions go in groups of `--complete` (a worker's group commit).
                for group in claims.chunks(complete_group) {
                    let ends: Vec<Finish<'_>> = group
                        .iter()
                        .map(|c| Finish {
                            claim: c,
                            end: &NodeEnd::Succeeded,
                            records: &[],
                        })
                        .collect();
                    for answer in store.complete_many(&w.id, &ends).await.expect("complete") {
                        match answer {
                            Completion::Accepted { .. } => done += 1,
                            Completion::Refused { reason } => panic!("refused: {reason}"),
                        }
                    }
                }
            }
            store.deregister(&w.id).await.expect("deregister");
            (done, claim_ms)
        }));
    }
    let mut total = 0;
    let mut claim_ms = Vec::new();
    for t in tasks {
        let (done, ms) = t.await.expect("worker task");
        total += done;
        claim_ms.extend(ms);
    }
    let secs = t.elapsed().as_secs_f64();
    claim_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| claim_ms[((claim_ms.len() - 1) as f64 * p).round() as usize];
    if max_claims == usize::MAX {
        assert_eq!(total, nodes, "every node completed once");
    }
    println!(
        "{{\"nodes\": {nodes}, \"workers\": {workers}, \"batch\": {batch}, \"complete\": {complete_group}, \"enqueue_s\": {:.3}, \"claim_complete_s\": {secs:.3}, \"nodes_per_s\": {:.0}, \"claim_ms_p50\": {:.2}, \"claim_ms_p95\": {:.2}}}",
        enqueue.as_secs_f64(),
        total as f64 / secs,
        pct(0.5),
        pct(0.95)
    );
    if args.iter().any(|a| a == "--keep") {
        println!("kept schema {schema}");
        return;
    }
    let admin = sqlx::PgPool::connect(&url).await.expect("admin");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await;
}
