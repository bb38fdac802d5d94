-- Engagement: the daily gift and the reward inbox. Each claim row is written in the ledger
-- transaction of its grant and names that grant's transfer, so `verify` can match claims and
-- transfers one to one.

-- One row per user and local day (BURSAR_TIMEZONE): the primary key is what makes concurrent
-- claims of the same day pay once.
CREATE TABLE daily_gift_claims (
    user_id     TEXT NOT NULL REFERENCES users (id),
    day         TEXT NOT NULL, -- the local date, YYYY-MM-DD
    streak      BIGINT NOT NULL CHECK (streak >= 1),
    credits     BIGINT NOT NULL CHECK (credits > 0),
    -- The gift's transfer; set by the same command, right after the row claims the day.
    transfer_id TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE UNIQUE INDEX daily_gift_claims_transfer ON daily_gift_claims (transfer_id);

-- A reward an admin sends (to listed users or to every member), or a package's bonus kept for
-- its buyer's inbox (`order`, written with the order's payment). An admin's reaches inboxes
-- through delivery jobs in bounded chunks, never in one giant transaction.
CREATE TABLE rewards (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    credits     BIGINT NOT NULL CHECK (credits > 0),
    audience    TEXT NOT NULL CHECK (audience IN ('users', 'all_members', 'order')),
    recipients  BIGINT NOT NULL CHECK (recipients >= 0),
    expires_at  BIGINT,
    created_by  TEXT,
    -- For `order`: the paid order whose bonus this is; a refund of the order closes the
    -- reward while it is unclaimed.
    order_id    TEXT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX rewards_order ON rewards (order_id);

-- A reward in one user's inbox. Unique per reward and user, so a delivery chunk run twice
-- delivers nothing twice; `claimed_at` and `transfer_id` are set by the claim's ledger command.
CREATE TABLE inbox_items (
    id          TEXT PRIMARY KEY,
    reward_id   TEXT NOT NULL REFERENCES rewards (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    claimed_at  BIGINT,
    transfer_id TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (reward_id, user_id)
);
CREATE INDEX inbox_items_user ON inbox_items (user_id, id);
CREATE UNIQUE INDEX inbox_items_transfer ON inbox_items (transfer_id);

-- A package whose bonus goes to the buyer's inbox instead of arriving with the purchase.
ALTER TABLE packages ADD COLUMN bonus_to_inbox BIGINT NOT NULL DEFAULT 0
    CHECK (bonus_to_inbox IN (0, 1));
