//! Refresh tokens: stored as hashes, rotated on every use, revocable.

use crate::ids::{new_id, new_secret, sha256_hex};
use crate::{Store, StoreError};

/// What presenting a refresh token found.
pub enum Rotation {
    /// The token was current: it is now spent, and this is the user it belonged to.
    Rotated { user_id: String, family_id: String },
    /// Unknown, expired or already used. A reused token revokes its whole family.
    Refused,
}

impl Store {
    /// Issues a refresh token (a new family unless one is given); returns the token itself,
    /// which is never stored.
    pub async fn issue_refresh_token(
        &self,
        user_id: &str,
        family_id: Option<&str>,
        ttl_ms: i64,
    ) -> Result<String, StoreError> {
        let token = new_secret("rt");
        let now = self.clock.now_ms();
        let family = family_id.map_or_else(|| new_id("fam"), str::to_string);
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at, revoked_at, created_at)
             VALUES ($1, $2, $3, $4, NULL, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(&family)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(token)
    }

    /// Spends a refresh token. Exactly one of two concurrent uses of one token succeeds.
    pub async fn rotate_refresh_token(&self, token: &str) -> Result<Rotation, StoreError> {
        let now = self.clock.now_ms();
        let hash = sha256_hex(token);
        let spent: Option<(String, String)> = sqlx::query_as(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1
             RETURNING user_id, family_id",
        )
        .bind(now)
        .bind(&hash)
        .fetch_optional(&self.db.pool)
        .await?;
        if let Some((user_id, family_id)) = spent {
            return Ok(Rotation::Rotated { user_id, family_id });
        }
        // A token that exists but was already used has leaked: end every session in its family.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL AND family_id IN
                   (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)",
        )
        .bind(now)
        .bind(&hash)
        .execute(&self.db.pool)
        .await?;
        Ok(Rotation::Refused)
    }

    /// Revokes the token's family if it belongs to `user_id`. Returns whether it did.
    pub async fn revoke_refresh_token(
        &self,
        user_id: &str,
        token: &str,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL AND user_id = $2 AND family_id IN
                   (SELECT family_id FROM refresh_tokens WHERE token_hash = $3)",
        )
        .bind(self.clock.now_ms())
        .bind(user_id)
        .bind(sha256_hex(token))
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Ends every session of a user (password change, suspension).
    pub async fn revoke_all_refresh_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        revoke_all_on(&mut conn, user_id, self.clock.now_ms()).await
    }
}

/// Ends every session of a user on `conn` (the API's refresh tokens and the web UI's sessions),
/// inside the caller's transaction.
pub(crate) async fn revoke_all_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    crate::web_sessions::revoke_all_on(conn, user_id, now_ms).await
}
