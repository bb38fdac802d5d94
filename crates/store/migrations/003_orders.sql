-- Coupons, orders, the provider events that pay them, refunds and receipt numbers.

-- A coupon takes `percent_off` (1–100) or `amount_off` (minor units of `currency`) off an
-- order. `reserved` counts pending orders holding it and `redeemed` paid ones; together they
-- never pass `max_redemptions`, which a guarded UPDATE enforces under concurrency.
CREATE TABLE coupons (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE, -- stored upper-cased
    percent_off      BIGINT CHECK (percent_off IS NULL OR percent_off BETWEEN 1 AND 100),
    amount_off       BIGINT CHECK (amount_off IS NULL OR amount_off > 0),
    currency         TEXT,
    valid_from       BIGINT,
    valid_until      BIGINT,
    max_redemptions  BIGINT CHECK (max_redemptions IS NULL OR max_redemptions > 0),
    max_per_user     BIGINT CHECK (max_per_user IS NULL OR max_per_user > 0),
    package_ids      TEXT, -- JSON array; NULL means every package
    reserved         BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    redeemed         BIGINT NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    active           BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT, -- rows stay for the orders that used them
    CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
    CHECK (amount_off IS NULL OR currency IS NOT NULL),
    CHECK (max_redemptions IS NULL OR reserved + redeemed <= max_redemptions)
);

-- One order buys `quantity` of one package through one provider. Prices, credits and the
-- first-purchase bonus share are copied from the package when the order is created, so a later
-- catalog change does not alter it. Every status change is a guarded UPDATE on `status`.
CREATE TABLE orders (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id),
    package_id            TEXT NOT NULL REFERENCES packages (id),
    package_name          TEXT NOT NULL,
    quantity              BIGINT NOT NULL CHECK (quantity > 0),
    currency              TEXT NOT NULL,
    unit_price            BIGINT NOT NULL CHECK (unit_price >= 0),
    discount              BIGINT NOT NULL CHECK (discount >= 0),
    total                 BIGINT NOT NULL CHECK (total >= 0),
    credits               BIGINT NOT NULL CHECK (credits >= 0),
    bonus_credits         BIGINT NOT NULL CHECK (bonus_credits >= 0),
    first_purchase_bonus_percent BIGINT,
    coupon_id             TEXT REFERENCES coupons (id),
    coupon_code           TEXT,
    provider              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN
                              ('pending', 'paid', 'failed', 'cancelled', 'expired', 'refunded')),
    failure_reason        TEXT,
    -- The payment: Bursar's id for it, the provider's reference, and what became of the money
    -- (`refund_required` when it arrived for an order that could no longer be paid).
    payment_id            TEXT NOT NULL UNIQUE,
    provider_ref          TEXT,
    payment_status        TEXT NOT NULL DEFAULT 'pending' CHECK (payment_status IN
                              ('pending', 'succeeded', 'failed', 'mismatch', 'refund_required',
                               'refunded', 'refund_failed')),
    payment_json          TEXT, -- the `payment` object given to the client
    payment_method        TEXT,
    credits_granted       BIGINT NOT NULL DEFAULT 0,
    first_purchase_bonus  BIGINT NOT NULL DEFAULT 0,
    credits_clawed_back   BIGINT NOT NULL DEFAULT 0,
    amount_refunded       BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= total),
    receipt_number        BIGINT UNIQUE,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    paid_at               BIGINT,
    closed_at             BIGINT,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_pending ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_coupon_user ON orders (coupon_id, user_id) WHERE coupon_id IS NOT NULL;
CREATE INDEX orders_provider_ref ON orders (provider, provider_ref);

-- Every verified webhook, once: the unique key makes a redelivery a no-op.
CREATE TABLE provider_events (
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    order_id    TEXT,
    payment_id  TEXT,
    amount      BIGINT,
    currency    TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- Money going back to a buyer: an admin's (or the provider's) refund of a paid order, or a
-- payment that arrived for an order that could no longer take it (`late_payment`). The ledger
-- side commits first; the provider is then asked, and asked again with back-off while it is
-- unavailable, until it answers.
CREATE TABLE order_refunds (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL REFERENCES orders (id),
    kind           TEXT NOT NULL DEFAULT 'refund' CHECK (kind IN ('refund', 'late_payment')),
    amount         BIGINT NOT NULL CHECK (amount > 0),
    credits        BIGINT NOT NULL CHECK (credits >= 0),
    allow_negative BIGINT NOT NULL CHECK (allow_negative IN (0, 1)),
    reason         TEXT,
    actor          TEXT,
    transfer_id    TEXT, -- the clawback transfer (written later in the same transaction)
    status         TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_ref   TEXT,
    failure_reason TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX order_refunds_order ON order_refunds (order_id);
CREATE INDEX order_refunds_due ON order_refunds (next_attempt_at) WHERE status = 'pending';

-- Gap-free counters (receipt numbers), advanced inside the transaction that uses the number.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('receipt', 0);
