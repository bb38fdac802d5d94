-- Saved payment methods, for charges made without the user present (auto top-up, renewals).
-- Only what a provider gives back is kept: the brand, the last four digits and the provider's
-- own token for the method. Never a card number. A removed method keeps its row (orders and
-- top-ups that used it still name it) with `deleted_at` set.
CREATE TABLE payment_methods (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    provider   TEXT NOT NULL,
    brand      TEXT NOT NULL,
    last4      TEXT NOT NULL CHECK (length(last4) = 4),
    token      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE INDEX payment_methods_by_user ON payment_methods (user_id, id);
