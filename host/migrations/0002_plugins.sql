-- Plugin registry: one row per name@version; the component bytes live in content-addressed
-- storage under their SHA-256. Grants and limits are per plugin name, set by admins.
CREATE TABLE plugins (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('node', 'strategy')),
    hash        TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    description TEXT NOT NULL,
    builtin     BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    UNIQUE (name, version)
);

CREATE INDEX plugins_by_name ON plugins (name);

CREATE TABLE plugin_settings (
    name       TEXT PRIMARY KEY,
    grants     TEXT NOT NULL,
    limits     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);
