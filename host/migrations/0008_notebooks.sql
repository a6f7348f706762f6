-- Notebooks: a project's .ipynb file bound to a kernel of the project's Jupyter session.
CREATE TABLE notebooks (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id   TEXT NOT NULL,
    path       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, path)
);

-- Who ran what in a notebook, when, for how long, and how it ended.
CREATE TABLE notebook_executions (
    id              TEXT PRIMARY KEY,
    notebook_id     TEXT NOT NULL REFERENCES notebooks (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    cell_id         TEXT NOT NULL,
    code            TEXT NOT NULL,
    status          TEXT NOT NULL,
    execution_count BIGINT,
    message         TEXT,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    duration_ms     BIGINT
);

CREATE INDEX notebook_executions_by_notebook ON notebook_executions (notebook_id, started_at);
