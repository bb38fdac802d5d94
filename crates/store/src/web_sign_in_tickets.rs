//! One-time tickets for signing in on the web pages with Google or Apple. The provider posts
//! the ID token from its own site, without Bursar's cookies; the token waits here for the same
//! browser's next request, which names it by a random ticket (only the ticket's hash is kept).
//! Taking a ticket deletes it, so it works once.

use sqlx::Row;

use crate::ids::{new_secret, sha256_hex};
use crate::{Store, StoreError};

/// What the provider posted, as kept until the browser comes back for it.
pub struct NewSignInTicket<'a> {
    pub provider: &'a str,
    pub state: &'a str,
    pub id_token: &'a str,
    pub display_name: Option<&'a str>,
}

/// A ticket taken back, still unexpired.
pub struct SignInTicket {
    pub provider: String,
    pub state: String,
    pub id_token: String,
    pub display_name: Option<String>,
}

// Written by hand so that the ID token never reaches a log through `{:?}`.
impl std::fmt::Debug for SignInTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInTicket")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Keeps what the provider posted for `ttl_ms`; returns the ticket, which is never stored.
    /// Tickets past their time are deleted first, so the table holds minutes of sign-ins.
    pub async fn keep_sign_in_ticket(
        &self,
        ticket: &NewSignInTicket<'_>,
        ttl_ms: i64,
    ) -> Result<String, StoreError> {
        self.delete_expired_sign_in_tickets().await?;
        let secret = new_secret("sit");
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO web_sign_in_tickets
                 (ticket_hash, provider, state, id_token, display_name, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sha256_hex(&secret))
        .bind(ticket.provider)
        .bind(ticket.state)
        .bind(ticket.id_token)
        .bind(ticket.display_name)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(secret)
    }

    /// Takes the ticket: deleted whatever comes next, so a second use finds nothing. `None` for
    /// an unknown, used or expired ticket.
    pub async fn take_sign_in_ticket(
        &self,
        ticket: &str,
    ) -> Result<Option<SignInTicket>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM web_sign_in_tickets WHERE ticket_hash = $1
             RETURNING provider, state, id_token, display_name, expires_at",
        )
        .bind(sha256_hex(ticket))
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= self.clock.now_ms() {
            return Ok(None);
        }
        Ok(Some(SignInTicket {
            provider: row.try_get("provider")?,
            state: row.try_get("state")?,
            id_token: row.try_get("id_token")?,
            display_name: row.try_get("display_name")?,
        }))
    }

    /// Deletes the tickets nobody came back for.
    pub async fn delete_expired_sign_in_tickets(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM web_sign_in_tickets WHERE expires_at <= $1")
            .bind(self.clock.now_ms())
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
