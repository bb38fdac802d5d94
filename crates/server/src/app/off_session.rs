//! Charging a saved payment method without its owner present (auto top-up, subscription
//! renewal): the order's id is the provider's idempotency key, so a retry after a crash or an
//! outage charges once, and a success is applied by the same exactly-once fulfilment as a
//! provider's webhook.

use bursar_core::Money;
use bursar_payments::{Amount, ChargeRequest, ProviderError};
use bursar_store::jobs::ClaimedJob;
use bursar_store::ledger::{PaymentEvent, PaymentOutcome};
use bursar_store::orders::Order;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// How long an off-session order waits for its charge's answer before it expires: longer than
/// the jobs' retries of a provider outage (about half an hour), so a charge that went through
/// but whose answer was lost is charged again under the same key (and so not twice), never
/// replaced by a new order.
pub const ORDER_TTL_MS: i64 = 24 * 3_600_000;

/// What the charge came to. A provider that cannot be reached is an `Err`, to be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    /// Paid and fulfilled (or already fulfilled by the provider's webhook).
    Paid,
    Declined(String),
}

/// Charges `order` to the saved method `token`. With `completes` (the job whose work ends with
/// this charge), a successful charge's fulfilment records the job's completion in its own
/// transaction.
pub async fn charge(
    state: &AppState,
    order: &Order,
    token: String,
    completes: Option<&ClaimedJob>,
) -> ApiResult<Charged> {
    let provider = state.payments.get(&order.provider).ok_or_else(|| {
        ApiError::invalid(format!("provider {} is not configured", order.provider))
    })?;
    // A method saved through a setup belongs to the customer record it was saved on.
    let customer_ref = if provider.saves_methods_by_setup() {
        state
            .store
            .provider_customer(&order.user_id, &order.provider)
            .await?
    } else {
        None
    };
    let request = ChargeRequest {
        payment_id: order.payment_id.clone(),
        order_id: order.id.clone(),
        customer_ref,
        payment_method: token,
        amount: Amount {
            amount: order.total,
            currency: order.currency.clone(),
        },
        idempotency_key: order.id.clone(),
    };
    match provider.charge_saved_method(&request).await {
        Ok(charged) => {
            let event = PaymentEvent {
                provider: order.provider.clone(),
                event_id: format!("charge_{}", order.id),
                event_type: "off_session.charged".into(),
                outcome: PaymentOutcome::Succeeded,
                payment_id: Some(order.payment_id.clone()),
                provider_ref: Some(charged.provider_ref),
                amount: Some(Money {
                    amount: order.total,
                    currency: order.currency.clone(),
                }),
                confirmed_by: None,
            };
            match completes {
                Some(job) => state.store.ledger.fulfil_for_job(event, job).await?,
                None => state.store.ledger.fulfil(event).await?,
            };
            Ok(Charged::Paid)
        }
        Err(ProviderError::Declined(reason)) => Ok(Charged::Declined(reason)),
        Err(ProviderError::Unavailable(detail)) => {
            tracing::warn!(order = %order.id, %detail, "an off-session charge could not be made; retrying");
            state.store.release_charge(&order.id).await?;
            Err(ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "provider_error",
                "the payment provider could not be reached",
            ))
        }
    }
}
