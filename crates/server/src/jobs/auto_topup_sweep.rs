//! `auto_topup_sweep`: every `BURSAR_TOPUP_SWEEP_SECONDS` (5 minutes), enqueues the top-up
//! job of every rule whose balance is below its threshold and that is not waiting out a
//! decline or a limit: the safety net under the check after each debit (a crash between a
//! debit and its job cannot happen, but a rule enabled or resumed while below can).

use bursar_store::auto_topup::topup_job;
use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub const KIND: &str = "auto_topup_sweep";
const PAGE: i64 = 500;

pub struct AutoTopupSweep;

impl Job<AppState> for AutoTopupSweep {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            // The period this sweep is for names each user's job, so a sweep run again (or by
            // another instance) enqueues nothing new.
            let period: serde_json::Value =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let period = period["period"].as_str().unwrap_or(&job.id).to_string();
            let mut after = String::new();
            loop {
                let users = state.store.topup_candidates(&after, PAGE).await?;
                for user in &users {
                    let job = topup_job(user, &format!("sweep@{period}"));
                    state.store.jobs.enqueue(&job).await?;
                }
                match users.last() {
                    Some(last) if users.len() as i64 == PAGE => after = last.clone(),
                    _ => return Ok(()),
                }
            }
        })
    }
}
