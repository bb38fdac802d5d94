//! The member's daily gift: claim today's, and see where the streak stands.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::app::daily_gift;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::json::NoBody;
use crate::outcomes::{GiftClaimView, idempotent, respond};

#[derive(Debug, Serialize, ToSchema)]
pub struct DailyGiftView {
    /// Whether today's gift (the local day in `BURSAR_TIMEZONE`) was claimed.
    pub claimed_today: bool,
    /// Consecutive local days claimed up to today or yesterday; 0 once a day was missed.
    pub streak: i64,
    /// What the next claim grants: today's gift, or tomorrow's once today's is claimed.
    pub next_credits: i64,
}

/// Claim today's gift: the streak day's entry of `BURSAR_DAILY_GIFT_SCHEDULE`, as a `gift`
/// grant from the promotions account. Once per local day; a missed day restarts the streak.
#[utoipa::path(post, path = "/api/v1/me/daily-gift", tag = "engagement",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key replays the first response")),
    responses((status = 200, body = GiftClaimView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "already_claimed: today's gift was claimed already", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn claim_daily_gift(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    _: NoBody,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    let key = idempotent(&headers, &caller, "POST /me/daily-gift", b"")?;
    Ok(respond(daily_gift::claim(&state, user_id, key).await?))
}

/// Where the member's streak stands today.
#[utoipa::path(get, path = "/api/v1/me/daily-gift", tag = "engagement",
    responses((status = 200, body = DailyGiftView), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn daily_gift_status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<DailyGiftView>> {
    let user_id = caller.require_user()?;
    let status = daily_gift::status(&state, user_id).await?;
    Ok(Json(DailyGiftView {
        claimed_today: status.claimed_today,
        streak: status.streak,
        next_credits: status.next_credits,
    }))
}
