//! The single writer with group commit. Callers send requests and wait; the writer takes every
//! request that queued up while the previous commit was in flight (at most `BATCH_MAX`),
//! applies them in arrival order as one unit of work (`state.rs`) in one transaction, commits
//! once, and only then answers every caller. Each command checks everything before it changes
//! anything, so a refusal fails only that command. Nothing is acknowledged before it is durable.

use std::path::PathBuf;
use std::sync::Arc;

use bursar_core::LedgerError;
use sqlx::AnyConnection;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::durability::{Answer, Pending, Syncer};
use super::history;
use super::state::{Cached, StoredReply, UnitOfWork};
use super::{Command, Executed, Fulfilment, Outcome, PaymentEvent, Request, commands};
use crate::db::Dialect;
use crate::idempotency::{self, KeyClaim};
use crate::{Clock, Db, StoreError};

/// The most requests applied in one transaction.
const BATCH_MAX: usize = 512;
/// Requests waiting for the writer; callers beyond this wait to enqueue (back-pressure).
const QUEUE_MAX: usize = 8192;

#[derive(Clone)]
pub struct Ledger {
    sender: mpsc::Sender<(Request, Answer)>,
    /// Asks the writer to stop once it has applied what is queued.
    stop: CancellationToken,
    /// Cancelled when the writer's thread has ended, however it ended (a panic included).
    finished: CancellationToken,
}

impl Ledger {
    /// Starts the writer on a thread of its own with its own runtime: its chain of database
    /// round trips is the ledger's critical path, so it must never wait in a queue behind
    /// request handlers for a turn on a shared worker thread. It stops when asked (`stop`) or
    /// when every `Ledger` handle is gone, after applying what was queued. `jobs_wake` is notified once a batch that enqueued jobs is durable.
    pub fn start(
        db: Db,
        clock: Clock,
        asset: String,
        jobs_wake: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE_MAX);
        let syncer = Syncer::start()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("cannot start the ledger writer: {e}")))?;
        let (stop, finished) = (CancellationToken::new(), CancellationToken::new());
        let (stop_seen, finished_on_exit) = (stop.clone(), finished.clone());
        std::thread::Builder::new()
            .name("bursar-ledger-writer".into())
            .spawn(move || {
                // Dropped when the thread ends, by a return or by a panic unwinding it.
                let _finished = finished_on_exit.drop_guard();
                runtime.block_on(run(
                    db, clock, asset, syncer, jobs_wake, receiver, stop_seen,
                ));
            })
            .map_err(|e| StoreError::Config(format!("cannot start the ledger writer: {e}")))?;
        Ok(Self {
            sender,
            stop,
            finished,
        })
    }

    /// Stops the writer once it has applied and answered everything already queued; later
    /// requests get `WriterGone`.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// False once the writer has ended, asked to or not.
    pub fn is_running(&self) -> bool {
        !self.finished.is_cancelled()
    }

    /// Waits until the writer has ended.
    pub async fn stopped(&self) {
        self.finished.cancelled().await;
    }

    /// Applies one request and waits until it is committed (or refused).
    pub async fn execute(&self, request: impl Into<Request>) -> Result<Executed, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send((request.into(), answer))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answered.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Applies a verified payment event to its order (see `orders::fulfil`).
    pub async fn fulfil(&self, event: PaymentEvent) -> Result<Fulfilment, StoreError> {
        match self.execute(Command::Fulfil(event)).await?.outcome() {
            Some(Outcome::Fulfilment(fulfilment)) => Ok(fulfilment),
            other => unreachable!("a fulfilment answers with its outcome, not {other:?}"),
        }
    }

    /// `fulfil` for the claimed job that charged the payment: the job's completion commits with
    /// the fulfilment (one write less on SQLite's one write lock), and `job` is told.
    pub async fn fulfil_for_job(
        &self,
        event: PaymentEvent,
        job: &crate::jobs::ClaimedJob,
    ) -> Result<Fulfilment, StoreError> {
        let command = Command::FulfilForJob(event, job.claim());
        match self.execute(command).await?.outcome() {
            Some(Outcome::Fulfilment(fulfilment)) => {
                if let Some(kept) = fulfilment.job_completed {
                    job.completed(kept);
                }
                Ok(fulfilment)
            }
            other => unreachable!("a fulfilment answers with its outcome, not {other:?}"),
        }
    }

    /// Settles overdue holds and grants on at most `max_accounts` accounts; answers how many.
    pub async fn expire_due(&self, max_accounts: i64) -> Result<usize, StoreError> {
        match self
            .execute(Command::ExpireDue { max_accounts })
            .await?
            .outcome()
        {
            Some(Outcome::Expired { accounts }) => Ok(accounts),
            other => unreachable!("an expiry answers with its count, not {other:?}"),
        }
    }
}

/// The writer task's own connection and settings.
struct Writer {
    db: Db,
    clock: Clock,
    asset: String,
    /// Its own connection, opened on the writer's thread; replaced after a failure.
    conn: Option<AnyConnection>,
    /// SQLite with durable commits: the write-ahead log that `syncer` makes durable before a
    /// batch is acknowledged (see `Db::connect_writer`).
    wal: Option<PathBuf>,
    syncer: Syncer,
    /// The accounts as the last commit left them (see `state::Cached`).
    cache: Option<Cached>,
    /// SQLite: when to next move new transfers into the history index (see `history.rs`).
    history: history::Schedule,
    /// This instance's job worker, woken when a batch enqueued jobs.
    jobs_wake: Arc<Notify>,
    /// Jobs enqueued by the batches since the last acknowledgement.
    jobs_enqueued: usize,
}

impl Writer {
    async fn commit(
        &mut self,
        requests: &[&Request],
    ) -> Result<Vec<Result<Executed, StoreError>>, Failed> {
        let Writer {
            db,
            clock,
            asset,
            conn,
            wal,
            cache,
            ..
        } = self;
        let mut fresh = false;
        loop {
            let result = match connected(conn, wal, db).await {
                Ok(conn) => commit_batch(conn, db, clock, asset, cache.take(), requests).await,
                Err(error) => Err(Failed::from(error)),
            };
            match result {
                Ok(Committed {
                    results,
                    cache: kept,
                    transfers,
                    jobs_enqueued,
                }) => {
                    *cache = kept;
                    self.jobs_enqueued += jobs_enqueued;
                    self.history.wrote(transfers);
                    return Ok(results);
                }
                Err(Failed { error, at_commit }) => {
                    // A failed transaction may have left the connection unusable, and the
                    // cache may hold changes that were never committed: start afresh.
                    *conn = None;
                    // A connection lost before COMMIT was sent committed nothing (the database
                    // rolls back a transaction whose session ends), so the batch is applied
                    // again, once, on a fresh connection: a database restart, a failover or
                    // an administrator terminating backends fails no request. One lost during
                    // COMMIT may have committed, so it is not retried blindly.
                    if !fresh && !at_commit && error.is_connection_lost() {
                        tracing::warn!(%error, "the ledger's connection was lost; applying the batch again on a new one");
                        metrics::counter!("bursar_ledger_reconnects_total").increment(1);
                        fresh = true;
                        continue;
                    }
                    return Err(Failed { error, at_commit });
                }
            }
        }
    }

    /// Commits one request alone; when another instance stored its idempotency key first,
    /// answers with what that instance stored.
    async fn commit_one(&mut self, request: &Request) -> Result<Executed, StoreError> {
        match self.commit(&[request]).await {
            Ok(mut single) => single.remove(0),
            Err(Failed {
                at_commit: true, ..
            }) => Err(StoreError::CommitOutcomeUnknown),
            Err(Failed { error, .. })
                if error.is_unique_violation() && request.idempotent.is_some() =>
            {
                let Writer {
                    db,
                    clock,
                    asset,
                    conn,
                    wal,
                    ..
                } = self;
                replay_after_race(connected(conn, wal, db).await?, db, clock, asset, request).await
            }
            Err(Failed { error, .. }) => Err(error),
        }
    }

    /// Moves the transfers written since the last run into the history index. A failure is
    /// logged and left for a later run: reads still find those transfers in the tail.
    async fn index_history(&mut self) {
        let Writer { db, conn, wal, .. } = self;
        let outcome = match connected(conn, wal, db).await {
            Ok(conn) => history::index_run(db, conn).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &outcome {
            tracing::warn!(%error, "indexing the account history failed; will retry");
            // As after a failed batch: a fresh connection, and no cache compared against it.
            self.conn = None;
            self.cache = None;
        }
        self.history.ran(&outcome);
    }

    /// Answers every caller of a batch, and wakes the job worker if it enqueued jobs: at once,
    /// or once the batch is durable (a job must not act on a commit that could still be lost).
    fn acknowledge(&mut self, answers: Vec<(Answer, Result<Executed, StoreError>)>) {
        let wake = (std::mem::take(&mut self.jobs_enqueued) > 0).then(|| self.jobs_wake.clone());
        match &self.wal {
            Some(wal) => self.syncer.acknowledge_when_durable(Pending {
                wal: wal.clone(),
                answers,
                wake,
            }),
            None => {
                for (answer, result) in answers {
                    // The caller may have gone away; the effect is committed either way.
                    let _ = answer.send(result);
                }
                if let Some(wake) = wake {
                    wake.notify_one();
                }
            }
        }
    }
}

/// The writer's connection, opened on first use (and after a failure dropped it).
async fn connected<'c>(
    slot: &'c mut Option<AnyConnection>,
    wal: &mut Option<PathBuf>,
    db: &Db,
) -> Result<&'c mut AnyConnection, StoreError> {
    match slot {
        Some(conn) => Ok(conn),
        None => {
            let (conn, log) = db.connect_writer().await?;
            *wal = log;
            Ok(slot.insert(conn))
        }
    }
}

async fn run(
    db: Db,
    clock: Clock,
    asset: String,
    syncer: Syncer,
    jobs_wake: Arc<Notify>,
    mut receiver: mpsc::Receiver<(Request, Answer)>,
    stop: CancellationToken,
) {
    let history = history::Schedule::new(db.dialect);
    let mut writer = Writer {
        db,
        clock,
        asset,
        conn: None,
        wal: None,
        syncer,
        cache: None,
        history,
        jobs_wake,
        jobs_enqueued: 0,
    };
    let mut jobs = Vec::with_capacity(BATCH_MAX);
    loop {
        let waiting = writer.history.waiting();
        let received = tokio::select! {
            received = receive(&mut receiver, &mut jobs, waiting) => received,
            // Asked to stop: nothing more is accepted, and what is queued is applied first.
            () = stop.cancelled(), if !receiver.is_closed() => {
                receiver.close();
                continue;
            }
        };
        let Some(received) = received else {
            // Nothing to do but the history index: do it now, while it delays no one.
            writer.index_history().await;
            continue;
        };
        if received == 0 {
            break;
        }
        let requests: Vec<&Request> = jobs.iter().map(|(request, _)| request).collect();
        let started = std::time::Instant::now();
        let results = if requests.len() == 1 {
            vec![writer.commit_one(requests[0]).await]
        } else {
            match writer.commit(&requests).await {
                Ok(results) => results,
                // Lost while committing: the batch may have committed, so running its
                // requests again could apply them twice. Each caller is told the outcome is
                // unknown (a retry with its Idempotency-Key is safe).
                Err(Failed {
                    at_commit: true,
                    error,
                }) => {
                    tracing::error!(%error, size = requests.len(), "the connection was lost while committing a batch; its outcome is unknown");
                    requests
                        .iter()
                        .map(|_| Err(StoreError::CommitOutcomeUnknown))
                        .collect()
                }
                // The batch as a whole failed before its commit (a lost connection, a deadlock
                // with another instance, a balance taken out of range): nothing in it was
                // committed, so each request is retried alone.
                Err(Failed { error, .. }) => {
                    if !matches!(error, StoreError::Domain(_)) {
                        tracing::warn!(%error, size = requests.len(), "batch failed; retrying one by one");
                    }
                    let mut results = Vec::with_capacity(requests.len());
                    for request in &requests {
                        results.push(writer.commit_one(request).await);
                    }
                    results
                }
            }
        };
        metrics::counter!("bursar_ledger_batches_total").increment(1);
        metrics::histogram!("bursar_ledger_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("bursar_ledger_batch_size").record(requests.len() as f64);
        drop(requests);
        let answers = jobs
            .drain(..)
            .map(|(_, answer)| answer)
            .zip(results)
            .collect();
        writer.acknowledge(answers);
        if writer.history.due() {
            writer.index_history().await;
        }
    }
}

/// The next requests, at most `BATCH_MAX`; `Some(0)` once the queue is closed and empty. With
/// `idle_work` waiting, `None` after `history::IDLE` without a request.
async fn receive(
    receiver: &mut mpsc::Receiver<(Request, Answer)>,
    jobs: &mut Vec<(Request, Answer)>,
    idle_work: bool,
) -> Option<usize> {
    let next = receiver.recv_many(jobs, BATCH_MAX);
    if idle_work {
        tokio::time::timeout(history::IDLE, next).await.ok()
    } else {
        Some(next.await)
    }
}

/// Why a batch was not committed, and whether it got as far as sending `COMMIT` (after which
/// it may have committed without an answer reaching us).
struct Failed {
    error: StoreError,
    at_commit: bool,
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self {
            error,
            at_commit: false,
        }
    }
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// What a committed batch answers, and what its writer may keep for the next one.
struct Committed {
    results: Vec<Result<Executed, StoreError>>,
    cache: Option<Cached>,
    /// Transfers it wrote.
    transfers: usize,
    jobs_enqueued: usize,
}

/// Applies `requests` in one transaction and commits. `Ok` holds one result per request; `Err`
/// means nothing was committed (unless `at_commit`), and the caller must drop the connection,
/// whose transaction may still be open (no `Transaction` guard rolls it back).
async fn commit_batch(
    conn: &mut AnyConnection,
    db: &Db,
    clock: &Clock,
    asset: &str,
    cache: Option<Cached>,
    requests: &[&Request],
) -> Result<Committed, Failed> {
    let phase = PhaseTimer::start();
    let stamp = db.begin_ledger_batch_on(conn, asset).await?;
    // Apart from loading: on SQLite, the wait for a write lock another connection holds, and
    // the epoch's advance sent with it.
    let phase = phase.next("begin");
    let mut uow = UnitOfWork::open(conn, db.dialect, asset, clock.now_ms(), cache, stamp).await?;
    prefetch(&mut uow, conn, requests).await?;
    let phase = phase.next("load");
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let result = match apply_once(&mut uow, conn, request).await {
            // A refusal is this request's answer; any other failure fails the whole batch.
            Err(StoreError::Domain(refusal)) => Err(StoreError::Domain(refusal)),
            Err(failure) => return Err(failure.into()),
            Ok(executed) => Ok(executed),
        };
        if let Some(account) = uow.out_of_range() {
            // Nothing of the batch is committed: the writer retries its requests one by one,
            // and alone this one is refused with the same error while the others go through.
            return Err(StoreError::from(LedgerError::BalanceOutOfRange {
                account: account.to_string(),
            })
            .into());
        }
        uow.debug_assert_invariants();
        let outcome = match &result {
            Ok(Executed::Replayed(_)) => "replayed",
            Ok(_) => "applied",
            Err(_) => "refused",
        };
        metrics::counter!("bursar_ledger_commands_total", "outcome" => outcome).increment(1);
        results.push(result);
    }
    let phase = phase.next("apply");
    // SQLite commits at the end of the batch's write script, in the same round trip. A failure
    // there committed nothing (SQLite answers a COMMIT only once it is done, and the failure
    // drops the connection, rolling back what is left open), so the batch may be retried.
    // PostgreSQL commits apart: a connection lost during its COMMIT leaves the outcome unknown.
    let commit_in_script = db.dialect == Dialect::Sqlite;
    uow.flush(conn, commit_in_script).await?;
    let phase = phase.next("write");
    if !commit_in_script {
        sqlx::Executor::execute(&mut *conn, "COMMIT")
            .await
            .map_err(|error| Failed {
                error: error.into(),
                at_commit: true,
            })?;
    }
    phase.next("commit");
    let transfers = uow.transfer_count();
    let jobs_enqueued = uow.jobs_enqueued();
    Ok(Committed {
        results,
        cache: uow.into_cache(),
        transfers,
        jobs_enqueued,
    })
}

/// Times the phases of a batch into `bursar_ledger_phase_seconds{phase}`, to show where a
/// batch's time goes.
struct PhaseTimer(std::time::Instant);

impl PhaseTimer {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn next(self, finished: &'static str) -> Self {
        metrics::histogram!("bursar_ledger_phase_seconds", "phase" => finished)
            .record(self.0.elapsed().as_secs_f64());
        Self::start()
    }
}

/// Loads everything the batch's requests name, in a few bulk reads.
async fn prefetch(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    requests: &[&Request],
) -> Result<(), StoreError> {
    let keys: Vec<(&str, &str)> = requests
        .iter()
        .filter_map(|r| r.idempotent.as_ref())
        .map(|i| (i.key.scope.as_str(), i.key.key.as_str()))
        .collect();
    uow.load_idempotency(conn, &keys).await?;
    let (mut users, mut holds) = (Vec::new(), Vec::new());
    for request in requests {
        let (user, hold) = commands::wants(&request.command);
        users.extend(user);
        holds.extend(hold);
    }
    uow.load_holds(conn, &holds).await?;
    uow.load_users(conn, &users).await
}

/// Replays what is stored for a repeated idempotency key, or applies the command and stores
/// its rendering under the key, to be written in the same transaction.
async fn apply_once(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    request: &Request,
) -> Result<Executed, StoreError> {
    if let Some(idempotent) = &request.idempotent
        && let Some(stored) = uow.stored_reply(&idempotent.key.scope, &idempotent.key.key)
    {
        return replay(stored, &idempotent.key.request_hash, uow.now_ms);
    }
    let outcome = commands::apply(uow, conn, &request.command).await?;
    let rendered = request.idempotent.as_ref().map(|idempotent| {
        let rendered = (idempotent.render)(&outcome);
        let key = &idempotent.key;
        uow.remember_reply(
            &key.scope,
            &key.key,
            &key.request_hash,
            i64::from(rendered.status),
            &rendered.body,
        );
        rendered
    });
    Ok(Executed::Applied { outcome, rendered })
}

/// What a repeated key answers: the stored rendering, if the request is the same one.
fn replay(stored: &StoredReply, request_hash: &str, now_ms: i64) -> Result<Executed, StoreError> {
    let (hash, status, body) = stored;
    let record = idempotency::Stored {
        request_hash: hash.clone(),
        status: *status,
        body: body.clone(),
        // Records the writer stores are never in progress: they hold their response.
        created_at_ms: now_ms,
    };
    match record.judge(request_hash, now_ms) {
        KeyClaim::Replay(rendered) => Ok(Executed::Replayed(rendered)),
        KeyClaim::Mismatch => Err(LedgerError::IdempotencyMismatch.into()),
        KeyClaim::InProgress | KeyClaim::Claimed => Err(LedgerError::Conflict(
            "a request with this Idempotency-Key is still in progress".into(),
        )
        .into()),
    }
}

/// After a lone request failed on a unique key: another instance committed the same
/// idempotency key first, so answer with what it stored.
async fn replay_after_race(
    conn: &mut AnyConnection,
    db: &Db,
    clock: &Clock,
    asset: &str,
    request: &Request,
) -> Result<Executed, StoreError> {
    let mut tx = db.begin_write_on(conn).await?;
    let stamp = super::epoch::advance(&mut tx, asset).await?;
    let mut uow = UnitOfWork::open(&mut tx, db.dialect, asset, clock.now_ms(), None, stamp).await?;
    prefetch(&mut uow, &mut tx, &[request]).await?;
    let key = &request
        .idempotent
        .as_ref()
        .ok_or(StoreError::WriterGone)?
        .key;
    let executed = match uow.stored_reply(&key.scope, &key.key) {
        Some(stored) => replay(stored, &key.request_hash, uow.now_ms),
        None => Err(StoreError::WriterGone),
    };
    tx.rollback().await?;
    executed
}
