-- Workspace servers' secrets are derived from the sessions key file (workspaces/keys.rs), no
-- longer stored: the column and every secret it held go. A session still running from before
-- has a server expecting its old secret: stop it (its files are synced through the engine) and
-- open it again.
ALTER TABLE sessions DROP COLUMN upstream_secret;
