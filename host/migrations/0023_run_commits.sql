-- The commit of each project a run's container jobs see: pinned once per (run, project), so a
-- commit made while the run goes on reaches none of its jobs, a retry or a restart included.
CREATE TABLE run_commits (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    commit_id  TEXT NOT NULL,
    pinned_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, project_id)
);
