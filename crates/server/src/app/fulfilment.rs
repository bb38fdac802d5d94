//! Webhook fulfilment, the one pipeline every provider's callback goes through: verify the
//! signature over the raw body before anything is trusted, parse, then hand the event to the
//! ledger writer, which applies it exactly once (see `bursar_store::ledger::orders`); a payment
//! that arrived for an order that can no longer take it is refunded through the queue.

use bursar_core::{FulfilmentOutcome, Money};
use bursar_payments::{Acknowledgement, EventKind, WebhookError, WebhookEvent, WebhookRequest};
use bursar_store::ledger::{ConfirmedBy, PaymentEvent, PaymentOutcome};
use bursar_store::orders::Order;

use crate::AppState;
use crate::app::payment_methods;
use crate::error::{ApiError, ApiResult};

/// Handles one webhook delivery: `Err(invalid_signature)` before anything is trusted, else the
/// event is applied once and the provider gets the acknowledgement it expects.
pub async fn receive_webhook(
    state: &AppState,
    provider_name: &str,
    request: &WebhookRequest<'_>,
) -> ApiResult<Acknowledgement> {
    let body = request.body;
    let (store, payments) = (&state.store, &state.payments);
    let provider = payments
        .get(provider_name)
        .filter(|p| p.name() != "bank_transfer")
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    let now_s = store.clock.now_ms().div_euclid(1000);
    if provider_name == bursar_payments::wechatpay::NAME {
        let serial = request
            .header(bursar_payments::wechatpay::signing::HEADER_SERIAL)
            .ok()
            .flatten();
        crate::wechatpay_certificates::reload_for_serial(state, serial, now_s).await;
    }
    let event = provider
        .parse_webhook(request, now_s)
        .map_err(|error| match error {
            WebhookError::Malformed(detail) => ApiError::bad_request(detail),
            other => ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_signature",
                other.to_string(),
            ),
        })?;
    if crate::json::has_nul_escape(body) {
        return Err(ApiError::bad_request(
            "the event holds a NUL character, which no id or reason may contain",
        ));
    }
    if event.kind == EventKind::MethodSetUp {
        return method_set_up(state, provider.as_ref(), &event).await;
    }
    if let EventKind::AwaitingPayment { instructions } = &event.kind {
        awaiting_payment(state, &event, instructions).await?;
        return Ok(provider.acknowledgement());
    }
    let fulfilment = store
        .ledger
        .fulfil(payment_event(provider_name, event))
        .await?;
    let outcome = fulfilment.outcome;
    metrics::counter!("bursar_payment_events_total",
        "provider" => provider_name.to_string(),
        "outcome" => outcome.as_str())
    .increment(1);
    if outcome == FulfilmentOutcome::RetryLater {
        // Not recorded: the provider delivers it again, by when its payment has arrived.
        return Err(ApiError::conflict(
            "this event refers to a payment that has not been applied yet; deliver it again later",
        ));
    }
    if outcome == FulfilmentOutcome::RefundRequired
        && let Some(refund_id) = &fulfilment.refund_id
    {
        // Recorded and queued in the same commit: sent back now if it can be, else by the
        // queue's retries.
        // The provider's acknowledgement does not show it, so this never waits for a worker
        // that took the job first.
        let key = bursar_store::orders::provider_refund_key(refund_id);
        crate::jobs::run_now(state, &key, std::time::Duration::ZERO).await;
    }
    Ok(provider.acknowledgement())
}

/// A member completed a setup with the provider: the method it saved is kept (once, however
/// often this arrives, and whether or not the member's client saved it first). A setup on a
/// customer record Bursar did not make (another system sharing the provider account) is
/// acknowledged and left alone; a provider that cannot be reached makes the provider deliver
/// the event again.
async fn method_set_up(
    state: &AppState,
    provider: &dyn bursar_payments::PaymentProvider,
    event: &WebhookEvent,
) -> ApiResult<Acknowledgement> {
    let setup_ref = event
        .provider_ref
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("the setup event names no setup"))?;
    match payment_methods::finish_setup(state, provider, setup_ref, None).await {
        Ok(method) => {
            tracing::info!(method = %method.id, user = %method.user_id, "payment method saved by the provider's webhook");
        }
        Err(error) if error.status.is_server_error() => return Err(error),
        Err(error) => {
            tracing::info!(setup = setup_ref, detail = %error.detail, "a setup event saved nothing");
        }
    }
    Ok(provider.acknowledgement())
}

/// The provider issued what the person needs to pay (ECPay's ATM virtual account): it is shown
/// in the pending order's `payment` object as `atm` (`bank_code`, `v_account`, `expire_date`).
/// Writing the same details twice changes nothing, so a repeated notice is harmless.
async fn awaiting_payment(
    state: &AppState,
    event: &WebhookEvent,
    instructions: &std::collections::BTreeMap<String, String>,
) -> ApiResult<()> {
    let Some(payment_id) = &event.payment_id else {
        tracing::info!(event = %event.event_id, "payment instructions for no payment of ours");
        return Ok(());
    };
    let Some(order) = state.store.order_by_payment(payment_id).await? else {
        tracing::info!(event = %event.event_id, "payment instructions for an unknown payment");
        return Ok(());
    };
    if order.status != bursar_core::OrderStatus::Pending {
        return Ok(());
    }
    let mut payment: serde_json::Value = order
        .payment_json
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| serde_json::json!({ "id": order.payment_id }));
    payment["atm"] = serde_json::to_value(instructions).map_err(|_| ApiError::internal())?;
    state
        .store
        .set_order_payment(
            &order.id,
            order.provider_ref.as_deref(),
            &payment.to_string(),
        )
        .await?;
    Ok(())
}

/// An admin's word that a bank transfer arrived: the pending `bank_transfer` order is paid and
/// its credits granted through the same exactly-once path as a provider's webhook, and the
/// `order.confirm` audit entry commits with it. Answers the order as it is now.
pub async fn confirm_bank_transfer(
    state: &AppState,
    order_id: &str,
    reference: Option<String>,
    confirmed_by: ConfirmedBy,
) -> ApiResult<Order> {
    let store = &state.store;
    let order = store
        .order(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if order.provider != "bank_transfer" {
        return Err(ApiError::conflict(
            "only bank-transfer orders are confirmed by hand",
        ));
    }
    let event = PaymentEvent {
        provider: order.provider.clone(),
        event_id: format!("confirm_{}", order.id),
        event_type: "admin.confirmed".into(),
        outcome: PaymentOutcome::Succeeded,
        payment_id: Some(order.payment_id.clone()),
        provider_ref: reference,
        amount: Some(Money {
            amount: order.total,
            currency: order.currency.clone(),
        }),
        confirmed_by: Some(confirmed_by),
    };
    let outcome = store.ledger.fulfil(event).await?.outcome;
    let now = store.order(order_id).await?;
    match now {
        Some(order) if outcome == FulfilmentOutcome::Fulfilled => Ok(order),
        now => Err(ApiError::conflict(format!(
            "the order was not confirmed ({outcome}); it is {}",
            now.as_ref().map_or("gone", |o| o.status.as_str())
        ))),
    }
}

fn payment_event(provider: &str, event: WebhookEvent) -> PaymentEvent {
    PaymentEvent {
        provider: provider.to_string(),
        outcome: match event.kind {
            EventKind::Succeeded => PaymentOutcome::Succeeded,
            EventKind::Failed { reason } => PaymentOutcome::Failed(reason),
            EventKind::AttemptFailed { reason } => PaymentOutcome::AttemptFailed(reason),
            EventKind::Refunded { amount } => PaymentOutcome::Refunded {
                total_refunded: amount.amount,
            },
            EventKind::Refused { reason } => PaymentOutcome::Refused(reason),
            // Saved methods are not the ledger's business; `receive_webhook` handles them first.
            EventKind::Ignored | EventKind::MethodSetUp | EventKind::AwaitingPayment { .. } => {
                PaymentOutcome::Ignored
            }
        },
        event_id: event.event_id,
        event_type: event.event_type,
        payment_id: event.payment_id,
        provider_ref: event.provider_ref,
        amount: event.amount.map(|a| Money {
            amount: a.amount,
            currency: a.currency,
        }),
        confirmed_by: None,
    }
}
