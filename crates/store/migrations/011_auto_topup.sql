-- Auto top-up rules, the threshold the ledger writer checks after a debit, and notifications.

-- A user's auto top-up rule (at most one). `status` is `active`, `paused` (a limit stopped it
-- until `next_attempt_at`) or `off` (by the user, or by itself after repeated declines, with
-- `last_error`). `next_attempt_at` also spaces out tries after a decline. Enabling records the
-- user's consent to off-session charges: when, and from which address.
CREATE TABLE auto_topup_rules (
    user_id              TEXT PRIMARY KEY REFERENCES users (id),
    status               TEXT NOT NULL CHECK (status IN ('active', 'paused', 'off')),
    threshold            BIGINT NOT NULL,
    target               BIGINT NOT NULL,
    payment_method_id    TEXT NOT NULL REFERENCES payment_methods (id),
    max_topups_per_day   BIGINT CHECK (max_topups_per_day IS NULL OR max_topups_per_day > 0),
    monthly_limit        BIGINT CHECK (monthly_limit IS NULL OR monthly_limit > 0),
    monthly_limit_currency TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT,
    last_topup_at        BIGINT,
    next_attempt_at      BIGINT,
    consent_at           BIGINT,
    consent_ip           TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CHECK (target > threshold)
);
CREATE INDEX auto_topup_rules_method ON auto_topup_rules (payment_method_id);

-- The threshold of an active rule, on the account itself, so the ledger writer knows it from
-- the row it already reads for every debit: NULL (no rule) costs nothing.
ALTER TABLE accounts ADD COLUMN topup_threshold BIGINT;

-- Messages to users. Each is sent by a job; without a mail or SMS gateway it is written to the
-- log (`channel = 'log'`) and kept here all the same.
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'log')),
    destination TEXT,
    language    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body_text   TEXT NOT NULL,
    body_html   TEXT,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    error       TEXT,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_kind ON notifications (kind, id);
