//! The sandbox's hosted payment page and the result page every provider returns people to.
//! The sandbox page's outcome is sent as a signed webhook through the same pipeline as a real
//! provider's, so paying here proves the whole path.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use bursar_core::OrderStatus;
use bursar_payments::WebhookRequest;
use bursar_payments::sandbox::{
    CardOutcome, EVENT_FAILED, EVENT_SUCCEEDED, SandboxEvent, card_outcome,
};
use bursar_store::ids::new_id;
use bursar_store::orders::Order;
use serde::Deserialize;

use crate::AppState;
use crate::app::fulfilment::receive_webhook;
use crate::error::{ApiError, ApiResult};
use crate::receipts::format_amount;

#[derive(Template)]
#[template(path = "pay_sandbox.html")]
struct SandboxPage<'a> {
    order: &'a Order,
    total: String,
    error: Option<&'a str>,
    card_number: &'a str,
}

#[derive(Template)]
#[template(path = "pay_result.html")]
struct ResultPage<'a> {
    order: &'a Order,
    total: String,
    credits: i64,
}

fn render(template: &impl Template, status: StatusCode) -> ApiResult<Response> {
    let html = template.render().map_err(|e| {
        tracing::error!(error = %e, "page template failed");
        ApiError::internal()
    })?;
    Ok((status, Html(html)).into_response())
}

fn total(order: &Order) -> String {
    format!(
        "{} {}",
        format_amount(order.total, &order.currency),
        order.currency
    )
}

async fn sandbox_order(state: &AppState, payment_id: &str) -> ApiResult<Order> {
    state
        .store
        .order_by_payment(payment_id)
        .await?
        .filter(|o| o.provider == "sandbox")
        .ok_or_else(|| ApiError::not_found("payment"))
}

/// The sandbox's hosted payment page: a card form for test cards.
#[utoipa::path(get, path = "/pay/sandbox/{payment_id}", tag = "pages",
    params(("payment_id" = String, Path)),
    responses((status = 200, description = "the payment page", content_type = "text/html"),
        (status = 404, description = "no such sandbox payment")))]
pub async fn sandbox_page(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
) -> ApiResult<Response> {
    let order = sandbox_order(&state, &payment_id).await?;
    let page = SandboxPage {
        total: total(&order),
        order: &order,
        error: None,
        card_number: "",
    };
    render(&page, StatusCode::OK)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CardForm {
    /// A test card: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined; any other
    /// number shows the form again (422).
    pub card_number: String,
}

/// Pays (4242 4242 4242 4242) or is declined (4000 0000 0000 0002); the outcome is delivered
/// as a signed `POST /api/v1/webhooks/sandbox`, then the person is sent to the result page.
#[utoipa::path(post, path = "/pay/sandbox/{payment_id}", tag = "pages",
    params(("payment_id" = String, Path)),
    request_body(content = CardForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "to the result page"),
        (status = 404, description = "no such sandbox payment"),
        (status = 422, description = "not a test card: the form again", content_type = "text/html")))]
pub async fn sandbox_pay(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
    Form(form): Form<CardForm>,
) -> ApiResult<Response> {
    let order = sandbox_order(&state, &payment_id).await?;
    let (kind, failure_reason) = match card_outcome(&form.card_number) {
        CardOutcome::Succeeds => (EVENT_SUCCEEDED, None),
        CardOutcome::Declined(reason) => (EVENT_FAILED, Some(reason.to_string())),
        CardOutcome::Unknown => {
            let page = SandboxPage {
                total: total(&order),
                order: &order,
                error: Some(
                    "Use test card 4242 4242 4242 4242 to pay or 4000 0000 0000 0002 to be declined.",
                ),
                card_number: &form.card_number,
            };
            return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let event = SandboxEvent {
        id: new_id("evt"),
        kind: kind.to_string(),
        payment_id: order.payment_id.clone(),
        order_id: order.id.clone(),
        amount: bursar_payments::Amount {
            amount: order.total,
            currency: order.currency.clone(),
        },
        failure_reason,
    };
    let sandbox = &state.payments.sandbox;
    let (body, signature) = sandbox.sign(&event, state.store.clock.now_ms().div_euclid(1000));
    let mut headers = HeaderMap::new();
    let signature = HeaderValue::from_str(&signature).map_err(|_| ApiError::internal())?;
    headers.insert(bursar_payments::sandbox::SIGNATURE_HEADER, signature);
    receive_webhook(&state, "sandbox", &WebhookRequest::new(&headers, &body)).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/pay/result/{payment_id}"))],
    )
        .into_response())
}

/// Where a person lands after paying: the order's outcome.
#[utoipa::path(get, path = "/pay/result/{payment_id}", tag = "pages",
    params(("payment_id" = String, Path)),
    responses((status = 200, description = "the order's outcome", content_type = "text/html"),
        (status = 404, description = "no such payment")))]
pub async fn result_page(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
) -> ApiResult<Response> {
    let order = state
        .store
        .order_by_payment(&payment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    let credits = if order.status == OrderStatus::Paid {
        order.credits_granted
    } else {
        0
    };
    let page = ResultPage {
        total: total(&order),
        order: &order,
        credits,
    };
    render(&page, StatusCode::OK)
}
