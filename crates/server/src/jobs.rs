//! Background work: sweeping overdue holds and grants through the ledger writer, expiring
//! unpaid orders, and forgetting idle rate-limit keys. Each job stops when the shutdown token is cancelled.

use std::time::Duration;

use bursar_store::ledger::Command;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How long idempotency keys are kept (the API promises at least 24 hours).
const IDEMPOTENCY_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// Accounts settled per sweep step; a sweep repeats steps until nothing is due.
const EXPIRY_ACCOUNTS_PER_STEP: i64 = 200;
/// Steps per sweep. Accounts whose overdue grants are still reserved by holds stay due, so a
/// sweep must not loop until nothing is due.
const EXPIRY_STEPS_MAX: usize = 50;
/// Pending orders expired per query; a sweep repeats until none is due.
const ORDERS_PER_STEP: i64 = 500;

pub fn spawn(state: AppState, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.expiry_sweep_interval_s.max(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Err(error) = sweep_expired(&state).await {
                tracing::warn!(%error, "expiry sweep failed; will retry");
            }
            if let Err(error) = expire_orders(&state).await {
                tracing::warn!(%error, "expiring pending orders failed; will retry");
            }
            if let Err(error) = retry_refunds(&state).await {
                tracing::warn!(error = %error.detail, "retrying provider refunds failed; will retry");
            }
            if let Err(error) = state
                .store
                .purge_idempotency_keys(IDEMPOTENCY_KEEP_MS)
                .await
            {
                tracing::warn!(%error, "purging old idempotency keys failed; will retry");
            }
            state.limiter.forget_idle();
        }
    });
}

/// Settles every overdue hold and grant, a bounded number of accounts at a time.
pub async fn sweep_expired(state: &AppState) -> Result<(), bursar_store::StoreError> {
    for _ in 0..EXPIRY_STEPS_MAX {
        let reply = state
            .store
            .ledger
            .execute(Command::ExpireDue {
                max_accounts: EXPIRY_ACCOUNTS_PER_STEP,
            })
            .await?;
        let settled = reply.json()["accounts"].as_i64().unwrap_or(0);
        if settled < EXPIRY_ACCOUNTS_PER_STEP {
            break;
        }
    }
    Ok(())
}

/// Moves every pending order past its `expires_at` to `expired` (each by a guarded UPDATE, so
/// a payment racing in either pays it first or finds it expired and is returned).
pub async fn expire_orders(state: &AppState) -> Result<u64, bursar_store::StoreError> {
    let mut total = 0;
    for _ in 0..EXPIRY_STEPS_MAX {
        let expired = state.store.expire_due_orders(ORDERS_PER_STEP).await?;
        total += expired;
        if expired < ORDERS_PER_STEP as u64 {
            break;
        }
    }
    Ok(total)
}

/// Refunds per sweep sent again to providers that could not be reached before.
const REFUNDS_PER_SWEEP: i64 = 100;

/// Asks providers again for the refunds whose earlier attempts found them unavailable.
pub async fn retry_refunds(state: &AppState) -> Result<(), crate::error::ApiError> {
    for refund_id in state.store.due_refunds(REFUNDS_PER_SWEEP).await? {
        crate::payments::process_refund(&state.store, &state.payments, &refund_id).await?;
    }
    Ok(())
}
