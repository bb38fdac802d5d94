//! `expire_holds_and_grants`: settles overdue holds and grants through the ledger writer, a
//! bounded number of accounts at a time. Scheduled every `BURSAR_EXPIRY_SWEEP_SECONDS`.

use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub const KIND: &str = "expire_holds_and_grants";

/// Accounts settled per step; a sweep repeats steps until nothing is due.
const EXPIRY_ACCOUNTS_PER_STEP: i64 = 200;
/// Steps per sweep. Accounts whose overdue grants are still reserved by holds stay due, so a
/// sweep must not loop until nothing is due.
const EXPIRY_STEPS_MAX: usize = 50;

pub struct ExpireHoldsAndGrants;

impl Job<AppState> for ExpireHoldsAndGrants {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move { sweep_expired(state).await.map_err(JobError::from) })
    }
}

/// Settles every overdue hold and grant, a bounded number of accounts at a time.
pub async fn sweep_expired(state: &AppState) -> Result<(), bursar_store::StoreError> {
    for _ in 0..EXPIRY_STEPS_MAX {
        let settled = state
            .store
            .ledger
            .expire_due(EXPIRY_ACCOUNTS_PER_STEP)
            .await?;
        if settled < EXPIRY_ACCOUNTS_PER_STEP as usize {
            break;
        }
    }
    Ok(())
}
