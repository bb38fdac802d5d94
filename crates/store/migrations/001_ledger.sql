-- The schema is written once in the SQL both backends share (TEXT ids, BIGINT integers and
-- Unix-millisecond timestamps, CHECK constraints, partial indexes); per-backend differences
-- live in the queries, chosen by `Dialect`, not here.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE, -- stored lower-cased
    password_hash    TEXT NOT NULL,        -- Argon2id PHC string
    display_name     TEXT,
    role             TEXT NOT NULL CHECK (role IN ('member', 'merchant', 'admin')),
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    level_hundredths BIGINT NOT NULL DEFAULT 0 CHECK (level_hundredths >= 0),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Refresh tokens are stored only as SHA-256 hashes. A family is one login's chain of rotations:
-- presenting a rotated-out token revokes the whole family (it was stolen or replayed).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    family_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE, -- SHA-256 of the whole key; the key itself is shown once
    prefix       TEXT NOT NULL,        -- the first characters, so a person can tell keys apart
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- One account per owner and asset. System accounts have no overdraft limit (NULL); every other
-- account can never fall below minus its limit, counting credits reserved by holds. The CHECK
-- is the last line behind the application's own guard.
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    asset           TEXT NOT NULL,
    owner_kind      TEXT NOT NULL CHECK (owner_kind IN ('user', 'merchant', 'system')),
    owner_id        TEXT NOT NULL,
    balance         BIGINT NOT NULL DEFAULT 0,
    held            BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    overdraft_limit BIGINT CHECK (overdraft_limit IS NULL OR overdraft_limit >= 0),
    created_at      BIGINT NOT NULL,
    UNIQUE (owner_kind, owner_id, asset),
    CHECK (overdraft_limit IS NULL OR balance - held >= -overdraft_limit)
);

-- Immutable: rows are only ever inserted. A correction is a new transfer.
CREATE TABLE transfers (
    id                   TEXT PRIMARY KEY, -- txn_<UUIDv7>: sorts by creation time
    asset                TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    debit_account_id     TEXT NOT NULL REFERENCES accounts (id),
    credit_account_id    TEXT NOT NULL REFERENCES accounts (id),
    amount               BIGINT NOT NULL CHECK (amount > 0),
    debit_balance_after  BIGINT NOT NULL,
    credit_balance_after BIGINT NOT NULL,
    refund_of            TEXT REFERENCES transfers (id),
    hold_id              TEXT,
    order_id             TEXT,
    description          TEXT,
    metadata             TEXT, -- JSON object given by the caller
    actor                TEXT, -- usr_… or key_… that asked for it
    created_at           BIGINT NOT NULL,
    CHECK (debit_account_id <> credit_account_id)
);
CREATE INDEX transfers_debit ON transfers (debit_account_id, id);
CREATE INDEX transfers_credit ON transfers (credit_account_id, id);
CREATE INDEX transfers_refund_of ON transfers (refund_of) WHERE refund_of IS NOT NULL;

-- Lots: credits arrive in grants and are burned in order (soonest expiry, priority, oldest).
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    source      TEXT NOT NULL,
    priority    BIGINT NOT NULL DEFAULT 0,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    remaining   BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at  BIGINT,
    transfer_id TEXT NOT NULL REFERENCES transfers (id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX grants_live ON grants (account_id) WHERE remaining > 0;
CREATE INDEX grants_expiring ON grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- Which grants paid for a debit, so users and admins can see what kind of credits were used.
CREATE TABLE transfer_grants (
    transfer_id TEXT NOT NULL REFERENCES transfers (id),
    grant_id    TEXT NOT NULL REFERENCES grants (id),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (transfer_id, grant_id)
);

-- Two-phase spends. `accounts.held` is the sum of `amount` over this account's holds in
-- status 'held'.
CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    user_id     TEXT NOT NULL,
    creator     TEXT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    status      TEXT NOT NULL CHECK (status IN ('held', 'captured', 'voided', 'expired')),
    description TEXT,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    settled_at  BIGINT,
    captured    BIGINT,
    transfer_id TEXT REFERENCES transfers (id)
);
CREATE INDEX holds_active ON holds (account_id) WHERE status = 'held';
CREATE INDEX holds_expiring ON holds (expires_at) WHERE status = 'held';

-- Stored in the same transaction as the effect, so a replay can never apply twice.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL, -- the caller: usr_… or key_…
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL, -- SHA-256 of method, path and body
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    actor_id   TEXT,
    actor_kind TEXT NOT NULL, -- user, api_key, cli, system
    action     TEXT NOT NULL,
    target     TEXT,
    details    TEXT, -- JSON
    ip         TEXT,
    created_at BIGINT NOT NULL
);
