//! Orders: created pending with their price fixed, then paid (through the ledger writer, see
//! `ledger::orders`), failed, cancelled or expired. Each transition is a guarded UPDATE on
//! `status`, so of two racing transitions exactly one wins.

use bursar_core::{OrderKind, OrderStatus, PaymentStatus, RefundKind, RefundStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::coupons::{self, Coupon};
use crate::idempotency::{self, Idempotency, KeyClaim};
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub kind: OrderKind,
    /// `None` for automatic top-ups, which buy credits rather than a package.
    pub package_id: Option<String>,
    pub package_name: String,
    pub quantity: i64,
    pub currency: String,
    pub unit_price: i64,
    pub discount: i64,
    /// The processing fee the buyer bears (automatic top-ups), included in `total`.
    pub fee: i64,
    pub total: i64,
    pub credits: i64,
    pub bonus_credits: i64,
    pub first_purchase_bonus_percent: Option<i64>,
    pub coupon_id: Option<String>,
    pub coupon_code: Option<String>,
    pub provider: String,
    pub status: OrderStatus,
    pub failure_reason: Option<String>,
    pub payment_id: String,
    pub provider_ref: Option<String>,
    pub payment_status: PaymentStatus,
    /// The `payment` object handed to the client, as JSON text.
    pub payment_json: Option<String>,
    pub payment_method: Option<String>,
    /// The saved method an off-session charge used.
    pub payment_method_id: Option<String>,
    pub credits_granted: i64,
    pub first_purchase_bonus: i64,
    pub credits_clawed_back: i64,
    pub amount_refunded: i64,
    pub receipt_number: Option<i64>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub paid_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, kind, package_id, fee, payment_method_id, package_name, quantity, currency,
    unit_price, discount, total, credits, bonus_credits, first_purchase_bonus_percent, coupon_id,
    coupon_code, provider, status, failure_reason, payment_id, provider_ref, payment_status,
    payment_json, payment_method, credits_granted, first_purchase_bonus, credits_clawed_back,
    amount_refunded, receipt_number, created_at, expires_at, paid_at, closed_at";

fn order_from_row(row: &AnyRow) -> Result<Order, StoreError> {
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("kind")?;
    Ok(Order {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: OrderKind::parse(&kind).unwrap_or(OrderKind::Package),
        fee: row.try_get("fee")?,
        payment_method_id: row.try_get("payment_method_id")?,
        package_id: row.try_get("package_id")?,
        package_name: row.try_get("package_name")?,
        quantity: row.try_get("quantity")?,
        currency: row.try_get("currency")?,
        unit_price: row.try_get("unit_price")?,
        discount: row.try_get("discount")?,
        total: row.try_get("total")?,
        credits: row.try_get("credits")?,
        bonus_credits: row.try_get("bonus_credits")?,
        first_purchase_bonus_percent: row.try_get("first_purchase_bonus_percent")?,
        coupon_id: row.try_get("coupon_id")?,
        coupon_code: row.try_get("coupon_code")?,
        provider: row.try_get("provider")?,
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Pending),
        failure_reason: row.try_get("failure_reason")?,
        payment_id: row.try_get("payment_id")?,
        provider_ref: row.try_get("provider_ref")?,
        payment_status: {
            let text: String = row.try_get("payment_status")?;
            PaymentStatus::parse(&text).unwrap_or(PaymentStatus::Pending)
        },
        payment_json: row.try_get("payment_json")?,
        payment_method: row.try_get("payment_method")?,
        credits_granted: row.try_get("credits_granted")?,
        first_purchase_bonus: row.try_get("first_purchase_bonus")?,
        credits_clawed_back: row.try_get("credits_clawed_back")?,
        amount_refunded: row.try_get("amount_refunded")?,
        receipt_number: row.try_get("receipt_number")?,
        created_at_ms: row.try_get("created_at")?,
        expires_at_ms: row.try_get("expires_at")?,
        paid_at_ms: row.try_get("paid_at")?,
        closed_at_ms: row.try_get("closed_at")?,
    })
}

/// A new order, priced by the caller from the package and the coupon.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub user_id: String,
    pub kind: OrderKind,
    pub package_id: Option<String>,
    pub package_name: String,
    pub quantity: i64,
    pub currency: String,
    pub unit_price: i64,
    pub discount: i64,
    pub fee: i64,
    pub total: i64,
    pub credits: i64,
    pub bonus_credits: i64,
    pub first_purchase_bonus_percent: Option<i64>,
    pub coupon: Option<Coupon>,
    pub provider: String,
    pub payment_method_id: Option<String>,
    pub payment_id: String,
    pub expires_at_ms: i64,
}

/// Admin filters for the order list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub provider: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Store {
    /// The bank-transfer order whose transfer reference is `reference` (canonical form).
    pub async fn bank_transfer_order(&self, reference: &str) -> Result<Option<Order>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        order_on(
            &mut conn,
            "provider = 'bank_transfer' AND provider_ref = $1",
            &[reference],
        )
        .await
    }

    /// Gives up this run's charge of an off-session order whose provider could not be
    /// reached, so the job's retry may charge it again at once.
    pub async fn release_charge(&self, order_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET charging_until = NULL WHERE id = $1")
            .bind(order_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Creates a pending order, taking one use of its coupon in the same transaction. The
    /// `Idempotency-Key`, if any, is claimed in that transaction too. `Err` from the inner
    /// result: why the coupon cannot be used.
    pub async fn create_order(
        &self,
        order: &NewOrder,
        key: Option<&Idempotency>,
    ) -> Result<Result<KeyClaim, &'static str>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(key) = key {
            let claim = idempotency::claim(&mut tx, key, self.clock.now_ms()).await?;
            if claim != KeyClaim::Claimed {
                tx.rollback().await?;
                return Ok(Ok(claim));
            }
        }
        if let Some(coupon) = &order.coupon
            && let Err(refusal) = coupons::reserve(&mut tx, coupon, &order.user_id).await?
        {
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
        insert_order_on(&mut tx, order, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(Ok(KeyClaim::Claimed))
    }

    /// Stores what the provider said to do next (and its reference to the payment).
    pub async fn set_order_payment(
        &self,
        order_id: &str,
        provider_ref: Option<&str>,
        payment_json: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE orders SET provider_ref = $1, payment_json = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(provider_ref)
        .bind(payment_json)
        .bind(self.clock.now_ms())
        .bind(order_id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.order_where("id = $1", id).await
    }

    pub async fn order_by_payment(&self, payment_id: &str) -> Result<Option<Order>, StoreError> {
        self.order_where("payment_id = $1", payment_id).await
    }

    async fn order_where(&self, condition: &str, value: &str) -> Result<Option<Order>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        order_on(&mut conn, condition, &[value]).await
    }

    /// Orders, newest first, narrowed by `filter`.
    pub async fn orders(
        &self,
        filter: &OrderFilter,
        page: &PageRequest,
    ) -> Result<Page<Order>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM orders
             WHERE id < $1 AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR status = $3)
               AND ($4 IS NULL OR provider = $4) AND created_at >= $5 AND created_at < $6
             ORDER BY id DESC LIMIT $7"
        ));
        let rows = sqlx::query(sql)
            .bind(page.before_or_max())
            .bind(filter.user_id.as_deref())
            .bind(filter.status.map(OrderStatus::as_str))
            .bind(filter.provider.as_deref())
            .bind(filter.from_ms.unwrap_or(i64::MIN))
            .bind(filter.to_ms.unwrap_or(i64::MAX))
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let orders = rows
            .iter()
            .map(order_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(orders, |o| o.id.clone()))
    }

    /// Cancels a pending order of this user. `Ok(None)`: no such order of theirs; otherwise the
    /// order as it now is (the caller checks whether it is `cancelled`).
    pub async fn cancel_order(
        &self,
        order_id: &str,
        user_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        let Some(order) = self.order(order_id).await? else {
            return Ok(None);
        };
        if order.user_id != user_id {
            return Ok(None);
        }
        self.close_pending(order_id, OrderStatus::Cancelled, None)
            .await?;
        self.order(order_id).await
    }

    /// Moves a pending order to `failed`, `cancelled` or `expired` and gives back its coupon.
    /// Returns whether this call made the change.
    pub async fn close_pending(
        &self,
        order_id: &str,
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let closed = close_pending_on(&mut tx, order_id, to, reason, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(closed)
    }

    /// Pending orders of `provider` made before `created_before_ms` and still payable, oldest
    /// first: the ones whose payment reconciliation asks the provider about. Orders whose
    /// reported payment did not match are left alone (that is recorded already).
    pub async fn pending_orders_to_reconcile(
        &self,
        provider: &str,
        created_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM orders
             WHERE status = 'pending' AND provider = $1 AND created_at < $2 AND expires_at > $3
               AND payment_status <> 'mismatch'
             ORDER BY created_at LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(provider)
            .bind(created_before_ms)
            .bind(self.clock.now_ms())
            .bind(limit)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Expires up to `limit` pending orders whose time is up; returns how many.
    pub async fn expire_due_orders(&self, limit: i64) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        let mut expired = 0;
        for id in due {
            if self.close_pending(&id, OrderStatus::Expired, None).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }
}

/// The order matching `condition`, whose `$1`, `$2`… are `values`, read on `conn` (a pool
/// connection, or the ledger writer's inside its transaction).
pub(crate) async fn order_on(
    conn: &mut sqlx::AnyConnection,
    condition: &str,
    values: &[&str],
) -> Result<Option<Order>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM orders WHERE {condition}"));
    let mut query = sqlx::query(sql);
    for value in values {
        query = query.bind(*value);
    }
    query
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
}

pub(crate) async fn close_pending_on(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    to: OrderStatus,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE orders SET status = $1, failure_reason = $2, closed_at = $3, updated_at = $3,
             payment_status = CASE WHEN $1 = 'failed' THEN 'failed' ELSE payment_status END
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(order_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    let coupon: Option<String> = sqlx::query_scalar("SELECT coupon_id FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&mut *conn)
        .await?;
    if let Some(coupon) = coupon {
        coupons::release(conn, &coupon).await?;
    }
    Ok(true)
}

/// Money going back to a buyer, and where the provider's side of it stands.
#[derive(Debug, Clone)]
pub struct RefundRecord {
    pub id: String,
    pub order_id: String,
    pub kind: RefundKind,
    pub amount: i64,
    pub credits: i64,
    /// `pending` until the provider answers, then `succeeded` or `failed`.
    pub status: RefundStatus,
    pub provider_ref: Option<String>,
    pub failure_reason: Option<String>,
    /// Provider calls made so far.
    pub attempts: i64,
}

/// What the provider said to a refund.
#[derive(Debug, Clone)]
pub enum RefundOutcome {
    Succeeded {
        provider_ref: String,
    },
    /// Final: the provider refused (or cannot refund at all); an admin settles it by hand.
    Failed {
        reason: String,
    },
    /// The provider could not be reached: stays pending, asked again later.
    Retry {
        reason: String,
    },
}

/// The job that sends a recorded refund's money back through its provider.
pub const PROVIDER_REFUND_JOB: &str = "provider_refund";
/// Provider calls per refund before its job is given up as failed (an admin can queue it again).
pub const PROVIDER_REFUND_ATTEMPTS_MAX: i64 = 10;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ProviderRefundPayload {
    pub refund_id: String,
}

/// The provider refund job for `refund_id`: one per refund (its unique key), so enqueueing it
/// twice calls the provider once.
pub fn provider_refund_job(refund_id: &str) -> crate::jobs::NewJob {
    crate::jobs::NewJob::new(
        PROVIDER_REFUND_JOB,
        &ProviderRefundPayload {
            refund_id: refund_id.to_string(),
        },
        PROVIDER_REFUND_ATTEMPTS_MAX,
    )
    .unique(provider_refund_key(refund_id))
}

pub fn provider_refund_key(refund_id: &str) -> String {
    format!("{PROVIDER_REFUND_JOB}:{refund_id}")
}

impl Store {
    pub async fn order_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, order_id, kind, amount, credits, status, provider_ref, failure_reason,
                    attempts
             FROM order_refunds WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|row| {
            Ok(RefundRecord {
                id: row.try_get("id")?,
                order_id: row.try_get("order_id")?,
                kind: RefundKind::parse(&row.try_get::<String, _>("kind")?)
                    .unwrap_or(RefundKind::Refund),
                amount: row.try_get("amount")?,
                credits: row.try_get("credits")?,
                status: RefundStatus::parse(&row.try_get::<String, _>("status")?)
                    .unwrap_or(RefundStatus::Pending),
                provider_ref: row.try_get("provider_ref")?,
                failure_reason: row.try_get("failure_reason")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// A pending refund about to be sent to its provider, with the call counted. `None`: it is
    /// no longer pending. The queue's lease makes the caller the only one sending it.
    pub async fn start_refund_call(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let changed = sqlx::query(
            "UPDATE order_refunds SET attempts = attempts + 1, updated_at = $1
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(self.clock.now_ms())
        .bind(id)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        self.order_refund(id).await
    }

    /// Records the provider's answer. A late payment's order shows it as its `payment_status`.
    pub async fn settle_refund(
        &self,
        record: &RefundRecord,
        outcome: &RefundOutcome,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let (status, provider_ref, reason) = match outcome {
            RefundOutcome::Succeeded { provider_ref } => {
                (RefundStatus::Succeeded, Some(provider_ref.as_str()), None)
            }
            RefundOutcome::Failed { reason } => (RefundStatus::Failed, None, Some(reason.as_str())),
            RefundOutcome::Retry { reason } => (RefundStatus::Pending, None, Some(reason.as_str())),
        };
        let mut tx = self.db.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE order_refunds SET status = $1, provider_ref = $2, failure_reason = $3,
                 updated_at = $4
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(provider_ref)
        .bind(reason)
        .bind(now)
        .bind(&record.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 && record.kind == RefundKind::LatePayment && status != RefundStatus::Pending
        {
            let payment_status = if status == RefundStatus::Succeeded {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::RefundFailed
            };
            sqlx::query(
                "UPDATE orders SET payment_status = $1, updated_at = $2
                 WHERE id = $3 AND payment_status = 'refund_required'",
            )
            .bind(payment_status.as_str())
            .bind(now)
            .bind(&record.order_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Inserts `order` as pending, inside the caller's transaction, and answers it as stored.
pub(crate) async fn insert_order_on(
    conn: &mut sqlx::AnyConnection,
    order: &NewOrder,
    now_ms: i64,
) -> Result<Order, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (id, user_id, kind, package_id, package_name, quantity, currency,
             unit_price, discount, fee, total, credits, bonus_credits, first_purchase_bonus_percent,
             coupon_id, coupon_code, provider, payment_method_id, status, payment_id, created_at,
             expires_at, updated_at, charging_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             'pending', $19, $20, $21, $20, $22)
         RETURNING {COLUMNS}"
    ));
    let row = sqlx::query(sql)
        .bind(&order.id)
        .bind(&order.user_id)
        .bind(order.kind.as_str())
        .bind(order.package_id.as_deref())
        .bind(&order.package_name)
        .bind(order.quantity)
        .bind(&order.currency)
        .bind(order.unit_price)
        .bind(order.discount)
        .bind(order.fee)
        .bind(order.total)
        .bind(order.credits)
        .bind(order.bonus_credits)
        .bind(order.first_purchase_bonus_percent)
        .bind(order.coupon.as_ref().map(|c| c.id.as_str()))
        .bind(order.coupon.as_ref().map(|c| c.spec.code.as_str()))
        .bind(&order.provider)
        .bind(order.payment_method_id.as_deref())
        .bind(&order.payment_id)
        .bind(now_ms)
        .bind(order.expires_at_ms)
        // An off-session order is made to be charged at once, by the run that made it.
        .bind(
            order
                .payment_method_id
                .as_ref()
                .map(|_| now_ms.saturating_add(CHARGE_LEASE_MS)),
        )
        .fetch_one(&mut *conn)
        .await?;
    order_from_row(&row)
}

/// How long a run that charges an off-session order holds its charge before another run may
/// charge it again: well over the provider's request timeout, so a second request under the
/// same idempotency key never meets the first still in flight (Stripe answers that with a
/// conflict), yet a run that died is taken over within minutes.
pub const CHARGE_LEASE_MS: i64 = 120_000;

/// Takes the charge of a pending off-session order for this run, inside the caller's
/// transaction; false while another run holds it (it is charging the order right now).
pub(crate) async fn take_charge_on(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let taken = sqlx::query(
        "UPDATE orders SET charging_until = $2
         WHERE id = $1 AND status = 'pending'
           AND (charging_until IS NULL OR charging_until <= $3)",
    )
    .bind(order_id)
    .bind(now_ms.saturating_add(CHARGE_LEASE_MS))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}
