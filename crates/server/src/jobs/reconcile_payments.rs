//! `reconcile_payments`: looks pending orders up at the providers that can be asked (see
//! `app::reconciliation`). Scheduled every [`EVERY`].

use std::time::Duration;

use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;
use crate::app::reconciliation::reconcile_payments;

pub const KIND: &str = "reconcile_payments";
/// Often enough that a lost notification costs the buyer a few minutes at most.
pub const EVERY: Duration = Duration::from_secs(60);

pub struct ReconcilePayments;

impl Job<AppState> for ReconcilePayments {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            reconcile_payments(state).await.map_err(JobError::from)?;
            Ok(())
        })
    }
}
