-- Data versions: the objects of each project's DVC remote (content in the projects' storage
-- below .dvc/, visible only once its row is here), datasets and their versions.
CREATE TABLE dvc_objects (
    project_id  TEXT NOT NULL,
    -- The object's name in DVC's layout: its md5 (32 hex digits), `.dir` for a folder's manifest.
    oid         TEXT NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, oid)
);

CREATE TABLE datasets (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    -- What the dataset is in the project: the path a `.dvc` file tracks, or a name given.
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX datasets_by_owner ON datasets (owner_id, created_at);

CREATE TABLE dataset_versions (
    id         TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    number     BIGINT NOT NULL,
    -- The content's oid: a file's md5, or a folder's `<md5>.dir`.
    oid        TEXT NOT NULL,
    -- The git commit the version came from (absent for one recorded from the files).
    git_commit TEXT,
    -- `push`, `dvc_file` or `files`.
    source     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Files and bytes; the files are listed once the manifest is known (`complete` 1).
    files      BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    complete   BIGINT NOT NULL,
    UNIQUE (dataset_id, number)
);

CREATE TABLE dataset_files (
    version_id TEXT NOT NULL,
    path       TEXT NOT NULL,
    md5        TEXT NOT NULL,
    size       BIGINT NOT NULL,
    PRIMARY KEY (version_id, path)
);
