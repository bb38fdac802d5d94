//! The daily gift: one claim per local day (`BURSAR_TIMEZONE`); consecutive days grow a
//! streak, a missed day starts it again, and the streak day picks the gift from
//! `BURSAR_DAILY_GIFT_SCHEDULE`. The ledger records the day with its grant, so concurrent
//! claims pay once.

use bursar_store::ledger::{Command, Executed, Idempotent, Request};
use bursar_worker::LocalCalendar;

use crate::AppState;
use crate::error::ApiResult;

/// Where a user stands today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftStatus {
    pub claimed_today: bool,
    /// The streak as it stands: 0 once a day has been missed.
    pub streak: i64,
    /// What the next claim grants (today's, or tomorrow's once today's is claimed).
    pub next_credits: i64,
}

/// The local date `now_ms` falls on and the one before it, `YYYY-MM-DD`.
fn today_and_yesterday(state: &AppState) -> (String, String) {
    let today = LocalCalendar::at(state.config.timezone, state.store.clock.now_ms()).day;
    let yesterday = today.pred_opt().unwrap_or(today);
    (today.to_string(), yesterday.to_string())
}

/// Claims today's gift for `user_id`; a second claim the same local day is refused with
/// `already_claimed`.
pub async fn claim(
    state: &AppState,
    user_id: &str,
    idempotent: Option<Idempotent>,
) -> ApiResult<Executed> {
    let (day, yesterday) = today_and_yesterday(state);
    let request = Request {
        command: Command::ClaimDailyGift {
            user_id: user_id.to_string(),
            day,
            yesterday,
            schedule: state.config.daily_gift_schedule.clone(),
        },
        idempotent,
    };
    Ok(state.store.ledger.execute(request).await?)
}

pub async fn status(state: &AppState, user_id: &str) -> ApiResult<GiftStatus> {
    let (today, yesterday) = today_and_yesterday(state);
    let latest = state.store.latest_gift_claim(user_id).await?;
    let (claimed_today, streak) = match latest {
        Some(claim) if claim.day == today => (true, claim.streak),
        Some(claim) if claim.day == yesterday => (false, claim.streak),
        _ => (false, 0),
    };
    Ok(GiftStatus {
        claimed_today,
        streak,
        next_credits: state.config.daily_gift_schedule.credits_for(streak + 1),
    })
}
