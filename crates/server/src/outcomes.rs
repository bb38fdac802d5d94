//! How the ledger's typed outcomes look over HTTP: a status code and a JSON view per outcome,
//! and the response for an executed request. `render` is what the writer stores under an
//! `Idempotency-Key`, so a retry gets the first response byte for byte (see the store's
//! `ledger/outcome.rs`); it must depend on the outcome alone.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bursar_core::{FulfilmentOutcome, HoldStatus, OrderStatus};
use bursar_store::auto_topup::TopupStep;
use bursar_store::clock::rfc3339;
use bursar_store::ledger::orders::OrderRefundReceipt;
use bursar_store::ledger::{
    AdjustmentReceipt, CaptureReceipt, Executed, Fulfilment, GiftReceipt, GrantReceipt,
    HoldReceipt, Idempotent, Outcome, RedemptionReceipt, RefundReceipt, Rendered, RewardReceipt,
    SpendReceipt, VoidReceipt,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::reads::{self, PaidByView};
use crate::views::idempotency;

/// A ledger request's idempotency, from its `Idempotency-Key` header, rendered by `render`.
pub fn idempotent(
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    raw_body: &[u8],
) -> ApiResult<Option<Idempotent>> {
    Ok(idempotency(headers, caller, route, raw_body)?.map(|key| Idempotent { key, render }))
}

/// Runs a ledger command for an HTTP request, under the request's `Idempotency-Key` if it has
/// one, and answers as `respond` does.
pub async fn execute(
    state: &crate::AppState,
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    raw_body: &[u8],
    command: bursar_store::ledger::Command,
) -> ApiResult<Response> {
    let request = bursar_store::ledger::Request {
        command,
        idempotent: idempotent(headers, caller, route, raw_body)?,
    };
    Ok(respond(state.store.ledger.execute(request).await?))
}

/// The response for an executed ledger request: the stored bytes of a replay (marked
/// `Idempotent-Replayed: true`), else the outcome as rendered now.
pub fn respond(executed: Executed) -> Response {
    match executed {
        Executed::Replayed(rendered) => send(rendered, true),
        Executed::Applied {
            rendered: Some(rendered),
            ..
        } => send(rendered, false),
        Executed::Applied { outcome, .. } => send(render(&outcome), false),
    }
}

/// Sends a rendered body as it stands, typed by its status.
pub fn send(rendered: Rendered, replayed: bool) -> Response {
    let status = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::OK);
    let mut response = (status, rendered.body).into_response();
    let content_type = if status.is_client_error() || status.is_server_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// An outcome's status code and JSON body.
pub fn render(outcome: &Outcome) -> Rendered {
    match outcome {
        Outcome::Spent(receipt) => json(StatusCode::OK, &SpendView::from(receipt)),
        Outcome::Granted(receipt) => json(StatusCode::CREATED, &GrantView::from(receipt)),
        Outcome::Refunded(receipt) => json(StatusCode::OK, &RefundView::from(receipt)),
        Outcome::Held(receipt) => json(StatusCode::CREATED, &HoldView::from(receipt)),
        Outcome::Captured(receipt) => json(StatusCode::OK, &CaptureView::from(receipt)),
        Outcome::Voided(receipt) => json(StatusCode::OK, &VoidView::from(receipt)),
        Outcome::Adjusted(receipt) => json(StatusCode::CREATED, &AdjustmentView::from(receipt)),
        Outcome::Expired { accounts } => {
            json(StatusCode::OK, &serde_json::json!({ "accounts": accounts }))
        }
        Outcome::Fulfilment(fulfilment) => json(StatusCode::OK, &FulfilmentView::from(fulfilment)),
        Outcome::OrderRefunded(receipt) => json(StatusCode::OK, &OrderRefundView::from(receipt)),
        Outcome::AllowanceAlreadyGranted => {
            json(StatusCode::OK, &serde_json::json!({ "granted": false }))
        }
        Outcome::GiftClaimed(receipt) => json(StatusCode::OK, &GiftClaimView::from(receipt)),
        Outcome::RewardClaimed(receipt) => json(StatusCode::OK, &RewardClaimView::from(receipt)),
        Outcome::Redeemed(receipt) => {
            json(StatusCode::CREATED, &RedemptionView::from(receipt.as_ref()))
        }
        Outcome::RedemptionCancelled(receipt) => {
            json(StatusCode::OK, &RedemptionView::from(receipt.as_ref()))
        }
        // A job's, never a request's; what it did, never the method's token.
        Outcome::TopupPrepared { step, .. } => {
            let (step, order_id) = match step {
                TopupStep::Nothing => ("nothing", None),
                TopupStep::Stopped { order_id, .. } => ("stopped", Some(order_id)),
                TopupStep::Charge { order, .. } => ("charge", Some(&order.id)),
            };
            json(
                StatusCode::OK,
                &serde_json::json!({ "step": step, "order_id": order_id }),
            )
        }
    }
}

/// A marketplace redemption: as its redemption or cancellation left it (with the member's
/// `balance_after` and the points' `transaction_id`), or as listed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Redemption)]
pub struct RedemptionView {
    pub id: String,
    pub product_id: String,
    /// The product's name when it was redeemed.
    pub product_name: String,
    pub merchant_id: String,
    pub user_id: String,
    pub quantity: i64,
    /// The points price per item when it was redeemed.
    pub unit_price: i64,
    pub points_cost: i64,
    /// `pending`, `fulfilled` or `cancelled`.
    pub status: String,
    /// The points' move to the merchant (or, for a cancellation's answer, back to the member).
    pub transaction_id: String,
    /// The member's balance after it: in the answers to the member's own redemption and
    /// cancellation (never to a merchant or an admin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<i64>,
    pub created_at: String,
}

impl From<&RedemptionReceipt> for RedemptionView {
    fn from(r: &RedemptionReceipt) -> Self {
        Self {
            id: r.id.clone(),
            product_id: r.product_id.clone(),
            product_name: r.product_name.clone(),
            merchant_id: r.merchant_id.clone(),
            user_id: r.user_id.clone(),
            quantity: r.quantity,
            unit_price: r.unit_price,
            points_cost: r.points_cost,
            status: r.status.as_str().to_string(),
            transaction_id: r.transaction_id.clone(),
            balance_after: r.balance_after,
            created_at: rfc3339(r.created_at_ms),
        }
    }
}

impl From<bursar_store::marketplace::Redemption> for RedemptionView {
    fn from(r: bursar_store::marketplace::Redemption) -> Self {
        Self {
            id: r.id,
            product_id: r.product_id,
            product_name: r.product_name,
            merchant_id: r.merchant_id,
            user_id: r.user_id,
            quantity: r.quantity,
            unit_price: r.unit_price,
            points_cost: r.points_cost,
            status: r.status.as_str().to_string(),
            transaction_id: r.transaction_id,
            balance_after: None,
            created_at: r.created_at,
        }
    }
}

pub fn json(status: StatusCode, body: &impl Serialize) -> Rendered {
    Rendered {
        status: status.as_u16(),
        body: serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SpendReceipt)]
pub struct SpendView {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub available_after: i64,
    /// Which grants paid, in burn order.
    pub paid_by: Vec<PaidByView>,
}

impl From<&SpendReceipt> for SpendView {
    fn from(r: &SpendReceipt) -> Self {
        Self {
            transaction_id: r.transaction_id.clone(),
            user_id: r.user_id.clone(),
            amount: r.amount,
            balance_after: r.balance_after,
            available_after: r.available_after,
            paid_by: reads::paid_by(&r.paid_by),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GrantReceipt)]
pub struct GrantView {
    pub transaction_id: String,
    pub grant_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
}

impl From<&GrantReceipt> for GrantView {
    fn from(r: &GrantReceipt) -> Self {
        Self {
            transaction_id: r.transaction_id.clone(),
            grant_id: r.grant_id.clone(),
            user_id: r.user_id.clone(),
            amount: r.amount,
            balance_after: r.balance_after,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RefundReceipt)]
pub struct RefundView {
    pub transaction_id: String,
    pub refund_of: String,
    pub user_id: String,
    pub amount: i64,
    pub total_refunded: i64,
    pub balance_after: i64,
}

impl From<&RefundReceipt> for RefundView {
    fn from(r: &RefundReceipt) -> Self {
        Self {
            transaction_id: r.transaction_id.clone(),
            refund_of: r.refund_of.clone(),
            user_id: r.user_id.clone(),
            amount: r.amount,
            total_refunded: r.total_refunded,
            balance_after: r.balance_after,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HoldReceipt)]
pub struct HoldView {
    pub id: String,
    pub user_id: String,
    #[schema(value_type = String, example = "held")]
    pub status: HoldStatus,
    pub amount: i64,
    pub expires_at: String,
    pub available_after: i64,
}

impl From<&HoldReceipt> for HoldView {
    fn from(r: &HoldReceipt) -> Self {
        Self {
            id: r.id.clone(),
            user_id: r.user_id.clone(),
            status: r.status,
            amount: r.amount,
            expires_at: rfc3339(r.expires_at_ms),
            available_after: r.available_after,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CaptureReceipt)]
pub struct CaptureView {
    pub id: String,
    #[schema(value_type = String, example = "captured")]
    pub status: HoldStatus,
    pub transaction_id: String,
    pub captured: i64,
    pub released: i64,
    pub balance_after: i64,
}

impl From<&CaptureReceipt> for CaptureView {
    fn from(r: &CaptureReceipt) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status,
            transaction_id: r.transaction_id.clone(),
            captured: r.captured,
            released: r.released,
            balance_after: r.balance_after,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VoidReceipt)]
pub struct VoidView {
    pub id: String,
    #[schema(value_type = String, example = "voided")]
    pub status: HoldStatus,
    pub released: i64,
}

impl From<&VoidReceipt> for VoidView {
    fn from(r: &VoidReceipt) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status,
            released: r.released,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdjustmentReceipt)]
pub struct AdjustmentView {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub reason: String,
    pub balance_after: i64,
}

impl From<&AdjustmentReceipt> for AdjustmentView {
    fn from(r: &AdjustmentReceipt) -> Self {
        Self {
            transaction_id: r.transaction_id.clone(),
            user_id: r.user_id.clone(),
            amount: r.amount,
            reason: r.reason.clone(),
            balance_after: r.balance_after,
        }
    }
}

/// Today's daily gift, claimed.
#[derive(Debug, Serialize, ToSchema)]
pub struct GiftClaimView {
    /// Consecutive local days claimed, today included.
    pub streak: i64,
    /// What today's gift granted: the streak day's entry of the schedule.
    pub credits: i64,
    pub balance_after: i64,
}

impl From<&GiftReceipt> for GiftClaimView {
    fn from(r: &GiftReceipt) -> Self {
        Self {
            streak: r.streak,
            credits: r.credits,
            balance_after: r.balance_after,
        }
    }
}

/// An inbox reward, claimed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RewardClaimView {
    /// The inbox item's id.
    pub id: String,
    pub credits: i64,
    pub balance_after: i64,
}

impl From<&RewardReceipt> for RewardClaimView {
    fn from(r: &RewardReceipt) -> Self {
        Self {
            id: r.id.clone(),
            credits: r.credits,
            balance_after: r.balance_after,
        }
    }
}

#[derive(Debug, Serialize)]
struct FulfilmentView<'a> {
    outcome: FulfilmentOutcome,
    order_id: Option<&'a str>,
    refund_id: Option<&'a str>,
}

impl<'a> From<&'a Fulfilment> for FulfilmentView<'a> {
    fn from(f: &'a Fulfilment) -> Self {
        Self {
            outcome: f.outcome,
            order_id: f.order_id.as_deref(),
            refund_id: f.refund_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = OrderRefundReceipt)]
pub struct OrderRefundView {
    pub id: String,
    pub order_id: String,
    /// Money refunded, in the order's currency's minor units.
    pub amount: i64,
    pub currency: String,
    /// Credits the refund took back from the user.
    pub credits_clawed_back: i64,
    /// Credits the order granted that the refund could not take back (already spent).
    pub credits_not_recovered: i64,
    pub transaction_id: Option<String>,
    pub balance_after: i64,
    #[schema(value_type = String, example = "refunded")]
    pub order_status: OrderStatus,
    pub amount_refunded_total: i64,
}

impl From<&OrderRefundReceipt> for OrderRefundView {
    fn from(r: &OrderRefundReceipt) -> Self {
        Self {
            id: r.id.clone(),
            order_id: r.order_id.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            credits_clawed_back: r.credits_clawed_back,
            credits_not_recovered: r.credits_not_recovered,
            transaction_id: r.transaction_id.clone(),
            balance_after: r.balance_after,
            order_status: r.order_status,
            amount_refunded_total: r.amount_refunded_total,
        }
    }
}
