//! Spending credits: spend, refund, and two-phase holds. Every handler turns its request into a
//! ledger command and sends it to the writer; none moves credits itself.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bursar_core::Credits;
use bursar_store::ledger::Command;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody, OptionalBody};
use crate::outcomes::{CaptureView, HoldView, RefundView, SpendView, VoidView, execute};

pub(crate) const DESCRIPTION_CHARS_MAX: usize = 500;
const METADATA_BYTES_MAX: usize = 4096;
const HOLD_SECONDS_DEFAULT: i64 = 600;
pub(crate) const HOLD_SECONDS_MAX: i64 = 86_400;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendRequest {
    /// Required with an API key; a user may leave it out or name themselves.
    pub user_id: Option<String>,
    /// Credits, a positive integer up to 2^53 − 1.
    pub amount: i64,
    pub description: Option<String>,
    /// A JSON object (at most 4 KiB) kept with the transaction.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub transaction_id: String,
    /// Defaults to everything not yet refunded.
    pub amount: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub user_id: Option<String>,
    pub amount: i64,
    /// 1–86400, default 600.
    pub expires_in_seconds: Option<i64>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// At most the held amount; defaults to all of it. The rest is released.
    pub amount: Option<i64>,
}

fn credits(amount: i64, field: &str) -> ApiResult<Credits> {
    Credits::new(amount).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

fn description(text: Option<String>) -> ApiResult<Option<String>> {
    match text {
        Some(t) if t.chars().count() > DESCRIPTION_CHARS_MAX => Err(ApiError::invalid(format!(
            "description must be at most {DESCRIPTION_CHARS_MAX} characters"
        ))),
        other => Ok(other),
    }
}

fn metadata(value: Option<serde_json::Value>) -> ApiResult<Option<String>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(object @ serde_json::Value::Object(_)) => {
            let text = object.to_string();
            if text.len() > METADATA_BYTES_MAX {
                return Err(ApiError::invalid("metadata must be at most 4 KiB"));
            }
            Ok(Some(text))
        }
        Some(_) => Err(ApiError::invalid("metadata must be a JSON object")),
    }
}

/// Spend a user's credits. Burns grants soonest-expiring first, then by priority, then oldest.
#[utoipa::path(post, path = "/api/v1/credits/spend", tag = "credits",
    request_body = SpendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key and body replays the first response")),
    responses(
        (status = 200, body = SpendView),
        (status = 403, description = "a user spending for someone else, or `account_suspended`", body = Problem),
        (status = 404, description = "no such user", body = Problem),
        (status = 409, description = "insufficient_credits", body = Problem),
        (status = 422, description = "invalid amount or idempotency_mismatch", body = Problem)),
    security(("bearer" = [])))]
pub async fn spend(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body<SpendRequest>,
) -> ApiResult<Response> {
    let request = body.value;
    let command = Command::Spend {
        // Whose credits: the caller's own, or (for a service key) the named user's; the ledger
        // refuses a suspended account's, whoever asks.
        user_id: caller.acting_for(request.user_id.as_deref())?,
        amount: credits(request.amount, "amount")?,
        description: description(request.description)?,
        metadata: metadata(request.metadata)?,
        actor: caller.id().to_string(),
    };
    execute(
        &state,
        &headers,
        &caller,
        "POST /credits/spend",
        &body.raw,
        command,
    )
    .await
}

/// Refund a spend, in part or in full (never more than was spent, across all refunds).
#[utoipa::path(post, path = "/api/v1/credits/refund", tag = "credits",
    request_body = RefundRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    responses(
        (status = 200, body = RefundView),
        (status = 403, description = "only API keys and admins refund", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "already refunded in full, or more than is left", body = Problem)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body<RefundRequest>,
) -> ApiResult<Response> {
    if !(caller.is_admin() || matches!(caller, Caller::Service { .. })) {
        return Err(ApiError::forbidden());
    }
    let request = body.value;
    let command = Command::Refund {
        transfer_id: request.transaction_id,
        amount: request.amount.map(|a| credits(a, "amount")).transpose()?,
        actor: caller.id().to_string(),
    };
    execute(
        &state,
        &headers,
        &caller,
        "POST /credits/refund",
        &body.raw,
        command,
    )
    .await
}

/// Reserve credits for a call whose cost is not yet known. Only `available` credits can be held.
#[utoipa::path(post, path = "/api/v1/credits/holds", tag = "credits",
    request_body = HoldRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    responses(
        (status = 201, body = HoldView),
        (status = 403, description = "a user holding for someone else, or `account_suspended`", body = Problem),
        (status = 409, description = "insufficient_credits", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body<HoldRequest>,
) -> ApiResult<Response> {
    let request = body.value;
    let seconds = request.expires_in_seconds.unwrap_or(HOLD_SECONDS_DEFAULT);
    if !(1..=HOLD_SECONDS_MAX).contains(&seconds) {
        return Err(ApiError::invalid(format!(
            "expires_in_seconds must be between 1 and {HOLD_SECONDS_MAX}"
        )));
    }
    let command = Command::Hold {
        // Whose credits: the caller's own, or (for a service key) the named user's; the ledger
        // refuses a suspended account's, whoever asks.
        user_id: caller.acting_for(request.user_id.as_deref())?,
        amount: credits(request.amount, "amount")?,
        expires_in_ms: seconds * 1000,
        description: description(request.description)?,
        creator: caller.id().to_string(),
    };
    execute(
        &state,
        &headers,
        &caller,
        "POST /credits/holds",
        &body.raw,
        command,
    )
    .await
}

/// Capture a hold: spend the real cost (at most the held amount) and release the rest.
#[utoipa::path(post, path = "/api/v1/credits/holds/{id}/capture", tag = "credits",
    request_body(content = Option<CaptureRequest>),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    responses(
        (status = 200, body = CaptureView),
        (status = 403, description = "`account_suspended`: the hold's account was suspended since (it can only be voided)", body = Problem),
        (status = 404, description = "no such hold of this caller's", body = Problem),
        (status = 409, description = "already captured, voided or expired", body = Problem),
        (status = 422, description = "more than the held amount", body = Problem)),
    security(("bearer" = [])))]
pub async fn capture_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    body: OptionalBody<CaptureRequest>,
) -> ApiResult<Response> {
    let command = Command::Capture {
        hold_id: id.clone(),
        amount: body
            .value
            .and_then(|r| r.amount)
            .map(|a| credits(a, "amount"))
            .transpose()?,
        creator: caller.id().to_string(),
    };
    let route = format!("POST /credits/holds/{id}/capture");
    execute(&state, &headers, &caller, &route, &body.raw, command).await
}

/// Void a hold: release all of its credits.
#[utoipa::path(post, path = "/api/v1/credits/holds/{id}/void", tag = "credits",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    responses(
        (status = 200, body = VoidView),
        (status = 404, body = Problem),
        (status = 409, description = "already captured, voided or expired", body = Problem)),
    security(("bearer" = [])))]
pub async fn void_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let command = Command::Void {
        hold_id: id.clone(),
        creator: caller.id().to_string(),
    };
    let route = format!("POST /credits/holds/{id}/void");
    execute(&state, &headers, &caller, &route, &[], command).await
}
