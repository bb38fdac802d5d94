//! Orders as admins handle them: search, refunds (money back through the provider, credits
//! clawed back through the ledger) and confirmation of bank transfers.

use crate::reads::Page;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bursar_core::OrderStatus;
use bursar_store::ledger::ConfirmedBy;
use bursar_store::ledger::orders::OrderRefund;
use bursar_store::orders::OrderFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::orders::{OrderView, order_view};
use crate::AppState;
use crate::app::bank_statements::{self, LineOutcome};
use crate::app::{fulfilment, refunds};
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, Query};
use crate::outcomes::{OrderRefundView, idempotent, json, send};
use crate::payments::KNOWN_PROVIDERS;
use crate::views::{PageQuery, parse_instant};

pub(crate) const REASON_CHARS_MAX: usize = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderSearch {
    /// `pending`, `paid`, `failed`, `cancelled`, `expired` or `refunded`.
    pub status: Option<String>,
    pub provider: Option<String>,
    pub user_id: Option<String>,
    /// Created at or after (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Created before (RFC 3339 or YYYY-MM-DD).
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Orders of every user, newest first.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", operation_id = "admin_list_orders",
    params(OrderSearch),
    responses((status = 200, body = Page<OrderView>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    Query(search): Query<OrderSearch>,
) -> ApiResult<Json<Page<OrderView>>> {
    caller.require_admin()?;
    let status = search
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status must be pending, paid, failed, cancelled, expired or refunded",
                )
            })
        })
        .transpose()?;
    if let Some(provider) = search.provider.as_deref()
        && !KNOWN_PROVIDERS.contains(&provider)
    {
        return Err(ApiError::invalid(format!(
            "provider must be one of {}",
            KNOWN_PROVIDERS.join(", ")
        )));
    }
    let filter = OrderFilter {
        user_id: search.user_id.clone(),
        status,
        provider: search.provider.clone(),
        from_ms: search
            .from
            .as_deref()
            .map(|t| parse_instant(t, "from"))
            .transpose()?,
        to_ms: search
            .to
            .as_deref()
            .map(|t| parse_instant(t, "to"))
            .transpose()?,
    };
    let page = PageQuery {
        limit: search.limit,
        cursor: search.cursor.clone(),
    }
    .parse()?;
    let page = state.store.orders(&filter, &page).await?;
    Ok(Json(Page {
        data: page.data.iter().map(order_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/orders/{id}", tag = "admin", operation_id = "admin_get_order",
    params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    caller.require_admin()?;
    let order = state
        .store
        .order(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    Ok(Json(order_view(&order)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRefundRequest {
    /// Minor units of the order's currency; defaults to everything not yet refunded.
    pub amount: Option<i64>,
    /// `false` (default): take back credits only from what is left of the order's own grants.
    /// `true`: the clawback may also take the user's other credits and use their overdraft.
    pub allow_negative: Option<bool>,
    pub reason: Option<String>,
}

/// Refund a paid order in full or in part. The order's credits are clawed back in proportion
/// (the last refund takes what is left), by a `clawback` transfer in the same transaction; the
/// money goes back through the provider, whose answer is in `status`.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "admin",
    params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    request_body = OrderRefundRequest,
    responses((status = 200, body = OrderRefundResponse), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "not paid, or more than is left to refund", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn refund_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<OrderRefundRequest>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let request = &body.value;
    if request
        .amount
        .is_some_and(|a| !(1..=bursar_core::MAX_CREDITS).contains(&a))
    {
        return Err(ApiError::invalid(
            "amount must be a positive integer of minor units",
        ));
    }
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > REASON_CHARS_MAX) {
        return Err(ApiError::invalid(format!(
            "reason must be at most {REASON_CHARS_MAX} characters"
        )));
    }
    let refund = OrderRefund {
        refund_id: bursar_store::ids::new_id("orf"),
        order_id: id.clone(),
        amount: request.amount,
        allow_negative: request.allow_negative.unwrap_or(false),
        reason: reason.map(str::to_string),
        actor: caller.id().to_string(),
        actor_kind: caller.kind(),
        ip: Some(ip),
    };
    let route = format!("POST /admin/orders/{id}/refund");
    let key = idempotent(&headers, &caller, &route, &body.raw)?;
    let refunded = refunds::refund_order(&state, refund, key).await?;
    let (receipt, record) = (refunded.receipt, refunded.record);
    let refund = OrderRefundResponse {
        receipt,
        status: record.status.as_str().to_string(),
        provider_ref: record.provider_ref,
        failure_reason: record.failure_reason,
    };
    Ok(send(json(StatusCode::OK, &refund), refunded.replayed))
}

/// A refund's receipt, and where the provider's refund stands now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderRefundResponse {
    #[serde(flatten)]
    pub receipt: OrderRefundView,
    /// `pending` until the provider answers, then `succeeded` or `failed`.
    pub status: String,
    pub provider_ref: Option<String>,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The bank's reference for the transfer that arrived, for the record.
    pub reference: Option<String>,
}

/// Confirm that a bank transfer arrived: the pending `bank_transfer` order is paid and its
/// credits granted, exactly as a provider's webhook would.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/confirm", tag = "admin",
    params(("id" = String, Path)),
    request_body = ConfirmRequest,
    responses((status = 200, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "not a pending bank-transfer order", body = Problem)),
    security(("bearer" = [])))]
pub async fn confirm_order(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<ConfirmRequest>,
) -> ApiResult<Json<OrderView>> {
    caller.require_admin()?;
    let confirmed_by = ConfirmedBy {
        actor_id: caller.id().to_string(),
        actor_kind: caller.kind(),
        ip: Some(ip),
    };
    let order =
        fulfilment::confirm_bank_transfer(&state, &id, body.value.reference, confirmed_by).await?;
    Ok(Json(order_view(&order)))
}

/// One line of an imported statement and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLineView {
    /// The line's number in the file, counting the header as 1.
    pub line: usize,
    pub reference: String,
    pub amount: String,
    /// `confirmed` (its order is paid now), `already_paid` (nothing done) or `unmatched`.
    pub outcome: &'static str,
    pub order_id: Option<String>,
    /// Why an unmatched line matched no order.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementImport {
    pub confirmed: usize,
    pub already_paid: usize,
    pub unmatched: usize,
    pub lines: Vec<StatementLineView>,
}

/// Import a bank statement (CSV with a header naming `reference` and `amount` columns, and
/// optionally `currency`; amounts in major units such as `45.00`). Each line whose reference
/// (check digits intact) and amount match a pending bank-transfer order confirms it, exactly as
/// `POST /admin/orders/{id}/confirm` would (audit-logged); the rest are listed with a reason.
/// Importing a statement again confirms nothing twice.
#[utoipa::path(post, path = "/api/v1/admin/bank-statements", tag = "admin",
    request_body(content = String, description = "the statement as CSV", content_type = "text/csv"),
    responses((status = 200, body = StatementImport), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, description = "not CSV, no `reference` and `amount` columns, or too many lines", body = Problem)),
    security(("bearer" = [])))]
pub async fn import_statement(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    crate::json::RawBody(body): crate::json::RawBody,
) -> ApiResult<Json<StatementImport>> {
    caller.require_admin()?;
    let confirmed_by = ConfirmedBy {
        actor_id: caller.id().to_string(),
        actor_kind: caller.kind(),
        ip: Some(ip),
    };
    let lines = bank_statements::import(&state, &body, &confirmed_by).await?;
    let views: Vec<StatementLineView> = lines
        .into_iter()
        .map(|line| {
            let (outcome, order_id, reason) = match line.outcome {
                LineOutcome::Confirmed { order_id } => ("confirmed", Some(order_id), None),
                LineOutcome::AlreadyPaid { order_id } => ("already_paid", Some(order_id), None),
                LineOutcome::Unmatched { reason } => ("unmatched", None, Some(reason)),
            };
            StatementLineView {
                line: line.number,
                reference: line.reference,
                amount: line.amount,
                outcome,
                order_id,
                reason,
            }
        })
        .collect();
    let count = |outcome: &str| views.iter().filter(|v| v.outcome == outcome).count();
    Ok(Json(StatementImport {
        confirmed: count("confirmed"),
        already_paid: count("already_paid"),
        unmatched: count("unmatched"),
        lines: views,
    }))
}
