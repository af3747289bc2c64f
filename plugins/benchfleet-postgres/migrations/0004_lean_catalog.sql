-- benchfleet catalog layout 2 (issue 20): record entries packed per run, hot records packed per
-- write batch. The old tables (bf_records, its monthly partitions, bf_record_digests) stay until
-- the store's upgrade (src/upgrade.rs) has moved their rows here, batch by batch, and then drops
-- them; `bf_meta.layout` says which layout the store is in.

CREATE TABLE bf_meta (
    key   text COLLATE "C" PRIMARY KEY,
    value int8 NOT NULL
);
-- 1: rows still (possibly) in bf_records; 2: everything in bf_chunks.
INSERT INTO bf_meta (key, value) VALUES ('layout', 1);

-- Record entries: up to 128 of one run per row, in the packed binary encoding shared with the
-- embedded catalog (benchfleet_store::pack). What queries select on is beside it:
--   keys   32-bit hashes (FNV-1a) of 's' || suite and 'n' || name of the chunk's entries, each
--          once; a job's name only as one of 1024 buckets (hash of 'j' || name), so that a DAG
--          of many jobs does not add a key per job. The GIN index answers "chunks holding
--          benchmark X (of suite S)" across runs
--   first_ns, last_ns  the span of the entries' start times
--   tiers  bit 1 hot, 2 warm, 4 cold: the tiers the chunk's entries are in
-- A chunk is rewritten when entries are appended to it (the run's last one) or move between
-- tiers; the fill factor leaves room for those updates on the same page.
CREATE TABLE bf_chunks (
    run_id   text COLLATE "C" NOT NULL,
    seq      int4 NOT NULL,
    first_ns int8 NOT NULL,
    last_ns  int8 NOT NULL,
    tiers    int2 NOT NULL,
    keys     int4[] NOT NULL,
    pack     bytea NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.05);
CREATE INDEX bf_chunks_keys ON bf_chunks USING gin (keys) WITH (fastupdate = off);

-- Hot records written in one batch, end to end in `data` (uncompressed, out of line, so a record
-- is read with substring() of the TOAST chunks it covers). `dir` is the index of the pack, 48
-- bytes a record: the hot key's ordered start time (u64) and the record's SHA-256, then offset
-- and length (u32 each), all little-endian; the key `records/<day>/<time>-<sha256>` is rebuilt
-- from them. Deleting a record rewrites `dir` only; a pack with no record left is deleted.
-- `span` is the range of ordered start times, for finding the pack of a key.
CREATE TABLE bf_hot_packs (
    id    int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    span  int8range NOT NULL,
    dir   bytea NOT NULL,
    data  bytea NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.05);
ALTER TABLE bf_hot_packs ALTER COLUMN dir SET STORAGE MAIN;
ALTER TABLE bf_hot_packs ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX bf_hot_packs_span ON bf_hot_packs USING gist (span);

-- The daily summary becomes a table that `refresh_daily_summary` rewrites in one transaction
-- (computed from the packed entries, which SQL cannot read); readers never wait for it.
DROP MATERIALIZED VIEW bf_daily_summary;
CREATE TABLE bf_daily_summary (
    day    date NOT NULL,
    suite  text COLLATE "C" NOT NULL,
    name   text COLLATE "C" NOT NULL,
    metric text NOT NULL,
    count  int8 NOT NULL,
    mean   float8 NOT NULL,
    min    float8 NOT NULL,
    max    float8 NOT NULL,
    p95    float8 NOT NULL,
    PRIMARY KEY (day, suite, name, metric)
);
