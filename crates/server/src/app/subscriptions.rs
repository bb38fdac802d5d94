//! Subscriptions' days: each local day (`BURSAR_TIMEZONE`) an active subscription grants its
//! `daily_credits` as an `allowance` grant that expires at the next local midnight, so unused
//! allowance never accumulates and is spent before purchased credits (it expires soonest). The
//! ledger records the day with its grant, so a day is granted once whatever runs it twice.

use bursar_core::Credits;
use bursar_core::messages;
use bursar_store::ledger::{Command, Executed, Outcome};
use bursar_store::subscriptions::Subscription;
use bursar_worker::LocalCalendar;

use crate::AppState;
use crate::app::off_session::{self, Charged};
use crate::error::ApiResult;

/// Grants `subscription` today's allowance unless it already has it, it has ended, or it has
/// not begun. Answers whether credits were granted.
pub async fn grant_today(state: &AppState, subscription: &Subscription) -> ApiResult<bool> {
    let now = state.store.clock.now_ms();
    let running = subscription.status == bursar_core::SubscriptionStatus::Active
        && subscription.starts_at_ms <= now
        && now < subscription.ends_at_ms;
    if !running {
        return Ok(false);
    }
    let calendar = LocalCalendar::at(state.config.timezone, now);
    let command = Command::GrantAllowance {
        subscription_id: subscription.id.clone(),
        user_id: subscription.user_id.clone(),
        day: calendar.day.to_string(),
        amount: Credits::new(subscription.daily_credits)
            .map_err(|e| crate::error::ApiError::invalid(e.to_string()))?,
        expires_at_ms: calendar.next_day_ms,
    };
    let executed = state.store.ledger.execute(command).await?;
    Ok(matches!(
        executed,
        Executed::Applied {
            outcome: Outcome::Granted(_),
            ..
        }
    ))
}

/// Subscriptions that renew themselves are charged this long before they end.
const RENEW_BEFORE_MS: i64 = 24 * 3_600_000;

/// Renews one subscription through the member's saved method: its order charged off-session
/// (the fulfilment extends the subscription), or a decline counted (minutes, then hours, then
/// renewal off). `None`: nothing was charged.
pub async fn renew(state: &AppState, subscription_id: &str) -> ApiResult<Option<Charged>> {
    let Some(renewal) = state
        .store
        .prepare_renewal(
            subscription_id,
            RENEW_BEFORE_MS,
            off_session::ORDER_TTL_MS,
            messages::renewal_without_method,
        )
        .await?
    else {
        return Ok(None);
    };
    let charged = off_session::charge(state, &renewal.order, renewal.token, None).await?;
    if let Charged::Declined(reason) = &charged {
        state
            .store
            .record_renewal_decline(subscription_id, &renewal.order, reason, |lang, off| {
                messages::renewal_declined(lang, reason, off)
            })
            .await?;
    }
    Ok(Some(charged))
}

/// What a day's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DayRun {
    pub granted: usize,
    pub ended: usize,
    pub reminded: usize,
    pub renewed: usize,
    pub declined: usize,
    /// Subscriptions whose grant or renewal failed this run (logged; tried again next run).
    pub failed: usize,
}

/// The day's work: subscriptions past their end are expired (and their members told), the
/// running ones get today's allowance, those that renew themselves and end within a day are
/// charged, and members whose subscription ends within 3 days or 1 day are reminded once each.
pub async fn run_day(state: &AppState) -> ApiResult<DayRun> {
    let store = &state.store;
    let mut run = DayRun {
        ended: store
            .expire_subscriptions(messages::subscription_ended)
            .await?,
        ..DayRun::default()
    };
    let today = LocalCalendar::at(state.config.timezone, store.clock.now_ms())
        .day
        .to_string();
    let mut after = String::new();
    loop {
        let page = store.subscriptions_due_a_day(&today, &after, 200).await?;
        for subscription in &page {
            // One subscription's failure (a grant past the balance bound) never holds up the rest.
            match grant_today(state, subscription).await {
                Ok(true) => run.granted += 1,
                Ok(false) => {}
                Err(error) => {
                    run.failed += 1;
                    tracing::warn!(subscription = %subscription.id, error = %error.problem().detail, "allowance not granted");
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = last.id.clone(),
            _ => break,
        }
    }
    for subscription in store.renewals_due(RENEW_BEFORE_MS).await? {
        match renew(state, &subscription.id).await {
            Ok(Some(Charged::Paid)) => run.renewed += 1,
            Ok(Some(Charged::Declined(_))) => run.declined += 1,
            Ok(None) => {}
            // A provider outage: the same order is charged again with the same key next run.
            Err(error) => {
                run.failed += 1;
                tracing::warn!(subscription = %subscription.id, error = %error.problem().detail, "renewal not charged");
            }
        }
    }
    for days in [3, 1] {
        run.reminded += store
            .remind_subscriptions(days, |lang, subscription| {
                let ends = bursar_store::clock::rfc3339(subscription.ends_at_ms);
                messages::subscription_ending(lang, &subscription.package_id, &ends, days)
            })
            .await?;
    }
    Ok(run)
}
