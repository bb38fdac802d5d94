//! The subscriptions' jobs: `subscription_allowance` grants one subscription today's allowance
//! right after it is paid for (enqueued in the payment's transaction); `subscription_day` runs
//! at each local midnight (`BURSAR_TIMEZONE`) and every `BURSAR_EXPIRY_SWEEP_SECONDS`, granting
//! every running subscription its day (once: the ledger records the day with its grant),
//! expiring ended ones and sending reminders. Running it more often than daily only catches up
//! sooner after a restart or a clock change; it never grants a day twice.

use bursar_store::jobs::ClaimedJob;
use bursar_store::subscriptions::{ALLOWANCE_JOB, AllowancePayload};
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;
use crate::app::subscriptions;

pub const DAY_KIND: &str = "subscription_day";

pub struct SubscriptionAllowance;

impl Job<AppState> for SubscriptionAllowance {
    fn kind(&self) -> &'static str {
        ALLOWANCE_JOB
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: AllowancePayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let Some(subscription) = state.store.subscription(&payload.subscription_id).await?
            else {
                return Err(JobError::fatal("the subscription is gone"));
            };
            subscriptions::grant_today(state, &subscription)
                .await
                .map_err(|e| JobError::retry(e.problem().detail))?;
            Ok(())
        })
    }
}

pub struct SubscriptionDay;

impl Job<AppState> for SubscriptionDay {
    fn kind(&self) -> &'static str {
        DAY_KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let run = subscriptions::run_day(state)
                .await
                .map_err(|e| JobError::retry(e.problem().detail))?;
            if run != subscriptions::DayRun::default() {
                tracing::info!(?run, "subscriptions' day");
            }
            Ok(())
        })
    }
}
