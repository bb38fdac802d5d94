//! The reward inbox: the member's list and claims, and the admin's sending.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bursar_store::clock::rfc3339;
use bursar_store::rewards::InboxItem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::rewards::{self, RewardDraft};
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiResult, Problem};
use crate::json::{Body, NoBody, Query};
use crate::outcomes::{RewardClaimView, idempotent, respond};
use crate::reads::Page;
use crate::routes::admin::entry;
use crate::views::{PageQuery, parse_instant};

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItemView {
    /// The inbox item's id, what `POST /me/inbox/{id}/claim` takes.
    pub id: String,
    pub reward_id: String,
    pub title: String,
    pub credits: i64,
    /// Set once claimed.
    pub claimed_at: Option<String>,
    /// An unclaimed reward can no longer be claimed from this instant.
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl From<InboxItem> for InboxItemView {
    fn from(item: InboxItem) -> Self {
        Self {
            id: item.id,
            reward_id: item.reward_id,
            title: item.title,
            credits: item.credits,
            claimed_at: item.claimed_at_ms.map(rfc3339),
            expires_at: item.expires_at_ms.map(rfc3339),
            created_at: rfc3339(item.created_at_ms),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardRequest {
    /// What the member sees in the inbox.
    pub title: String,
    /// Credits each recipient gets on claiming, as a `gift` grant from promotions.
    pub credits: i64,
    /// The users to reward (1–1000); or `all_members`, not both.
    pub user_ids: Option<Vec<String>>,
    /// `true`: every member registered now.
    pub all_members: Option<bool>,
    /// After this instant an unclaimed reward can no longer be claimed.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RewardSent {
    pub id: String,
    /// How many inboxes it goes to (delivered by background jobs, in chunks).
    pub recipients: i64,
}

/// The member's rewards, newest first, claimed or not.
#[utoipa::path(get, path = "/api/v1/me/inbox", tag = "engagement",
    params(PageQuery),
    responses((status = 200, body = Page<InboxItemView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<InboxItemView>>> {
    let user_id = caller.require_user()?;
    let page = state.store.inbox(user_id, &query.parse()?).await?;
    Ok(Json(Page::from_store(page, InboxItemView::from)))
}

/// Claim a reward in the member's inbox: its credits, once.
#[utoipa::path(post, path = "/api/v1/me/inbox/{id}/claim", tag = "engagement",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key replays the first response")),
    responses((status = 200, body = RewardClaimView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "no such reward in this member's inbox", body = Problem),
        (status = 409, description = "already_claimed: claimed before; expired: not claimed before its expiry", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn claim_reward(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    let key = idempotent(
        &headers,
        &caller,
        &format!("POST /me/inbox/{id}/claim"),
        b"",
    )?;
    Ok(respond(rewards::claim(&state, user_id, &id, key).await?))
}

/// Send a reward to listed users or to every member: it lands in each recipient's inbox once,
/// delivered by background jobs in bounded chunks. Audit-logged.
#[utoipa::path(post, path = "/api/v1/admin/rewards", tag = "admin",
    request_body = RewardRequest,
    responses((status = 201, body = RewardSent), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, description = "an empty title, credits below 1, not exactly one of user_ids and all_members, unknown user ids, or an expiry not in the future; nothing is created", body = Problem)),
    security(("bearer" = [])))]
pub async fn send_reward(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<RewardRequest>,
) -> ApiResult<(StatusCode, Json<RewardSent>)> {
    caller.require_admin()?;
    let request = body.value;
    let draft = RewardDraft {
        title: request.title,
        credits: request.credits,
        user_ids: request.user_ids,
        all_members: request.all_members,
        expires_at_ms: request
            .expires_at
            .as_deref()
            .map(|at| parse_instant(at, "expires_at"))
            .transpose()?,
    };
    let audit = entry(&caller, &ip, "reward.send", None, serde_json::Value::Null);
    let (id, recipients) = rewards::send(&state, draft, audit).await?;
    Ok((StatusCode::CREATED, Json(RewardSent { id, recipients })))
}
