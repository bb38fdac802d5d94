//! `housekeeping`: forgets idempotency keys past the time the API promises to keep them, old
//! sign-in codes, web sessions that ended, web sign-in tickets nobody came back for, and jobs
//! that finished long ago. Scheduled at local midnight (`BURSAR_TIMEZONE`).

use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub const KIND: &str = "housekeeping";

/// How long idempotency keys are kept (the API promises at least 24 hours).
const IDEMPOTENCY_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long finished jobs stay visible.
const DONE_JOBS_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// Finished jobs deleted per statement, so no statement holds a long lock.
const DONE_JOBS_PER_STEP: i64 = 5_000;
const STEPS_MAX: usize = 100;

pub struct Housekeeping;

impl Job<AppState> for Housekeeping {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let store = &state.store;
            store
                .purge_idempotency_keys(IDEMPOTENCY_KEEP_MS)
                .await
                .map_err(JobError::from)?;
            store.delete_old_sign_in_codes().await?;
            store.delete_ended_web_sessions().await?;
            store.delete_expired_sign_in_tickets().await?;
            let before = store.clock.now_ms() - DONE_JOBS_KEEP_MS;
            for _ in 0..STEPS_MAX {
                if store.jobs.purge_done(before, DONE_JOBS_PER_STEP).await?
                    < DONE_JOBS_PER_STEP as u64
                {
                    break;
                }
            }
            Ok(())
        })
    }
}
