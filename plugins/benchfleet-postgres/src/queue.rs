//! The fleet's [`Queue`] in PostgreSQL (tables of `migrations/0002_fleet.sql`).
//!
//! - **Readiness in the database.** Completing a node decrements its children's `pending` in the
//!   same transaction; those reaching 0 become `ready`. A final failure skips every waiting
//!   descendant (a recursive query over `bf_fleet_edges`).
//! - **Claims** lock ready rows with `FOR UPDATE SKIP LOCKED`, a batch at a time, from the partial
//!   index of ready nodes in `rank` order (nodes of the worker's affinity first); the worker keeps
//!   the prefix that fits its free CPUs and memory. A claim counts an attempt.
//! - **Liveness.** A worker holds a session-level advisory lock on a connection of its own. When
//!   the process dies (SIGKILL) PostgreSQL drops the session and the lock with it, and the next
//!   `maintain` (every worker runs it about twice a second) takes its claims back once its
//!   heartbeat is older than [`LeaseTimes::dead_after`]; a host that vanishes without closing its
//!   connection is covered by the lease ([`LeaseTimes::lease`]). Both are judged by `now()` of the
//!   server, never a worker's clock.
//! - **Fenced completion.** The update that finishes a node requires the claim's attempt and
//!   worker; the records' entries are inserted in that transaction, or not at all. A retried
//!   completion whose first try committed finds its own result and is accepted again.
//! - **Load.** At most one `NOTIFY` per transaction, and only when a node became ready or a run
//!   ended; workers also poll. The queue tables have autovacuum tuned for churn (see the migration).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, Row};

use benchfleet_model::{RunId, RunStatus};
use benchfleet_store::queue::worker_state;
use benchfleet_store::{
    Capacity, Claim, Completion, ErrorKind, Finish, FleetStatus, LeaseTimes, NodeEnd, PoolStatus,
    Queue, QueuedSuite, RecordEntry, Result, RunProgress, StoreError, Submission, WorkerInfo,
    WorkerStatus,
};

use crate::PgStore;

/// The worker's own connection and the lock it holds on it.
#[derive(Debug)]
pub(crate) struct LockConn {
    worker: String,
    conn: PgConnection,
}

/// First key of the advisory locks: the schema's hash, so stores in several schemas of one
/// database never share a lock.
const LOCK_NS: &str = "hashtext(current_schema() || '.bf_fleet')";

/// How long a failed node waits before its retry may be claimed.
const RETRY_BACKOFF_MS: i64 = 200;

fn channel() -> &'static str {
    "bf_fleet_ready"
}

impl PgStore {
    /// Take the worker's liveness lock on a connection of its own (again, after a reconnect).
    async fn lock_worker(&self, worker: &str) -> std::result::Result<(), sqlx::Error> {
        let mut guard = self.fleet_lock.lock().await;
        if let Some(l) = guard.as_mut()
            && l.worker == worker
            && sqlx::query("SELECT 1").execute(&mut l.conn).await.is_ok()
        {
            return Ok(());
        }
        *guard = None;
        let key: i32 = sqlx::query_scalar("SELECT lock_key FROM bf_fleet_workers WHERE id = $1")
            .bind(worker)
            .fetch_one(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_lock({LOCK_NS}, $1)"
        )))
        .bind(key)
        .execute(&mut conn)
        .await?;
        *guard = Some(LockConn {
            worker: worker.to_owned(),
            conn,
        });
        Ok(())
    }

    fn queue_err(&self, op: &'static str, msg: impl Into<String>) -> StoreError {
        StoreError::new(ErrorKind::Other, self.name.clone(), op, msg)
    }
}

/// Set the catalog's run row to its final status (in the transaction that ended the run), with
/// the machine class its benchmarks were pinned to as its `machine.class` tag.
const FINISH_RUN_ROW: &str = "
UPDATE bf_runs b SET info = jsonb_set(jsonb_set(
    CASE WHEN r.machine_class IS NULL THEN b.info
         ELSE jsonb_set(b.info, '{tags}', COALESCE(b.info->'tags', '{}'::jsonb)
                                          || jsonb_build_object('machine.class', r.machine_class))
    END,
    '{status}', to_jsonb($2::text)), '{finished_at}', to_jsonb($3::int8))
FROM bf_fleet_runs r
WHERE b.run_id = $1 AND r.run_id = b.run_id";

/// Submissions of at least this many nodes refresh the queue tables' statistics.
const ANALYZE_AT: usize = 1000;

/// End the run when nothing of it is waiting, ready or running.
const FINISH_IF_DONE: &str = "
UPDATE bf_fleet_runs r
SET state = CASE WHEN EXISTS (SELECT 1 FROM bf_fleet_nodes n WHERE n.run_id = r.run_id
                              AND n.state IN ('failed', 'skipped', 'cancelled'))
                 THEN 'failed' ELSE 'succeeded' END,
    finished_at = now()
WHERE r.run_id = $1 AND r.state = 'running'
  AND NOT EXISTS (SELECT 1 FROM bf_fleet_nodes n WHERE n.run_id = r.run_id
                  AND n.state IN ('waiting', 'ready', 'running'))
RETURNING r.state";

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

fn run_status(state: &str) -> RunStatus {
    match state {
        "succeeded" => RunStatus::Succeeded,
        "cancelled" => RunStatus::Interrupted,
        _ => RunStatus::Failed,
    }
}

async fn finish_if_done(
    tx: &mut PgConnection,
    run: &str,
) -> std::result::Result<Option<RunStatus>, sqlx::Error> {
    let state: Option<String> = sqlx::query_scalar(FINISH_IF_DONE)
        .bind(run)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(state) = state else { return Ok(None) };
    let status = run_status(&state);
    sqlx::query(FINISH_RUN_ROW)
        .bind(run)
        .bind(status.as_str())
        .bind(now_nanos())
        .execute(&mut *tx)
        .await?;
    Ok(Some(status))
}

#[async_trait]
impl Queue for PgStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn submit(&self, sub: &Submission) -> Result<()> {
        let run = &sub.run;
        let info = serde_json::to_string(run)
            .map_err(|e| self.queue_err("submit", format!("run row: {e}")))?;
        let n = sub.nodes.len();
        let (mut idx, mut name, mut pool, mut bench) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut cpus, mut mem, mut rank, mut attempts, mut pending) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut parents, mut children) = (Vec::new(), Vec::new());
        for (i, q) in sub.nodes.iter().enumerate() {
            idx.push(i as i32);
            name.push(q.name.as_str());
            pool.push(q.pool.as_str());
            bench.push(q.benchmark);
            cpus.push(q.cpus);
            mem.push(q.memory_bytes.min(i64::MAX as u64) as i64);
            rank.push(q.rank as i32);
            attempts.push(q.max_attempts.max(1) as i32);
            pending.push(q.needs.len() as i32);
            for &d in &q.needs {
                parents.push(d as i32);
                children.push(i as i32);
            }
        }
        let id = run.run_id.as_str();
        self.retry("submit", Some(id), || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO bf_runs (run_id, suite, started_ns, info) VALUES ($1, $2, $3, $4::jsonb)",
            )
            .bind(id)
            .bind(&run.suite)
            .bind(run.started_at.0)
            .bind(&info)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO bf_fleet_runs (run_id, suite, suite_text, source, keep_going, nodes)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(&run.suite)
            .bind(&sub.suite_text)
            .bind(&sub.source)
            .bind(sub.keep_going)
            .bind(n as i32)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO bf_fleet_nodes (run_id, idx, name, pool, benchmark, cpus, memory, rank,
                     max_attempts, pending, state, ready_at)
                 SELECT $1, t.idx, t.name, t.pool, t.benchmark, t.cpus, t.memory, t.rank, t.attempts,
                        t.pending, CASE WHEN t.pending = 0 THEN 'ready' ELSE 'waiting' END, now()
                 FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::bool[], $6::float8[],
                             $7::int8[], $8::int4[], $9::int4[], $10::int4[])
                      AS t(idx, name, pool, benchmark, cpus, memory, rank, attempts, pending)",
            )
            .bind(id)
            .bind(&idx)
            .bind(&name)
            .bind(&pool)
            .bind(&bench)
            .bind(&cpus)
            .bind(&mem)
            .bind(&rank)
            .bind(&attempts)
            .bind(&pending)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO bf_fleet_edges (run_id, parent, child)
                 SELECT $1, p, c FROM UNNEST($2::int4[], $3::int4[]) AS t(p, c)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&parents)
            .bind(&children)
            .execute(&mut *tx)
            .await?;
            // A large submission changes the queue's shape: without fresh statistics the planner
            // would take the ready nodes for a handful and sort them all at every claim.
            if n >= ANALYZE_AT {
                sqlx::query("ANALYZE bf_fleet_nodes, bf_fleet_edges")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await
    }

    async fn register(&self, w: &WorkerInfo) -> Result<()> {
        let labels = serde_json::to_string(&w.labels)
            .map_err(|e| self.queue_err("register", e.to_string()))?;
        self.retry("register worker", Some(&w.id), || async {
            sqlx::query(
                "INSERT INTO bf_fleet_workers (id, host, machine_class, pools, labels, jobs, cpus,
                     memory)
                 VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), gone = false, lost = false",
            )
            .bind(&w.id)
            .bind(&w.host)
            .bind(&w.machine_class)
            .bind(&w.pools)
            .bind(&labels)
            .bind(w.jobs as i32)
            .bind(w.cpus)
            .bind(w.memory_bytes.min(i64::MAX as u64) as i64)
            .execute(&self.pool)
            .await?;
            self.lock_worker(&w.id).await
        })
        .await
    }

    async fn heartbeat(&self, worker: &str, draining: bool) -> Result<Vec<Claim>> {
        self.retry("heartbeat", Some(worker), || async {
            // A lost connection (server restart) also lost the lock: take it again.
            self.lock_worker(worker).await?;
            sqlx::query(
                "UPDATE bf_fleet_workers SET heartbeat_at = now(), draining = $2, lost = false
                 WHERE id = $1",
            )
            .bind(worker)
            .bind(draining)
            .execute(&self.pool)
            .await?;
            let rows = sqlx::query(
                "SELECT n.run_id, n.idx, n.attempt, n.cpus, n.memory FROM bf_fleet_nodes n
                 JOIN bf_fleet_runs r ON r.run_id = n.run_id
                 WHERE n.worker = $1 AND n.state = 'running' AND r.state = 'cancelled'",
            )
            .bind(worker)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows)
        })
        .await?
        .iter()
        .map(|r| claim_of(self, r))
        .collect()
    }

    async fn deregister(&self, worker: &str) -> Result<()> {
        self.retry("deregister worker", Some(worker), || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "UPDATE bf_fleet_nodes SET state = 'ready', worker = NULL, ready_at = now()
                 WHERE worker = $1 AND state = 'running'",
            )
            .bind(worker)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE bf_fleet_workers SET gone = true WHERE id = $1")
                .bind(worker)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await?;
        if let Some(l) = self.fleet_lock.lock().await.take() {
            let _ = l.conn.close().await;
        }
        Ok(())
    }

    async fn claim(&self, w: &WorkerInfo, cap: Capacity) -> Result<Vec<Claim>> {
        if cap.slots == 0 {
            return Ok(Vec::new());
        }
        let limit = (cap.slots as i64).max(1);
        let rows = self
            .retry("claim", Some(&w.id), || async {
                let mut tx = self.pool.begin().await?;
                // Nodes whose inputs this worker produced first, then the pools' ready nodes in
                // rank order; each skipping rows another claimer holds.
                // One pool at a time, by equality: the index of ready nodes (pool, rank, run,
                // node) then hands them over in claim order and the scan stops at the limit,
                // however long the backlog (`pool = ANY(...)` would sort every ready node).
                let mut candidates = Vec::new();
                for pool in &w.pools {
                    candidates.extend(
                        sqlx::query(
                            "WITH mine AS (
                                 SELECT n.run_id, n.idx, n.benchmark, n.cpus, n.memory, 0 AS pass,
                                        n.rank
                                 FROM bf_fleet_nodes n
                                 WHERE n.state = 'ready' AND n.affinity = $1 AND n.pool = $2
                                   AND n.ready_at <= now() AND n.cpus <= $3 AND n.memory <= $4
                                 ORDER BY n.rank LIMIT $5
                                 FOR UPDATE OF n SKIP LOCKED),
                             rest AS (
                                 SELECT n.run_id, n.idx, n.benchmark, n.cpus, n.memory, 1 AS pass,
                                        n.rank
                                 FROM bf_fleet_nodes n
                                 WHERE n.state = 'ready' AND n.pool = $2
                                   AND n.ready_at <= now() AND n.cpus <= $3 AND n.memory <= $4
                                   AND NOT EXISTS (SELECT 1 FROM mine m
                                                   WHERE m.run_id = n.run_id AND m.idx = n.idx)
                                 ORDER BY n.rank, n.run_id, n.idx LIMIT $5
                                 FOR UPDATE OF n SKIP LOCKED)
                             SELECT * FROM mine UNION ALL SELECT * FROM rest",
                        )
                        .bind(&w.id)
                        .bind(pool)
                        .bind(cap.cpus)
                        .bind(cap.memory_bytes.min(i64::MAX as u64) as i64)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?,
                    );
                }
                // Affinity first, then rank, across the pools.
                let key = |r: &sqlx::postgres::PgRow| -> (i32, i32) {
                    (
                        r.try_get("pass").unwrap_or(1),
                        r.try_get("rank").unwrap_or(i32::MAX),
                    )
                };
                candidates.sort_by_key(key);
                // The prefix that fits the worker's free resources.
                let (mut cpus, mut mem) = (cap.cpus, cap.memory_bytes as f64);
                let mut picked: Vec<(String, i32, bool)> = Vec::new();
                for r in &candidates {
                    let (c, m): (f64, i64) = (r.try_get("cpus")?, r.try_get("memory")?);
                    if picked.len() >= cap.slots || c > cpus || m as f64 > mem {
                        continue;
                    }
                    cpus -= c;
                    mem -= m as f64;
                    picked.push((
                        r.try_get("run_id")?,
                        r.try_get("idx")?,
                        r.try_get("benchmark")?,
                    ));
                }
                // Benchmarks: pin their run's machine class to this worker's if unset; leave
                // those of runs pinned to another class.
                let mut bench_runs: Vec<String> =
                    picked.iter().filter(|p| p.2).map(|p| p.0.clone()).collect();
                bench_runs.sort();
                bench_runs.dedup();
                if !bench_runs.is_empty() {
                    let pinned = sqlx::query(
                        "UPDATE bf_fleet_runs SET machine_class = COALESCE(machine_class, $2)
                         WHERE run_id = ANY($1) RETURNING run_id, machine_class",
                    )
                    .bind(&bench_runs)
                    .bind(&w.machine_class)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut other = Vec::new();
                    for p in &pinned {
                        let class: String = p.try_get("machine_class")?;
                        if class != w.machine_class {
                            other.push(p.try_get::<String, _>("run_id")?);
                        }
                    }
                    picked.retain(|p| !(p.2 && other.contains(&p.0)));
                }
                let runs: Vec<&str> = picked.iter().map(|p| p.0.as_str()).collect();
                let idxs: Vec<i32> = picked.iter().map(|p| p.1).collect();
                let claimed = sqlx::query(
                    "UPDATE bf_fleet_nodes n
                     SET state = 'running', worker = $3, attempt = n.attempt + 1
                     FROM UNNEST($1::text[], $2::int4[]) AS t(run_id, idx)
                     WHERE n.run_id = t.run_id AND n.idx = t.idx
                     RETURNING n.run_id, n.idx, n.attempt, n.cpus, n.memory",
                )
                .bind(&runs)
                .bind(&idxs)
                .bind(&w.id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(claimed)
            })
            .await?;
        rows.iter().map(|r| claim_of(self, r)).collect()
    }

    async fn complete(
        &self,
        worker: &str,
        claim: &Claim,
        end: NodeEnd,
        records: &[RecordEntry],
    ) -> Result<Completion> {
        let finish = Finish {
            claim,
            end: &end,
            records,
        };
        let mut out = self.complete_many(worker, &[finish]).await?;
        Ok(out.pop().expect("one answer per completion"))
    }

    async fn complete_many(&self, worker: &str, items: &[Finish<'_>]) -> Result<Vec<Completion>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let n = items.len();
        let (mut runs, mut idxs, mut attempts, mut targets, mut messages) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for f in items {
            let (target, message) = match f.end {
                NodeEnd::Succeeded => ("succeeded", None),
                NodeEnd::Failed { message } => ("failed", Some(message.as_str())),
                NodeEnd::Cancelled => ("cancelled", None),
            };
            runs.push(f.claim.run_id.as_str());
            idxs.push(f.claim.node as i32);
            attempts.push(f.claim.attempt as i32);
            targets.push(target);
            messages.push(message);
        }
        let key = (n == 1).then(|| items[0].claim.run_id.as_str());
        self.retry("complete", key, || async {
            let mut tx = self.pool.begin().await?;
            // Fenced: only the current claim of this worker may finish a node. A failure with
            // attempts left goes back to ready (after a short backoff).
            let fenced = sqlx::query(
                "UPDATE bf_fleet_nodes n
                 SET state = CASE WHEN t.target = 'failed' AND n.attempt < n.max_attempts
                                  THEN 'ready' ELSE t.target END,
                     ready_at = now() + $7 * interval '1 millisecond',
                     message = t.message
                 FROM UNNEST($1::text[], $2::int4[], $3::int4[], $5::text[], $6::text[])
                      AS t(run_id, idx, attempt, target, message)
                 WHERE n.run_id = t.run_id AND n.idx = t.idx AND n.attempt = t.attempt
                   AND n.worker = $4 AND n.state = 'running'
                 RETURNING n.run_id, n.idx, n.state, n.name",
            )
            .bind(&runs)
            .bind(&idxs)
            .bind(&attempts)
            .bind(worker)
            .bind(&targets)
            .bind(&messages)
            .bind(RETRY_BACKOFF_MS)
            .fetch_all(&mut *tx)
            .await?;
            // (state, name) of each item this transaction finished.
            let mut done: Vec<Option<(String, String)>> = vec![None; n];
            for row in &fenced {
                let (run, idx): (String, i32) = (row.try_get("run_id")?, row.try_get("idx")?);
                if let Some(i) = (0..n).find(|&i| runs[i] == run && idxs[i] == idx) {
                    done[i] = Some((row.try_get("state")?, row.try_get("name")?));
                }
            }
            // Not running under its claim: a retry of a completion that committed finds its own
            // result; anything else was taken back.
            let missed: Vec<usize> = (0..n).filter(|&i| done[i].is_none()).collect();
            let mut already = vec![false; n];
            if !missed.is_empty() {
                let rows = sqlx::query(
                    "SELECT n.run_id, n.idx FROM bf_fleet_nodes n
                     JOIN UNNEST($1::text[], $2::int4[], $3::int4[]) AS t(run_id, idx, attempt)
                       ON n.run_id = t.run_id AND n.idx = t.idx AND n.attempt = t.attempt
                     WHERE n.worker = $4 AND n.state <> 'running'",
                )
                .bind(missed.iter().map(|&i| runs[i]).collect::<Vec<_>>())
                .bind(missed.iter().map(|&i| idxs[i]).collect::<Vec<_>>())
                .bind(missed.iter().map(|&i| attempts[i]).collect::<Vec<_>>())
                .bind(worker)
                .fetch_all(&mut *tx)
                .await?;
                for row in &rows {
                    let (run, idx): (String, i32) = (row.try_get("run_id")?, row.try_get("idx")?);
                    if let Some(&i) = missed.iter().find(|&&i| runs[i] == run && idxs[i] == idx) {
                        already[i] = true;
                    }
                }
            }
            // Every attempt's runs are kept (a retried attempt's too, tagged with its attempt),
            // as in a local run; those of refused claims are not.
            let accepted: Vec<RecordEntry> = (0..n)
                .filter(|&i| done[i].is_some())
                .flat_map(|i| items[i].records.iter().cloned())
                .collect();
            if !accepted.is_empty() {
                crate::chunks::insert(&mut tx, &accepted).await?;
            }
            // Children of the nodes that succeeded: one decrement per finished parent, their
            // rows locked in one order so concurrent batches never deadlock on shared children.
            let succeeded: Vec<usize> = (0..n)
                .filter(|&i| matches!(&done[i], Some((s, _)) if s == "succeeded"))
                .collect();
            let mut notify = (0..n).any(|i| matches!(&done[i], Some((s, _)) if s == "ready"));
            if !succeeded.is_empty() {
                let ready: Vec<bool> = sqlx::query_scalar(
                    "WITH c AS (
                         SELECT e.run_id, e.child, count(*)::int4 AS k
                         FROM bf_fleet_edges e
                         JOIN UNNEST($1::text[], $2::int4[]) AS t(run_id, idx)
                           ON e.run_id = t.run_id AND e.parent = t.idx
                         GROUP BY e.run_id, e.child),
                     locked AS (
                         SELECT n.run_id, n.idx, c.k FROM bf_fleet_nodes n
                         JOIN c ON n.run_id = c.run_id AND n.idx = c.child
                         WHERE n.state = 'waiting'
                         ORDER BY n.run_id, n.idx
                         FOR UPDATE OF n)
                     UPDATE bf_fleet_nodes n
                     SET pending = n.pending - l.k,
                         state = CASE WHEN n.pending = l.k THEN 'ready' ELSE n.state END,
                         ready_at = now(),
                         affinity = COALESCE(n.affinity, $3)
                     FROM locked l
                     WHERE n.run_id = l.run_id AND n.idx = l.idx
                     RETURNING n.state = 'ready'",
                )
                .bind(succeeded.iter().map(|&i| runs[i]).collect::<Vec<_>>())
                .bind(succeeded.iter().map(|&i| idxs[i]).collect::<Vec<_>>())
                .bind(worker)
                .fetch_all(&mut *tx)
                .await?;
                notify |= ready.iter().any(|r| *r);
            }
            // Final failures skip their dependents (and, without keep_going, the rest of the
            // run). Rare: one statement per failed node.
            for i in 0..n {
                let Some((state, name)) = &done[i] else { continue };
                if state != "failed" {
                    continue;
                }
                sqlx::query(
                    "WITH RECURSIVE below(idx) AS (
                         SELECT child FROM bf_fleet_edges WHERE run_id = $1 AND parent = $2
                         UNION
                         SELECT e.child FROM bf_fleet_edges e JOIN below b ON e.parent = b.idx
                         WHERE e.run_id = $1)
                     UPDATE bf_fleet_nodes n SET state = 'skipped', message = $3
                     FROM below WHERE n.run_id = $1 AND n.idx = below.idx
                       AND n.state IN ('waiting', 'ready')",
                )
                .bind(runs[i])
                .bind(idxs[i])
                .bind(format!("needs `{name}`, which failed"))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE bf_fleet_nodes n SET state = 'skipped',
                         message = 'an earlier node failed and the suite does not keep going'
                     FROM bf_fleet_runs r
                     WHERE r.run_id = $1 AND NOT r.keep_going AND n.run_id = $1
                       AND n.state IN ('waiting', 'ready')",
                )
                .bind(runs[i])
                .execute(&mut *tx)
                .await?;
            }
            // Each run that may have ended, checked once, reported on its last finished node.
            let mut out: Vec<Completion> = (0..n)
                .map(|i| {
                    if done[i].is_some() || already[i] {
                        Completion::Accepted { run_finished: None }
                    } else {
                        Completion::Refused {
                            reason: format!(
                                "attempt {} of node {} of run {} is no longer this worker's claim (its lease lapsed or the run was cancelled)",
                                attempts[i], idxs[i], runs[i]
                            ),
                        }
                    }
                })
                .collect();
            let mut checked: Vec<&str> = Vec::new();
            for i in (0..n).rev() {
                let Some((state, _)) = &done[i] else { continue };
                if state == "ready" || checked.contains(&runs[i]) {
                    continue;
                }
                checked.push(runs[i]);
                if let Some(status) = finish_if_done(&mut tx, runs[i]).await? {
                    out[i] = Completion::Accepted {
                        run_finished: Some(status),
                    };
                }
            }
            // One notification: nodes became ready, or a run ended (idle workers waiting for
            // the last of the queue's work may leave).
            let ended = out
                .iter()
                .any(|c| matches!(c, Completion::Accepted { run_finished: Some(_) }));
            if notify || ended {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(channel())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(out)
        })
        .await
    }

    async fn suite(&self, run: &RunId) -> Result<Option<QueuedSuite>> {
        let row = self
            .retry("queued suite", Some(run.as_str()), || async {
                sqlx::query(
                    "SELECT f.suite_text, f.source, f.keep_going, r.info::text AS info
                     FROM bf_fleet_runs f JOIN bf_runs r ON r.run_id = f.run_id
                     WHERE f.run_id = $1",
                )
                .bind(run.as_str())
                .fetch_optional(&self.pool)
                .await
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let get = |e: sqlx::Error| self.queue_err("queued suite", e.to_string());
        let info: String = row.try_get("info").map_err(get)?;
        let run = serde_json::from_str(&info)
            .map_err(|e| self.queue_err("queued suite", format!("run row: {e}")))?;
        Ok(Some(QueuedSuite {
            run,
            suite_text: row.try_get("suite_text").map_err(get)?,
            source: row.try_get("source").map_err(get)?,
            keep_going: row.try_get("keep_going").map_err(get)?,
        }))
    }

    async fn maintain(&self, times: LeaseTimes) -> Result<Vec<(RunId, RunStatus)>> {
        let lease_ms = times.lease.as_millis() as i64;
        let dead_ms = times.dead_after.as_millis() as i64;
        let rows: Vec<(String, RunStatus)> = self
            .retry("maintain", None, || async {
                let mut tx = self.pool.begin().await?;
                let released = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "WITH dead AS (
                         SELECT w.id FROM bf_fleet_workers w
                         WHERE NOT w.gone
                           AND (w.heartbeat_at < now() - $1 * interval '1 millisecond'
                            OR (w.heartbeat_at < now() - $2 * interval '1 millisecond'
                                -- Every lock vanished with a server restart: give the workers
                                -- a few seconds to take theirs again before judging by locks.
                                AND pg_postmaster_start_time() < now() - interval '5 seconds'
                                AND NOT EXISTS (
                                    SELECT 1 FROM pg_locks l
                                    WHERE l.locktype = 'advisory' AND l.granted
                                      AND l.database = (SELECT oid FROM pg_database
                                                        WHERE datname = current_database())
                                      AND l.objsubid = 2
                                      AND l.classid::int8 = ({LOCK_NS}::int8 & 4294967295)
                                      AND l.objid::int8 = w.lock_key)))),
                     marked AS (
                         UPDATE bf_fleet_workers w SET lost = true
                         FROM dead WHERE w.id = dead.id AND NOT w.lost)
                     UPDATE bf_fleet_nodes n
                     SET state = CASE WHEN r.state = 'cancelled' THEN 'cancelled' ELSE 'ready' END,
                         ready_at = now(),
                         message = 'its worker ' || n.worker || ' was lost'
                     FROM dead, bf_fleet_runs r
                     WHERE n.state = 'running' AND n.worker = dead.id AND r.run_id = n.run_id
                     RETURNING n.run_id"
                )))
                .bind(lease_ms)
                .bind(dead_ms)
                .fetch_all(&mut *tx)
                .await?;
                if !released.is_empty() {
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(channel())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                // Runs whose last two completions committed at once end here.
                let running: Vec<String> = sqlx::query_scalar(
                    "SELECT r.run_id FROM bf_fleet_runs r WHERE r.state = 'running'
                     AND NOT EXISTS (SELECT 1 FROM bf_fleet_nodes n WHERE n.run_id = r.run_id
                                     AND n.state IN ('waiting', 'ready', 'running'))",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut ended = Vec::new();
                for run in running {
                    let mut tx = self.pool.begin().await?;
                    if let Some(s) = finish_if_done(&mut tx, &run).await? {
                        ended.push((run, s));
                    }
                    tx.commit().await?;
                }
                Ok(ended)
            })
            .await?;
        rows.into_iter()
            .map(|(id, s)| {
                let id: RunId = id
                    .parse()
                    .map_err(|e| self.queue_err("maintain", format!("run id {id}: {e}")))?;
                Ok((id, s))
            })
            .collect()
    }

    async fn has_work(&self, pools: &[String]) -> Result<bool> {
        self.retry("has work", None, || async {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM bf_fleet_runs r JOIN bf_fleet_nodes n
                                ON n.run_id = r.run_id
                                WHERE r.state = 'running' AND n.pool = ANY($1)
                                  AND n.state IN ('waiting', 'ready', 'running'))",
            )
            .bind(pools)
            .fetch_one(&self.pool)
            .await
        })
        .await
    }

    async fn cancel(&self, run: &RunId) -> Result<bool> {
        let id = run.as_str();
        self.retry("cancel", Some(id), || async {
            let mut tx = self.pool.begin().await?;
            let hit = sqlx::query(
                "UPDATE bf_fleet_runs SET state = 'cancelled', finished_at = now()
                 WHERE run_id = $1 AND state = 'running'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if hit == 0 {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE bf_fleet_nodes SET state = 'cancelled', message = 'the run was cancelled'
                 WHERE run_id = $1 AND state IN ('waiting', 'ready')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(FINISH_RUN_ROW)
                .bind(id)
                .bind(RunStatus::Interrupted.as_str())
                .bind(now_nanos())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn progress(&self, run: &RunId) -> Result<Option<RunProgress>> {
        let mut all = self.progress_of(Some(run.as_str())).await?;
        Ok(all.pop())
    }

    async fn status(&self, times: LeaseTimes) -> Result<FleetStatus> {
        let lease = times.lease.as_secs_f64();
        let (workers, pools) = self
            .retry("fleet status", None, || async {
                let workers = sqlx::query(
                    "SELECT w.id, w.host, w.machine_class, w.pools, w.labels::text AS labels, w.jobs,
                            w.cpus, w.memory, w.draining, w.gone, w.lost,
                            EXTRACT(EPOCH FROM now() - w.heartbeat_at)::float8 AS age,
                            (SELECT count(*) FROM bf_fleet_nodes n
                             WHERE n.worker = w.id AND n.state = 'running') AS running
                     FROM bf_fleet_workers w
                     WHERE NOT w.gone OR w.heartbeat_at > now() - interval '1 hour'
                     ORDER BY w.started_at",
                )
                .fetch_all(&self.pool)
                .await?;
                let pools = sqlx::query(
                    "SELECT n.pool,
                            count(*) FILTER (WHERE n.state = 'ready') AS ready,
                            count(*) FILTER (WHERE n.state = 'running') AS running,
                            count(*) FILTER (WHERE n.state = 'waiting') AS waiting,
                            EXTRACT(EPOCH FROM now() - min(n.ready_at)
                                    FILTER (WHERE n.state = 'ready'))::float8 AS oldest
                     FROM bf_fleet_nodes n JOIN bf_fleet_runs r ON r.run_id = n.run_id
                     WHERE r.state = 'running' AND n.state IN ('waiting', 'ready', 'running')
                     GROUP BY n.pool ORDER BY n.pool",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok((workers, pools))
            })
            .await?;
        let get = |e: sqlx::Error| self.queue_err("fleet status", e.to_string());
        let mut out = FleetStatus::default();
        for w in &workers {
            let labels: String = w.try_get("labels").map_err(get)?;
            let age: f64 = w.try_get("age").map_err(get)?;
            let gone: bool = w.try_get("gone").map_err(get)?;
            let lost: bool = w.try_get("lost").map_err(get)?;
            let draining: bool = w.try_get("draining").map_err(get)?;
            out.workers.push(WorkerStatus {
                info: WorkerInfo {
                    id: w.try_get("id").map_err(get)?,
                    host: w.try_get("host").map_err(get)?,
                    machine_class: w.try_get("machine_class").map_err(get)?,
                    pools: w.try_get("pools").map_err(get)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    jobs: w.try_get::<i32, _>("jobs").map_err(get)?.max(0) as u32,
                    cpus: w.try_get("cpus").map_err(get)?,
                    memory_bytes: w.try_get::<i64, _>("memory").map_err(get)?.max(0) as u64,
                },
                state: worker_state(gone, lost, draining, age > lease).into(),
                running: w.try_get::<i64, _>("running").map_err(get)?.max(0) as u64,
                heartbeat_age_secs: age,
            });
        }
        for p in &pools {
            out.pools.push(PoolStatus {
                pool: p.try_get("pool").map_err(get)?,
                ready: p.try_get::<i64, _>("ready").map_err(get)?.max(0) as u64,
                running: p.try_get::<i64, _>("running").map_err(get)?.max(0) as u64,
                waiting: p.try_get::<i64, _>("waiting").map_err(get)?.max(0) as u64,
                oldest_ready_secs: p.try_get("oldest").map_err(get)?,
                workers: 0,
            });
        }
        for w in out.workers.iter().filter(|w| w.state == "live") {
            for pool in &w.info.pools {
                match out.pools.iter_mut().find(|p| p.pool == *pool) {
                    Some(p) => p.workers += 1,
                    None => out.pools.push(PoolStatus {
                        pool: pool.clone(),
                        workers: 1,
                        ..PoolStatus::default()
                    }),
                }
            }
        }
        out.runs = self.progress_of(None).await?;
        Ok(out)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let mut guard = self.listener.lock().await;
        if guard.is_none()
            && let Ok(mut l) = PgListener::connect_with(&self.pool).await
            && l.listen(channel()).await.is_ok()
        {
            *guard = Some(l);
        }
        match guard.as_mut() {
            Some(l) => {
                if let Ok(Err(_)) = tokio::time::timeout(timeout, l.recv()).await {
                    // Connection trouble: listen again next time.
                    *guard = None;
                }
            }
            None => tokio::time::sleep(timeout).await,
        }
    }
}

fn claim_of(store: &PgStore, r: &sqlx::postgres::PgRow) -> Result<Claim> {
    let get = |e: sqlx::Error| store.queue_err("claim", e.to_string());
    let run: String = r.try_get("run_id").map_err(get)?;
    Ok(Claim {
        run_id: run
            .parse()
            .map_err(|e| store.queue_err("claim", format!("run id {run}: {e}")))?,
        node: r.try_get::<i32, _>("idx").map_err(get)?.max(0) as u32,
        attempt: r.try_get::<i32, _>("attempt").map_err(get)?.max(0) as u32,
        cpus: r.try_get("cpus").map_err(get)?,
        memory_bytes: r.try_get::<i64, _>("memory").map_err(get)?.max(0) as u64,
    })
}

impl PgStore {
    /// Progress of one run, or of every running run.
    async fn progress_of(&self, run: Option<&str>) -> Result<Vec<RunProgress>> {
        let (rows, failures) = self
            .retry("run progress", run, || async {
                let rows = sqlx::query(
                    "SELECT r.run_id, r.suite, r.state AS run_state, r.machine_class, r.nodes,
                            n.state, count(*) AS count
                     FROM bf_fleet_runs r JOIN bf_fleet_nodes n ON n.run_id = r.run_id
                     WHERE ($1::text IS NULL AND r.state = 'running') OR r.run_id = $1
                     GROUP BY r.run_id, r.suite, r.state, r.machine_class, r.nodes, n.state
                     ORDER BY r.run_id",
                )
                .bind(run)
                .fetch_all(&self.pool)
                .await?;
                let failures = match run {
                    Some(id) => {
                        sqlx::query(
                            "SELECT name, coalesce(message, '') AS message FROM bf_fleet_nodes
                             WHERE run_id = $1 AND state IN ('failed', 'skipped')
                             ORDER BY idx LIMIT 20",
                        )
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => Vec::new(),
                };
                Ok((rows, failures))
            })
            .await?;
        let get = |e: sqlx::Error| self.queue_err("run progress", e.to_string());
        let mut out: Vec<RunProgress> = Vec::new();
        for r in &rows {
            let id: String = r.try_get("run_id").map_err(get)?;
            if out.last().is_none_or(|p| p.run_id != id) {
                out.push(RunProgress {
                    run_id: id,
                    suite: r.try_get("suite").map_err(get)?,
                    state: r.try_get("run_state").map_err(get)?,
                    machine_class: r.try_get("machine_class").map_err(get)?,
                    nodes: r.try_get::<i32, _>("nodes").map_err(get)?.max(0) as u64,
                    ..RunProgress::default()
                });
            }
            let p = out.last_mut().expect("pushed");
            let count = r.try_get::<i64, _>("count").map_err(get)?.max(0) as u64;
            let state: String = r.try_get("state").map_err(get)?;
            match state.as_str() {
                "waiting" => p.waiting += count,
                "ready" => p.ready += count,
                "running" => p.running += count,
                "succeeded" => p.succeeded += count,
                "failed" => p.failed += count,
                "skipped" => p.skipped += count,
                _ => p.cancelled += count,
            }
        }
        if let Some(p) = out.last_mut() {
            for f in &failures {
                p.failures.push((
                    f.try_get("name").map_err(get)?,
                    f.try_get("message").map_err(get)?,
                ));
            }
        }
        Ok(out)
    }
}
