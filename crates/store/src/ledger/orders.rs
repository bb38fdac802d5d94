//! The commands that turn payments into credits and refunds back into clawbacks. They run on
//! the ledger writer like every other credit-moving command, so an order's guarded status
//! change, its grants, its coupon redemption and its receipt number commit in one transaction.
//!
//! Unlike the other commands these write some rows directly (orders, provider events); each
//! does all of its refusing before its first write, so a refusal still leaves no trace.

use bursar_core::{
    ClawbackRoom, EventType, FulfilmentOutcome, GrantSource, LedgerError, OrderCredits, OrderKind,
    OrderStatus, RefundStatus, SystemAccount, TransferKind, plan_clawback, pricing,
};
use serde::Serialize;
use sqlx::AnyConnection;

use super::state::{GrantSpec, Side, TransferMeta, UnitOfWork};
use super::{Fulfilment, Outcome, PaymentEvent, PaymentOutcome};
use crate::StoreError;
use crate::audit::AuditRecord;
use crate::ids::new_id;
use crate::orders::{Order, order_on};
use crate::webhooks;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRefundReceipt {
    pub id: String,
    pub order_id: String,
    /// Money refunded, in the order's currency's minor units.
    pub amount: i64,
    pub currency: String,
    /// Credits the refund took back from the user.
    pub credits_clawed_back: i64,
    /// Credits the order granted that the refund could not take back (already spent).
    pub credits_not_recovered: i64,
    pub transaction_id: Option<String>,
    pub balance_after: i64,
    pub order_status: OrderStatus,
    pub amount_refunded_total: i64,
}

/// A refund of (part of) a paid order.
#[derive(Debug, Clone)]
pub struct OrderRefund {
    pub refund_id: String,
    pub order_id: String,
    /// Minor units; `None` refunds what is left.
    pub amount: Option<i64>,
    /// Whether the clawback may also take the user's other credits and overdraft, instead of
    /// only what is left of the order's own grants.
    pub allow_negative: bool,
    pub reason: Option<String>,
    pub actor: String,
    pub actor_kind: &'static str,
    pub ip: Option<String>,
}

async fn find_order(
    conn: &mut AnyConnection,
    event: &PaymentEvent,
) -> Result<Option<Order>, StoreError> {
    let provider = event.provider.as_str();
    if let Some(payment_id) = &event.payment_id {
        order_on(
            conn,
            "payment_id = $1 AND provider = $2",
            &[payment_id, provider],
        )
        .await
    } else if let Some(reference) = &event.provider_ref {
        order_on(
            conn,
            "provider_ref = $1 AND provider = $2",
            &[reference, provider],
        )
        .await
    } else {
        Ok(None)
    }
}

async fn load_order(conn: &mut AnyConnection, id: &str) -> Result<Option<Order>, StoreError> {
    order_on(conn, "id = $1", &[id]).await
}

/// Applies a verified provider event exactly once: the event's id is recorded first (a repeat
/// finds it and stops), then the order moves from `pending` with a guarded UPDATE, and only
/// when that UPDATE changed the row are credits granted.
pub(crate) async fn fulfil(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    event: &PaymentEvent,
) -> Result<Outcome, StoreError> {
    // Reads first: they cannot leave a trace.
    let order = find_order(conn, event).await?;
    if let Some(order) = &order {
        if matches!(event.outcome, PaymentOutcome::Refunded { .. })
            && order.status == OrderStatus::Pending
        {
            return Ok(fulfilment(
                FulfilmentOutcome::RetryLater,
                Some(order.id.clone()),
                None,
            ));
        }
        uow.load_users(conn, &[order.user_id.as_str()]).await?;
    }
    let recorded = sqlx::query(
        "INSERT INTO provider_events (provider, event_id, event_type, order_id, payment_id, amount,
             currency, outcome, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8)
         ON CONFLICT (provider, event_id) DO NOTHING",
    )
    .bind(&event.provider)
    .bind(&event.event_id)
    .bind(&event.event_type)
    .bind(order.as_ref().map(|o| o.id.as_str()))
    .bind(event.payment_id.as_deref())
    .bind(event.amount.as_ref().map(|m| m.amount))
    .bind(event.amount.as_ref().map(|m| m.currency.as_str()))
    .bind(uow.now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if recorded == 0 {
        return Ok(fulfilment(FulfilmentOutcome::Duplicate, None, None));
    }
    let (outcome, detail, refund) = match &order {
        None => (FulfilmentOutcome::UnknownPayment, None, None),
        Some(order) => match &event.outcome {
            PaymentOutcome::Ignored => (FulfilmentOutcome::Ignored, None, None),
            PaymentOutcome::Refused(reason) => {
                (FulfilmentOutcome::Refused, Some(reason.clone()), None)
            }
            PaymentOutcome::AttemptFailed(reason) => {
                sqlx::query(
                    "UPDATE orders SET failure_reason = $1, payment_status = 'failed', updated_at = $2
                     WHERE id = $3 AND status = 'pending'",
                )
                .bind(reason)
                .bind(uow.now_ms)
                .bind(&order.id)
                .execute(&mut *conn)
                .await?;
                (FulfilmentOutcome::AttemptFailed, Some(reason.clone()), None)
            }
            PaymentOutcome::Failed(reason) => {
                let closed = crate::orders::close_pending_on(
                    conn,
                    &order.id,
                    OrderStatus::Failed,
                    Some(reason),
                    uow.now_ms,
                )
                .await?;
                let outcome = if closed {
                    let data = webhooks::order_data(order, "failed");
                    uow.emit(conn, EventType::OrderFailed, &data).await?;
                    FulfilmentOutcome::Failed
                } else {
                    FulfilmentOutcome::Ignored
                };
                (outcome, Some(reason.clone()), None)
            }
            PaymentOutcome::Succeeded => pay(uow, conn, order, event).await?,
            PaymentOutcome::Refunded { total_refunded } => {
                provider_refund(uow, conn, order, event, *total_refunded).await?
            }
        },
    };
    sqlx::query(
        "UPDATE provider_events SET outcome = $1, detail = $2 WHERE provider = $3 AND event_id = $4",
    )
    .bind(outcome.as_str())
    .bind(detail)
    .bind(&event.provider)
    .bind(&event.event_id)
    .execute(&mut *conn)
    .await?;
    Ok(fulfilment(outcome, order.map(|o| o.id), refund))
}

fn fulfilment(
    outcome: FulfilmentOutcome,
    order_id: Option<String>,
    refund_id: Option<String>,
) -> Outcome {
    Outcome::Fulfilment(Fulfilment {
        outcome,
        order_id,
        refund_id,
        job_completed: None,
    })
}

/// What handling an event came to: its outcome, a detail for the record, and a refund to send.
type Handled = (FulfilmentOutcome, Option<String>, Option<String>);

/// A successful payment: pays the order if it is still pending and the amount is right.
async fn pay(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    order: &Order,
    event: &PaymentEvent,
) -> Result<Handled, StoreError> {
    let amount_matches = event
        .amount
        .as_ref()
        .is_some_and(|m| m.amount == order.total && m.currency == order.currency);
    if !amount_matches {
        let got = event
            .amount
            .as_ref()
            .map_or("nothing".into(), |m| format!("{} {}", m.amount, m.currency));
        sqlx::query(
            "UPDATE orders SET payment_status = 'mismatch', updated_at = $1
             WHERE id = $2 AND payment_status IN ('pending', 'failed')",
        )
        .bind(uow.now_ms)
        .bind(&order.id)
        .execute(&mut *conn)
        .await?;
        let detail = format!(
            "the provider reported {got}; the order's total is {} {}",
            order.total, order.currency
        );
        return Ok((FulfilmentOutcome::AmountMismatch, Some(detail), None));
    }
    if uow.account(&order.user_id).is_none() {
        return Ok((
            FulfilmentOutcome::UnknownPayment,
            Some("the order's user is gone".into()),
            None,
        ));
    }
    // Whether this is the user's first paid order, asked before this one becomes paid; the
    // writer serialises fulfilments, so two first orders cannot both see "none".
    let earlier_paid: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM orders WHERE user_id = $1 AND paid_at IS NOT NULL",
    )
    .bind(&order.user_id)
    .fetch_one(&mut *conn)
    .await?;
    let first_bonus = match order.first_purchase_bonus_percent {
        Some(percent) if earlier_paid == 0 => pricing::first_purchase_bonus(order.credits, percent),
        _ => 0,
    };
    // A bonus kept for the inbox is claimed later, as a gift: it is not the order's grant.
    let inbox_bonus = crate::rewards::inbox_bonus_on(conn, order).await?;
    let granted = order.credits + order.bonus_credits - inbox_bonus + first_bonus;
    let paid = sqlx::query(
        "UPDATE orders SET status = 'paid', payment_status = 'succeeded', paid_at = $1,
             updated_at = $1, credits_granted = $2, first_purchase_bonus = $3,
             provider_ref = COALESCE(provider_ref, $4)
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(uow.now_ms)
    .bind(granted)
    .bind(first_bonus)
    .bind(event.provider_ref.as_deref())
    .bind(&order.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if paid == 0 {
        let Some(now) = load_order(conn, &order.id).await? else {
            return Ok((FulfilmentOutcome::UnknownPayment, None, None));
        };
        if matches!(now.status, OrderStatus::Paid | OrderStatus::Refunded) {
            return Ok((FulfilmentOutcome::AlreadyPaid, None, None));
        }
        return late_payment(uow, conn, &now, event).await;
    }
    let receipt: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'receipt' RETURNING value",
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE orders SET receipt_number = $1 WHERE id = $2")
        .bind(receipt)
        .bind(&order.id)
        .execute(&mut *conn)
        .await?;
    if let Some(coupon) = &order.coupon_id {
        uow.redeem_coupon(coupon);
    }
    let description = match order.kind {
        OrderKind::AutoTopup => format!("Auto top-up of {} credits", order.credits),
        OrderKind::Package => format!("{} × {}", order.quantity, order.package_name),
    };
    for (amount, source) in [
        (order.credits, GrantSource::Purchase),
        (order.bonus_credits - inbox_bonus, GrantSource::Bonus),
        (first_bonus, GrantSource::Bonus),
    ] {
        if amount == 0 {
            continue;
        }
        // Credits an automatic top-up bought arrive as their own kind of transaction.
        let kind = match (order.kind, source) {
            (OrderKind::AutoTopup, GrantSource::Purchase) => TransferKind::AutoTopup,
            _ => source.transfer_kind(),
        };
        let meta = TransferMeta {
            order_id: Some(&order.id),
            description: Some(&description),
            ..TransferMeta::kind(kind)
        };
        let spec = GrantSpec {
            amount,
            source: source.as_str(),
            from: Side::System(source.funding_account()),
            priority: 0,
            expires_at: None,
        };
        uow.grant(&order.user_id, spec, &meta);
    }
    if inbox_bonus > 0 {
        crate::rewards::deliver_order_bonus_on(conn, order, inbox_bonus, uow.now_ms).await?;
    }
    let mut events = vec![(EventType::OrderPaid, webhooks::order_data(order, "paid"))];
    if order.kind == OrderKind::AutoTopup {
        let told = crate::auto_topup::record_success_on(conn, order, uow.now_ms).await?;
        uow.enqueue(conn, &told).await?;
        events.push((
            EventType::AutoTopupSucceeded,
            webhooks::order_data(order, "paid"),
        ));
    }
    for (event, data) in events {
        uow.emit(conn, event, &data).await?;
    }
    // A subscription package starts or extends its subscription; today's allowance follows
    // at once from a job (it needs the local calendar, which the server keeps).
    if let Some((_, allowance)) =
        crate::subscriptions::start_or_extend_on(conn, order, uow.now_ms).await?
    {
        uow.enqueue(conn, &allowance).await?;
    }
    if let Some(confirmed_by) = &event.confirmed_by {
        uow.audit(AuditRecord {
            actor_id: Some(&confirmed_by.actor_id),
            actor_kind: confirmed_by.actor_kind,
            action: "order.confirm",
            target: Some(&order.id),
            details: serde_json::json!({ "reference": event.provider_ref }),
            ip: confirmed_by.ip.as_deref(),
        });
    }
    Ok((FulfilmentOutcome::Fulfilled, None, None))
}

/// Money arrived for an order that was cancelled, expired or failed. It is never fulfilled: a
/// `late_payment` refund is recorded for the provider, once however many events report it.
async fn late_payment(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    order: &Order,
    event: &PaymentEvent,
) -> Result<Handled, StoreError> {
    let flagged = sqlx::query(
        "UPDATE orders SET payment_status = 'refund_required', updated_at = $1
         WHERE id = $2 AND payment_status IN ('pending', 'failed')",
    )
    .bind(uow.now_ms)
    .bind(&order.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let detail = Some(format!("the order is {}", order.status));
    if flagged == 0 {
        return Ok((FulfilmentOutcome::RefundAlreadyRequired, detail, None));
    }
    let amount = event.amount.as_ref().map_or(order.total, |m| m.amount);
    if amount == 0 {
        return Ok((FulfilmentOutcome::Ignored, detail, None));
    }
    let refund_id = new_id("orf");
    sqlx::query(
        "INSERT INTO order_refunds (id, order_id, kind, amount, credits, allow_negative, reason,
             actor, status, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, 'late_payment', $3, 0, 0, $4, $5, 'pending', $6, $6, $6)",
    )
    .bind(&refund_id)
    .bind(&order.id)
    .bind(amount)
    .bind(format!("payment arrived for a {} order", order.status))
    .bind(&event.provider)
    .bind(uow.now_ms)
    .execute(&mut *conn)
    .await?;
    uow.enqueue(conn, &crate::orders::provider_refund_job(&refund_id))
        .await?;
    Ok((FulfilmentOutcome::RefundRequired, detail, Some(refund_id)))
}

/// The provider says it has refunded `total_refunded` of the payment in all. What Bursar has not
/// yet recorded (a refund made in the provider's dashboard) is recorded now, with the credits
/// clawed back as far as the order's own grants remain.
async fn provider_refund(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    order: &Order,
    event: &PaymentEvent,
    total_refunded: i64,
) -> Result<Handled, StoreError> {
    let new = total_refunded.min(order.total) - order.amount_refunded;
    if new <= 0 || !matches!(order.status, OrderStatus::Paid) {
        return Ok((FulfilmentOutcome::Ignored, None, None));
    }
    let refund = OrderRefund {
        refund_id: new_id("orf"),
        order_id: order.id.clone(),
        amount: Some(new),
        allow_negative: false,
        reason: Some(format!("refunded at the provider ({})", event.event_type)),
        actor: event.provider.clone(),
        actor_kind: "provider",
        ip: None,
    };
    // The event is already recorded, so a refusal must become its outcome, not an error.
    match refund_order(uow, conn, &refund, RefundStatus::Succeeded).await {
        Ok(_) => Ok((FulfilmentOutcome::ProviderRefund, None, None)),
        Err(StoreError::Domain(refusal)) => {
            Ok((FulfilmentOutcome::Ignored, Some(refusal.to_string()), None))
        }
        Err(other) => Err(other),
    }
}

/// Refunds (part of) a paid order and claws back the credits it granted, in proportion to the
/// money refunded (the last refund takes whatever is left), from the order's own grants first.
/// The refund is recorded with `status` (`pending` until the provider confirms it).
pub(crate) async fn refund_order(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    refund: &OrderRefund,
    status: RefundStatus,
) -> Result<OrderRefundReceipt, StoreError> {
    let Some(order) = load_order(conn, &refund.order_id).await? else {
        return Err(LedgerError::NotFound("order").into());
    };
    if order.status != OrderStatus::Paid {
        return Err(LedgerError::Conflict(format!(
            "only a paid order can be refunded; this one is {}",
            order.status
        ))
        .into());
    }
    let refundable = order.total - order.amount_refunded;
    let amount = refund.amount.unwrap_or(refundable);
    if amount <= 0 || amount > refundable {
        return Err(LedgerError::Conflict(format!(
            "{refundable} {} of this order is left to refund",
            order.currency
        ))
        .into());
    }
    // A bonus the order put in the inbox, once claimed, is part of what it granted: it is
    // clawed back with the rest (its grant first), as a bonus granted at once would be.
    let claimed_bonus = crate::rewards::claimed_order_bonus_on(conn, &order).await?;
    uow.load_users(conn, &[order.user_id.as_str()]).await?;
    uow.settle_overdue(&order.user_id);
    let Some(account) = uow.account(&order.user_id) else {
        return Err(LedgerError::NotFound("user").into());
    };
    // The order's grants: written before, or granted earlier in this very batch.
    let mut order_transfers: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM transfers WHERE order_id = $1 AND kind IN ('purchase', 'bonus')",
    )
    .bind(&order.id)
    .fetch_all(&mut *conn)
    .await?;
    order_transfers
        .extend(uow.unwritten_transfers(&order.id, &[TransferKind::Purchase, TransferKind::Bonus]));
    order_transfers.extend(claimed_bonus.iter().map(|(transfer, _)| transfer.clone()));
    let is_orders = |transfer_id: &str| order_transfers.iter().any(|t| t == transfer_id);
    let left_of_order: i64 = account
        .grants
        .iter()
        .filter(|g| is_orders(&g.transfer_id))
        .map(|g| g.remaining)
        .sum();
    // Raising the limit here would let the user borrow the clawed back credits again, so a
    // debt deeper than the overdraft is left to an admin (raise the limit first).
    let credits = OrderCredits {
        credits_granted: order.credits_granted + claimed_bonus.as_ref().map_or(0, |(_, c)| *c),
        credits_clawed_back: order.credits_clawed_back,
        total: order.total,
    };
    let room = ClawbackRoom {
        left_of_order,
        available: account.available(),
        spendable: account.spendable(),
    };
    let fully = amount == refundable;
    let (clawback, target) = plan_clawback(credits, amount, fully, room, refund.allow_negative);
    let transaction_id = (clawback > 0).then(|| {
        let meta = TransferMeta {
            order_id: Some(&order.id),
            description: refund.reason.as_deref(),
            actor: Some(&refund.actor),
            ..TransferMeta::kind(TransferKind::Clawback)
        };
        uow.debit_preferring(
            &order.user_id,
            clawback,
            Side::System(SystemAccount::Issuance),
            &meta,
            |g| is_orders(&g.transfer_id),
        )
        .0
    });
    let new_status = if fully {
        OrderStatus::Refunded
    } else {
        OrderStatus::Paid
    };
    let changed = sqlx::query(
        "UPDATE orders SET amount_refunded = amount_refunded + $1,
             credits_clawed_back = credits_clawed_back + $2, status = $3, updated_at = $4,
             closed_at = CASE WHEN $3 = 'refunded' THEN $4 ELSE closed_at END
         WHERE id = $5 AND status = 'paid' AND amount_refunded = $6",
    )
    .bind(amount)
    .bind(clawback)
    .bind(new_status.as_str())
    .bind(uow.now_ms)
    .bind(&order.id)
    .bind(order.amount_refunded)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        // The writer serialises refunds, so this means a concurrent change outside it.
        return Err(StoreError::Config(format!(
            "order {} changed during its refund",
            order.id
        )));
    }
    // A refund, even in part, ends the purchase's offer: a bonus still unclaimed in the inbox
    // can no longer be claimed.
    crate::rewards::close_order_bonus_on(conn, &order.id, uow.now_ms).await?;
    sqlx::query(
        "INSERT INTO order_refunds (id, order_id, amount, credits, allow_negative, reason, actor,
             transfer_id, status, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10)",
    )
    .bind(&refund.refund_id)
    .bind(&order.id)
    .bind(amount)
    .bind(clawback)
    .bind(i64::from(refund.allow_negative))
    .bind(refund.reason.as_deref())
    .bind(&refund.actor)
    .bind(transaction_id.as_deref())
    .bind(status.as_str())
    .bind(uow.now_ms)
    .execute(&mut *conn)
    .await?;
    if fully {
        crate::subscriptions::take_back_on(conn, &order, uow.now_ms).await?;
    }
    let mut data = webhooks::order_data(&order, new_status.as_str());
    data["refund"] = serde_json::json!({"id": refund.refund_id, "amount": amount,
                                        "credits_clawed_back": clawback});
    uow.emit(conn, EventType::OrderRefunded, &data).await?;
    if status == RefundStatus::Pending {
        // The money goes back through the provider after the commit, from the queue.
        uow.enqueue(conn, &crate::orders::provider_refund_job(&refund.refund_id))
            .await?;
    }
    let receipt = OrderRefundReceipt {
        id: refund.refund_id.clone(),
        order_id: order.id.clone(),
        amount,
        currency: order.currency.clone(),
        credits_clawed_back: clawback,
        credits_not_recovered: target - clawback,
        transaction_id,
        balance_after: uow.account(&order.user_id).map_or(0, |a| a.balance),
        order_status: new_status,
        amount_refunded_total: order.amount_refunded + amount,
    };
    uow.audit(AuditRecord {
        actor_id: Some(&refund.actor),
        actor_kind: refund.actor_kind,
        action: "order.refund",
        target: Some(&order.id),
        details: serde_json::to_value(&receipt).unwrap_or_default(),
        ip: refund.ip.as_deref(),
    });
    Ok(receipt)
}
