//! Balance reads, coalesced as the writer coalesces commits: the reads that arrive while
//! earlier ones are in flight share one query for many users. Alone, each read costs the
//! database a round trip and a statement of its own; under load a few hundred share one.
//! A read still starts after its request arrived, so it sees every commit acknowledged before.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{AnyPool, Row};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::read::{BalanceView, GrantView};
use super::sql::{Value, postgres_array};
use crate::clock::rfc3339;
use crate::db::Dialect;
use crate::{Clock, Db, StoreError};

/// Users named in one query at most.
const USERS_PER_QUERY: usize = 256;
/// Queries running at once: more than one, so a read need not wait for a whole query ahead of
/// it, and well under the pool's size, so other requests still find a connection.
const QUERIES_IN_FLIGHT: usize = 4;
/// Reads waiting for a query; callers beyond this wait to enqueue.
const QUEUE_MAX: usize = 8192;

type Answer = oneshot::Sender<Result<Option<BalanceView>, StoreError>>;

/// A handle on the task that runs balance reads.
#[derive(Clone)]
pub struct BalanceReads {
    sender: mpsc::Sender<(String, Answer)>,
}

impl BalanceReads {
    /// Starts the reading task on `tasks`. It stops on `stop` (reads still queued are then
    /// answered `ReaderGone`) or when every handle is gone.
    pub fn start(
        db: &Db,
        clock: Clock,
        asset: String,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_MAX);
        let reads = Reads {
            pool: db.pool_with_one_plan_per_statement(QUERIES_IN_FLIGHT as u32),
            dialect: db.dialect,
            asset,
        };
        tasks.spawn(run(reads, clock, receiver, tasks.clone(), stop));
        Self { sender }
    }

    /// `None` when the user has no account (no such user).
    pub async fn read(&self, user_id: &str) -> Result<Option<BalanceView>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send((user_id.to_string(), answer))
            .await
            .map_err(|_| StoreError::ReaderGone)?;
        answered.await.map_err(|_| StoreError::ReaderGone)?
    }
}

/// Where and what the reading task reads.
#[derive(Clone)]
struct Reads {
    pool: AnyPool,
    dialect: Dialect,
    asset: String,
}

async fn run(
    reads: Reads,
    clock: Clock,
    mut receiver: mpsc::Receiver<(String, Answer)>,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(QUERIES_IN_FLIGHT));
    let mut waiting = Vec::with_capacity(USERS_PER_QUERY);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let received = tokio::select! {
            received = receiver.recv_many(&mut waiting, USERS_PER_QUERY) => received,
            () = stop.cancelled() => break,
        };
        if received == 0 {
            break;
        }
        let batch = std::mem::replace(&mut waiting, Vec::with_capacity(USERS_PER_QUERY));
        let (reads, now) = (reads.clone(), clock.now_ms());
        tasks.spawn(async move {
            answer(&reads, now, batch).await;
            drop(slot);
        });
    }
}

async fn answer(source: &Reads, now: i64, reads: Vec<(String, Answer)>) {
    // A user read twice at once is looked up once.
    let mut users: Vec<&str> = reads.iter().map(|(user, _)| user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    match balances(source, now, &users).await {
        Ok(found) => {
            for (user, answer) in reads {
                // The caller may have gone away.
                let _ = answer.send(Ok(found.get(&user).cloned()));
            }
        }
        Err(error) if reads.len() == 1 => {
            if let Some((_, answer)) = reads.into_iter().next() {
                let _ = answer.send(Err(error));
            }
        }
        // The shared query failed: each read alone, so each gets its own answer.
        Err(_) => {
            for (user, answer) in reads {
                let result = balances(source, now, &[user.as_str()])
                    .await
                    .map(|mut found| found.remove(&user));
                let _ = answer.send(result);
            }
        }
    }
}

/// The balances of the `users` that have an account, by user id. One query: each account,
/// what its live holds reserve, and its live grants in burn order (a row per grant; one row
/// with no grant when it has none).
async fn balances(
    source: &Reads,
    now: i64,
    users: &[&str],
) -> Result<HashMap<String, BalanceView>, StoreError> {
    let asset = source.asset.as_str();
    // The users travel as one parameter, so the statement's text never changes. On PostgreSQL
    // each is looked up alone: `LATERAL … LIMIT 1` keeps the planner from turning the lookups
    // into a scan of every user's account, as it did with no table statistics to go on.
    let (accounts, users_param) = match source.dialect {
        Dialect::Postgres => {
            let values: Vec<Value> = users.iter().map(|user| Value::Text(user)).collect();
            (
                "unnest($1::text[]) AS u(owner_id) CROSS JOIN LATERAL (
                     SELECT id, owner_id, balance, overdraft_limit FROM accounts
                     WHERE owner_kind = 'user' AND owner_id = u.owner_id AND asset = $2 LIMIT 1) AS a",
                postgres_array(values.iter()),
            )
        }
        Dialect::Sqlite => (
            "(SELECT id, owner_id, balance, overdraft_limit FROM accounts
              WHERE owner_kind = 'user' AND asset = $2
                AND owner_id IN (SELECT value FROM json_each($1))) AS a",
            serde_json::Value::from(users).to_string(),
        ),
    };
    let sql = format!(
        "SELECT a.owner_id, a.balance, a.overdraft_limit,
                CAST(COALESCE((SELECT SUM(h.amount) FROM holds h
                   WHERE h.account_id = a.id AND h.status = 'held' AND h.expires_at > $3), 0) AS BIGINT) AS held,
                g.id AS grant_id, g.source, g.amount, g.remaining, g.priority, g.expires_at,
                g.created_at
         FROM {accounts}
         LEFT JOIN grants g ON g.account_id = a.id AND g.live
         ORDER BY a.owner_id, CASE WHEN g.expires_at IS NULL THEN 1 ELSE 0 END, g.expires_at,
                  g.priority, g.created_at, g.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(users_param)
        .bind(asset)
        .bind(now)
        .fetch_all(&source.pool)
        .await?;
    let mut found: HashMap<String, BalanceView> = HashMap::with_capacity(users.len());
    for row in &rows {
        let user_id: String = row.try_get("owner_id")?;
        let view = match found.entry(user_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let balance: i64 = row.try_get("balance")?;
                let held: i64 = row.try_get("held")?;
                let user_id = entry.key().clone();
                entry.insert(BalanceView {
                    user_id,
                    asset: asset.to_string(),
                    balance,
                    available: balance - held,
                    held,
                    overdraft_limit: row
                        .try_get::<Option<i64>, _>("overdraft_limit")?
                        .unwrap_or(0),
                    grants: Vec::new(),
                })
            }
        };
        let Some(id) = row.try_get::<Option<String>, _>("grant_id")? else {
            continue;
        };
        view.grants.push(GrantView {
            id,
            source: row.try_get("source")?,
            amount: row.try_get("amount")?,
            remaining: row.try_get("remaining")?,
            priority: row.try_get("priority")?,
            expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(rfc3339),
            created_at: rfc3339(row.try_get("created_at")?),
        });
    }
    Ok(found)
}
