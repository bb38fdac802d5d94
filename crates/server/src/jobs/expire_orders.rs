//! `expire_orders`: moves pending orders past their `expires_at` to `expired`. Scheduled every
//! `BURSAR_EXPIRY_SWEEP_SECONDS`.

use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub const KIND: &str = "expire_orders";

/// Orders expired per query; a sweep repeats until none is due, at most this many times.
const ORDERS_PER_STEP: i64 = 500;
const STEPS_MAX: usize = 50;

pub struct ExpireOrders;

impl Job<AppState> for ExpireOrders {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            expire_orders(state).await.map_err(JobError::from)?;
            Ok(())
        })
    }
}

/// Expires every pending order past its `expires_at`, each by a guarded UPDATE, so a payment
/// racing in either pays it first or finds it expired and is returned.
pub async fn expire_orders(state: &AppState) -> Result<u64, bursar_store::StoreError> {
    let mut total = 0;
    for _ in 0..STEPS_MAX {
        let expired = state.store.expire_due_orders(ORDERS_PER_STEP).await?;
        total += expired;
        if expired < ORDERS_PER_STEP as u64 {
            break;
        }
    }
    Ok(total)
}
