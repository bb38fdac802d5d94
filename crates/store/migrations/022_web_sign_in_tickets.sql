-- Signing in on the web pages with Google or Apple: the provider posts the ID token back to
-- Bursar from its own site, a request that carries none of Bursar's SameSite=Lax cookies, so
-- the token cannot yet be checked against the browser that started the sign-in. It waits here,
-- behind a random one-time ticket (only its SHA-256 is kept), for the same browser's next
-- request: a plain GET to Bursar that does carry the cookie. A ticket works once, for two
-- minutes; the row is deleted when it is used.
CREATE TABLE web_sign_in_tickets (
    ticket_hash  TEXT PRIMARY KEY,
    -- 'google' or 'apple'.
    provider     TEXT NOT NULL,
    -- The `state` the provider sent back, compared with the browser's cookie before the token
    -- is believed.
    state        TEXT NOT NULL,
    id_token     TEXT NOT NULL,
    -- The name Apple sends beside the token the first time (it is not in Apple's ID token).
    display_name TEXT,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX web_sign_in_tickets_by_expiry ON web_sign_in_tickets (expires_at);
