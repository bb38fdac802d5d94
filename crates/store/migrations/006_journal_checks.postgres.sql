-- PostgreSQL only. The journal's foreign keys were checked row by row by triggers, each a
-- lookup and a row lock written to the log: a third of the database's work for a batch of
-- spends. Only the ledger writer inserts these rows, with ids it has just read or written in
-- the same transaction, and `ledger verify` checks every reference they make (see verify.rs).
ALTER TABLE transfers DROP CONSTRAINT transfers_debit_account_id_fkey;
ALTER TABLE transfers DROP CONSTRAINT transfers_credit_account_id_fkey;
ALTER TABLE transfers DROP CONSTRAINT transfers_refund_of_fkey;
ALTER TABLE transfer_grants DROP CONSTRAINT transfer_grants_transfer_id_fkey;
ALTER TABLE transfer_grants DROP CONSTRAINT transfer_grants_grant_id_fkey;
