-- Every attempt of a run's nodes (run_nodes keeps the latest): when it started and ended, how it
-- ended, its error and its logs, so a retried node's earlier failures stay readable. An attempt
-- a host restart cut short runs again under the same number and replaces its row.
CREATE TABLE run_node_attempts (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    error       TEXT,
    logs        TEXT,
    PRIMARY KEY (run_id, node_id, attempt)
);
