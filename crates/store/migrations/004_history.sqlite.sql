-- SQLite only: the per-account history index is built in runs instead of per transfer.
--
-- An index on (account, transfer) takes each new transfer into the page of its account, a
-- different page for nearly every spend on random accounts; in SQLite that page is written
-- to the log at every commit, and it was half of a spend's cost. Now the ledger writer only
-- appends to `transfers`; from time to time it moves the transfers after `indexed_through`
-- into `account_entries` in key order, in one transaction, so each account's page is written
-- once per run rather than once per spend. Reading an account's history takes the indexed
-- entries and the short unindexed tail of `transfers` (rowid above `indexed_through`).
--
-- Entries name the account and the transfer by rowid: two integers make an entry about a
-- tenth the size of two text ids, so a run costs a third as much (fewer page splits, a
-- cheaper sort). Nothing deletes accounts or transfers, so rowids never change, and each new
-- transfer's rowid (the largest so far, plus one) is above every committed one: transfer
-- rowids follow commit order, which is the order SQLite lists a history in. `ledger verify`
-- checks the index against the journal.
--
-- PostgreSQL keeps the plain indexes: its B-tree inserts land in shared buffers, and several
-- instances may write at once, so no counter there follows the order of commits.
DROP INDEX transfers_debit;
DROP INDEX transfers_credit;

CREATE TABLE account_entries (
    account  INTEGER NOT NULL, -- accounts.rowid
    transfer INTEGER NOT NULL, -- transfers.rowid
    PRIMARY KEY (account, transfer)
) WITHOUT ROWID;

CREATE TABLE history_index (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through BIGINT NOT NULL -- transfers.rowid: every transfer at or below it has its entries
);

INSERT INTO account_entries (account, transfer)
SELECT account, transfer FROM (
    SELECT a.rowid AS account, t.rowid AS transfer
    FROM transfers t JOIN accounts a ON a.id = t.debit_account_id
    UNION ALL
    SELECT a.rowid, t.rowid FROM transfers t JOIN accounts a ON a.id = t.credit_account_id
) ORDER BY account, transfer;

INSERT INTO history_index (id, indexed_through)
VALUES (1, (SELECT COALESCE(MAX(rowid), 0) FROM transfers));
