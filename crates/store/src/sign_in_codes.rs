//! One-time sign-in codes: issued within limits per destination and per client address, sent
//! by a job (the code waits in its row only until then), and used once: ten minutes, five
//! wrong tries. Only a keyed hash of a code is kept; comparing is the caller's (constant-time)
//! business.

use bursar_core::CodeChannel;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::ids::new_id;
use crate::jobs::NewJob;
use crate::{Store, StoreError};

pub const SEND_JOB: &str = "send_sign_in_code";
/// Wrong tries after which a code is dead.
pub const ATTEMPTS_MAX: i64 = 5;
const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct SendPayload {
    pub code_id: String,
}

/// A code to issue.
pub struct NewCode<'a> {
    pub channel: CodeChannel,
    pub destination: &'a str,
    /// The code itself, until it is sent.
    pub code: &'a str,
    pub code_hash: &'a str,
    pub client_address: &'a str,
    pub ttl_ms: i64,
}

/// How many codes may be issued in any hour.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    pub per_destination: i64,
    pub per_address: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// Recorded, and its sending queued in the same transaction.
    Queued { id: String },
    /// This destination, or this address, had its codes for the hour.
    Limited,
}

/// A code as it stands, for checking one presented.
#[derive(Clone)]
pub struct Code {
    pub id: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at_ms: i64,
    pub used: bool,
}

/// A code waiting to be sent.
pub struct Unsent {
    pub channel: CodeChannel,
    pub destination: String,
    pub code: String,
    pub expires_at_ms: i64,
}

impl Store {
    /// Issues a code unless a limit is spent; its sending is a job in the same transaction.
    pub async fn issue_sign_in_code(
        &self,
        new: &NewCode<'_>,
        limits: CodeLimits,
    ) -> Result<Issued, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        // Issues take turns, so a burst of requests cannot all count the same few codes and
        // pass the limits together (SQLite's write transaction already serialises them).
        if self.db.dialect == crate::db::Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('bursar.sign_in_codes'))")
                .execute(&mut *tx)
                .await?;
        }
        let since = now - HOUR_MS;
        let to_destination: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM sign_in_codes
             WHERE channel = $1 AND destination = $2 AND created_at > $3",
        )
        .bind(new.channel.as_str())
        .bind(new.destination)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let from_address: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM sign_in_codes
             WHERE client_address = $1 AND created_at > $2",
        )
        .bind(new.client_address)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        if to_destination >= limits.per_destination || from_address >= limits.per_address {
            return Ok(Issued::Limited);
        }
        let id = new_id("code");
        sqlx::query(
            "INSERT INTO sign_in_codes (id, channel, destination, code_hash, pending_code,
                 client_address, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(new.channel.as_str())
        .bind(new.destination)
        .bind(new.code_hash)
        .bind(new.code)
        .bind(new.client_address)
        .bind(now + new.ttl_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let job = NewJob::new(
            SEND_JOB,
            &SendPayload {
                code_id: id.clone(),
            },
            5,
        )
        .unique(format!("{SEND_JOB}:{id}"));
        crate::jobs::enqueue_in(&mut tx, &job, now).await?;
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(Issued::Queued { id })
    }

    /// The newest code issued to a destination.
    pub async fn latest_sign_in_code(
        &self,
        channel: CodeChannel,
        destination: &str,
    ) -> Result<Option<Code>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code_hash, attempts, expires_at, used_at FROM sign_in_codes
             WHERE channel = $1 AND destination = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(channel.as_str())
        .bind(destination)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|row| {
            Ok(Code {
                id: row.try_get("id")?,
                code_hash: row.try_get("code_hash")?,
                attempts: row.try_get("attempts")?,
                expires_at_ms: row.try_get("expires_at")?,
                used: row.try_get::<Option<i64>, _>("used_at")?.is_some(),
            })
        })
        .transpose()
    }

    /// Takes one of a live code's tries before the code presented is compared, so tries made
    /// at the same moment cannot together get past `ATTEMPTS_MAX`. False when none is left
    /// (or the code was used or expired meanwhile).
    pub async fn take_code_attempt(&self, id: &str) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE sign_in_codes SET attempts = attempts + 1
             WHERE id = $1 AND attempts < $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(id)
        .bind(ATTEMPTS_MAX)
        .bind(self.clock.now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Uses a code whose try was taken and matched: true for the one caller that uses it.
    pub async fn use_sign_in_code(&self, id: &str) -> Result<bool, StoreError> {
        let used = sqlx::query(
            "UPDATE sign_in_codes SET used_at = $1, pending_code = NULL
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(self.clock.now_ms())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(used.rows_affected() == 1)
    }

    /// The code a send job is to deliver, while it is unsent.
    pub async fn unsent_sign_in_code(&self, id: &str) -> Result<Option<Unsent>, StoreError> {
        let row = sqlx::query(
            "SELECT channel, destination, pending_code, expires_at FROM sign_in_codes
             WHERE id = $1 AND pending_code IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|row| {
            let channel: String = row.try_get("channel")?;
            Ok(Unsent {
                channel: CodeChannel::parse(&channel)
                    .ok_or_else(|| StoreError::Config(format!("unknown channel {channel}")))?,
                destination: row.try_get("destination")?,
                code: row.try_get("pending_code")?,
                expires_at_ms: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Forgets a code once its message is out (or can no longer matter).
    pub async fn forget_sent_code(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sign_in_codes SET pending_code = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// The language to write to a destination in: its account's, when there is one.
    pub async fn language_of_destination(
        &self,
        channel: CodeChannel,
        destination: &str,
    ) -> Result<bursar_core::Language, StoreError> {
        let column = match channel {
            CodeChannel::Email => "email",
            CodeChannel::Sms => "phone",
        };
        let language: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT language FROM users WHERE {column} = $1 ORDER BY id LIMIT 1"
        )))
        .bind(destination)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(language
            .as_deref()
            .and_then(bursar_core::Language::parse)
            .unwrap_or(bursar_core::Language::En))
    }

    /// Codes older than a day are of no further use.
    pub async fn delete_old_sign_in_codes(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sign_in_codes WHERE created_at < $1")
            .bind(self.clock.now_ms() - 24 * HOUR_MS)
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
