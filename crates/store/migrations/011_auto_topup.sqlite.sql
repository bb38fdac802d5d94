-- An order buys a package or an automatic top-up (no package, a fee line, a saved method).
-- SQLite cannot drop a NOT NULL constraint, so the table is rebuilt under its own name. Foreign
-- keys are deferred to the commit: dropping `orders` leaves `order_refunds` pointing at nothing
-- until the same rows are back, which they are before the commit checks.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE orders_before_011 AS SELECT * FROM orders;
DROP TABLE orders;
CREATE TABLE orders (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id),
    package_id            TEXT REFERENCES packages (id), -- NULL for automatic top-ups
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
    updated_at            BIGINT NOT NULL,
    kind                  TEXT NOT NULL DEFAULT 'package' CHECK (kind IN ('package', 'auto_topup')),
    fee                   BIGINT NOT NULL DEFAULT 0 CHECK (fee >= 0),
    payment_method_id     TEXT REFERENCES payment_methods (id)
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_pending ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_coupon_user ON orders (coupon_id, user_id) WHERE coupon_id IS NOT NULL;
CREATE INDEX orders_provider_ref ON orders (provider, provider_ref);
CREATE INDEX orders_user_kind ON orders (user_id, kind, created_at);
INSERT INTO orders (id, user_id, package_id, package_name, quantity, currency, unit_price, discount, total, credits, bonus_credits, first_purchase_bonus_percent, coupon_id, coupon_code, provider, status, failure_reason, payment_id, provider_ref, payment_status, payment_json, payment_method, credits_granted, first_purchase_bonus, credits_clawed_back, amount_refunded, receipt_number, created_at, expires_at, paid_at, closed_at, updated_at)
SELECT id, user_id, package_id, package_name, quantity, currency, unit_price, discount, total, credits, bonus_credits, first_purchase_bonus_percent, coupon_id, coupon_code, provider, status, failure_reason, payment_id, provider_ref, payment_status, payment_json, payment_method, credits_granted, first_purchase_bonus, credits_clawed_back, amount_refunded, receipt_number, created_at, expires_at, paid_at, closed_at, updated_at FROM orders_before_011;
DROP TABLE orders_before_011;
