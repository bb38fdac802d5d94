//! The daily gift's claims: one row per user and local day, written by the ledger's
//! `ClaimDailyGift` command in the transaction of its grant (`ledger/commands/daily_gift.rs`).

use sqlx::AnyConnection;

use crate::{Store, StoreError};

/// A user's latest claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftClaim {
    /// The local date, `YYYY-MM-DD`.
    pub day: String,
    pub streak: i64,
}

/// Claims `day` for the user in the caller's (the ledger batch's) transaction, a day after a
/// claim on `yesterday` continuing its streak. Answers the new streak, or `None` when the day
/// was claimed already: the primary key decides, so concurrent claims pay once.
pub(crate) async fn claim_day_on(
    conn: &mut AnyConnection,
    user_id: &str,
    day: &str,
    yesterday: &str,
    credits_for: impl Fn(i64) -> i64,
    now_ms: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    let previous: Option<i64> =
        sqlx::query_scalar("SELECT streak FROM daily_gift_claims WHERE user_id = $1 AND day = $2")
            .bind(user_id)
            .bind(yesterday)
            .fetch_optional(&mut *conn)
            .await?;
    let streak = previous.unwrap_or(0) + 1;
    let credits = credits_for(streak);
    let inserted = sqlx::query(
        "INSERT INTO daily_gift_claims (user_id, day, streak, credits, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, day) DO NOTHING",
    )
    .bind(user_id)
    .bind(day)
    .bind(streak)
    .bind(credits)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some((streak, credits)))
}

/// Names the transfer that paid the day's claim.
pub(crate) async fn record_transfer_on(
    conn: &mut AnyConnection,
    user_id: &str,
    day: &str,
    transfer_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE daily_gift_claims SET transfer_id = $1 WHERE user_id = $2 AND day = $3")
        .bind(transfer_id)
        .bind(user_id)
        .bind(day)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// The user's most recent claim, if any.
    pub async fn latest_gift_claim(&self, user_id: &str) -> Result<Option<GiftClaim>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT day, streak FROM daily_gift_claims WHERE user_id = $1
             ORDER BY day DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(|(day, streak)| GiftClaim { day, streak }))
    }
}
