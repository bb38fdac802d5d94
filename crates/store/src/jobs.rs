//! The durable job queue: one `jobs` table for everything that happens after a commit or on a
//! clock. A job caused by a change is inserted in that change's transaction (`enqueue_in`), so
//! it runs exactly when the change committed; workers claim due jobs with a lease, and a lease
//! that runs out (a worker that died mid-job) lets another worker take the job over. Running
//! jobs is `bursar_worker`'s; this module only stores them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub use bursar_core::JobState;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::ids::new_id;
use crate::page::{Page, PageRequest};
use crate::{Db, Dialect, StoreError};

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    /// JSON, read by the job's kind.
    pub payload: String,
    /// At most one job ever carries a key; enqueueing it again changes nothing.
    pub unique_key: Option<String>,
    /// Not before this instant; `None` is now.
    pub run_at_ms: Option<i64>,
    pub max_attempts: i64,
}

impl NewJob {
    pub fn new(kind: &'static str, payload: &impl serde::Serialize, max_attempts: i64) -> Self {
        Self {
            kind,
            payload: serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()),
            unique_key: None,
            run_at_ms: None,
            max_attempts: max_attempts.max(1),
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn at(mut self, run_at_ms: i64) -> Self {
        self.run_at_ms = Some(run_at_ms);
        self
    }
}

/// A job a worker holds the lease of. `attempt` counts this run (1 on the first).
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub attempt: i64,
    pub max_attempts: i64,
    /// This claim's token (in `locked_by`): only its holder records the outcome.
    pub lease: String,
    /// Whether the job's own work recorded its success (`complete_in`), shared by the clones
    /// the worker hands out: `NOT_RECORDED`, `RECORDED` or `LEASE_LOST`.
    recorded: Arc<AtomicU8>,
}

const NOT_RECORDED: u8 = 0;
const RECORDED: u8 = 1;
const LEASE_LOST: u8 = 2;

impl ClaimedJob {
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// What recording this claim's outcome is guarded by, for `complete_in`.
    pub fn claim(&self) -> JobClaim {
        JobClaim {
            id: self.id.clone(),
            attempt: self.attempt,
            lease: self.lease.clone(),
        }
    }

    /// Notes, once the transaction holding `complete_in` has committed, what it recorded
    /// (`kept`: whether this claim still held the lease). The worker then records nothing.
    pub fn completed(&self, kept: bool) {
        let value = if kept { RECORDED } else { LEASE_LOST };
        self.recorded.store(value, Ordering::Release);
    }

    /// `Some(kept)` once the job's own work recorded its success (see `completed`).
    pub fn recorded(&self) -> Option<bool> {
        match self.recorded.load(Ordering::Acquire) {
            NOT_RECORDED => None,
            value => Some(value == RECORDED),
        }
    }
}

/// One claim of one job: what recording its outcome is guarded by (the job, the attempt and
/// the lease's token), so a job whose work is one transaction records its success in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim {
    pub id: String,
    pub attempt: i64,
    pub lease: String,
}

/// Records inside the caller's transaction that the claimed job succeeded, as
/// `JobQueue::complete` does in a transaction of its own: a job whose work is one transaction
/// commits its work and its completion together, one write where there were two. After the
/// commit, tell the job (`ClaimedJob::completed`) so the worker records nothing more. `false`:
/// the claim no longer held the lease (it ran out and the job was taken over), and the record
/// was left to the new holder.
pub async fn complete_in(
    conn: &mut AnyConnection,
    claim: &JobClaim,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let complete = sqlx::query(sqlx::AssertSqlSafe(complete_sql(1)));
    let changed = bind_completion(complete, claim, now_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(changed == 1)
}

/// The statement recording a claim's success, its parameters numbered from `$first` (see
/// `bind_completion`).
fn complete_sql(first: usize) -> String {
    let [now, id, attempt, lease] = [first, first + 1, first + 2, first + 3];
    format!(
        "UPDATE jobs SET state = 'done', last_error = NULL, run_at = ${now}, locked_by = NULL,
             updated_at = ${now}
         WHERE id = ${id} AND state = 'running' AND attempts = ${attempt} AND locked_by = ${lease}"
    )
}

fn bind_completion<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    claim: &JobClaim,
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(now_ms)
        .bind(claim.id.clone())
        .bind(claim.attempt)
        .bind(claim.lease.clone())
}

/// Commits `tx`, with `completes`'s completion recorded in it when given (`complete_in`), and
/// then tells the job what was recorded: how a job whose work is one transaction ends.
pub(crate) async fn commit_completing(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    completes: Option<&ClaimedJob>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let kept = match completes {
        Some(job) => Some(complete_in(&mut tx, &job.claim(), now_ms).await?),
        None => None,
    };
    tx.commit().await?;
    if let (Some(job), Some(kept)) = (completes, kept) {
        job.completed(kept);
    }
    Ok(())
}

/// Runs `update` (a job's record of its work, one statement that writes and returns no rows) on
/// its own, or, with `completes`, in one transaction with that job's completion, which begins
/// with it (`Db::begin_with_a_write`). On SQLite that transaction is one script sent in one
/// call (`execute_completing_in_one_call`).
pub(crate) async fn execute_completing(
    db: &Db,
    update: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    completes: Option<&ClaimedJob>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(job) = completes else {
        update.execute(&db.pool).await?;
        return Ok(());
    };
    if db.dialect == Dialect::Sqlite {
        return execute_completing_in_one_call(db, update, job, now_ms).await;
    }
    let mut tx = db.begin_with_a_write().await?;
    update.execute(&mut *tx).await?;
    commit_completing(tx, completes, now_ms).await
}

/// SQLite: `update` and `job`'s completion as one script, from `BEGIN IMMEDIATE` to `COMMIT`,
/// sent to the connection's thread in one call. The write lock is then held for two statements
/// and the commit, not across three round trips to a thread that on a loaded machine waits for
/// a core each time, while the ledger writer waits for the lock.
async fn execute_completing_in_one_call(
    db: &Db,
    mut update: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    job: &ClaimedJob,
    now_ms: i64,
) -> Result<(), StoreError> {
    use sqlx::{Arguments, Execute};
    let args = update
        .take_arguments()
        .map_err(sqlx::Error::Encode)?
        .unwrap_or_default();
    let completion = complete_sql(args.len() + 1);
    // SQLite numbers a script's parameters across its statements: the completion's follow the
    // update's. Its `RETURNING` row says whether the claim still held the lease.
    let sql = format!(
        "BEGIN IMMEDIATE; {}; {completion} RETURNING id; COMMIT",
        update.sql().as_str()
    );
    db.note_write_begun();
    let script = bind_completion(
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args),
        &job.claim(),
        now_ms,
    );
    let mut conn = db.pool.acquire().await?;
    match script.fetch_all(&mut *conn).await {
        Ok(completed) => {
            job.completed(!completed.is_empty());
            Ok(())
        }
        Err(error) => {
            // The script may have stopped inside its transaction: the connection is closed
            // rather than handed back to the pool with it open.
            conn.close_on_drop();
            Err(error.into())
        }
    }
}

/// A job as admins see it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub state: JobState,
    pub unique_key: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The queue's state for one kind (`done` jobs are not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindStats {
    pub kind: String,
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    /// The due time of the longest-waiting queued job that is due; `None` when none is.
    pub oldest_queued_at_ms: Option<i64>,
}

/// Which jobs a claim may take.
pub enum Claim<'a> {
    /// Up to `limit` due jobs of these kinds, soonest due first.
    Due { kinds: &'a [&'a str], limit: i64 },
    /// The one job with this unique key, if it is due (a caller running it at once).
    Key(&'a str),
}

/// Inserts `job` on `conn`, inside the caller's transaction. `false`: a job with its unique key
/// already exists, and nothing was inserted.
pub async fn enqueue_in(
    conn: &mut AnyConnection,
    job: &NewJob,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, kind, payload, unique_key, state, attempts, max_attempts, run_at,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)
         ON CONFLICT DO NOTHING",
    )
    .bind(new_id("job"))
    .bind(job.kind)
    .bind(&job.payload)
    .bind(job.unique_key.as_deref())
    .bind(job.max_attempts)
    .bind(job.run_at_ms.unwrap_or(now_ms))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The queue: storage, and the signal that wakes this instance's worker when a job is added.
#[derive(Clone)]
pub struct JobQueue {
    db: Db,
    clock: Clock,
    wake: Arc<Notify>,
}

impl JobQueue {
    pub fn new(db: Db, clock: Clock, wake: Arc<Notify>) -> Self {
        Self { db, clock, wake }
    }

    /// Notified when a job was committed on this instance (by `enqueue` or a ledger batch).
    pub fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Enqueues a job in a transaction of its own (for work that no other change causes).
    pub async fn enqueue(&self, job: &NewJob) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let inserted = enqueue_in(&mut tx, job, self.clock.now_ms()).await?;
        tx.commit().await?;
        if inserted {
            self.wake.notify_one();
        }
        Ok(inserted)
    }

    /// Leases jobs to `worker` until `lease_ms` from now, counting an attempt for each. Running
    /// jobs whose lease ran out on their last attempt are failed first, so they are not run
    /// again past their limit.
    pub async fn claim(
        &self,
        worker: &str,
        which: Claim<'_>,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.clock.now_ms();
        // Which jobs, with its parameters numbered from `first`.
        let filter = |first: usize| match &which {
            Claim::Due { kinds, .. } => {
                let placeholders: Vec<String> = (0..kinds.len())
                    .map(|i| format!("${}", i + first))
                    .collect();
                format!("kind IN ({})", placeholders.join(", "))
            }
            Claim::Key(_) => format!("unique_key = ${first}"),
        };
        let limit = match &which {
            Claim::Due { kinds, limit } if !kinds.is_empty() && *limit > 0 => *limit,
            Claim::Due { .. } => return Ok(Vec::new()),
            Claim::Key(_) => 1,
        };
        // Looked at first with a plain read, which takes no lock: on SQLite a write transaction
        // competes with the ledger writer for the database's one write lock, and an idle
        // worker polling once a second cost busy loads about a sixth of their spends. It names
        // the same jobs as the claim, so jobs of kinds this instance does not run (during a
        // rolling upgrade) do not make it take the lock either.
        let look = format!(
            "SELECT 1 FROM jobs WHERE state IN ('queued', 'running') AND run_at <= $1 AND {}
             LIMIT 1",
            filter(2)
        );
        let due = bind_claim(sqlx::query(sqlx::AssertSqlSafe(look)).bind(now), &which)
            .fetch_optional(&self.db.pool)
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        self.fail_lapsed_last_attempts(now).await?;
        // PostgreSQL: rows another instance is claiming are skipped, not waited for. SQLite has
        // one writer at a time, so there is nothing to skip.
        let skip_locked = match self.db.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let filter = filter(5);
        // Each claim's own token: an outcome is recorded only by the holder of the current
        // lease, even after an admin's retry has reset the attempts to numbers used before.
        let lease = format!("{worker}/{}", new_id("lease"));
        // One statement, committed on its own: on SQLite it holds the write lock for that
        // statement only, where a transaction around it held the lock across four round trips
        // to the connection's thread (4–6 ms in all on a loaded machine, while the ledger
        // writer waited for the lock).
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, run_at = $1,
                 locked_by = $2, updated_at = $3
             WHERE id IN (SELECT id FROM jobs
                          WHERE state IN ('queued', 'running') AND run_at <= $3
                            AND attempts < max_attempts AND {filter}
                          ORDER BY run_at LIMIT $4 {skip_locked})
             RETURNING id, kind, payload, attempts, max_attempts"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now + lease_ms)
            .bind(lease.clone())
            .bind(now)
            .bind(limit);
        let rows = bind_claim(query, &which).fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedJob {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempt: row.try_get("attempts")?,
                    max_attempts: row.try_get("max_attempts")?,
                    lease: lease.clone(),
                    recorded: Arc::default(),
                })
            })
            .collect()
    }

    /// Fails running jobs whose lease ran out on their last attempt, so they are not run again
    /// past their limit (a claim never takes them: their attempts are used up). Looked for
    /// with a plain read first, since there rarely are any and the update takes the write lock.
    async fn fail_lapsed_last_attempts(&self, now: i64) -> Result<(), StoreError> {
        // The first term lets both statements use the index of claimable jobs.
        const LAPSED: &str = "state IN ('queued', 'running') AND state = 'running'
            AND run_at <= $1 AND attempts >= max_attempts";
        let any = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM jobs WHERE {LAPSED} LIMIT 1"
        )))
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        if any.is_some() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE jobs SET state = 'failed', locked_by = NULL, updated_at = $1,
                     last_error = 'its worker stopped during the last attempt; ' || COALESCE(last_error, '')
                 WHERE {LAPSED}"
            )))
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    /// The job succeeded. `false`: this worker no longer held its lease (it ran out and the job
    /// was taken over), so the record was left to the new holder.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        self.finish(job, JobState::Done, None, None).await
    }

    /// The attempt failed; the job runs again at `run_at_ms`.
    pub async fn retry_at(
        &self,
        job: &ClaimedJob,
        error: &str,
        run_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.finish(job, JobState::Queued, Some(error), Some(run_at_ms))
            .await
    }

    /// The job is given up: `failed` with its last error, until an admin queues it again.
    pub async fn fail(&self, job: &ClaimedJob, error: &str) -> Result<bool, StoreError> {
        self.finish(job, JobState::Failed, Some(error), None).await
    }

    /// Gives the lease back without using up the attempt (the worker is shutting down).
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1,
                 locked_by = NULL, updated_at = $1
             WHERE id = $2 AND state = 'running' AND attempts = $3 AND locked_by = $4",
        )
        .bind(self.clock.now_ms())
        .bind(&job.id)
        .bind(job.attempt)
        .bind(&job.lease)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn finish(
        &self,
        job: &ClaimedJob,
        state: JobState,
        error: Option<&str>,
        run_at_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let changed = sqlx::query(
            "UPDATE jobs SET state = $1, last_error = $2, run_at = $3, locked_by = NULL,
                 updated_at = $4
             WHERE id = $5 AND state = 'running' AND attempts = $6 AND locked_by = $7",
        )
        .bind(state.as_str())
        .bind(error.map(|e| truncate(e, ERROR_CHARS_MAX)))
        .bind(run_at_ms.unwrap_or(now))
        .bind(now)
        .bind(&job.id)
        .bind(job.attempt)
        .bind(&job.lease)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Queues a failed job again with its attempts reset, with `audit` written in the same
    /// transaction. `None`: no such job; `Some((false, job))`: it exists but is not failed, and
    /// nothing was written.
    pub async fn retry_failed(
        &self,
        id: &str,
        audit: crate::audit::AuditRecord<'_>,
    ) -> Result<Option<(bool, JobRecord)>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            crate::audit::record(&mut tx, audit, now).await?;
        }
        tx.commit().await?;
        if changed == 1 {
            self.wake.notify_one();
        }
        Ok(self.job(id).await?.map(|job| (changed == 1, job)))
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.job_where("id", id).await
    }

    /// The job with this unique key, if any.
    pub async fn job_by_key(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        self.job_where("unique_key", key).await
    }

    /// The job whose `column` (a unique one) is `value`.
    async fn job_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {column} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(job_record).transpose()
    }

    /// Jobs in one state, newest first.
    pub async fn jobs_in(
        &self,
        state: JobState,
        kind: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>, StoreError> {
        let of_kind = if kind.is_some() { "AND kind = $4" } else { "" };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 AND id < $2 {of_kind}
             ORDER BY id DESC LIMIT $3"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(page.before_or_max())
            .bind(page.fetch_limit());
        if let Some(kind) = kind {
            query = query.bind(kind);
        }
        let rows = query.fetch_all(&self.db.pool).await?;
        let jobs = rows.iter().map(job_record).collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(jobs, |job| job.id.clone()))
    }

    /// Queued, running and failed jobs per kind.
    pub async fn stats(&self) -> Result<Vec<KindStats>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind,
                    SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END) AS queued,
                    SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS running,
                    SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed,
                    MIN(CASE WHEN state = 'queued' AND run_at <= $1 THEN run_at END) AS oldest
             FROM jobs WHERE state <> 'done' GROUP BY kind ORDER BY kind",
        )
        .bind(self.clock.now_ms())
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KindStats {
                    kind: row.try_get("kind")?,
                    queued: row.try_get("queued")?,
                    running: row.try_get("running")?,
                    failed: row.try_get("failed")?,
                    oldest_queued_at_ms: row.try_get("oldest")?,
                })
            })
            .collect()
    }

    /// Forgets jobs that finished before `before_ms`. Their unique keys go with them, which is
    /// safe for keys of past periods and of finished work that nothing enqueues again.
    pub async fn purge_done(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
                 WHERE state = 'done' AND updated_at < $1 LIMIT $2)",
        )
        .bind(before_ms)
        .bind(limit)
        .execute(&self.db.pool)
        .await?
        .rows_affected())
    }
}

/// Binds the parameters of a claim's filter (its kinds, or its key) after the others.
fn bind_claim<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    which: &Claim<'_>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match which {
        Claim::Due { kinds, .. } => {
            for kind in kinds.iter() {
                query = query.bind(kind.to_string());
            }
        }
        Claim::Key(key) => query = query.bind(key.to_string()),
    }
    query
}

/// Errors are kept to this many characters (a provider may answer with a whole page).
const ERROR_CHARS_MAX: usize = 2000;

fn truncate(text: &str, chars_max: usize) -> String {
    text.chars().take(chars_max).collect()
}

const JOB_COLUMNS: &str = "id, kind, state, unique_key, attempts, max_attempts, run_at, \
                           last_error, created_at, updated_at";

fn job_record(row: &sqlx::any::AnyRow) -> Result<JobRecord, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Config(format!("unknown job state {state:?}")))?,
        unique_key: row.try_get("unique_key")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at_ms: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}
