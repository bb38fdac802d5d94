//! Auto top-up: the rule a member sets, its preview, and the run that a job makes of it when
//! the balance falls below the threshold. The run decides and records in one transaction
//! (`Store::prepare_topup`), charges the saved method with the order's id as the idempotency
//! key, and hands a successful charge to the same exactly-once fulfilment as any webhook.

use bursar_core::topup::{self, TopupQuote};
use bursar_core::{MAX_CREDITS, Money};
use bursar_store::auto_topup::{Rule, RuleChange, TopupSettings, TopupStep};
use bursar_store::jobs::ClaimedJob;
use bursar_worker::LocalCalendar;

use crate::AppState;
use crate::app::off_session::{self, Charged};
use crate::error::{ApiError, ApiResult};

/// A rule as the member asks for it.
#[derive(Debug, Clone)]
pub struct RuleRequest {
    pub enabled: bool,
    pub threshold: i64,
    pub target: i64,
    pub payment_method_id: String,
    pub max_topups_per_day: Option<i64>,
    pub monthly_limit: Option<Money>,
}

/// Checks a rule against the API's rules and the operator's bounds, then saves it. Enabling
/// records the member's consent (now, from `client_addr`).
pub async fn save_rule(
    state: &AppState,
    user_id: &str,
    request: &RuleRequest,
    client_addr: &str,
) -> ApiResult<Rule> {
    let bounds = &state.config.topup;
    if !(-MAX_CREDITS..=MAX_CREDITS).contains(&request.threshold) {
        return Err(ApiError::invalid(format!(
            "threshold must be between -{MAX_CREDITS} and {MAX_CREDITS}"
        )));
    }
    if !(1..=MAX_CREDITS).contains(&request.target) || request.target <= request.threshold {
        return Err(ApiError::invalid(
            "target must be a positive number of credits greater than threshold",
        ));
    }
    if request.target - request.threshold > bounds.max_credits {
        return Err(ApiError::invalid(format!(
            "target − threshold may be at most {} credits (the largest top-up allowed)",
            bounds.max_credits
        )));
    }
    if let Some(per_day) = request.max_topups_per_day
        && !(1..=bounds.max_per_day).contains(&per_day)
    {
        return Err(ApiError::invalid(format!(
            "max_topups_per_day must be between 1 and {}",
            bounds.max_per_day
        )));
    }
    if let Some(limit) = &request.monthly_limit {
        if limit.currency != bounds.currency {
            return Err(ApiError::invalid(format!(
                "monthly_limit must be in {}, the currency top-ups are charged in",
                bounds.currency
            )));
        }
        if limit.amount < 1 {
            return Err(ApiError::invalid("monthly_limit.amount must be at least 1"));
        }
    }
    let change = RuleChange {
        enabled: request.enabled,
        threshold: request.threshold,
        target: request.target,
        payment_method_id: &request.payment_method_id,
        max_topups_per_day: request.max_topups_per_day,
        monthly_limit: request.monthly_limit.clone(),
        consent_ip: request.enabled.then_some(client_addr),
    };
    state
        .store
        .save_auto_topup_rule(user_id, &change)
        .await?
        .ok_or_else(|| ApiError::not_found("payment method"))
}

/// What a rule of `threshold` and `target` charges when it fires: the top-up that brings a
/// balance just below the threshold back to the target, with its fee. `None` for a rule that
/// cannot fire or a price too large to charge. The page shows it as the member types.
pub fn quote_for_rule(state: &AppState, threshold: i64, target: i64) -> Option<TopupQuote> {
    let bounds = &state.config.topup;
    let credits = topup::topup_credits(threshold.checked_sub(1)?, threshold, target, 0)?;
    topup::quote(
        credits,
        bounds.credit_price,
        bounds.fee_rate,
        bounds.fee_fixed,
    )
    .filter(|q| q.total <= MAX_CREDITS)
}

/// What a top-up would be now: the current balance, the credits it would buy (0 when the
/// balance is not below the threshold), and their price, fee and total.
#[derive(Debug, Clone)]
pub struct Preview {
    pub balance: i64,
    pub quote: TopupQuote,
    pub currency: String,
}

pub async fn preview(state: &AppState, user_id: &str) -> ApiResult<Preview> {
    let rule = state
        .store
        .auto_topup_rule(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("auto top-up rule"))?;
    let balance = state.store.balance(user_id).await?.map_or(0, |b| b.balance);
    let bounds = &state.config.topup;
    let quote = match topup::topup_credits(balance, rule.threshold, rule.target, 0) {
        None => TopupQuote {
            credits: 0,
            price: 0,
            fee: 0,
            total: 0,
        },
        Some(credits) => topup::quote(
            credits,
            bounds.credit_price,
            bounds.fee_rate,
            bounds.fee_fixed,
        )
        .filter(|q| q.total <= MAX_CREDITS)
        .ok_or_else(|| ApiError::conflict("this top-up's price is too large to charge"))?,
    };
    Ok(Preview {
        balance,
        quote,
        currency: bounds.currency.clone(),
    })
}

/// What a run did, for the job's log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Nothing,
    Stopped(&'static str),
    ToppedUp { order_id: String },
    Declined { order_id: String, reason: String },
}

/// Runs the user's rule once: decides, charges, applies the outcome. `Err` only for what is
/// worth retrying (a provider that could not be reached, a database error); the pending order
/// is then charged again with the same idempotency key. With `job` (the job running it), the
/// run records the job's completion in the transaction that ends its work (the decision, the
/// fulfilment or the decline), one write less each on SQLite's one write lock.
pub async fn run(
    state: &AppState,
    user_id: &str,
    job: Option<&ClaimedJob>,
) -> ApiResult<RunOutcome> {
    let now = state.store.clock.now_ms();
    let bounds = &state.config.topup;
    let calendar = LocalCalendar::at(state.config.timezone, now);
    let settings = TopupSettings {
        credit_price: bounds.credit_price,
        currency: bounds.currency.clone(),
        fee_rate: bounds.fee_rate,
        fee_fixed: bounds.fee_fixed,
        max_credits: bounds.max_credits,
        max_per_day: bounds.max_per_day,
        order_ttl_ms: off_session::ORDER_TTL_MS,
        day_start_ms: calendar.day_start_ms,
        next_day_ms: calendar.next_day_ms,
        month_start_ms: calendar.month_start_ms,
        next_month_ms: calendar.next_month_ms,
    };
    let (order, token) = match state.store.prepare_topup(user_id, &settings, job).await? {
        TopupStep::Nothing => return Ok(RunOutcome::Nothing),
        TopupStep::Stopped { reason, .. } => return Ok(RunOutcome::Stopped(reason.as_str())),
        TopupStep::Charge { order, token } => (order, token),
    };
    match off_session::charge(state, &order, token, job).await? {
        Charged::Paid => Ok(RunOutcome::ToppedUp { order_id: order.id }),
        Charged::Declined(reason) => {
            state
                .store
                .record_topup_decline(&order, &reason, job)
                .await?;
            Ok(RunOutcome::Declined {
                order_id: order.id,
                reason,
            })
        }
    }
}
