//! The background work this server does, one file per kind of job, and the worker that runs
//! them (`bursar_worker`). Every post-commit effect (a provider refund) and every scheduled
//! task (expiry sweeps, housekeeping) is a job on the one queue, so it survives a crash and
//! runs once however many instances share the database.

mod auto_topup;
mod auto_topup_sweep;
mod deliver_rewards;
mod deliver_webhook;
mod expire_holds_and_grants;
mod expire_orders;
mod fan_out_event;
mod housekeeping;
mod provider_refund;
mod reconcile_payments;
mod send_notification;
mod send_sign_in_code;
mod subscriptions;
mod wechatpay_certificates;

use std::time::Duration;

use bursar_worker::{Ran, Registry, Runner, RunnerConfig, Schedule};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;
use crate::config::Config;

pub use expire_holds_and_grants::sweep_expired;
pub use expire_orders::expire_orders;
pub use provider_refund::{ProviderRefund, send_refund};

/// Every kind this server runs, and when the scheduled ones run.
pub fn registry(config: &Config) -> Registry<AppState> {
    let sweep = expiry_sweep(config);
    let registry = Registry::default()
        .with(ProviderRefund)
        .with(expire_holds_and_grants::ExpireHoldsAndGrants)
        .with(expire_orders::ExpireOrders)
        .with(housekeeping::Housekeeping)
        .with(auto_topup::AutoTopup)
        .with(auto_topup_sweep::AutoTopupSweep)
        .with(send_notification::SendNotification)
        .with(send_sign_in_code::SendSignInCode)
        .with(fan_out_event::FanOutEvent)
        .with(deliver_webhook::DeliverWebhook)
        .with(subscriptions::SubscriptionAllowance)
        .with(subscriptions::SubscriptionDay)
        .with(deliver_rewards::DeliverRewards)
        .with(reconcile_payments::ReconcilePayments)
        .with(wechatpay_certificates::WechatpayCertificates)
        .scheduled(Schedule::every(expire_holds_and_grants::KIND, sweep))
        .scheduled(topup_sweep_schedule(config))
        .scheduled(Schedule::every(expire_orders::KIND, sweep))
        .scheduled(Schedule::every(
            reconcile_payments::KIND,
            reconcile_payments::EVERY,
        ))
        .scheduled(Schedule::daily_at_midnight(
            housekeeping::KIND,
            config.timezone,
        ))
        .scheduled(subscription_day_schedule(config));
    // Platform certificates are only needed without a WeChat Pay public key.
    match &config.wechatpay {
        Some(wechatpay) if wechatpay.platform_public_key.is_none() => registry.scheduled(
            Schedule::every(wechatpay_certificates::KIND, wechatpay_certificates::PERIOD),
        ),
        _ => registry,
    }
}

fn expiry_sweep(config: &Config) -> Duration {
    Duration::from_secs(config.expiry_sweep_interval_s.max(1))
}

fn topup_sweep_schedule(config: &Config) -> Schedule {
    Schedule::every(
        auto_topup_sweep::KIND,
        Duration::from_secs(config.topup.sweep_s),
    )
}

fn subscription_day_schedule(config: &Config) -> Schedule {
    Schedule::every(subscriptions::DAY_KIND, expiry_sweep(config))
}

/// The auto top-up sweep's job for the period `now_ms` falls in, as the worker enqueues it
/// (tests enqueue it themselves after moving the clock).
pub fn topup_sweep_job(config: &Config, now_ms: i64) -> bursar_store::jobs::NewJob {
    topup_sweep_schedule(config).job_for(now_ms)
}

/// The subscriptions' day job for the period `now_ms` falls in, as the worker enqueues it
/// (tests enqueue it themselves after moving the clock).
pub fn subscription_day_job(config: &Config, now_ms: i64) -> bursar_store::jobs::NewJob {
    subscription_day_schedule(config).job_for(now_ms)
}

/// The WeChat Pay certificate refresh for the period `now_ms` falls in, as the worker enqueues
/// it (tests enqueue it themselves).
pub fn wechatpay_certificates_job(now_ms: i64) -> bursar_store::jobs::NewJob {
    Schedule::every(wechatpay_certificates::KIND, wechatpay_certificates::PERIOD).job_for(now_ms)
}

/// Starts this instance's worker (unless jobs are off here) on `tracker`.
pub fn spawn(state: &AppState, shutdown: CancellationToken, tracker: &TaskTracker) {
    if !state.config.jobs_enabled {
        tracing::info!("background jobs are off on this instance (BURSAR_JOBS=false)");
        return;
    }
    let config = RunnerConfig {
        worker_id: state.worker_id.clone(),
        jobs_in_flight_max: state.config.jobs_in_flight_max,
        ..RunnerConfig::default()
    };
    Runner::new(
        state.jobs.clone(),
        state.store.jobs.clone(),
        state.clone(),
        config,
    )
    .spawn(shutdown, tracker);
}

/// How long a request that shows a job's result waits for it when another worker took it
/// first.
pub const RUN_NOW_WAIT: Duration = Duration::from_secs(15);

/// Runs the job with unique key `key` now, in this request, when a caller wants its effect in
/// the answer (an admin's refund shows the provider's reply). It is already committed on the
/// queue, so if this instance runs no jobs, or the run fails, the queue runs it later.
pub async fn run_now(state: &AppState, key: &str, wait: Duration) -> Option<Ran> {
    if !state.config.jobs_enabled {
        return None;
    }
    match state
        .jobs
        .run_now(&state.store.jobs, state, &state.worker_id, key, wait)
        .await
    {
        Ok(ran) => ran,
        Err(error) => {
            tracing::warn!(key, %error, "running a job at once failed; the queue will run it");
            None
        }
    }
}

/// Runs every job that is due now, round by round, until none is: the queue drained on the
/// caller's clock (tests and tools; the worker does this on its own).
pub async fn run_due(state: &AppState) -> Result<Vec<Ran>, bursar_store::StoreError> {
    let mut ran = Vec::new();
    loop {
        let round = state
            .jobs
            .run_due(&state.store.jobs, state, &state.worker_id, 100)
            .await?;
        if round.is_empty() {
            return Ok(ran);
        }
        ran.extend(round);
    }
}
