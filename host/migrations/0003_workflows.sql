-- Workflows: the current definition plus every saved version; runs keep the (pinned) definition
-- they started with, and one row per node holding its state, attempts, inputs, outputs and logs.
CREATE TABLE workflows (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE INDEX workflows_by_owner ON workflows (owner_id, id);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- The plugins the current version of each workflow names ('' = whichever is newest), so a
-- plugin in use is never removed.
CREATE TABLE workflow_plugins (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    plugin      TEXT NOT NULL,
    version     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, plugin, version)
);

CREATE INDEX workflow_plugins_by_plugin ON workflow_plugins (plugin);

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workflow_version BIGINT NOT NULL,
    owner_id         TEXT NOT NULL,
    status           TEXT NOT NULL,
    definition       TEXT NOT NULL,
    inputs           TEXT NOT NULL,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);

CREATE INDEX runs_by_workflow ON runs (workflow_id, id);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE run_nodes (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    position    BIGINT NOT NULL,
    plugin      TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    inputs      TEXT,
    outputs     TEXT,
    error       TEXT,
    logs        TEXT,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, node_id)
);
