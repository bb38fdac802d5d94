//! The admin back office's API: users, manual adjustments, API keys, the audit log and the
//! ledger check. Every handler starts by requiring an admin.

use crate::reads::{
    ApiKey, AuditEntryView, Balance, NewApiKey, Page, Transaction, VerifyReportView,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bursar_core::{MAX_CREDITS, Role, UserStatus};
use bursar_store::StoreError;
use bursar_store::audit::AuditRecord;
use bursar_store::ledger::{Command, Request};
use bursar_store::users::UserChanges;
use bursar_store::verify::verify;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::app::api_keys;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody, Query};
use crate::outcomes::{AdjustmentView, idempotent, respond};
use crate::views::{PageQuery, UserView, level_hundredths};

pub(crate) const REASON_CHARS_MAX: usize = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Part of an email or display name.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub balance: Option<Balance>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUserChanges {
    /// `member`, `merchant` or `admin`.
    pub role: Option<String>,
    /// `active` or `suspended`; a suspended user's tokens stop working at once.
    pub status: Option<String>,
    pub level: Option<f64>,
    /// How far below zero the balance may go (credits, ≥ 0).
    pub overdraft_limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Signed credits: positive adds, negative removes. Not zero.
    pub amount: i64,
    /// Why; kept in the audit log and the transaction.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub name: String,
}

/// The audit-log entry for an admin action on `target` (`None`: the thing the action creates),
/// to be written in the transaction that makes the change.
pub(crate) fn entry<'a>(
    caller: &'a Caller,
    ip: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    details: serde_json::Value,
) -> AuditRecord<'a> {
    AuditRecord {
        actor_id: Some(caller.id()),
        actor_kind: caller.kind(),
        action,
        target,
        details,
        ip: Some(ip),
    }
}

async fn admin_user_view(state: &AppState, user_id: &str) -> ApiResult<AdminUserView> {
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(AdminUserView {
        user: UserView::from(&user),
        balance: state.store.balance(user_id).await?.map(Balance::from),
    })
}

/// Search users by email or display name, newest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    params(UserSearch),
    responses((status = 200, body = Page<UserView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(search): Query<UserSearch>,
) -> ApiResult<Json<Page<UserView>>> {
    caller.require_admin()?;
    let page = PageQuery {
        limit: search.limit,
        cursor: search.cursor,
    }
    .parse()?;
    let found = state.store.search_users(search.q.as_deref(), &page).await?;
    Ok(Json(Page {
        data: found.data.iter().map(UserView::from).collect(),
        next_cursor: found.next_cursor,
    }))
}

/// One user, with their balance.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = AdminUserView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminUserView>> {
    caller.require_admin()?;
    Ok(Json(admin_user_view(&state, &id).await?))
}

/// A user's credit movements, newest first, with the grants that paid for each debit.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}/transactions", tag = "admin",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Transaction>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn user_transactions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Transaction>>> {
    caller.require_admin()?;
    let page = query.parse()?;
    state
        .store
        .user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let page = state.store.transactions(&id, &page).await?;
    Ok(Json(Page::from_store(page, Transaction::from)))
}

/// Change a user's role, status, level or overdraft limit. Role and status changes are
/// audit-logged; suspending ends the user's sessions at once.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin",
    params(("id" = String, Path)),
    request_body = AdminUserChanges,
    responses((status = 200, body = AdminUserView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "the balance is already below the new overdraft limit; an admin demoting or suspending itself, or the last active admin", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<AdminUserChanges>,
) -> ApiResult<Json<AdminUserView>> {
    caller.require_admin()?;
    let request = body.value;
    let changes = UserChanges {
        role: request
            .role
            .as_deref()
            .map(|r| Role::parse(r).ok_or_else(|| ApiError::invalid(format!("unknown role {r:?}"))))
            .transpose()?,
        status: request
            .status
            .as_deref()
            .map(|s| {
                UserStatus::parse(s)
                    .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))
            })
            .transpose()?,
        level_hundredths: request.level.map(level_hundredths).transpose()?,
        ..UserChanges::default()
    };
    if let Some(limit) = request.overdraft_limit
        && !(0..=MAX_CREDITS).contains(&limit)
    {
        return Err(ApiError::invalid(
            "overdraft_limit must be between 0 and 2^53 - 1",
        ));
    }
    let before = state
        .store
        .user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let details = serde_json::json!({
        "role": changes.role.filter(|r| *r != before.role).map(|r| [before.role.as_str(), r.as_str()]),
        "status": changes.status.filter(|s| *s != before.status).map(|s| [before.status.as_str(), s.as_str()]),
        "level": request.level,
        "overdraft_limit": request.overdraft_limit,
    });
    let demotes = changes.role.is_some_and(|r| r != Role::Admin)
        || changes.status == Some(UserStatus::Suspended);
    if demotes && id == caller.id() {
        return Err(ApiError::conflict(
            "an admin cannot demote or suspend itself; another admin can",
        ));
    }
    let audit = entry(&caller, &ip, "user.update", Some(&id), details);
    state
        .store
        .administer_user(&id, &changes, request.overdraft_limit, audit)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    // Committed: the cached role and status of this user are stale now.
    state.access.forget_user(&id);
    Ok(Json(admin_user_view(&state, &id).await?))
}

/// Add or remove credits by hand, with a reason. Recorded in the ledger and the audit log in
/// one transaction.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/adjustments", tag = "admin",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    request_body = AdjustmentRequest,
    responses((status = 201, body = AdjustmentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "insufficient_credits for a negative adjustment; balance_out_of_range when a balance would pass ±(2^53 − 1)", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn adjust(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<AdjustmentRequest>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let request = &body.value;
    if request.amount == 0 || request.amount.unsigned_abs() > MAX_CREDITS as u64 {
        return Err(ApiError::invalid(
            "amount must be a non-zero integer within ±(2^53 - 1)",
        ));
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "reason must be 1 to {REASON_CHARS_MAX} characters"
        )));
    }
    let route = format!("POST /admin/users/{id}/adjustments");
    let ledger_request = Request {
        idempotent: idempotent(&headers, &caller, &route, &body.raw)?,
        command: Command::Adjust {
            user_id: id,
            amount: request.amount,
            reason: reason.to_string(),
            actor: caller.id().to_string(),
            ip: Some(ip),
        },
    };
    Ok(respond(state.store.ledger.execute(ledger_request).await?))
}

/// Live service keys (secrets are never shown again).
#[utoipa::path(get, path = "/api/v1/admin/api-keys", tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<ApiKey>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<ApiKey>>> {
    caller.require_admin()?;
    let page = state.store.list_api_keys(&query.parse()?).await?;
    Ok(Json(Page::from_store(page, ApiKey::from)))
}

/// Create a service key. The response is the only place its `secret` ever appears.
#[utoipa::path(post, path = "/api/v1/admin/api-keys", tag = "admin",
    request_body = ApiKeyRequest,
    responses((status = 201, body = NewApiKey), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<ApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
    caller.require_admin()?;
    let audit = entry(
        &caller,
        &ip,
        "api_key.create",
        None,
        serde_json::Value::Null,
    );
    let key = api_keys::create(&state.store, &body.value.name, Some(caller.id()), audit).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Revoke a service key; it stops working on its next request.
#[utoipa::path(delete, path = "/api/v1/admin/api-keys/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let audit = entry(
        &caller,
        &ip,
        "api_key.delete",
        Some(&id),
        serde_json::Value::Null,
    );
    if !state.store.revoke_api_key(&id, audit).await? {
        return Err(ApiError::not_found("API key"));
    }
    state.access.forget_api_key(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Who did what, when and from where, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit-log", tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<AuditEntryView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<AuditEntryView>>> {
    caller.require_admin()?;
    let page = state.store.audit_log(&query.parse()?).await?;
    Ok(Json(Page::from_store(page, AuditEntryView::from)))
}

/// Recompute every ledger invariant: balances per asset sum to zero, each balance equals its
/// transfers, each user balance equals its live grants, no account below its limit.
#[utoipa::path(get, path = "/api/v1/admin/ledger/verify", tag = "admin",
    responses((status = 200, body = VerifyReportView), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify_ledger(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<VerifyReportView>> {
    caller.require_admin()?;
    let report = verify(&state.store.db)
        .await
        .map_err(|e: StoreError| ApiError::from(e))?;
    Ok(Json(report.into()))
}
