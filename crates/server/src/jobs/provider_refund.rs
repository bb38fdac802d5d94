//! `provider_refund`: sends a recorded refund's money back through the order's provider. The
//! ledger enqueues it in the transaction that records the refund (an admin's refund, or money
//! that arrived for an order that could not take it), so it runs exactly when that committed.
//! The refund's id is the provider's idempotency key, so a second run after a crash refunds
//! once.

use bursar_payments::{ProviderError, RefundRequest};
use bursar_store::jobs::ClaimedJob;
use bursar_store::orders::{PROVIDER_REFUND_JOB, ProviderRefundPayload, RefundOutcome};
use bursar_worker::{Job, JobError, JobFuture, Policy};

use crate::AppState;

pub struct ProviderRefund;

impl Job<AppState> for ProviderRefund {
    fn kind(&self) -> &'static str {
        PROVIDER_REFUND_JOB
    }

    fn policy(&self) -> Policy {
        Policy {
            timeout: std::time::Duration::from_secs(60),
            ..Policy::default()
        }
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: ProviderRefundPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            send_refund(state, &payload.refund_id).await
        })
    }
}

/// Asks the provider to send the refund's money back, if it is still pending. A provider that
/// cannot be reached is an error the queue retries with back-off (the refund stays pending, its
/// reason noted); one that refuses leaves the refund `failed` for an admin.
pub async fn send_refund(state: &AppState, refund_id: &str) -> Result<(), JobError> {
    let store = &state.store;
    let Some(record) = store.start_refund_call(refund_id).await? else {
        return Ok(());
    };
    let order = store.order(&record.order_id).await?.ok_or_else(|| {
        JobError::fatal(format!("order {} of the refund is gone", record.order_id))
    })?;
    let outcome = match state.payments.get(&order.provider) {
        None => RefundOutcome::Failed {
            reason: format!("the provider {} is not configured here", order.provider),
        },
        Some(provider) => {
            let request = RefundRequest {
                payment_id: order.payment_id.clone(),
                provider_ref: order.provider_ref.clone(),
                amount: bursar_payments::Amount {
                    amount: record.amount,
                    currency: order.currency.clone(),
                },
                refund_id: record.id.clone(),
            };
            match provider.refund(&request).await {
                Ok(done) => RefundOutcome::Succeeded {
                    provider_ref: done.provider_ref,
                },
                Err(ProviderError::Declined(reason)) => RefundOutcome::Failed { reason },
                Err(ProviderError::Unavailable(reason)) => RefundOutcome::Retry { reason },
            }
        }
    };
    store.settle_refund(&record, &outcome).await?;
    match outcome {
        RefundOutcome::Retry { reason } => Err(JobError::Retry(format!(
            "the provider {} could not be reached: {reason}",
            order.provider
        ))),
        RefundOutcome::Failed { reason } => {
            tracing::warn!(refund = %record.id, order = %order.id, %reason, "the provider refused the refund");
            Ok(())
        }
        RefundOutcome::Succeeded { .. } => Ok(()),
    }
}
