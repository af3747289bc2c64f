-- benchfleet catalog and blob store, version 1.
-- Names are unqualified: everything lives in the connection's first search_path schema.

-- Runs: one row per invocation; `info` is the RunInfo as JSON.
CREATE TABLE bf_runs (
    run_id     text COLLATE "C" PRIMARY KEY,
    suite      text NOT NULL,
    started_ns bigint NOT NULL,
    info       jsonb NOT NULL
);
CREATE INDEX bf_runs_suite ON bf_runs (suite, run_id);

-- Global uniqueness of records by digest. A unique key on the partitioned table must include the
-- partition key, so it cannot say "one row per digest" by itself: this small table does.
CREATE TABLE bf_record_digests (
    digest     bytea PRIMARY KEY,
    started_at timestamptz NOT NULL
);

-- Record entries, partitioned by month of their start time. `started_at` (microseconds) is the
-- partition key; `started_ns` keeps the exact nanoseconds of the model's Timestamp.
CREATE TABLE bf_records (
    digest        bytea NOT NULL,
    run_id        text COLLATE "C" NOT NULL,
    suite         text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    kind          text NOT NULL,
    iteration     bigint NOT NULL,
    started_at    timestamptz NOT NULL,
    started_ns    bigint NOT NULL,
    wall_ns       bigint NOT NULL,
    user_ns       bigint NOT NULL,
    sys_ns        bigint NOT NULL,
    max_rss_bytes bigint NOT NULL,
    minor_faults  bigint NOT NULL,
    major_faults  bigint NOT NULL,
    vol_cs        bigint NOT NULL,
    invol_cs      bigint NOT NULL,
    block_in      bigint NOT NULL,
    block_out     bigint NOT NULL,
    success       boolean NOT NULL,
    outcome       jsonb NOT NULL,
    size          bigint NOT NULL,
    tier          text NOT NULL,
    location      text NOT NULL,
    PRIMARY KEY (digest, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX bf_records_suite_name_time ON bf_records (suite, name, started_at);
CREATE INDEX bf_records_run ON bf_records (run_id);
CREATE INDEX bf_records_time ON bf_records (started_at);

-- Create (if missing) the monthly partition holding `ts`. Serialised by an advisory lock so that
-- several processes can call it at once.
CREATE FUNCTION bf_ensure_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := lo + interval '1 month';
    part text := 'bf_records_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.bf_records partitions'));
    IF to_regclass(quote_ident(current_schema()) || '.' || quote_ident(part)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF bf_records FOR VALUES FROM (%L) TO (%L)',
                       current_schema(), part, lo, hi);
    END IF;
    RETURN part;
END
$$;

-- Blobs (hot and warm tiers). Stored uncompressed out of line (STORAGE EXTERNAL), so
-- substring() reads only the chunks a range needs.
CREATE TABLE bf_blobs (
    key  text COLLATE "C" PRIMARY KEY,
    size bigint NOT NULL,
    data bytea NOT NULL
);
ALTER TABLE bf_blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- Daily summary of successful runs per (day, suite, benchmark, metric). The unique index is what
-- REFRESH MATERIALIZED VIEW CONCURRENTLY requires.
CREATE MATERIALIZED VIEW bf_daily_summary AS
SELECT (r.started_at AT TIME ZONE 'UTC')::date AS day,
       r.suite,
       r.name,
       m.metric,
       count(*)                                                   AS count,
       avg(m.value)::float8                                       AS mean,
       min(m.value)::float8                                       AS min,
       max(m.value)::float8                                       AS max,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.value)::float8 AS p95
FROM bf_records r
CROSS JOIN LATERAL (VALUES
    ('wall_ns', r.wall_ns::float8),
    ('user_ns', r.user_ns::float8),
    ('sys_ns', r.sys_ns::float8),
    ('max_rss_bytes', r.max_rss_bytes::float8)
) AS m(metric, value)
WHERE r.success
GROUP BY 1, 2, 3, 4
WITH DATA;
CREATE UNIQUE INDEX bf_daily_summary_key ON bf_daily_summary (day, suite, name, metric);
