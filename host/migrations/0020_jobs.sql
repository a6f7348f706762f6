-- Container jobs that workflow nodes run (the `jobs` capability). A job belongs to the run's
-- owner; (run_id, node_id, attempt, seq) names the n-th job one attempt of a node submitted, so
-- an attempt a host restart cut short finds (and adopts) its job when it runs again.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    run_id       TEXT,
    node_id      TEXT,
    attempt      BIGINT,
    seq          BIGINT NOT NULL,
    image        TEXT NOT NULL,
    container_id TEXT,
    status       TEXT NOT NULL,
    exit_code    BIGINT,
    error        TEXT,
    log_tail     TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT
);

CREATE INDEX jobs_by_attempt ON jobs (run_id, node_id, attempt, seq);
CREATE INDEX jobs_by_status ON jobs (status);
