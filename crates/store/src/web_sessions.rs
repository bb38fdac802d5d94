//! The web UI's sessions: server-side, so that logging out, a password change or a suspension
//! ends them at once. The browser's cookie holds a random token; only its hash is stored.

use sqlx::Row;

use crate::ids::{new_secret, sha256_hex};
use crate::{Store, StoreError};

/// A session found by its cookie.
#[derive(Clone)]
pub struct WebSession {
    pub user_id: String,
    /// Sent back in every form this session posts.
    pub csrf_token: String,
    /// `password` or `code`.
    pub signed_in_with: String,
    pub created_at_ms: i64,
}

// Written by hand so that the CSRF token never reaches a log through `{:?}`.
impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Starts a session for `user_id`, signed in with `password` or a `code`; returns the
    /// cookie's token, which is never stored.
    pub async fn start_web_session(
        &self,
        user_id: &str,
        ttl_ms: i64,
        signed_in_with: &str,
    ) -> Result<String, StoreError> {
        let token = new_secret("ws");
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, csrf_token, signed_in_with, expires_at,
                                       revoked_at, created_at)
             VALUES ($1, $2, $3, $6, $4, NULL, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(new_secret("csrf"))
        .bind(now + ttl_ms)
        .bind(now)
        .bind(signed_in_with)
        .execute(&self.db.pool)
        .await?;
        Ok(token)
    }

    /// The live session a cookie's token names, if any.
    pub async fn web_session(&self, token: &str) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, csrf_token, signed_in_with, created_at FROM web_sessions
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(self.clock.now_ms())
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| {
            Ok(WebSession {
                user_id: r.try_get("user_id")?,
                csrf_token: r.try_get("csrf_token")?,
                signed_in_with: r.try_get("signed_in_with")?,
                created_at_ms: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Ends one session (logging out).
    pub async fn end_web_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE web_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(self.clock.now_ms())
        .bind(sha256_hex(token))
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Forgets sessions that ended (expired or revoked) more than a day ago: a cookie that
    /// names a forgotten session is refused just as one naming an ended session is.
    pub async fn delete_ended_web_sessions(&self) -> Result<u64, StoreError> {
        let cutoff = self.clock.now_ms() - 24 * 3600 * 1000;
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(cutoff)
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Ends every web session of a user on `conn`, inside the caller's transaction.
pub(crate) async fn revoke_all_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE web_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}
