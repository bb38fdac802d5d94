-- The provider's own customer record for each user who saves a method there (a Stripe
-- Customer): made once, on first use, and reused for every later setup and off-session charge.
CREATE TABLE provider_customers (
    user_id      TEXT NOT NULL REFERENCES users (id),
    provider     TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider)
);

CREATE UNIQUE INDEX provider_customers_by_ref ON provider_customers (provider, customer_ref);

-- The provider's setup a method was saved through (a SetupIntent): the method is saved once
-- however often, and by however many routes, the setup's success arrives. Sandbox cards have
-- none (NULLs never collide).
ALTER TABLE payment_methods ADD COLUMN setup_ref TEXT;

CREATE UNIQUE INDEX payment_methods_by_setup ON payment_methods (provider, setup_ref);

-- The subscription a paid subscription order started or extended: what its full refund takes
-- its term back from.
ALTER TABLE orders ADD COLUMN subscription_id TEXT;

-- Until when one run holds the charge of a pending off-session order (auto top-up, renewal):
-- two runs never send its charge at once, and a run that died is taken over after it.
ALTER TABLE orders ADD COLUMN charging_until BIGINT;
