-- Model versions: the MLflow tracking server's records (experiments, runs and what they log,
-- MLflow 3's logged models, the model registry). Artifacts live in the projects' storage.
CREATE TABLE mlflow_experiments (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL,
    name              TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    lifecycle_stage   TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE mlflow_experiment_tags (
    experiment_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE mlflow_runs (
    id              TEXT PRIMARY KEY,
    experiment_id   TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      BIGINT NOT NULL,
    end_time        BIGINT,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri    TEXT NOT NULL
);
CREATE INDEX mlflow_runs_by_experiment ON mlflow_runs (experiment_id, start_time);

CREATE TABLE mlflow_params (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE mlflow_tags (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Every logged value (the history); NaN is stored as 0 with is_nan set, as MLflow does. A
-- value logged twice (same step, time and value: the client links a run's latest metrics to
-- the model it logs) is kept once, as MLflow keeps it.
CREATE TABLE mlflow_metrics (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    step      BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    is_nan    BIGINT NOT NULL,
    PRIMARY KEY (run_id, key, step, timestamp, value, is_nan)
);

-- The latest value of each metric of a run (largest step, then timestamp), what searches see.
CREATE TABLE mlflow_latest_metrics (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    step      BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    is_nan    BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- A run's inputs and outputs: datasets (their protocol JSON) and logged models.
CREATE TABLE mlflow_run_inputs (
    run_id TEXT NOT NULL,
    kind   TEXT NOT NULL,
    ref    TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, ref)
);

CREATE TABLE mlflow_logged_models (
    id             TEXT PRIMARY KEY,
    experiment_id  TEXT NOT NULL,
    owner_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    model_type     TEXT NOT NULL,
    source_run_id  TEXT NOT NULL,
    status         TEXT NOT NULL,
    status_message TEXT NOT NULL,
    artifact_uri   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX mlflow_logged_models_by_experiment ON mlflow_logged_models (experiment_id, created_at);

-- Tags and params of logged models, registered models and model versions: `owner` names the
-- row they belong to (a logged model id, a registered model id, or `<model id>/<version>`).
CREATE TABLE mlflow_entity_tags (
    kind  TEXT NOT NULL,
    owner TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, owner, key)
);

CREATE TABLE mlflow_registered_models (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE mlflow_model_versions (
    model_id        TEXT NOT NULL,
    version         BIGINT NOT NULL,
    source          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    logged_model_id TEXT NOT NULL,
    storage_uri     TEXT NOT NULL,
    description     TEXT NOT NULL,
    stage           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (model_id, version)
);

CREATE TABLE mlflow_model_aliases (
    model_id TEXT NOT NULL,
    alias    TEXT NOT NULL,
    version  BIGINT NOT NULL,
    PRIMARY KEY (model_id, alias)
);
