-- Containers Weft created on the engine, and facts about this installation.
CREATE TABLE containers (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    image        TEXT NOT NULL,
    command      TEXT,
    environment  TEXT NOT NULL,
    cpu_millis   BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    gpus         BIGINT NOT NULL,
    engine_id    TEXT,
    status       TEXT NOT NULL,
    health       TEXT,
    exit_code    BIGINT,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    stopped_at   BIGINT,
    run_ms       BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE INDEX containers_by_owner ON containers (owner_id, created_at);

-- One row per key: `install_id` labels every container this installation creates, so several
-- installations can share one engine without touching each other's containers.
CREATE TABLE installation (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
