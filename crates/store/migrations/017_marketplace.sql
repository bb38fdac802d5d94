-- The merchants' points marketplace. A product's `stock` is what is left; `stock_added` is all
-- the stock ever put in, so stock + the quantities of redemptions not cancelled always equals
-- it (`ledger verify` checks). The CHECK on stock is the last line behind the writer's guard.
CREATE TABLE products (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES users (id),
    name             TEXT NOT NULL,
    description      TEXT,
    points_price     BIGINT NOT NULL CHECK (points_price > 0),
    stock            BIGINT NOT NULL CHECK (stock >= 0),
    stock_added      BIGINT NOT NULL CHECK (stock_added >= stock),
    limit_per_member BIGINT CHECK (limit_per_member IS NULL OR limit_per_member > 0),
    active           BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    -- Delisted products keep their row and their redemptions' history.
    delisted_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX products_by_merchant ON products (merchant_id, id);

-- A redemption keeps the price it was made at. Its points went from the member to the
-- merchant's account in `transfer_id`; a cancellation brings them back in
-- `refund_transfer_id`, once.
CREATE TABLE redemptions (
    id                 TEXT PRIMARY KEY,
    product_id         TEXT NOT NULL REFERENCES products (id),
    merchant_id        TEXT NOT NULL REFERENCES users (id),
    user_id            TEXT NOT NULL REFERENCES users (id),
    product_name       TEXT NOT NULL,
    quantity           BIGINT NOT NULL CHECK (quantity > 0),
    unit_price         BIGINT NOT NULL CHECK (unit_price > 0),
    points_cost        BIGINT NOT NULL CHECK (points_cost > 0),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
    transfer_id        TEXT NOT NULL UNIQUE,
    refund_transfer_id TEXT UNIQUE,
    cancelled_by       TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    CHECK ((status = 'cancelled') = (refund_transfer_id IS NOT NULL))
);
CREATE INDEX redemptions_by_user ON redemptions (user_id, id);
CREATE INDEX redemptions_by_merchant ON redemptions (merchant_id, id);
CREATE INDEX redemptions_by_product_member ON redemptions (product_id, user_id);
