-- The ways a user signs in: a password, a Google, Apple or Facebook account, or one-time codes
-- to an email address or a phone. `subject` is the provider's id for the person (the email for
-- a password). An identity signs in to exactly one user; a user keeps at least one.
CREATE TABLE identities (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    provider   TEXT NOT NULL
        CHECK (provider IN ('password', 'google', 'apple', 'facebook', 'email_code', 'sms_code')),
    subject    TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_by_user ON identities (user_id, id);

-- Identities their user removed: a later sign-in with one is never linked back by email, only
-- by an explicit link from the signed-in account (so removing a compromised Google account
-- keeps it out).
CREATE TABLE unlinked_identities (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    unlinked_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);

-- Every user so far signed in with a password.
INSERT INTO identities (id, user_id, provider, subject, email, created_at)
SELECT 'idn_' || substr(id, 5), id, 'password', id, email, created_at FROM users;
