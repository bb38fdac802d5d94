-- SQLite part: the same `live` column (computed when read) and indexes, so that both backends
-- share the queries that find live grants (see the PostgreSQL part for why it exists).
ALTER TABLE grants ADD COLUMN live INTEGER GENERATED ALWAYS AS (remaining > 0) VIRTUAL;
DROP INDEX grants_live;
DROP INDEX grants_expiring;
CREATE INDEX grants_live ON grants (account_id) WHERE live;
CREATE INDEX grants_expiring ON grants (expires_at) WHERE live AND expires_at IS NOT NULL;
