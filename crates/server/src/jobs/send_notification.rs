//! `send_notification`: delivers one recorded notification by email, SMS or the log (see
//! `delivery`) and records through which channel it went. A mail server or gateway that fails
//! is retried with back-off; after the last attempt the notification is `failed` with the
//! reason. It stays in `notifications` for the user and the admins either way.

use bursar_core::NotificationStatus;
use bursar_core::messages::Message;
use bursar_store::jobs::ClaimedJob;
use bursar_store::notifications::{Delivery, SEND_JOB, SendPayload};
use bursar_worker::{Job, JobError, JobFuture, Policy};

use crate::AppState;
use crate::delivery::Recipient;

pub struct SendNotification;

impl Job<AppState> for SendNotification {
    fn kind(&self) -> &'static str {
        SEND_JOB
    }

    fn policy(&self) -> Policy {
        Policy {
            timeout: std::time::Duration::from_secs(30),
            ..Policy::default()
        }
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: SendPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let store = &state.store;
            let Some(notification) = store.notification(&payload.notification_id).await? else {
                return Err(JobError::fatal("the notification is gone"));
            };
            if notification.status != NotificationStatus::Queued {
                return Ok(());
            }
            let Some(user) = store.user(&notification.user_id).await? else {
                return Err(JobError::fatal("the notification's user is gone"));
            };
            let message = Message {
                kind: bursar_core::NotificationKind::parse(&notification.kind)
                    .ok_or_else(|| JobError::fatal("unknown notification kind"))?,
                language: notification.language,
                subject: notification.subject.clone(),
                text: notification.body_text.clone(),
            };
            let to = Recipient {
                email: &user.email,
                phone: user.phone.as_deref(),
            };
            match state.senders.send(&message, &to).await {
                Ok(sent) => {
                    let delivery = Delivery {
                        status: NotificationStatus::Sent,
                        channel: sent.channel,
                        destination: sent.destination.as_deref(),
                        error: None,
                    };
                    // Marked sent and the job done in one transaction.
                    store
                        .mark_notification(&notification.id, &delivery, Some(job))
                        .await?;
                    Ok(())
                }
                Err(error) => {
                    let status = if job.is_last_attempt() {
                        NotificationStatus::Failed
                    } else {
                        NotificationStatus::Queued
                    };
                    let delivery = Delivery {
                        status,
                        channel: notification.channel,
                        destination: notification.destination.as_deref(),
                        error: Some(&error),
                    };
                    store
                        .mark_notification(&notification.id, &delivery, None)
                        .await?;
                    Err(JobError::retry(error))
                }
            }
        })
    }
}
