//! `ClaimDailyGift`: the day's claim row and its `gift` grant from `promotions`, together.

use bursar_core::{GiftSchedule, GrantSource, LedgerError};
use sqlx::AnyConnection;

use super::grant::{NewGrant, grant};
use super::require_user;
use crate::StoreError;
use crate::ledger::state::UnitOfWork;
use crate::ledger::{GiftReceipt, Outcome};

pub(super) async fn claim(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    day: &str,
    yesterday: &str,
    schedule: &GiftSchedule,
) -> Result<Outcome, StoreError> {
    // Refusals first: the claim's row below is a write, and only a claim that wrote it pays.
    require_user(uow, conn, user_id).await?;
    let claimed = crate::daily_gift::claim_day_on(
        conn,
        user_id,
        day,
        yesterday,
        |streak| schedule.credits_for(streak),
        uow.now_ms,
    )
    .await?;
    let Some((streak, credits)) = claimed else {
        return Err(LedgerError::AlreadyClaimed("today's gift was already claimed").into());
    };
    let description = format!("Daily gift, day {streak} of the streak");
    // The marker `verify` matches against the claim.
    let metadata = serde_json::json!({"daily_gift": day, "streak": streak}).to_string();
    let gift = NewGrant {
        amount: credits,
        source: GrantSource::Gift,
        priority: 0,
        expires_at_ms: None,
        description: Some(&description),
        metadata: Some(&metadata),
        actor: None,
    };
    let Outcome::Granted(granted) = grant(uow, conn, user_id, &gift).await? else {
        unreachable!("a grant answers with its receipt");
    };
    crate::daily_gift::record_transfer_on(conn, user_id, day, &granted.transaction_id).await?;
    Ok(Outcome::GiftClaimed(GiftReceipt {
        transaction_id: granted.transaction_id,
        user_id: user_id.to_string(),
        day: day.to_string(),
        streak,
        credits,
        balance_after: granted.balance_after,
    }))
}
