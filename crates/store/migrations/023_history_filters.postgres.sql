-- PostgreSQL only: the per-account indexes of the journal carry each transfer's kind and time,
-- so a filtered history (one kind, a date range) is read from the index alone.
--
-- A filter that keeps little of a long history (a kind the member has once, a range before
-- every transfer) walked the account's index entries and fetched every transfer from the table
-- to test it: 10,000 heap fetches, 25 ms, for a member with 10,000 transfers. With the kind
-- and the time included, the walk is an index-only scan (once vacuum has marked the pages
-- all-visible, as autovacuum does for an insert-only table) and only the kept transfers are
-- fetched. SQLite does the same in `account_entries` (migration 021).
CREATE INDEX transfers_debit_history ON transfers (debit_account_id, id) INCLUDE (kind, created_at);
CREATE INDEX transfers_credit_history ON transfers (credit_account_id, id) INCLUDE (kind, created_at);
DROP INDEX transfers_debit;
DROP INDEX transfers_credit;
ALTER INDEX transfers_debit_history RENAME TO transfers_debit;
ALTER INDEX transfers_credit_history RENAME TO transfers_credit;
