-- A balance sums its account's live holds: those held and not yet expired. Indexed by account
-- alone, that read had two indexes to choose from, and without table statistics PostgreSQL
-- chose the one by expiry (every open hold of every account, filtered). Both columns in one
-- index make it the only sensible choice; loading an account's open holds uses it as well.
CREATE INDEX holds_held ON holds (account_id, expires_at) WHERE status = 'held';
DROP INDEX holds_active;
