-- The durable job queue: everything that happens after a commit or on a clock. A job caused by
-- a ledger change is inserted in that change's transaction, so it exists exactly when the
-- change does.
--
-- `run_at` is when the job may next be claimed: for a queued job its due time, for a running
-- job the end of its lease (a worker that dies mid-job leaves it running; once the lease has
-- run out another worker takes it over). One index over both states then finds every job a
-- worker may claim.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    -- At most one job ever per key: a scheduled period (`expire_orders:2026-12-02T10:05`), a
    -- refund, a charge. A repeated enqueue with the same key is a no-op.
    unique_key   TEXT,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts BIGINT NOT NULL CHECK (max_attempts > 0),
    run_at       BIGINT NOT NULL,
    locked_by    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_claimable ON jobs (run_at) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_by_kind ON jobs (kind, state);

-- Provider refunds move onto the queue: every refund still waiting for its provider becomes a
-- job, due when its old retry was (`order_refunds` keeps its data; its `attempts` and
-- `next_attempt_at` are history from now on).
INSERT INTO jobs (id, kind, payload, unique_key, state, attempts, max_attempts, run_at,
                  created_at, updated_at)
SELECT 'job_' || substr(id, 5), 'provider_refund', '{"refund_id":"' || id || '"}',
       'provider_refund:' || id, 'queued', 0, 10, next_attempt_at, created_at, updated_at
FROM order_refunds WHERE status = 'pending';
