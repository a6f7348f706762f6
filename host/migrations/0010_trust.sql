-- Who owns what, and who may stand for whom (issue 18).

-- Tasks belong to their submitter; only the owner or an admin queries them. Tasks stored
-- before owners existed keep a NULL owner: only admins (and callers from trusted networks)
-- see them, since who submitted them is not known.
ALTER TABLE scheduler_tasks ADD COLUMN owner_id TEXT;

-- A registered instance's secret, hashed: it lets an instance report completions from an
-- address other than the one it registered. NULL when none was handed out.
ALTER TABLE scheduler_instances ADD COLUMN secret_hash TEXT;

-- The token that minted this one (NULL for tokens made by the CLI and for older tokens):
-- a child never outlives its parent and is revoked with it.
ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
CREATE INDEX api_tokens_parent ON api_tokens (parent_id);

-- When an admin disabled the user; every token of a disabled user is refused.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
