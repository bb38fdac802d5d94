-- An order buys a package or an automatic top-up (no package, a fee line, a saved method).
ALTER TABLE orders ALTER COLUMN package_id DROP NOT NULL;
ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'package'
    CHECK (kind IN ('package', 'auto_topup'));
ALTER TABLE orders ADD COLUMN fee BIGINT NOT NULL DEFAULT 0 CHECK (fee >= 0);
ALTER TABLE orders ADD COLUMN payment_method_id TEXT REFERENCES payment_methods (id);
CREATE INDEX orders_user_kind ON orders (user_id, kind, created_at);
