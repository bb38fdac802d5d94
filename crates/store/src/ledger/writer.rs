//! The single writer with group commit. Callers send requests and wait; the writer takes every
//! request that queued up while the previous commit was in flight (at most `BATCH_MAX`),
//! applies them in arrival order inside one transaction, each behind its own savepoint so a
//! refusal undoes only that request, commits once, and only then answers every caller. Nothing
//! is acknowledged before it is durable.

use bursar_core::LedgerError;
use sqlx::{AnyConnection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::batch::Batch;
use super::{Reply, Request, commands};
use crate::{Clock, Db, StoreError};

/// The most requests applied in one transaction.
const BATCH_MAX: usize = 512;
/// Requests waiting for the writer; callers beyond this wait to enqueue (back-pressure).
const QUEUE_MAX: usize = 8192;

type Answer = oneshot::Sender<Result<Reply, StoreError>>;

#[derive(Clone)]
pub struct Ledger {
    sender: mpsc::Sender<(Request, Answer)>,
}

impl Ledger {
    pub fn start(db: Db, clock: Clock, asset: String) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(db, clock, asset, receiver));
        Self { sender }
    }

    /// Applies one request and waits until it is committed (or refused).
    pub async fn execute(&self, request: impl Into<Request>) -> Result<Reply, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send((request.into(), answer))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answered.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(db: Db, clock: Clock, asset: String, mut receiver: mpsc::Receiver<(Request, Answer)>) {
    let mut jobs = Vec::with_capacity(BATCH_MAX);
    while receiver.recv_many(&mut jobs, BATCH_MAX).await > 0 {
        let requests: Vec<&Request> = jobs.iter().map(|(request, _)| request).collect();
        let results = match commit_batch(&db, &clock, &asset, &requests).await {
            Ok(results) => results,
            // The batch as a whole failed (a lost connection, a deadlock with another instance):
            // nothing in it was committed, so each request is retried alone and answered alone.
            Err(error) if requests.len() > 1 => {
                tracing::warn!(%error, size = requests.len(), "batch failed; retrying one by one");
                let mut results = Vec::with_capacity(requests.len());
                for request in &requests {
                    results.push(match commit_batch(&db, &clock, &asset, &[request]).await {
                        Ok(mut single) => single.remove(0),
                        Err(error) => Err(error),
                    });
                }
                results
            }
            Err(error) => vec![Err(error)],
        };
        metrics::counter!("bursar_ledger_batches_total").increment(1);
        metrics::histogram!("bursar_ledger_batch_size").record(requests.len() as f64);
        drop(requests);
        for ((_, answer), result) in jobs.drain(..).zip(results) {
            // The caller may have gone away; the effect is committed either way.
            let _ = answer.send(result);
        }
    }
}

/// Applies `requests` in one transaction and commits. `Ok` holds one result per request; `Err`
/// means nothing was committed.
async fn commit_batch(
    db: &Db,
    clock: &Clock,
    asset: &str,
    requests: &[&Request],
) -> Result<Vec<Result<Reply, StoreError>>, StoreError> {
    let mut tx = db.begin_write().await?;
    let mut batch = Batch::open(&mut tx, db.dialect, asset, clock.now_ms()).await?;
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        tx.execute("SAVEPOINT command").await?;
        let snapshot = batch.snapshot();
        let result = apply_once(&mut batch, &mut tx, request).await;
        if result.is_err() {
            tx.execute("ROLLBACK TO SAVEPOINT command").await?;
            batch.restore(snapshot);
        }
        tx.execute("RELEASE SAVEPOINT command").await?;
        let result = match result {
            // Another instance stored the same key first: answer with what it stored.
            Err(error) if error.is_unique_violation() && request.idempotency.is_some() => {
                match stored_reply(&mut tx, request).await? {
                    Some(reply) => Ok(reply),
                    None => Err(error),
                }
            }
            other => other,
        };
        if let Ok(reply) = &result {
            if !reply.replayed {
                metrics::counter!("bursar_ledger_commands_total", "outcome" => "applied")
                    .increment(1);
            }
        } else {
            metrics::counter!("bursar_ledger_commands_total", "outcome" => "refused").increment(1);
        }
        results.push(result);
    }
    batch.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(results)
}

/// Replays a stored response for a repeated idempotency key, or applies the command and stores
/// its response under the key in the same transaction.
async fn apply_once(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    request: &Request,
) -> Result<Reply, StoreError> {
    if let Some(reply) = stored_reply(conn, request).await? {
        return Ok(reply);
    }
    let reply = commands::apply(batch, conn, &request.command).await?;
    if let Some(key) = &request.idempotency {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(&key.request_hash)
        .bind(i64::from(reply.status))
        .bind(&reply.body)
        .bind(batch.now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(reply)
}

async fn stored_reply(
    conn: &mut AnyConnection,
    request: &Request,
) -> Result<Option<Reply>, StoreError> {
    let Some(key) = &request.idempotency else {
        return Ok(None);
    };
    let stored: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .fetch_optional(&mut *conn)
    .await?;
    match stored {
        None => Ok(None),
        Some((hash, _, _)) if hash != key.request_hash => {
            Err(LedgerError::IdempotencyMismatch.into())
        }
        Some((_, status, body)) => Ok(Some(Reply {
            status: u16::try_from(status).unwrap_or(200),
            body,
            replayed: true,
        })),
    }
}
