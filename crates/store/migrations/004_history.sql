-- Both backends. Looking up an order's transfers (refunds, `ledger verify`) no longer scans
-- the whole journal; spends have no order, so the index costs them nothing.
CREATE INDEX transfers_order ON transfers (order_id) WHERE order_id IS NOT NULL;
