-- PostgreSQL part. A spend lowers its grant's `remaining`; when an index's predicate names that
-- column, every such update writes a new entry into every index of the table (no heap-only
-- update). The indexes now name `live`, which changes only when a grant runs out, so most
-- updates stay on their page and touch no index; the free space per page leaves them room.
ALTER TABLE grants ADD COLUMN live BOOLEAN GENERATED ALWAYS AS (remaining > 0) STORED;
ALTER TABLE grants SET (fillfactor = 85);
DROP INDEX grants_live;
DROP INDEX grants_expiring;
CREATE INDEX grants_live ON grants (account_id) WHERE live;
CREATE INDEX grants_expiring ON grants (expires_at) WHERE live AND expires_at IS NOT NULL;
