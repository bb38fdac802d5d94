-- The catalog: what users can buy. Prices are integer minor units of a three-letter currency.
-- A package with min_level / min_balance is shown and sold only to users at or above both.
-- Rows are never deleted (orders will refer to them); `deleted_at` takes a package off the
-- catalog for good, `active = 0` hides it for now.
CREATE TABLE packages (
    id                           TEXT PRIMARY KEY,
    name                         TEXT NOT NULL,
    kind                         TEXT NOT NULL CHECK (kind IN ('credit_pack', 'subscription')),
    credits                      BIGINT NOT NULL CHECK (credits >= 0),
    bonus_credits                BIGINT NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
    price_amount                 BIGINT NOT NULL CHECK (price_amount >= 0),
    price_currency               TEXT NOT NULL,
    daily_credits                BIGINT CHECK (daily_credits IS NULL OR daily_credits > 0),
    duration_days                BIGINT CHECK (duration_days IS NULL OR duration_days > 0),
    first_purchase_bonus_percent BIGINT CHECK (first_purchase_bonus_percent IS NULL
                                               OR first_purchase_bonus_percent BETWEEN 0 AND 100),
    min_level_hundredths         BIGINT NOT NULL DEFAULT 0 CHECK (min_level_hundredths >= 0),
    min_balance                  BIGINT NOT NULL DEFAULT 0 CHECK (min_balance >= 0),
    sort_order                   BIGINT NOT NULL DEFAULT 0,
    active                       BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL,
    deleted_at                   BIGINT
);
CREATE INDEX packages_listed ON packages (sort_order, id) WHERE deleted_at IS NULL;
