//! `deliver_webhook`: sends one event to one endpoint, signed the way the sandbox webhook is
//! (`Bursar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`). Any 2xx is
//! delivered; anything else (another status, a redirect, which is never followed, a receiver
//! that does not answer within `BURSAR_WEBHOOK_TIMEOUT_SECONDS`) is retried with back-off from
//! 30 s doubling to 6 hours for about three days, then the delivery is `failed`. Each delivery
//! is a job of its own, so a slow receiver holds up nothing else.

use bursar_core::DeliveryStatus;
use bursar_store::jobs::ClaimedJob;
use bursar_store::webhooks::{DELIVER_JOB, DeliverPayload};
use bursar_worker::{Job, JobError, JobFuture, Policy};

use crate::AppState;

pub struct DeliverWebhook;

impl Job<AppState> for DeliverWebhook {
    fn kind(&self) -> &'static str {
        DELIVER_JOB
    }

    fn policy(&self) -> Policy {
        Policy {
            timeout: std::time::Duration::from_secs(90),
            backoff_base: std::time::Duration::from_secs(30),
            backoff_max: std::time::Duration::from_secs(6 * 3600),
        }
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: DeliverPayload =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            deliver(state, job, &payload.delivery_id).await
        })
    }
}

async fn deliver(state: &AppState, job: &ClaimedJob, delivery_id: &str) -> Result<(), JobError> {
    let store = &state.store;
    let Some(delivery) = store.delivery(delivery_id).await? else {
        return Err(JobError::fatal("the delivery is gone"));
    };
    if delivery.status != DeliveryStatus::Pending {
        return Ok(());
    }
    let endpoint = store.endpoint(&delivery.endpoint_id).await?;
    let Some(endpoint) = endpoint.filter(|e| e.enabled && !e.deleted) else {
        store
            .record_attempt(
                delivery_id,
                DeliveryStatus::Failed,
                None,
                Some("the endpoint is disabled or deleted"),
                None,
                Some(job),
            )
            .await?;
        return Ok(());
    };
    let Some(event) = store.event(&delivery.event_id).await? else {
        return Err(JobError::fatal("the event is gone"));
    };
    let data: serde_json::Value = serde_json::from_str(&event.data).map_err(JobError::fatal)?;
    let body = serde_json::to_vec(&serde_json::json!({
        "id": event.id,
        "type": event.event_type,
        "created_at": bursar_store::clock::rfc3339(event.created_at_ms),
        "data": data,
    }))
    .map_err(JobError::fatal)?;
    let now_s = store.clock.now_ms().div_euclid(1000);
    let signature = bursar_payments::signature::header_v1(&endpoint.secret, now_s, &body);
    let sent = state
        .webhook_client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        // The sandbox webhook's header and scheme: one verifier serves receivers of both.
        .header(bursar_payments::sandbox::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let (code, error) = match sent {
        Ok(response) if response.status().is_success() => {
            let code = i64::from(response.status().as_u16());
            store
                .record_attempt(
                    delivery_id,
                    DeliveryStatus::Delivered,
                    Some(code),
                    None,
                    None,
                    Some(job),
                )
                .await?;
            return Ok(());
        }
        Ok(response) => (
            Some(i64::from(response.status().as_u16())),
            format!("the receiver answered {}", response.status()),
        ),
        Err(error) if error.is_timeout() => (None, "the receiver did not answer in time".into()),
        Err(error) => (None, format!("the receiver could not be reached: {error}")),
    };
    if job.is_last_attempt() {
        store
            .record_attempt(
                delivery_id,
                DeliveryStatus::Failed,
                code,
                Some(&error),
                None,
                None,
            )
            .await?;
        return Err(JobError::fatal(error));
    }
    // The queue sets the next run with up to a fifth of jitter either way; this is its middle.
    let policy = DeliverWebhook.policy();
    let wait_ms = bursar_worker::backoff_ms(
        job.attempt,
        policy.backoff_base.as_millis() as i64,
        policy.backoff_max.as_millis() as i64,
        1000,
    );
    let next = store.clock.now_ms() + wait_ms;
    store
        .record_attempt(
            delivery_id,
            DeliveryStatus::Pending,
            code,
            Some(&error),
            Some(next),
            None,
        )
        .await?;
    Err(JobError::retry(error))
}
