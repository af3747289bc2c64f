-- The fleet's queue: submitted suites, their DAG's nodes and edges, and the workers.
-- Readiness is resolved here: completing a node decrements its children's `pending` and makes
-- them ready in the same transaction. Claims use FOR UPDATE SKIP LOCKED on the partial index of
-- ready nodes. A claim lives as long as its worker heartbeats (`heartbeat_at`, judged by this
-- server's clock, now(), never a worker's) and holds its session-level advisory lock.

CREATE TABLE bf_fleet_runs (
    run_id        text COLLATE "C" PRIMARY KEY,
    suite         text NOT NULL,
    suite_text    text NOT NULL,
    source        text NOT NULL,
    keep_going    boolean NOT NULL,
    -- running | succeeded | failed | cancelled
    state         text NOT NULL DEFAULT 'running',
    -- Pinned by the first claim of one of its benchmarks.
    machine_class text,
    nodes         integer NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX bf_fleet_runs_running ON bf_fleet_runs (run_id) WHERE state = 'running';

-- Churned by every claim and completion: small fillfactor for HOT updates, and autovacuum that
-- starts after 2% of the rows changed instead of 20%.
CREATE TABLE bf_fleet_nodes (
    run_id       text COLLATE "C" NOT NULL REFERENCES bf_fleet_runs ON DELETE CASCADE,
    idx          integer NOT NULL,
    name         text NOT NULL,
    pool         text COLLATE "C" NOT NULL,
    benchmark    boolean NOT NULL,
    cpus         float8 NOT NULL,
    memory       bigint NOT NULL,
    rank         integer NOT NULL,
    max_attempts integer NOT NULL,
    -- waiting | ready | running | succeeded | failed | skipped | cancelled
    state        text NOT NULL,
    pending      integer NOT NULL,
    attempt      integer NOT NULL DEFAULT 0,
    worker       text,
    -- The worker that completed a node this one needs (claims prefer it: its outputs are local).
    affinity     text,
    ready_at     timestamptz,
    message      text,
    PRIMARY KEY (run_id, idx)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX bf_fleet_ready ON bf_fleet_nodes (pool, rank, run_id, idx) WHERE state = 'ready';
CREATE INDEX bf_fleet_ready_affinity ON bf_fleet_nodes (affinity, rank)
    WHERE state = 'ready' AND affinity IS NOT NULL;
CREATE INDEX bf_fleet_claimed ON bf_fleet_nodes (worker) WHERE state = 'running';
CREATE INDEX bf_fleet_active ON bf_fleet_nodes (run_id) WHERE state IN ('waiting', 'ready', 'running');

CREATE TABLE bf_fleet_edges (
    run_id text COLLATE "C" NOT NULL REFERENCES bf_fleet_runs ON DELETE CASCADE,
    parent integer NOT NULL,
    child  integer NOT NULL,
    PRIMARY KEY (run_id, parent, child)
);

CREATE TABLE bf_fleet_workers (
    id            text COLLATE "C" PRIMARY KEY,
    -- The second key of the session-level advisory lock the worker holds while connected.
    lock_key      serial UNIQUE,
    host          text NOT NULL,
    machine_class text NOT NULL,
    pools         text[] NOT NULL,
    labels        jsonb NOT NULL,
    jobs          integer NOT NULL,
    cpus          float8 NOT NULL,
    memory        bigint NOT NULL,
    draining      boolean NOT NULL DEFAULT false,
    gone          boolean NOT NULL DEFAULT false,
    -- Presumed dead by another worker's maintenance (its lock vanished, or its lease lapsed);
    -- cleared by its next heartbeat if it was only cut off.
    lost          boolean NOT NULL DEFAULT false,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);
