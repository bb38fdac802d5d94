//! The member's subscriptions: list, turn renewal on or off, and renew by hand (an order for
//! the same package, exactly as `POST /orders` makes one).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bursar_store::clock::rfc3339;
use bursar_store::subscriptions::Subscription;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::checkout::{self, Basket};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::Body;
use crate::outcomes::send;
use crate::routes::orders::{OrderView, render};
use crate::views::idempotency;

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub package_id: String,
    /// `active`, `expired` or `cancelled`.
    pub status: String,
    /// Credits granted each local day while active; unused ones expire at the next midnight.
    pub daily_credits: i64,
    pub starts_at: String,
    pub ends_at: String,
    /// Renewed through the member's saved method (their auto top-up card, else the newest)
    /// within a day of the end; 3 declines in a row turn it off.
    pub auto_renew: bool,
    /// Why the last automatic renewal failed, until one succeeds.
    pub renew_last_error: Option<String>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id,
            package_id: s.package_id,
            status: s.status.as_str().to_string(),
            daily_credits: s.daily_credits,
            starts_at: rfc3339(s.starts_at_ms),
            ends_at: rfc3339(s.ends_at_ms),
            auto_renew: s.auto_renew,
            renew_last_error: s.renew_last_error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<SubscriptionView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionChanges {
    pub auto_renew: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// As for `POST /orders`: `sandbox`, `stripe`, `bank_transfer`, … (configured ones only).
    pub provider: String,
    pub coupon_code: Option<String>,
}

/// The member's subscriptions, newest first.
#[utoipa::path(get, path = "/api/v1/me/subscriptions", tag = "subscriptions",
    responses((status = 200, body = SubscriptionList), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SubscriptionList>> {
    let user_id = caller.require_user()?;
    let subscriptions = state.store.subscriptions_of(user_id).await?;
    Ok(Json(SubscriptionList {
        data: subscriptions.into_iter().map(Into::into).collect(),
    }))
}

/// Turn renewal on or off.
#[utoipa::path(patch, path = "/api/v1/me/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path)),
    request_body = SubscriptionChanges,
    responses((status = 200, body = SubscriptionView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<SubscriptionChanges>,
) -> ApiResult<Json<SubscriptionView>> {
    let user_id = caller.require_user()?;
    let subscription = state
        .store
        .set_auto_renew(user_id, &id, body.value.auto_renew)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    Ok(Json(subscription.into()))
}

/// Renew: an order for the subscription's package (as `POST /orders` makes one); once paid,
/// the subscription is extended from its end.
#[utoipa::path(post, path = "/api/v1/me/subscriptions/{id}/renew", tag = "subscriptions",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key and body replays the first response")),
    request_body = RenewRequest,
    responses((status = 201, body = OrderView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "no such subscription of this member, or its package is no longer sold", body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)),
    security(("bearer" = [])))]
pub async fn renew(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<RenewRequest>,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    let subscription = state
        .store
        .subscription(&id)
        .await?
        .filter(|s| s.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let key = idempotency(
        &headers,
        &caller,
        &format!("POST /me/subscriptions/{id}/renew"),
        &body.raw,
    )?;
    let request = body.value;
    let basket = Basket {
        package_id: subscription.package_id,
        quantity: 1,
        coupon_code: request.coupon_code,
        provider: request.provider,
        mode: None,
    };
    let placed = checkout::place_order(&state, user_id, &basket, key.as_ref(), render).await?;
    Ok(send(placed.response, placed.replayed))
}
