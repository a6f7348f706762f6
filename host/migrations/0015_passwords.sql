-- Signing in from the web app: a user's password (an argon2id PHC string, NULL while none is
-- set), and which tokens are sign-in refresh tokens. A refresh token's secret lives in an
-- HttpOnly cookie and only mints short-lived tokens; it is never accepted as a Bearer token.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN password_set_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'api';
