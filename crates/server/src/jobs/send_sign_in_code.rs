//! `send_sign_in_code`: sends a one-time code by the channel it was asked for, then forgets the
//! code (only its hash stays). A code that expired before it could be sent is dropped.

use bursar_core::messages::sign_in_code;
use bursar_store::jobs::ClaimedJob;
use bursar_store::sign_in_codes::{SEND_JOB, SendPayload};
use bursar_worker::{Job, JobError, JobFuture, Policy};

use crate::AppState;
use crate::app::sign_in_codes::CODE_TTL_MINUTES;

pub struct SendSignInCode;

impl Job<AppState> for SendSignInCode {
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
            let Some(unsent) = store.unsent_sign_in_code(&payload.code_id).await? else {
                return Ok(());
            };
            if unsent.expires_at_ms <= store.clock.now_ms() {
                store.forget_sent_code(&payload.code_id).await?;
                return Ok(());
            }
            let language = store
                .language_of_destination(unsent.channel, &unsent.destination)
                .await?;
            let message = sign_in_code(language, &unsent.code, CODE_TTL_MINUTES);
            match state
                .senders
                .send_to(unsent.channel, &message, &unsent.destination)
                .await
            {
                Ok(_) => {
                    store.forget_sent_code(&payload.code_id).await?;
                    Ok(())
                }
                Err(error) if job.is_last_attempt() => {
                    store.forget_sent_code(&payload.code_id).await?;
                    Err(JobError::retry(error))
                }
                Err(error) => Err(JobError::retry(error)),
            }
        })
    }
}
