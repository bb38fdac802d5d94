//! Idempotency keys: the one place that reads and writes `idempotency_keys`. A key belongs to
//! a caller (`scope`); its record holds the hash of the request it was first used for and the
//! response that request got, as the caller rendered it.
//!
//! Two ways in, one vocabulary:
//! - The ledger writer records a command's rendered outcome in the command's own transaction
//!   (`ledger/writer.rs`), so an effect and its record commit together or not at all.
//! - A request whose work spans a call to a provider claims its key first, in the transaction
//!   that starts the work (`claim`), and stores its response once it has one (`complete`).
//!   Until then, a retry is told the request is in progress; a claim whose request never
//!   answered is taken over after `KEY_ABANDONED_MS`.

use sqlx::{AnyConnection, Row};

use crate::db::Dialect;
use crate::ledger::Rendered;
use crate::ledger::sql::ColumnType::{Int, Text};
use crate::ledger::sql::{Column, Params};
use crate::{Store, StoreError};

/// An `Idempotency-Key` as stored: per caller, with a hash of the request it was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// What a key means for the request presenting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// First use (or an abandoned claim taken over): the request goes ahead and must
    /// `complete` with its response.
    Claimed,
    /// Used before by the same request: the response it got.
    Replay(Rendered),
    /// Used before by the same request, which has not finished yet.
    InProgress,
    /// Used before by a different request.
    Mismatch,
}

/// A stored record, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub request_hash: String,
    /// The rendered response's status; `KEY_IN_PROGRESS` until there is one.
    pub status: i64,
    pub body: String,
    pub created_at_ms: i64,
}

/// A claimed key's placeholder status until the request's response is stored.
const KEY_IN_PROGRESS: i64 = 0;

/// A claimed key whose request has not answered after this long was abandoned.
const KEY_ABANDONED_MS: i64 = 60_000;

impl Stored {
    /// What this record means for a request with `request_hash`, at `now_ms`.
    pub(crate) fn judge(&self, request_hash: &str, now_ms: i64) -> KeyClaim {
        if self.request_hash != request_hash {
            KeyClaim::Mismatch
        } else if self.status != KEY_IN_PROGRESS {
            KeyClaim::Replay(Rendered {
                status: u16::try_from(self.status).unwrap_or(200),
                body: self.body.clone(),
            })
        } else if self.created_at_ms < now_ms - KEY_ABANDONED_MS {
            KeyClaim::Claimed
        } else {
            KeyClaim::InProgress
        }
    }
}

/// A record's columns, in the order the ledger writer inserts them.
pub(crate) const RECORD_COLUMNS: &[Column] = &[
    ("scope", Text),
    ("key", Text),
    ("request_hash", Text),
    ("status", Int),
    ("body", Text),
    ("created_at", Int),
];

/// A record as the ledger writer keeps it: request hash, status and body.
pub(crate) type StoredReply = (String, i64, String);

/// The records of these `(scope, key)` pairs, in a few bulk reads: for a writer's batch.
pub(crate) async fn read_many(
    conn: &mut AnyConnection,
    dialect: Dialect,
    keys: &[(&str, &str)],
) -> Result<Vec<((String, String), StoredReply)>, StoreError> {
    let mut records = Vec::new();
    for chunk in keys.chunks(500) {
        let mut params = Params::new(dialect);
        let conditions: Vec<String> = (0..chunk.len())
            .map(|_| format!("(scope = {} AND key = {})", params.next(), params.next()))
            .collect();
        let sql = format!(
            "SELECT scope, key, request_hash, status, body FROM idempotency_keys WHERE {}",
            conditions.join(" OR ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for (scope, key) in chunk {
            query = query.bind(*scope).bind(*key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            records.push((
                (row.try_get("scope")?, row.try_get("key")?),
                (
                    row.try_get("request_hash")?,
                    row.try_get("status")?,
                    row.try_get("body")?,
                ),
            ));
        }
    }
    Ok(records)
}

/// The record of `key`, if it has one.
pub(crate) async fn read(
    conn: &mut AnyConnection,
    key: &Idempotency,
) -> Result<Option<Stored>, StoreError> {
    let stored: Option<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT request_hash, status, body, created_at FROM idempotency_keys
         WHERE scope = $1 AND key = $2",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        stored.map(|(request_hash, status, body, created_at_ms)| Stored {
            request_hash,
            status,
            body,
            created_at_ms,
        }),
    )
}

/// Claims `key` for a request about to start its work, on `conn` (inside the transaction that
/// starts it). Anything but `Claimed` means the request must not go ahead.
pub(crate) async fn claim(
    conn: &mut AnyConnection,
    key: &Idempotency,
    now_ms: i64,
) -> Result<KeyClaim, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at)
         VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(&key.request_hash)
    .bind(KEY_IN_PROGRESS)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(KeyClaim::Claimed);
    }
    let claim = match read(conn, key).await? {
        Some(stored) => stored.judge(&key.request_hash, now_ms),
        // Deleted between the two statements: treat it as busy rather than claim it twice.
        None => KeyClaim::InProgress,
    };
    if claim != KeyClaim::Claimed {
        return Ok(claim);
    }
    // The request that claimed the key stopped before answering (its client went away, the
    // server restarted): this one takes the key over, unless another retry just did.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET created_at = $1
         WHERE scope = $2 AND key = $3 AND status = $4 AND created_at < $5",
    )
    .bind(now_ms)
    .bind(&key.scope)
    .bind(&key.key)
    .bind(KEY_IN_PROGRESS)
    .bind(now_ms - KEY_ABANDONED_MS)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(if taken == 1 {
        KeyClaim::Claimed
    } else {
        KeyClaim::InProgress
    })
}

impl Store {
    /// What `key` already holds, before any work is done for the request: a response to
    /// replay, a request still in progress, or a mismatch. `None`: go ahead (and claim it).
    pub async fn peek_key(&self, key: &Idempotency) -> Result<Option<KeyClaim>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        let stored = read(&mut conn, key).await?;
        let claim = stored.map(|s| s.judge(&key.request_hash, self.clock.now_ms()));
        Ok(claim.filter(|c| *c != KeyClaim::Claimed))
    }

    /// Stores the response of a request whose key was claimed.
    pub async fn complete_key(
        &self,
        key: &Idempotency,
        response: &Rendered,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, body = $2 WHERE scope = $3 AND key = $4",
        )
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(&key.scope)
        .bind(&key.key)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: i64, created_at_ms: i64) -> Stored {
        Stored {
            request_hash: "h".into(),
            status,
            body: "{}".into(),
            created_at_ms,
        }
    }

    #[test]
    fn a_record_answers_a_replay_a_mismatch_a_wait_or_a_takeover() {
        let now = 1_000_000;
        assert_eq!(stored(200, now).judge("other", now), KeyClaim::Mismatch);
        assert_eq!(
            stored(201, 0).judge("h", now),
            KeyClaim::Replay(Rendered {
                status: 201,
                body: "{}".into()
            }),
            "a finished request replays however old"
        );
        assert_eq!(
            stored(KEY_IN_PROGRESS, now - 1).judge("h", now),
            KeyClaim::InProgress
        );
        assert_eq!(
            stored(KEY_IN_PROGRESS, now - KEY_ABANDONED_MS - 1).judge("h", now),
            KeyClaim::Claimed,
            "an abandoned claim is taken over"
        );
    }
}
