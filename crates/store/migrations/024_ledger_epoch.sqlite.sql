-- SQLite gets the ledger epoch PostgreSQL has had since migration 005: every ledger writer's
-- batch advances it, and so does anything else that changes what the writer keeps between
-- batches (an account's overdraft limit, a user's status, an auto top-up rule). The writer
-- used SQLite's `data_version` instead, which any other connection's commit changes, whatever
-- it wrote: each job claimed, notification sent or order placed dropped everything the writer
-- had cached, and the next batch read its accounts again (an auto top-up's six commits outside
-- the writer made batches load three times as long, and the spend profile 10% slower).
CREATE TABLE ledger_epochs (
    asset TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL
);
