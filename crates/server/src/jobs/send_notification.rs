//! `send_notification`: delivers one recorded notification. No mail or SMS gateway is
//! configured on this server yet, so every message goes to the log channel: written to the
//! log (as a structured line an operator can ship anywhere) and marked sent. The message stays
//! in `notifications` for the user and the admins either way.

use bursar_core::NotificationStatus;
use bursar_store::jobs::ClaimedJob;
use bursar_store::notifications::{SEND_JOB, SendPayload};
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub struct SendNotification;

impl Job<AppState> for SendNotification {
    fn kind(&self) -> &'static str {
        SEND_JOB
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: SendPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let Some(message) = state.store.notification(&payload.notification_id).await? else {
                return Err(JobError::fatal("the notification is gone"));
            };
            if message.status != NotificationStatus::Queued {
                return Ok(());
            }
            tracing::info!(
                notification = %message.id,
                user = %message.user_id,
                kind = %message.kind,
                subject = %message.subject,
                text = %message.body_text,
                "notification"
            );
            state
                .store
                .mark_notification(&message.id, NotificationStatus::Sent, None)
                .await?;
            Ok(())
        })
    }
}
