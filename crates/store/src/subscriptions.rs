//! Subscriptions: started or extended in the transaction that pays their order (the ledger's
//! fulfilment calls `start_or_extend_on`), granted a daily allowance by the ledger's
//! `GrantAllowance` command (once per subscription and local day), reminded before they end
//! and expired after.

use bursar_core::messages::Message;
use bursar_core::{EventType, SubscriptionStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ids::new_id;
use crate::jobs::NewJob;
use crate::orders::Order;
use crate::{Store, StoreError, notifications, webhooks};

/// The job that grants one subscription today's allowance (right after it is paid for).
pub const ALLOWANCE_JOB: &str = "subscription_allowance";
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AllowancePayload {
    pub subscription_id: String,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub user_id: String,
    pub package_id: String,
    pub status: SubscriptionStatus,
    pub daily_credits: i64,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub auto_renew: bool,
    pub renew_failures: i64,
    pub renew_last_error: Option<String>,
}

const COLUMNS: &str = "id, user_id, package_id, status, daily_credits, starts_at, ends_at,
    auto_renew, renew_failures, renew_last_error";

fn from_row(row: &AnyRow) -> Result<Subscription, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Subscription {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        package_id: row.try_get("package_id")?,
        status: SubscriptionStatus::parse(&status).unwrap_or(SubscriptionStatus::Expired),
        daily_credits: row.try_get("daily_credits")?,
        starts_at_ms: row.try_get("starts_at")?,
        ends_at_ms: row.try_get("ends_at")?,
        auto_renew: row.try_get::<i64, _>("auto_renew")? == 1,
        renew_failures: row.try_get("renew_failures")?,
        renew_last_error: row.try_get("renew_last_error")?,
    })
}

/// A paid order for a subscription package starts a subscription of `duration_days ×
/// quantity`, or extends the member's active one for that package from its end. Called in the
/// fulfilment's transaction; answers the subscription and the job that grants today's
/// allowance, or `None` for an order that is not a subscription's.
pub(crate) async fn start_or_extend_on(
    conn: &mut sqlx::AnyConnection,
    order: &Order,
    now_ms: i64,
) -> Result<Option<(String, NewJob)>, StoreError> {
    let Some(package_id) = &order.package_id else {
        return Ok(None);
    };
    let package =
        sqlx::query("SELECT kind, daily_credits, duration_days FROM packages WHERE id = $1")
            .bind(package_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(package) = package else {
        return Ok(None);
    };
    let kind: String = package.try_get("kind")?;
    let daily: Option<i64> = package.try_get("daily_credits")?;
    let days: Option<i64> = package.try_get("duration_days")?;
    let (true, Some(daily), Some(days)) = (kind == "subscription", daily, days) else {
        return Ok(None);
    };
    let length_ms = term_ms(days, order.quantity);
    let active: Option<(String, i64)> = sqlx::query_as(
        "SELECT id, ends_at FROM subscriptions
         WHERE user_id = $1 AND package_id = $2 AND status = 'active'",
    )
    .bind(&order.user_id)
    .bind(package_id)
    .fetch_optional(&mut *conn)
    .await?;
    // Extended only while still active: one expired meanwhile is replaced by a new one, so a
    // paid renewal never lands on an ended subscription.
    let mut extended = None;
    if let Some((id, ends_at)) = active {
        let changed = sqlx::query(
            "UPDATE subscriptions SET ends_at = $1, daily_credits = $2, updated_at = $3,
                 renew_failures = 0, renew_last_error = NULL, renew_next_attempt_at = NULL
             WHERE id = $4 AND status = 'active'",
        )
        .bind(ends_at.max(now_ms).saturating_add(length_ms))
        .bind(daily)
        .bind(now_ms)
        .bind(&id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed == 1 {
            extended = Some(id);
        }
    }
    let (id, event) = match extended {
        Some(id) => (id, Some(EventType::SubscriptionRenewed)),
        None => {
            let id = new_id("sub");
            sqlx::query(
                "INSERT INTO subscriptions (id, user_id, package_id, status, daily_credits,
                     starts_at, ends_at, created_at, updated_at)
                 VALUES ($1, $2, $3, 'active', $4, $5, $6, $5, $5)",
            )
            .bind(&id)
            .bind(&order.user_id)
            .bind(package_id)
            .bind(daily)
            .bind(now_ms)
            .bind(now_ms.saturating_add(length_ms))
            .execute(&mut *conn)
            .await?;
            (id, None)
        }
    };
    // What a full refund of this order takes its term back from.
    sqlx::query("UPDATE orders SET subscription_id = $1 WHERE id = $2")
        .bind(&id)
        .bind(&order.id)
        .execute(&mut *conn)
        .await?;
    if let Some(event) = event {
        let data = serde_json::json!({"subscription_id": id, "user_id": order.user_id,
                                      "package_id": package_id, "order_id": order.id});
        webhooks::emit_and_enqueue_on(conn, event, &data, now_ms).await?;
    }
    let payload = AllowancePayload {
        subscription_id: id.clone(),
    };
    let job = NewJob::new(ALLOWANCE_JOB, &payload, 10)
        .unique(format!("{ALLOWANCE_JOB}:{id}:{}", order.id));
    Ok(Some((id, job)))
}

/// `quantity` terms of `days` days.
fn term_ms(days: i64, quantity: i64) -> i64 {
    days.saturating_mul(quantity).saturating_mul(DAY_MS)
}

/// The time a subscription order bought, for a subscription package; none for any other.
async fn term_of_on(
    conn: &mut sqlx::AnyConnection,
    order: &Order,
) -> Result<Option<i64>, StoreError> {
    let Some(package_id) = &order.package_id else {
        return Ok(None);
    };
    let days: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT duration_days FROM packages WHERE id = $1 AND kind = 'subscription'",
    )
    .bind(package_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(days.flatten().map(|days| term_ms(days, order.quantity)))
}

/// A subscription order refunded in full takes back the time it bought, in the refund's
/// transaction: the subscription it started or extended ends that much earlier while it is
/// still active, and is cancelled when that is now or before (no allowance is granted for it
/// after). A subscription that already ended, or another one of the same package, is left
/// alone.
pub(crate) async fn take_back_on(
    conn: &mut sqlx::AnyConnection,
    order: &Order,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(length_ms) = term_of_on(conn, order).await? else {
        return Ok(());
    };
    let subscription_id: Option<String> =
        sqlx::query_scalar("SELECT subscription_id FROM orders WHERE id = $1")
            .bind(&order.id)
            .fetch_one(&mut *conn)
            .await?;
    let Some(subscription_id) = subscription_id else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE subscriptions SET
             status = CASE WHEN ends_at - $1 <= $2 THEN 'cancelled' ELSE status END,
             auto_renew = CASE WHEN ends_at - $1 <= $2 THEN 0 ELSE auto_renew END,
             ends_at = CASE WHEN ends_at - $1 <= $2 THEN $2 ELSE ends_at - $1 END,
             updated_at = $2
         WHERE id = $3 AND status = 'active'",
    )
    .bind(length_ms)
    .bind(now_ms)
    .bind(&subscription_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the day's allowance of a subscription in the caller's (the ledger batch's)
/// transaction: `true` when this is the first time, so the grant may be made.
pub(crate) async fn claim_day_on(
    conn: &mut sqlx::AnyConnection,
    subscription_id: &str,
    day: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO subscription_days (subscription_id, day, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (subscription_id, day) DO NOTHING",
    )
    .bind(subscription_id)
    .bind(day)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

impl Store {
    /// The member's subscriptions, newest first.
    pub async fn subscriptions_of(&self, user_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1 ORDER BY id DESC LIMIT 200"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Turns renewal on or off on one of the member's subscriptions; `None`: not theirs.
    pub async fn set_auto_renew(
        &self,
        user_id: &str,
        id: &str,
        auto_renew: bool,
    ) -> Result<Option<Subscription>, StoreError> {
        // Turning renewal on again forgets earlier declines.
        let changed = sqlx::query(
            "UPDATE subscriptions SET auto_renew = $1, updated_at = $2, renew_failures = 0,
                 renew_last_error = NULL, renew_next_attempt_at = NULL
             WHERE id = $3 AND user_id = $4",
        )
        .bind(i64::from(auto_renew))
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(user_id)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        self.subscription(id).await
    }

    /// Active subscriptions that have begun, not ended, and not yet had local day `day`'s
    /// allowance, after `after_id`, by id: what the day's run still has to grant.
    pub async fn subscriptions_due_a_day(
        &self,
        day: &str,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<Subscription>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions s
             WHERE status = 'active' AND starts_at <= $1 AND ends_at > $1 AND id > $2
               AND NOT EXISTS (SELECT 1 FROM subscription_days d
                               WHERE d.subscription_id = s.id AND d.day = $3)
             ORDER BY id LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(self.clock.now_ms())
            .bind(after_id)
            .bind(day)
            .bind(limit)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Ends every active subscription whose end has passed: each is `expired`, its member told
    /// and a `subscription.expired` event recorded, in one transaction per subscription.
    /// Returns how many ended.
    pub async fn expire_subscriptions(
        &self,
        told: impl Fn(bursar_core::Language) -> Message,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE status = 'active' AND ends_at <= $1
             ORDER BY id LIMIT 500"
        ));
        let due = sqlx::query(sql).bind(now).fetch_all(&self.db.pool).await?;
        let mut ended = 0;
        for subscription in due.iter().map(from_row) {
            let subscription = subscription?;
            let mut tx = self.db.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE subscriptions SET status = 'expired', updated_at = $1
                 WHERE id = $2 AND status = 'active' AND ends_at <= $1",
            )
            .bind(now)
            .bind(&subscription.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                let lang = notifications::language_on(&mut tx, &subscription.user_id).await?;
                notifications::notify_on(&mut tx, &subscription.user_id, &told(lang), now).await?;
                let data = serde_json::json!({"subscription_id": subscription.id,
                    "user_id": subscription.user_id, "package_id": subscription.package_id});
                webhooks::emit_and_enqueue_on(&mut tx, EventType::SubscriptionExpired, &data, now)
                    .await?;
                ended += 1;
            }
            tx.commit().await?;
        }
        if ended > 0 {
            self.jobs.wake().notify_one();
        }
        Ok(ended)
    }

    /// Tells the member of each active subscription ending within `days_before` days, once per
    /// subscription, end date and reminder. Returns how many were told.
    pub async fn remind_subscriptions(
        &self,
        days_before: i64,
        told: impl Fn(bursar_core::Language, &Subscription) -> Message,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions
             WHERE status = 'active' AND ends_at > $1 AND ends_at <= $2 ORDER BY id LIMIT 500"
        ));
        let due = sqlx::query(sql)
            .bind(now)
            .bind(now.saturating_add(days_before * DAY_MS))
            .fetch_all(&self.db.pool)
            .await?;
        let mut reminded = 0;
        for subscription in due.iter().map(from_row) {
            let subscription = subscription?;
            let mut tx = self.db.begin_write().await?;
            let first = sqlx::query(
                "INSERT INTO subscription_reminders (subscription_id, ends_at, days_before,
                     created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subscription_id, ends_at, days_before) DO NOTHING",
            )
            .bind(&subscription.id)
            .bind(subscription.ends_at_ms)
            .bind(days_before)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if first == 1 {
                let lang = notifications::language_on(&mut tx, &subscription.user_id).await?;
                let message = told(lang, &subscription);
                notifications::notify_on(&mut tx, &subscription.user_id, &message, now).await?;
                reminded += 1;
            }
            tx.commit().await?;
        }
        if reminded > 0 {
            self.jobs.wake().notify_one();
        }
        Ok(reminded)
    }
}

/// A renewal to charge: its order and the saved method's token.
pub struct Renewal {
    pub order: Box<Order>,
    pub token: String,
}

/// The renewal without the method's token, so a logged renewal leaks nothing.
impl std::fmt::Debug for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewal")
            .field("order_id", &self.order.id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Subscriptions that renew themselves and end within `within_ms`, not waiting out a
    /// decline: what the day's run renews.
    pub async fn renewals_due(&self, within_ms: i64) -> Result<Vec<Subscription>, StoreError> {
        let now = self.clock.now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions
             WHERE status = 'active' AND auto_renew = 1 AND ends_at > $1 AND ends_at <= $2
               AND (renew_next_attempt_at IS NULL OR renew_next_attempt_at <= $1)
             ORDER BY id LIMIT 200"
        ));
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(now.saturating_add(within_ms))
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The order that renews `subscription_id` off-session, in one transaction with the
    /// subscription locked: a renewal order whose charge has no answer yet is handed back (to
    /// be charged again with the same idempotency key), else a new one is made from the
    /// package's price, for the member's auto top-up card or newest saved method. `None`: no
    /// renewal is due, or the member has no saved method (renewal is then turned off and the
    /// member told by `told`).
    pub async fn prepare_renewal(
        &self,
        subscription_id: &str,
        within_ms: i64,
        order_ttl_ms: i64,
        told: impl Fn(bursar_core::Language) -> Message,
    ) -> Result<Option<Renewal>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let lock = self.db.dialect.row_lock();
        // Still due, checked with the row locked: a run that overlaps another, or comes after
        // a renewal by hand or within a decline's wait, finds nothing to do.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions
             WHERE id = $1 AND status = 'active' AND auto_renew = 1
               AND ends_at > $2 AND ends_at <= $3
               AND (renew_next_attempt_at IS NULL OR renew_next_attempt_at <= $2)
               AND user_id IN (SELECT id FROM users WHERE status = 'active'){lock}"
        ));
        let Some(row) = sqlx::query(sql)
            .bind(subscription_id)
            .bind(now)
            .bind(now.saturating_add(within_ms))
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let subscription = from_row(&row)?;
        let method = sqlx::query(
            "SELECT m.id, m.provider, m.token FROM payment_methods m
             LEFT JOIN auto_topup_rules r ON r.payment_method_id = m.id AND r.user_id = m.user_id
             WHERE m.user_id = $1 AND m.deleted_at IS NULL
             ORDER BY CASE WHEN r.user_id IS NULL THEN 1 ELSE 0 END, m.id DESC LIMIT 1",
        )
        .bind(&subscription.user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(method) = method else {
            sqlx::query(
                "UPDATE subscriptions SET auto_renew = 0, renew_last_error = $1, updated_at = $2
                 WHERE id = $3",
            )
            .bind("no saved payment method")
            .bind(now)
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
            let lang = notifications::language_on(&mut tx, &subscription.user_id).await?;
            notifications::notify_on(&mut tx, &subscription.user_id, &told(lang), now).await?;
            tx.commit().await?;
            self.jobs.wake().notify_one();
            return Ok(None);
        };
        let method_id: String = method.try_get("id")?;
        let token: String = method.try_get("token")?;
        let unanswered = crate::orders::order_on(
            &mut tx,
            "user_id = $1 AND package_id = $2 AND status = 'pending' AND payment_status = 'pending'
             AND payment_method_id IS NOT NULL ORDER BY id LIMIT 1",
            &[&subscription.user_id, &subscription.package_id],
        )
        .await?;
        if let Some(order) = unanswered {
            // Charged again with the method it was first charged with, under the same key;
            // unless another run is charging it right now.
            if !crate::orders::take_charge_on(&mut tx, &order.id, now).await? {
                return Ok(None);
            }
            let token =
                crate::payment_methods::live_token_on(&mut tx, order.payment_method_id.as_deref())
                    .await?;
            tx.commit().await?;
            return Ok(token.map(|token| Renewal {
                order: Box::new(order),
                token,
            }));
        }
        let package = sqlx::query(
            "SELECT name, credits, bonus_credits, price_amount, price_currency FROM packages
             WHERE id = $1 AND kind = 'subscription' AND active = 1 AND deleted_at IS NULL",
        )
        .bind(&subscription.package_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(package) = package else {
            // No longer sold: renewal stops, and the member is told.
            sqlx::query(
                "UPDATE subscriptions SET auto_renew = 0, renew_last_error = $1, updated_at = $2
                 WHERE id = $3",
            )
            .bind("the package is no longer sold")
            .bind(now)
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
            let lang = notifications::language_on(&mut tx, &subscription.user_id).await?;
            notifications::notify_on(&mut tx, &subscription.user_id, &told(lang), now).await?;
            tx.commit().await?;
            self.jobs.wake().notify_one();
            return Ok(None);
        };
        let price: i64 = package.try_get("price_amount")?;
        let order = crate::orders::NewOrder {
            id: new_id("ord"),
            user_id: subscription.user_id.clone(),
            kind: bursar_core::OrderKind::Package,
            package_id: Some(subscription.package_id.clone()),
            package_name: package.try_get("name")?,
            quantity: 1,
            currency: package.try_get("price_currency")?,
            unit_price: price,
            discount: 0,
            fee: 0,
            total: price,
            credits: package.try_get("credits")?,
            bonus_credits: package.try_get("bonus_credits")?,
            first_purchase_bonus_percent: None,
            coupon: None,
            provider: method.try_get("provider")?,
            payment_method_id: Some(method_id),
            payment_id: new_id("pay"),
            expires_at_ms: now + order_ttl_ms,
        };
        let order = crate::orders::insert_order_on(&mut tx, &order, now).await?;
        tx.commit().await?;
        Ok(Some(Renewal {
            order: Box::new(order),
            token,
        }))
    }

    /// A renewal's charge was declined: the order fails, the decline is counted and the next
    /// try spaced out (minutes, then hours); the third in a row turns renewal off. The member
    /// is told each time (`told` gets the language and whether renewal is now off). Once per
    /// order, however often it is reported.
    pub async fn record_renewal_decline(
        &self,
        subscription_id: &str,
        order: &Order,
        reason: &str,
        told: impl Fn(bursar_core::Language, bool) -> Message,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let closed = crate::orders::close_pending_on(
            &mut tx,
            &order.id,
            bursar_core::OrderStatus::Failed,
            Some(reason),
            now,
        )
        .await?;
        if !closed {
            tx.commit().await?;
            return Ok(());
        }
        let failures: i64 = sqlx::query_scalar(
            "UPDATE subscriptions SET renew_failures = renew_failures + 1, renew_last_error = $1,
                 updated_at = $2
             WHERE id = $3 RETURNING renew_failures",
        )
        .bind(reason)
        .bind(now)
        .bind(subscription_id)
        .fetch_one(&mut *tx)
        .await?;
        let (status, wait_ms) = bursar_core::topup::after_decline(failures);
        let off = status == bursar_core::AutoTopupStatus::Off;
        sqlx::query(
            "UPDATE subscriptions SET renew_next_attempt_at = $1,
                 auto_renew = CASE WHEN $2 = 1 THEN 0 ELSE auto_renew END
             WHERE id = $3",
        )
        .bind(wait_ms.map(|wait| now + wait))
        .bind(i64::from(off))
        .bind(subscription_id)
        .execute(&mut *tx)
        .await?;
        let lang = notifications::language_on(&mut tx, &order.user_id).await?;
        notifications::notify_on(&mut tx, &order.user_id, &told(lang, off), now).await?;
        let mut data = webhooks::order_data(order, "failed");
        data["reason"] = reason.into();
        webhooks::emit_and_enqueue_on(&mut tx, EventType::OrderFailed, &data, now).await?;
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(())
    }
}
