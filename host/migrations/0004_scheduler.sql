-- The task scheduler: registered task instances, routed tasks, and the active strategies.
CREATE TABLE scheduler_instances (
    ti_uuid       TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    port          BIGINT NOT NULL,
    model_name    TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    UNIQUE (host, port)
);

-- One row per submitted task; `status` is queued, scheduled, completed or failed.
CREATE TABLE scheduler_tasks (
    task_id      TEXT PRIMARY KEY,
    model_name   TEXT NOT NULL,
    ti_uuid      TEXT,
    status       TEXT NOT NULL,
    task_input   TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    submit_time  BIGINT NOT NULL,
    finished_at  BIGINT,
    execution_us BIGINT,
    attempts     BIGINT NOT NULL
);

CREATE INDEX scheduler_tasks_unfinished ON scheduler_tasks (status, ti_uuid);
CREATE INDEX scheduler_tasks_by_finish ON scheduler_tasks (finished_at);

-- The strategy in effect globally (scope '') and per model (scope = model name).
CREATE TABLE scheduler_strategies (
    scope        TEXT PRIMARY KEY,
    plugin       TEXT NOT NULL,
    version      TEXT NOT NULL,
    activated_by TEXT NOT NULL,
    activated_at BIGINT NOT NULL
);
