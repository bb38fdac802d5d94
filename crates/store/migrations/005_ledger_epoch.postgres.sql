-- PostgreSQL only. Every ledger writer's batch, in every instance sharing the database, first
-- advances its asset's epoch, under this row's lock: batches of one asset take turns, and a
-- writer whose last batch left the epoch at n knows, on reading n + 1, that nothing else has
-- changed the ledger since, so the accounts it kept from that batch are still true. Anything
-- else that changes accounts (an overdraft limit) advances the epoch too.
CREATE TABLE ledger_epochs (
    asset TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL
);
