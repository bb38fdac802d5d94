//! Reconciliation: a notification can be lost (the provider gave up, the server was down), so
//! pending orders at providers that can be asked are looked up, and the paid ones go through
//! the same exactly-once fulfilment as a webhook. No database transaction is open while the
//! provider is asked.

use bursar_core::{FulfilmentOutcome, Money};
use bursar_payments::{PaymentProvider, PaymentQuery, PaymentStatus};
use bursar_store::StoreError;
use bursar_store::ledger::{PaymentEvent, PaymentOutcome};
use bursar_store::orders::Order;

use crate::AppState;

/// A notification normally arrives within seconds; an order is asked about only after this
/// long, so the provider is not asked about every order it is about to report.
pub const QUIET_MS: i64 = 3 * 60 * 1000;
/// Orders asked about per provider and run; the next run takes the rest.
const ORDERS_PER_RUN: i64 = 100;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub asked: usize,
    pub fulfilled: usize,
}

/// Asks each provider that can be asked about its pending orders older than [`QUIET_MS`] and
/// fulfils the ones it reports paid. A provider that cannot be reached is asked next time.
pub async fn reconcile_payments(state: &AppState) -> Result<Reconciled, StoreError> {
    let mut done = Reconciled::default();
    let created_before = state.store.clock.now_ms() - QUIET_MS;
    for provider in state.payments.querying() {
        let orders = state
            .store
            .pending_orders_to_reconcile(provider.name(), created_before, ORDERS_PER_RUN)
            .await?;
        for order in orders {
            done.asked += 1;
            if reconcile_order(state, provider.as_ref(), &order).await? {
                done.fulfilled += 1;
            }
        }
    }
    Ok(done)
}

/// Asks about one order; `true` when this run paid it.
async fn reconcile_order(
    state: &AppState,
    provider: &dyn PaymentProvider,
    order: &Order,
) -> Result<bool, StoreError> {
    let query = PaymentQuery {
        order_id: order.id.clone(),
        payment_id: order.payment_id.clone(),
        provider_ref: order.provider_ref.clone(),
    };
    let (amount, provider_ref) = match provider.query_payment(&query).await {
        Ok(PaymentStatus::Paid {
            amount,
            provider_ref,
        }) => (amount, provider_ref),
        // Unpaid orders expire on their own; a closed trade cannot be paid any more either.
        Ok(PaymentStatus::Pending | PaymentStatus::Failed { .. }) => return Ok(false),
        Err(error) => {
            tracing::warn!(order = %order.id, provider = provider.name(), %error, "a payment could not be looked up; asked again next run");
            return Ok(false);
        }
    };
    let event = PaymentEvent {
        provider: order.provider.clone(),
        // One per payment: however often it is found paid, it is applied once, and a
        // notification arriving later finds the order paid already.
        event_id: format!("query_{}", order.payment_id),
        event_type: "reconciliation.paid".into(),
        outcome: PaymentOutcome::Succeeded,
        payment_id: Some(order.payment_id.clone()),
        provider_ref,
        amount: Some(Money {
            amount: amount.amount,
            currency: amount.currency,
        }),
        confirmed_by: None,
    };
    let fulfilment = state.store.ledger.fulfil(event).await?;
    metrics::counter!("bursar_payment_events_total",
        "provider" => order.provider.clone(),
        "outcome" => fulfilment.outcome.as_str())
    .increment(1);
    if fulfilment.outcome == FulfilmentOutcome::RefundRequired
        && let Some(refund_id) = &fulfilment.refund_id
    {
        let key = bursar_store::orders::provider_refund_key(refund_id);
        crate::jobs::run_now(state, &key, std::time::Duration::ZERO).await;
    }
    let paid = fulfilment.outcome == FulfilmentOutcome::Fulfilled;
    if paid {
        tracing::info!(order = %order.id, provider = %order.provider, "a payment whose notification never came was found paid");
    }
    Ok(paid)
}
