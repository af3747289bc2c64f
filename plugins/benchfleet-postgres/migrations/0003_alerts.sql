-- Alerts: regressions found in a benchmark's history, with their triage. The alert itself is
-- kept as JSON (`alert`); the columns beside it are what lists filter and order on.
CREATE TABLE bf_alerts (
    id        text COLLATE "C" PRIMARY KEY,
    benchmark text NOT NULL,
    suite     text,
    -- untriaged | acknowledged | invalid | fixed
    state     text NOT NULL,
    at_ns     bigint NOT NULL,
    alert     jsonb NOT NULL
);
CREATE INDEX bf_alerts_at ON bf_alerts (at_ns DESC, id DESC);
