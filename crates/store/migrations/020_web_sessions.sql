-- Sessions of the web UI: the browser holds a random token in an HttpOnly cookie; only its
-- SHA-256 is kept here. Each session has its own CSRF token for the forms it posts. Logging
-- out, a password change and a suspension revoke them (with the API's refresh tokens).
CREATE TABLE web_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    -- 'password', or 'code' for a one-time code, which (for a few minutes) lets a person who
    -- forgot the password set a new one without it.
    signed_in_with TEXT NOT NULL DEFAULT 'password',
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);

-- The time zone a user reads dates in (an IANA name); NULL: the instance's own.
ALTER TABLE users ADD COLUMN time_zone TEXT;
