//! `fan_out_event`: turns one recorded event into a delivery per enabled endpoint subscribed to
//! its type, each with its own `deliver_webhook` job. Events now get their deliveries in the
//! transaction that records them (`webhooks::emit_on`), which saves this job's three write
//! transactions per event; it stays for fan-outs an earlier version enqueued.

use bursar_store::jobs::ClaimedJob;
use bursar_store::webhooks::{FAN_OUT_JOB, FanOutPayload};
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub struct FanOutEvent;

impl Job<AppState> for FanOutEvent {
    fn kind(&self) -> &'static str {
        FAN_OUT_JOB
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: FanOutPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            state.store.fan_out(&payload.event_id).await?;
            Ok(())
        })
    }
}
