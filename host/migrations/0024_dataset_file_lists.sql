-- Data versions, read and written faster. Each version's files are one encoded value (see
-- host/src/dataset/file_list.rs): listing 100,000 files reads one row. The rows of
-- dataset_files that versions recorded before this are converted into it by the dataset
-- domain when Weft starts (SQL alone cannot write the encoding on both backends), then
-- deleted; the table stays for that until a later migration drops it.
CREATE TABLE dataset_file_lists (
    version_id TEXT PRIMARY KEY,
    -- Bytes (BYTEA on PostgreSQL; SQLite keeps the blob as written).
    files      BYTEA NOT NULL
);

-- What each project's remote holds, kept as objects come and go, so that an upload checks
-- its owner's quota without summing every object they have.
CREATE TABLE dvc_usage (
    project_id TEXT PRIMARY KEY,
    objects    BIGINT NOT NULL,
    bytes      BIGINT NOT NULL
);
INSERT INTO dvc_usage (project_id, objects, bytes)
    SELECT project_id, COUNT(*), SUM(size) FROM dvc_objects GROUP BY project_id;
