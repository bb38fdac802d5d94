//! Auto top-up rules and the transactions that act on them. A top-up is decided, sized and
//! recorded in a batch of the ledger writer with the rule locked (core's `plan_topup` makes the
//! decision), so two triggers for one user take turns and the second sees the first's order
//! as credits on the way. The charge itself happens outside any transaction (a network call);
//! its outcome is applied by the ledger's fulfilment (success) or by `record_topup_decline`.

use bursar_core::messages::{self, Message};
use bursar_core::topup::{
    FeeRate, TopupPlan, TopupSituation, TopupStop, after_decline, plan_topup,
};
use bursar_core::{
    AutoTopupStatus, EventType, Money, OrderKind, OrderStatus, money::format_amount,
};
use sqlx::{AnyConnection, Row};

use crate::clock::rfc3339;
use crate::db::Dialect;
use crate::ids::new_id;
use crate::jobs::{ClaimedJob, NewJob};
use crate::ledger::epoch;
use crate::ledger::{Command, Outcome};
use crate::notifications;
use crate::orders::{NewOrder, Order, close_pending_on, insert_order_on, order_on, take_charge_on};
use crate::payment_methods::live_token_on;
use crate::webhooks;
use crate::{Store, StoreError};

/// The job kind that checks one user's rule and tops up if it is due.
pub const JOB: &str = "auto_topup";
/// A provider outage is retried this many times (the same order, the same idempotency key).
pub const JOB_ATTEMPTS_MAX: i64 = 6;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TopupPayload {
    pub user_id: String,
}

/// The top-up job for `user_id`, once per `occasion` (a crossing's transaction id, a sweep's
/// period, a retry's order).
pub fn topup_job(user_id: &str, occasion: &str) -> NewJob {
    let payload = TopupPayload {
        user_id: user_id.to_string(),
    };
    NewJob::new(JOB, &payload, JOB_ATTEMPTS_MAX).unique(format!("{JOB}:{user_id}:{occasion}"))
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub user_id: String,
    pub status: AutoTopupStatus,
    pub threshold: i64,
    pub target: i64,
    pub payment_method_id: String,
    pub max_topups_per_day: Option<i64>,
    pub monthly_limit: Option<Money>,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_topup_at_ms: Option<i64>,
    /// No top-up is tried before this (after a decline, or while a limit pauses the rule).
    pub next_attempt_at_ms: Option<i64>,
    pub consent_at_ms: Option<i64>,
    pub consent_ip: Option<String>,
    pub updated_at_ms: i64,
}

/// A rule as the user sets it.
#[derive(Debug, Clone)]
pub struct RuleChange<'a> {
    pub enabled: bool,
    pub threshold: i64,
    pub target: i64,
    pub payment_method_id: &'a str,
    pub max_topups_per_day: Option<i64>,
    pub monthly_limit: Option<Money>,
    /// Where the user consented from (recorded when the rule is enabled).
    pub consent_ip: Option<&'a str>,
}

/// The operator's settings a top-up is priced and bounded by, and the calendar it counts in.
#[derive(Debug, Clone)]
pub struct TopupSettings {
    pub credit_price: i64,
    pub currency: String,
    pub fee_rate: FeeRate,
    pub fee_fixed: i64,
    pub max_credits: i64,
    pub max_per_day: i64,
    /// How long the order waits for its charge before it expires.
    pub order_ttl_ms: i64,
    /// When the local day and month of "now" began, and when the next ones begin.
    pub day_start_ms: i64,
    pub next_day_ms: i64,
    pub month_start_ms: i64,
    pub next_month_ms: i64,
}

/// What a top-up job is to do.
#[derive(Clone, PartialEq, Eq)]
pub enum TopupStep {
    /// No rule, a rule that is off or waiting, or a balance that needs nothing.
    Nothing,
    /// A limit stopped it: recorded as a failed order, the rule paused and the user told.
    Stopped { order_id: String, reason: TopupStop },
    /// Charge this order to the saved method (`token` at `provider`).
    Charge { order: Box<Order>, token: String },
}

/// The step without the method's token, so a logged step leaks nothing.
impl std::fmt::Debug for TopupStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopupStep::Nothing => f.write_str("Nothing"),
            TopupStep::Stopped { order_id, reason } => f
                .debug_struct("Stopped")
                .field("order_id", order_id)
                .field("reason", reason)
                .finish(),
            TopupStep::Charge { order, .. } => f
                .debug_struct("Charge")
                .field("order_id", &order.id)
                .finish_non_exhaustive(),
        }
    }
}

const RULE_COLUMNS: &str = "user_id, status, threshold, target, payment_method_id,
    max_topups_per_day, monthly_limit, monthly_limit_currency, consecutive_failures, last_error,
    last_topup_at, next_attempt_at, consent_at, consent_ip, updated_at";

fn rule_from_row(row: &sqlx::any::AnyRow) -> Result<Rule, StoreError> {
    let status: String = row.try_get("status")?;
    let limit: Option<i64> = row.try_get("monthly_limit")?;
    let currency: Option<String> = row.try_get("monthly_limit_currency")?;
    Ok(Rule {
        user_id: row.try_get("user_id")?,
        status: AutoTopupStatus::parse(&status).unwrap_or(AutoTopupStatus::Off),
        threshold: row.try_get("threshold")?,
        target: row.try_get("target")?,
        payment_method_id: row.try_get("payment_method_id")?,
        max_topups_per_day: row.try_get("max_topups_per_day")?,
        monthly_limit: limit
            .zip(currency)
            .map(|(amount, currency)| Money { amount, currency }),
        consecutive_failures: row.try_get("consecutive_failures")?,
        last_error: row.try_get("last_error")?,
        last_topup_at_ms: row.try_get("last_topup_at")?,
        next_attempt_at_ms: row.try_get("next_attempt_at")?,
        consent_at_ms: row.try_get("consent_at")?,
        consent_ip: row.try_get("consent_ip")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// The rule of `user_id`; with the dialect of a write transaction, locked until it ends on
/// PostgreSQL (SQLite's write transaction already excludes every other writer).
async fn rule_on(
    conn: &mut AnyConnection,
    dialect: Option<Dialect>,
    user_id: &str,
) -> Result<Option<Rule>, StoreError> {
    let lock = dialect.map_or("", Dialect::row_lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM auto_topup_rules WHERE user_id = $1{lock}"
    ));
    let row = sqlx::query(sql)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(rule_from_row).transpose()
}

/// Puts the threshold the ledger writer checks on the user's account (`None`: no active rule).
/// On PostgreSQL the caller has advanced the ledger's epoch in this transaction (first, in the
/// writer's lock order), so a writer's cached copy of the account is read again.
async fn set_threshold_on(
    conn: &mut AnyConnection,
    asset: &str,
    user_id: &str,
    threshold: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE accounts SET topup_threshold = $1
         WHERE owner_kind = 'user' AND owner_id = $2 AND asset = $3",
    )
    .bind(threshold)
    .bind(user_id)
    .bind(asset)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What a top-up decision reads besides the rule, as of the caller's write transaction.
struct TopupFacts {
    suspended: bool,
    /// The rule's method, while it is saved: its token and provider.
    method: Option<(String, String)>,
    /// A pending top-up order whose charge has no answer yet.
    unanswered_order: Option<String>,
    /// Credits of pending top-up orders.
    on_the_way: i64,
    topups_today: i64,
    /// Totals charged since the month began (in the monthly limit's currency, when it has one).
    charged_this_month: i64,
}

/// Reads `TopupFacts` in one statement (they were seven round trips to the connection's thread
/// on SQLite). Taken after the rule's row lock on PostgreSQL, so this statement's snapshot sees
/// every top-up committed before the lock was granted.
async fn facts_on(
    conn: &mut AnyConnection,
    rule: &Rule,
    settings: &TopupSettings,
) -> Result<TopupFacts, StoreError> {
    const CHARGED: &str = "FROM orders WHERE user_id = $1 AND kind = 'auto_topup'
        AND status IN ('pending', 'paid', 'refunded')";
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT
           (SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE id = $1 AND status = 'suspended')
             AS suspended,
           m.token, m.provider,
           (SELECT id FROM orders
            WHERE user_id = $1 AND kind = 'auto_topup' AND status = 'pending'
              AND payment_status = 'pending'
            ORDER BY id LIMIT 1) AS unanswered,
           (SELECT CAST(COALESCE(SUM(credits), 0) AS BIGINT) FROM orders
            WHERE user_id = $1 AND kind = 'auto_topup' AND status = 'pending') AS on_the_way,
           (SELECT CAST(COUNT(*) AS BIGINT) {CHARGED} AND created_at >= $3) AS topups_today,
           (SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) {CHARGED} AND created_at >= $4
              AND ($5 IS NULL OR currency = $5)) AS charged_this_month
         FROM (SELECT 1 AS one) AS here
         LEFT JOIN payment_methods m
           ON m.id = $2 AND m.user_id = $1 AND m.deleted_at IS NULL"
    ));
    let limit_currency = rule.monthly_limit.as_ref().map(|m| m.currency.as_str());
    let row = sqlx::query(sql)
        .bind(&rule.user_id)
        .bind(&rule.payment_method_id)
        .bind(settings.day_start_ms)
        .bind(settings.month_start_ms)
        .bind(limit_currency)
        .fetch_one(conn)
        .await?;
    let token: Option<String> = row.try_get("token")?;
    let provider: Option<String> = row.try_get("provider")?;
    Ok(TopupFacts {
        suspended: row.try_get::<i64, _>("suspended")? > 0,
        method: token.zip(provider),
        unanswered_order: row.try_get("unanswered")?,
        on_the_way: row.try_get("on_the_way")?,
        topups_today: row.try_get("topups_today")?,
        charged_this_month: row.try_get("charged_this_month")?,
    })
}

/// `Store::prepare_topup`'s decision and its records, in the ledger writer's batch (see
/// `Command::PrepareTopup`), which commits whatever this answers; answering `Nothing`, it has
/// written nothing. `balance` is the user's balance as the batch knows it, its own debits and
/// fulfilments included.
pub(crate) async fn decide_on(
    tx: &mut AnyConnection,
    dialect: Dialect,
    user_id: &str,
    balance: i64,
    settings: &TopupSettings,
    now: i64,
) -> Result<TopupStep, StoreError> {
    let Some(rule) = rule_on(&mut *tx, Some(dialect), user_id).await? else {
        return Ok(TopupStep::Nothing);
    };
    let waiting = rule.next_attempt_at_ms.is_some_and(|at| at > now);
    if rule.status == AutoTopupStatus::Off || waiting {
        return Ok(TopupStep::Nothing);
    }
    let facts = facts_on(&mut *tx, &rule, settings).await?;
    if facts.suspended {
        return Ok(TopupStep::Nothing);
    }
    let Some((token, provider)) = facts.method else {
        return Ok(TopupStep::Nothing);
    };
    if let Some(order_id) = facts.unanswered_order {
        // Charged again with the method it was first charged with, under the same key;
        // unless another run is charging it right now.
        if !take_charge_on(&mut *tx, &order_id, now).await? {
            return Ok(TopupStep::Nothing);
        }
        let Some(order) = order_on(&mut *tx, "id = $1", &[&order_id]).await? else {
            return Ok(TopupStep::Nothing);
        };
        let first_token = live_token_on(&mut *tx, order.payment_method_id.as_deref()).await?;
        return Ok(match first_token {
            Some(token) => TopupStep::Charge {
                order: Box::new(order),
                token,
            },
            None => TopupStep::Nothing,
        });
    }
    let situation = TopupSituation {
        balance,
        threshold: rule.threshold,
        target: rule.target,
        on_the_way: facts.on_the_way,
        topups_today: facts.topups_today,
        charged_this_month: facts.charged_this_month,
        max_topups_per_day: rule
            .max_topups_per_day
            .map_or(settings.max_per_day, |own| own.min(settings.max_per_day)),
        // A limit in another currency than top-ups are charged in cannot be compared: it
        // stops every top-up rather than being ignored.
        monthly_limit: rule.monthly_limit.as_ref().map(|m| {
            if m.currency == settings.currency {
                m.amount
            } else {
                -1
            }
        }),
        max_credits: settings.max_credits,
    };
    let plan = plan_topup(
        &situation,
        settings.credit_price,
        settings.fee_rate,
        settings.fee_fixed,
    );
    let quote = match plan {
        TopupPlan::Nothing => return Ok(TopupStep::Nothing),
        TopupPlan::Stopped(_, quote) | TopupPlan::Charge(quote) => quote,
    };
    let order = NewOrder {
        id: new_id("ord"),
        user_id: user_id.to_string(),
        kind: OrderKind::AutoTopup,
        package_id: None,
        package_name: "Auto top-up".into(),
        quantity: 1,
        currency: settings.currency.clone(),
        unit_price: quote.price.min(bursar_core::MAX_CREDITS),
        discount: 0,
        fee: quote.fee.min(bursar_core::MAX_CREDITS),
        total: quote.total.min(bursar_core::MAX_CREDITS),
        credits: quote.credits.min(bursar_core::MAX_CREDITS),
        bonus_credits: 0,
        first_purchase_bonus_percent: None,
        coupon: None,
        provider,
        payment_method_id: Some(rule.payment_method_id.clone()),
        payment_id: new_id("pay"),
        expires_at_ms: now + settings.order_ttl_ms,
    };
    let order = insert_order_on(&mut *tx, &order, now).await?;
    let step = match plan {
        TopupPlan::Stopped(reason, quote) => {
            close_pending_on(
                &mut *tx,
                &order.id,
                OrderStatus::Failed,
                Some(reason.as_str()),
                now,
            )
            .await?;
            let resumes_at = match reason {
                TopupStop::MonthlyLimit => settings.next_month_ms,
                TopupStop::DailyLimit | TopupStop::MaxCredits => settings.next_day_ms,
            };
            sqlx::query(
                "UPDATE auto_topup_rules SET status = 'paused', last_error = $1,
                     next_attempt_at = $2, updated_at = $3
                 WHERE user_id = $4",
            )
            .bind(reason.as_str())
            .bind(resumes_at)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            let message = messages::topup_stopped(
                notifications::language_on(&mut *tx, user_id).await?,
                quote.credits,
                &charged_text(order.total, &order.currency),
                reason.as_str(),
                &rfc3339(resumes_at),
            );
            notifications::notify_on(&mut *tx, user_id, &message, now).await?;
            let closed = order_on(&mut *tx, "id = $1", &[&order.id])
                .await?
                .ok_or_else(|| StoreError::Config("the new order vanished".into()))?;
            let mut data = webhooks::order_data(&closed, "failed");
            data["reason"] = reason.as_str().into();
            webhooks::emit_and_enqueue_on(&mut *tx, EventType::AutoTopupFailed, &data, now).await?;
            TopupStep::Stopped {
                order_id: order.id.clone(),
                reason,
            }
        }
        _ => TopupStep::Charge {
            order: Box::new(order),
            token,
        },
    };
    Ok(step)
}

impl Store {
    pub async fn auto_topup_rule(&self, user_id: &str) -> Result<Option<Rule>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        rule_on(&mut conn, None, user_id).await
    }

    /// Creates or replaces the user's rule. `Ok(None)`: the payment method is not one of the
    /// user's live methods. Enabling resets the failure count and records consent; a balance
    /// already below the new threshold is topped up at once (a job).
    pub async fn save_auto_topup_rule(
        &self,
        user_id: &str,
        change: &RuleChange<'_>,
    ) -> Result<Option<Rule>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        // The ledger writer takes the epoch before any rule row; so does this.
        epoch::advance(&mut tx, &self.asset).await?;
        let method: Option<String> = sqlx::query_scalar(
            "SELECT id FROM payment_methods WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
        )
        .bind(change.payment_method_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if method.is_none() {
            return Ok(None);
        }
        let status = if change.enabled {
            AutoTopupStatus::Active
        } else {
            AutoTopupStatus::Off
        };
        let limit = change.monthly_limit.as_ref();
        sqlx::query(
            "INSERT INTO auto_topup_rules (user_id, status, threshold, target, payment_method_id,
                 max_topups_per_day, monthly_limit, monthly_limit_currency, consecutive_failures,
                 consent_at, consent_ip, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $11)
             ON CONFLICT (user_id) DO UPDATE SET status = $2, threshold = $3, target = $4,
                 payment_method_id = $5, max_topups_per_day = $6, monthly_limit = $7,
                 monthly_limit_currency = $8,
                 consecutive_failures = CASE WHEN $2 = 'active' THEN 0
                     ELSE auto_topup_rules.consecutive_failures END,
                 last_error = CASE WHEN $2 = 'active' THEN NULL
                     ELSE auto_topup_rules.last_error END,
                 next_attempt_at = NULL,
                 consent_at = COALESCE($9, auto_topup_rules.consent_at),
                 consent_ip = CASE WHEN $9 IS NULL THEN auto_topup_rules.consent_ip ELSE $10 END,
                 updated_at = $11",
        )
        .bind(user_id)
        .bind(status.as_str())
        .bind(change.threshold)
        .bind(change.target)
        .bind(change.payment_method_id)
        .bind(change.max_topups_per_day)
        .bind(limit.map(|m| m.amount))
        .bind(limit.map(|m| m.currency.as_str()))
        .bind(change.enabled.then_some(now))
        .bind(change.consent_ip)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let threshold = change.enabled.then_some(change.threshold);
        set_threshold_on(&mut tx, &self.asset, user_id, threshold).await?;
        if change.enabled {
            let job = topup_job(user_id, &format!("saved:{}", new_id("chg")));
            crate::jobs::enqueue_in(&mut tx, &job, now).await?;
        }
        let rule = rule_on(&mut tx, Some(self.db.dialect), user_id).await?;
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(rule)
    }

    /// Users whose rule is active (or paused past its pause) and whose balance is below the
    /// threshold: what the sweep tops up. Keyset-paged by user id.
    pub async fn topup_candidates(
        &self,
        after_user: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT r.user_id FROM auto_topup_rules r
             JOIN accounts a ON a.owner_kind = 'user' AND a.owner_id = r.user_id AND a.asset = $1
             WHERE r.status IN ('active', 'paused')
               AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= $2)
               AND a.balance < r.threshold AND r.user_id > $3
             ORDER BY r.user_id LIMIT $4",
        )
        .bind(&self.asset)
        .bind(self.clock.now_ms())
        .bind(after_user)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Decides the user's top-up and records the decision (see `TopupStep`), in a batch of the
    /// ledger writer (`Command::PrepareTopup`). A pending top-up order whose charge has no
    /// answer yet is handed back to be charged again (with the same idempotency key, so the
    /// provider charges it once) rather than a second one made. With `completes` (the job
    /// running the rule), a decision that ends the job's work (nothing to do, or stopped)
    /// records the job's completion with it; a charge's job is completed with its outcome (the
    /// fulfilment, or `record_topup_decline`).
    pub async fn prepare_topup(
        &self,
        user_id: &str,
        settings: &TopupSettings,
        completes: Option<&ClaimedJob>,
    ) -> Result<TopupStep, StoreError> {
        let command = Command::PrepareTopup {
            user_id: user_id.to_string(),
            settings: Box::new(settings.clone()),
            completes: completes.map(ClaimedJob::claim),
        };
        match self.ledger.execute(command).await?.outcome() {
            Some(Outcome::TopupPrepared {
                step,
                job_completed,
            }) => {
                if let (Some(job), Some(kept)) = (completes, job_completed) {
                    job.completed(kept);
                }
                Ok(step)
            }
            other => unreachable!("a top-up's decision answers with its step, not {other:?}"),
        }
    }

    /// A top-up's charge was declined: the order fails with the reason, the rule counts the
    /// decline and waits (minutes, then hours) or turns itself off, and the user is told. Once
    /// per order, however often it is reported. With `completes` (the job that charged), the
    /// job's completion is recorded in the same transaction.
    pub async fn record_topup_decline(
        &self,
        order: &Order,
        reason: &str,
        completes: Option<&ClaimedJob>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        // The ledger writer takes the epoch before any rule row; so does this.
        epoch::advance(&mut tx, &self.asset).await?;
        self.decline_on(&mut tx, order, reason, now).await?;
        crate::jobs::commit_completing(tx, completes, now).await?;
        self.jobs.wake().notify_one();
        Ok(())
    }

    /// `record_topup_decline`'s records, in the caller's write transaction.
    async fn decline_on(
        &self,
        tx: &mut AnyConnection,
        order: &Order,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let closed =
            close_pending_on(&mut *tx, &order.id, OrderStatus::Failed, Some(reason), now).await?;
        let Some(rule) = rule_on(&mut *tx, Some(self.db.dialect), &order.user_id).await? else {
            return Ok(());
        };
        if !closed || rule.status == AutoTopupStatus::Off {
            return Ok(());
        }
        let failures = rule.consecutive_failures + 1;
        let (status, wait_ms) = after_decline(failures);
        let next_attempt_at = wait_ms.map(|wait| now + wait);
        sqlx::query(
            "UPDATE auto_topup_rules SET status = $1, consecutive_failures = $2, last_error = $3,
                 next_attempt_at = $4, updated_at = $5
             WHERE user_id = $6",
        )
        .bind(status.as_str())
        .bind(failures)
        .bind(reason)
        .bind(next_attempt_at)
        .bind(now)
        .bind(&order.user_id)
        .execute(&mut *tx)
        .await?;
        let total = charged_text(order.total, &order.currency);
        let lang = notifications::language_on(&mut *tx, &order.user_id).await?;
        let mut told: Vec<Message> = vec![messages::topup_declined(
            lang,
            order.credits,
            &total,
            reason,
            next_attempt_at.map(rfc3339).as_deref(),
        )];
        match next_attempt_at {
            Some(at) => {
                let job = topup_job(&order.user_id, &format!("retry:{}", order.id)).at(at);
                crate::jobs::enqueue_in(&mut *tx, &job, now).await?;
            }
            None => {
                set_threshold_on(&mut *tx, &self.asset, &order.user_id, None).await?;
                told.push(messages::topup_disabled(lang, reason));
            }
        }
        for message in &told {
            notifications::notify_on(&mut *tx, &order.user_id, message, now).await?;
        }
        let mut data = webhooks::order_data(order, "failed");
        data["reason"] = reason.into();
        for event in [EventType::OrderFailed, EventType::AutoTopupFailed] {
            webhooks::emit_and_enqueue_on(&mut *tx, event, &data, now).await?;
        }
        Ok(())
    }
}

/// A top-up order was paid (in the ledger's fulfilment transaction): the rule's failures are
/// forgotten, a paused rule is active again, and the user is told. Returns the job sending the
/// message, for the batch to enqueue.
pub(crate) async fn record_success_on(
    conn: &mut AnyConnection,
    order: &Order,
    now_ms: i64,
) -> Result<NewJob, StoreError> {
    sqlx::query(
        "UPDATE auto_topup_rules SET consecutive_failures = 0, last_error = NULL,
             next_attempt_at = NULL, last_topup_at = $1, updated_at = $1,
             status = CASE WHEN status = 'paused' THEN 'active' ELSE status END
         WHERE user_id = $2",
    )
    .bind(now_ms)
    .bind(&order.user_id)
    .execute(&mut *conn)
    .await?;
    let total = charged_text(order.total, &order.currency);
    let lang = notifications::language_on(conn, &order.user_id).await?;
    let message = messages::topup_succeeded(lang, order.credits, &total, &order.id);
    notifications::record_on(conn, &order.user_id, &message, now_ms).await
}

/// An amount as a message shows it: `668.85 USD`.
fn charged_text(amount: i64, currency: &str) -> String {
    format!("{} {currency}", format_amount(amount, currency))
}
