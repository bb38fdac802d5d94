//! `POST /api/v1/webhooks/{provider}`: where providers report payments.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::app::fulfilment::receive_webhook;
use bursar_payments::WebhookRequest;

use crate::error::{ApiResult, Problem};
use crate::json::RawBody;

/// A provider's notification, in its own format and signature scheme (the sandbox signs with
/// `Bursar-Signature` in Stripe's scheme; Stripe with `Stripe-Signature`; Alipay signs form
/// fields, WeChat Pay with its `Wechatpay-*` headers). The signature is checked over the raw
/// body before anything else; each event is applied exactly once, however often it is
/// delivered, and answered the way its provider expects (Alipay `success`).
#[utoipa::path(post, path = "/api/v1/webhooks/{provider}", tag = "orders",
    params(("provider" = String, Path, description = "`sandbox`, `stripe`, `alipay`, `wechatpay` or `ecpay`")),
    request_body(content = String, description = "the provider's raw event body: JSON, or form fields (Alipay, ECPay)", content_type = "application/json"),
    responses(
        (status = 200, description = "accepted (including repeats of an event already applied)"),
        (status = 400, description = "invalid_signature: missing, forged, stale or signed with another secret; or a malformed event", body = Problem),
        (status = 404, description = "no such provider here", body = Problem),
        (status = 409, description = "the event refers to a payment not applied yet (deliver it again later), or crediting it would take a balance past 2^53 − 1", body = Problem)))]
pub async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let request = WebhookRequest::new(&headers, &body);
    let ack = receive_webhook(&state, &provider, &request).await?;
    Ok((
        StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, ack.content_type)],
        ack.body,
    )
        .into_response())
}
