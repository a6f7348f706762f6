-- Lineage: what each workflow run ran on, read and produced, recorded by the host as the run's
-- nodes call it (never as a plugin claims). A run names the project it ran on; the commit it
-- ran on is that project's pin in `run_commits` (0023).
ALTER TABLE runs ADD COLUMN project_id TEXT;

CREATE TABLE run_lineage (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    -- `dataset` (a version read), `artifact` (stored) or `model` (a version recorded).
    kind       TEXT NOT NULL,
    -- The dataset's id, the artifact's content key or the model's id.
    ref_id     TEXT NOT NULL,
    -- The dataset's or the model's version number; 0 for an artifact.
    version    BIGINT NOT NULL,
    -- The artifact's name as the node gave it (the first one); '' otherwise.
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, node_id, kind, ref_id, version)
);
CREATE INDEX run_lineage_by_ref ON run_lineage (kind, ref_id);
