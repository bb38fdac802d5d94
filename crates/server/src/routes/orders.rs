//! Orders as their buyer sees them: create, list, read, cancel, and the receipt of a paid one.

use crate::reads::Page;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use bursar_core::OrderStatus;
use bursar_store::clock::rfc3339;
use bursar_store::ledger::Rendered;
use bursar_store::orders::{Order, OrderFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::checkout::{self, Basket};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody, Query};
use crate::outcomes::{json, send};
use crate::receipts::{self, ReceiptView};
use crate::routes::catalog::MoneyBody;
use crate::views::{PageQuery, idempotency};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub package_id: String,
    /// 1–1000, default 1.
    pub quantity: Option<i64>,
    pub coupon_code: Option<String>,
    /// `sandbox`, `stripe`, `alipay`, `wechatpay`, `ecpay` or `bank_transfer`; providers not
    /// configured on this server are refused.
    pub provider: String,
    /// Alipay only: `page` pays on Alipay's desktop payment page (`payment.redirect_url`);
    /// `qr` (the default) shows a QR code (`payment.qr_code`, `payment.qr_svg`).
    pub alipay_mode: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    /// `package`, or `auto_topup` for an automatic top-up (no package; its fee is a line of
    /// its own).
    pub kind: String,
    /// `pending`, `paid`, `failed`, `cancelled`, `expired` or `refunded`.
    pub status: String,
    /// The package bought; null for automatic top-ups.
    pub package_id: Option<String>,
    pub package_name: String,
    pub quantity: i64,
    /// Before the discount: unit price × quantity.
    pub price: MoneyBody,
    pub discount: MoneyBody,
    /// The processing fee the buyer bears (automatic top-ups), included in `total`.
    pub fee: MoneyBody,
    pub total: MoneyBody,
    /// Credits the order buys (without bonuses).
    pub credits: i64,
    pub bonus_credits: i64,
    /// Granted on a user's first paid order when the package offers it (known once paid).
    pub first_purchase_bonus: i64,
    pub coupon_code: Option<String>,
    pub provider: String,
    /// What to do next to pay: `{id, redirect_url}` for the sandbox and hosted pages,
    /// `{id, qr_code, qr_svg}` for codes scanned with the provider's app (Alipay, WeChat Pay),
    /// `{id, form}` for a form the client submits (ECPay), `{id, reference}` for bank
    /// transfers.
    #[schema(value_type = PaymentView)]
    pub payment: serde_json::Value,
    /// What became of the money: `pending`, `succeeded`, `failed`, `mismatch`,
    /// `refund_required`, `refunded` or `refund_failed`.
    pub payment_status: String,
    /// The provider's reason, for failed payments.
    pub failure_reason: Option<String>,
    pub amount_refunded: MoneyBody,
    pub credits_clawed_back: i64,
    pub receipt_number: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub paid_at: Option<String>,
}

/// The `payment` object of an order (documentation only: it is stored as the provider gave it,
/// and only the fields that apply are present).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    /// Bursar's payment id (`pay_…`).
    pub id: String,
    /// A hosted page to send the person to (the sandbox, Stripe, Alipay's page mode).
    pub redirect_url: Option<String>,
    /// For clients that confirm a Stripe PaymentIntent themselves.
    pub client_secret: Option<String>,
    /// The text of a QR code to scan with the provider's app (Alipay's `qr_code`, WeChat Pay's
    /// `code_url`).
    pub qr_code: Option<String>,
    /// SVG markup of that QR code.
    pub qr_svg: Option<String>,
    /// A form to submit to the provider as it is (ECPay).
    pub form: Option<PaymentFormView>,
    /// Where to pay an ECPay ATM order, once ECPay has issued a virtual account.
    pub atm: Option<AtmAccountView>,
    /// The transfer reference to quote (bank transfers).
    pub reference: Option<String>,
    /// What to do, in words (bank transfers).
    pub instructions: Option<String>,
}

/// An ECPay ATM virtual account: the person transfers the order's total to it before the
/// deadline; the order is paid when ECPay reports the transfer.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AtmAccountView {
    /// The receiving bank's code (`BankCode`).
    pub bank_code: String,
    /// The virtual account number (`vAccount`).
    pub v_account: String,
    /// The last day to pay (`ExpireDate`, `yyyy/MM/dd`, Taiwan time).
    pub expire_date: String,
}

/// A form the client posts to `action` with `fields`, unchanged (they are signed).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentFormView {
    pub action: String,
    pub fields: std::collections::BTreeMap<String, String>,
}

pub(crate) fn order_view(order: &Order) -> OrderView {
    let payment = order
        .payment_json
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| serde_json::json!({ "id": order.payment_id }));
    OrderView {
        id: order.id.clone(),
        kind: order.kind.as_str().to_string(),
        status: order.status.as_str().to_string(),
        package_id: order.package_id.clone(),
        package_name: order.package_name.clone(),
        quantity: order.quantity,
        price: MoneyBody::new(order.unit_price * order.quantity, &order.currency),
        discount: MoneyBody::new(order.discount, &order.currency),
        fee: MoneyBody::new(order.fee, &order.currency),
        total: MoneyBody::new(order.total, &order.currency),
        credits: order.credits,
        bonus_credits: order.bonus_credits,
        first_purchase_bonus: order.first_purchase_bonus,
        coupon_code: order.coupon_code.clone(),
        provider: order.provider.clone(),
        payment,
        payment_status: order.payment_status.as_str().to_string(),
        failure_reason: order.failure_reason.clone(),
        amount_refunded: MoneyBody::new(order.amount_refunded, &order.currency),
        credits_clawed_back: order.credits_clawed_back,
        receipt_number: order.receipt_number.map(receipts::number),
        created_at: rfc3339(order.created_at_ms),
        expires_at: rfc3339(order.expires_at_ms),
        paid_at: order.paid_at_ms.map(rfc3339),
    }
}

/// Buy a package. The order is created `pending` with its price fixed; `payment` says how to
/// pay it. Credits are granted only when the provider confirms the payment.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body = OrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key and body replays the first response")),
    responses(
        (status = 201, body = OrderView),
        (status = 404, description = "no such package, or one this user may not buy", body = Problem),
        (status = 409, description = "the coupon is used up, or the request is still in progress", body = Problem),
        (status = 422, description = "invalid input, an unusable coupon, an unconfigured provider", body = Problem),
        (status = 502, description = "the provider could not create the payment", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body<OrderRequest>,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    let key = idempotency(&headers, &caller, "POST /orders", &body.raw)?;
    let request = body.value;
    let basket = Basket {
        package_id: request.package_id,
        quantity: request.quantity.unwrap_or(1),
        coupon_code: request.coupon_code,
        mode: alipay_mode(&request.provider, request.alipay_mode.as_deref())?,
        provider: request.provider,
    };
    let placed = checkout::place_order(&state, user_id, &basket, key.as_ref(), render).await?;
    Ok(send(placed.response, placed.replayed))
}

/// The way an Alipay order is paid: `None` for the QR code.
fn alipay_mode(provider: &str, mode: Option<&str>) -> ApiResult<Option<String>> {
    match (provider, mode) {
        (_, None) => Ok(None),
        ("alipay", Some("qr")) => Ok(None),
        ("alipay", Some(bursar_payments::alipay::MODE_PAGE)) => {
            Ok(Some(bursar_payments::alipay::MODE_PAGE.into()))
        }
        ("alipay", Some(other)) => Err(ApiError::invalid(format!(
            "alipay_mode must be `qr` or `page`, not {other:?}"
        ))),
        (_, Some(_)) => Err(ApiError::invalid(
            "alipay_mode applies to Alipay orders only",
        )),
    }
}

/// The response to an order request, stored under its `Idempotency-Key`.
pub(crate) fn render(placed: &ApiResult<Order>) -> Rendered {
    match placed {
        Ok(order) => json(StatusCode::CREATED, &order_view(order)),
        Err(error) => json(error.status, &error.problem()),
    }
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    params(PageQuery),
    responses((status = 200, body = Page<OrderView>), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<OrderView>>> {
    let user_id = caller.require_user()?;
    let filter = OrderFilter {
        user_id: Some(user_id.to_string()),
        ..OrderFilter::default()
    };
    let page = state.store.orders(&filter, &query.parse()?).await?;
    Ok(Json(Page {
        data: page.data.iter().map(order_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's orders; anyone else's reads as not found.
pub(crate) async fn own_order(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Order> {
    let user_id = caller.require_user()?;
    state
        .store
        .order(id)
        .await?
        .filter(|o| o.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("order"))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(order_view(&own_order(&state, &caller, &id).await?)))
}

/// Cancel a pending order. A payment that still arrives for it is refunded, never fulfilled.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem),
        (status = 409, description = "the order is no longer pending", body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Json<OrderView>> {
    let user_id = caller.require_user()?;
    let order = state
        .store
        .cancel_order(&id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if order.status != OrderStatus::Cancelled {
        return Err(ApiError::conflict(format!(
            "the order is {} and can no longer be cancelled",
            order.status
        )));
    }
    close_at_provider(&state, &order).await;
    Ok(Json(order_view(&order)))
}

/// A cancelled WeChat Pay order is closed at WeChat Pay too, so its QR code stops taking money.
/// Best effort: if WeChat Pay cannot be reached, its own `time_expire` closes it, and money paid
/// in between is sent back like any payment for a cancelled order.
async fn close_at_provider(state: &AppState, order: &bursar_store::orders::Order) {
    if order.provider != bursar_payments::wechatpay::NAME {
        return;
    }
    let (Some(wechatpay), Some(out_trade_no)) =
        (&state.payments.wechatpay, order.provider_ref.as_deref())
    else {
        return;
    };
    if let Err(error) = wechatpay.close(out_trade_no).await {
        tracing::warn!(order = %order.id, %error, "closing the WeChat Pay order failed");
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    /// `json` (default) or `html` (a printable page).
    pub format: Option<String>,
}

/// The receipt of a paid (or since refunded) order: sequential number, seller, items,
/// discount, total and payment method.
#[utoipa::path(get, path = "/api/v1/orders/{id}/receipt", tag = "orders",
    params(("id" = String, Path), ReceiptQuery),
    responses((status = 200, body = ReceiptView, content_type = "application/json"),
        (status = 200, description = "with format=html", content_type = "text/html"),
        (status = 404, body = Problem),
        (status = 409, description = "the order has not been paid", body = Problem)),
    security(("bearer" = [])))]
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ReceiptQuery>,
) -> ApiResult<Response> {
    let order = own_order(&state, &caller, &id).await?;
    let buyer = state.store.user(&order.user_id).await?.map(|u| u.email);
    let receipt = receipts::build(&state.config.seller, &order, buyer)
        .ok_or_else(|| ApiError::conflict("an order has a receipt once it is paid"))?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(receipt).into_response()),
        Some("html") => Ok(Html(receipts::html(&receipt)?).into_response()),
        Some(other) => Err(ApiError::invalid(format!(
            "format must be json or html, not {other:?}"
        ))),
    }
}
