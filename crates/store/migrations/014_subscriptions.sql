-- Subscriptions: paying for a subscription package starts one, or extends the member's active
-- one for that package. While active it grants `daily_credits` each local day; the day's row
-- in `subscription_days` is written in the same transaction as its grant, so a day is granted
-- once whatever runs it twice. Reminders are recorded once per end date.
CREATE TABLE subscriptions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    package_id    TEXT NOT NULL REFERENCES packages (id),
    status        TEXT NOT NULL CHECK (status IN ('active', 'expired', 'cancelled')),
    daily_credits BIGINT NOT NULL CHECK (daily_credits > 0),
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    auto_renew    BIGINT NOT NULL DEFAULT 0 CHECK (auto_renew IN (0, 1)),
    -- Automatic renewal's declines in a row, the last one, and when to try again.
    renew_failures        BIGINT NOT NULL DEFAULT 0,
    renew_last_error      TEXT,
    renew_next_attempt_at BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions (user_id, package_id)
    WHERE status = 'active';
CREATE INDEX subscriptions_user ON subscriptions (user_id, id);

CREATE TABLE subscription_days (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    day             TEXT NOT NULL, -- the local date (BURSAR_TIMEZONE), YYYY-MM-DD
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, day)
);

CREATE TABLE subscription_reminders (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    ends_at         BIGINT NOT NULL,
    days_before     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, ends_at, days_before)
);
