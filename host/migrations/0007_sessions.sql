-- Workspace sessions: one active (pending, starting, ready, syncing) per user and project.
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    container_id     TEXT,
    token_hash       TEXT,
    cookie_hash      TEXT,
    upstream_secret  TEXT NOT NULL,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    ready_at         BIGINT,
    stopped_at       BIGINT,
    last_activity_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX sessions_one_active ON sessions (owner_id, project_id)
    WHERE status IN ('pending', 'starting', 'ready', 'syncing');
