//! `auto_topup`: runs one user's auto top-up rule. Enqueued by the ledger writer in the batch
//! whose debit took the balance below the threshold, by saving an enabled rule, by the sweep,
//! and after a decline at the rule's next attempt; its unique key names the occasion, so each
//! occasion runs once. Running twice is harmless: the decision is taken with the rule locked
//! and counts top-ups already on the way.

use bursar_store::auto_topup::{JOB, TopupPayload};
use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture, Policy};

use crate::AppState;
use crate::app::auto_topup::{self, RunOutcome};

pub struct AutoTopup;

impl Job<AppState> for AutoTopup {
    fn kind(&self) -> &'static str {
        JOB
    }

    /// A provider outage is retried after a minute, then longer: never in a tight loop.
    fn policy(&self) -> Policy {
        Policy {
            timeout: std::time::Duration::from_secs(60),
            backoff_base: std::time::Duration::from_secs(60),
            ..Policy::default()
        }
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: TopupPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let outcome = auto_topup::run(state, &payload.user_id, Some(job))
                .await
                .map_err(|error| JobError::retry(error.problem().detail))?;
            let label = match &outcome {
                RunOutcome::Nothing => "nothing",
                RunOutcome::Stopped(_) => "stopped",
                RunOutcome::ToppedUp { .. } => "topped_up",
                RunOutcome::Declined { .. } => "declined",
            };
            metrics::counter!("bursar_auto_topups_total", "outcome" => label).increment(1);
            if outcome != RunOutcome::Nothing {
                tracing::info!(user = %payload.user_id, ?outcome, "auto top-up");
            }
            Ok(())
        })
    }
}
