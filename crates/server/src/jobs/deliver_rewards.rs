//! `reward_delivery`: puts a reward in one chunk of inboxes, in one short transaction (see
//! `Store::deliver_reward_chunk`). A reward to all members runs one after another, each chunk
//! enqueueing the next; a retried chunk delivers nothing twice.

use bursar_store::jobs::ClaimedJob;
use bursar_store::rewards::{DELIVERY_JOB, DeliveryPayload};
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;
use crate::app::rewards;

pub struct DeliverRewards;

impl Job<AppState> for DeliverRewards {
    fn kind(&self) -> &'static str {
        DELIVERY_JOB
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: DeliveryPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let delivered = rewards::deliver(state, &payload)
                .await
                .map_err(|e| JobError::retry(e.problem().detail))?;
            tracing::debug!(reward = %payload.reward_id, delivered, "reward delivered");
            Ok(())
        })
    }
}
