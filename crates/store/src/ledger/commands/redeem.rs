//! `Redeem` and `CancelRedemption`: a member's points for a merchant's product, and back.
//!
//! Both run on the writer, so redemptions and cancellations of one product or one member take
//! turns; the product and redemption rows are also locked on PostgreSQL, because a merchant's
//! restock or fulfilment changes them from outside the writer. Every refusal comes before the
//! first write.

use bursar_core::{
    EventType, GrantSource, LedgerError, MAX_CREDITS, RedemptionStatus, TransferKind,
};
use sqlx::{AnyConnection, Row};

use super::refund::refund_expiry;
use super::{balance, debit_watching_threshold, ensure_spendable, refuse_if_suspended};
use crate::StoreError;
use crate::ids::new_id;
use crate::ledger::state::{GrantSpec, Side, TransferMeta, UnitOfWork};
use crate::ledger::{Canceller, Outcome, RedemptionReceipt};
use crate::marketplace::QUANTITY_MAX;

pub(super) async fn redeem(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    product_id: &str,
    quantity: i64,
    actor: &str,
) -> Result<Outcome, StoreError> {
    if !(1..=QUANTITY_MAX).contains(&quantity) {
        return Err(
            LedgerError::Invalid(format!("quantity must be between 1 and {QUANTITY_MAX}")).into(),
        );
    }
    refuse_if_suspended(uow, conn, user_id).await?;
    let sql = format!(
        "SELECT merchant_id, name, points_price, stock, limit_per_member FROM products
         WHERE id = $1 AND active = 1 AND delisted_at IS NULL{}",
        uow.dialect.row_lock()
    );
    let product = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(product_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(LedgerError::NotFound("product"))?;
    let merchant_id: String = product.try_get("merchant_id")?;
    let name: String = product.try_get("name")?;
    let unit_price: i64 = product.try_get("points_price")?;
    let stock: i64 = product.try_get("stock")?;
    let limit: Option<i64> = product.try_get("limit_per_member")?;
    let points_cost = unit_price
        .checked_mul(quantity)
        .filter(|cost| *cost <= MAX_CREDITS)
        .ok_or_else(|| {
            LedgerError::Invalid("the redemption costs more points than exist".into())
        })?;
    if stock < quantity {
        return Err(LedgerError::OutOfStock {
            available: stock,
            requested: quantity,
        }
        .into());
    }
    if let Some(limit) = limit {
        let taken: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM redemptions
             WHERE product_id = $1 AND user_id = $2 AND status <> 'cancelled'",
        )
        .bind(product_id)
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
        if taken + quantity > limit {
            return Err(LedgerError::Conflict(format!(
                "at most {limit} of this product per member; {taken} already redeemed"
            ))
            .into());
        }
    }
    ensure_spendable(uow, conn, user_id, points_cost).await?;
    // Nothing can refuse from here on.
    uow.load_merchant(conn, &merchant_id).await?;
    sqlx::query("UPDATE products SET stock = stock - $1, updated_at = $2 WHERE id = $3")
        .bind(quantity)
        .bind(uow.now_ms)
        .bind(product_id)
        .execute(&mut *conn)
        .await?;
    let id = new_id("rdm");
    let description = format!("{quantity} × {name}");
    let meta = TransferMeta {
        description: Some(&description),
        actor: Some(actor),
        ..TransferMeta::kind(TransferKind::Redemption)
    };
    let to = Side::Merchant(&merchant_id);
    let (transaction_id, _) =
        debit_watching_threshold(uow, conn, user_id, points_cost, to, &meta).await?;
    sqlx::query(
        "INSERT INTO redemptions (id, product_id, merchant_id, user_id, product_name, quantity,
             unit_price, points_cost, status, transfer_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10)",
    )
    .bind(&id)
    .bind(product_id)
    .bind(&merchant_id)
    .bind(user_id)
    .bind(&name)
    .bind(quantity)
    .bind(unit_price)
    .bind(points_cost)
    .bind(&transaction_id)
    .bind(uow.now_ms)
    .execute(&mut *conn)
    .await?;
    let receipt = RedemptionReceipt {
        id,
        user_id: user_id.to_string(),
        product_id: product_id.to_string(),
        product_name: name,
        merchant_id,
        quantity,
        unit_price,
        points_cost,
        status: RedemptionStatus::Pending,
        transaction_id,
        balance_after: Some(balance(uow, user_id)),
        created_at_ms: uow.now_ms,
    };
    announce(uow, conn, EventType::RedemptionCreated, &receipt).await?;
    Ok(Outcome::Redeemed(Box::new(receipt)))
}

pub(super) async fn cancel(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    redemption_id: &str,
    by: &Canceller,
) -> Result<Outcome, StoreError> {
    let sql = format!(
        "SELECT product_id, merchant_id, user_id, product_name, quantity, unit_price, points_cost,
                status, transfer_id, created_at
         FROM redemptions WHERE id = $1{}",
        uow.dialect.row_lock()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(redemption_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(LedgerError::NotFound("redemption"))?;
    let user_id: String = row.try_get("user_id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let allowed = match by {
        Canceller::Member(member) => *member == user_id,
        Canceller::Merchant(merchant) => *merchant == merchant_id,
        Canceller::Admin(_) => true,
    };
    if !allowed {
        // Someone else's redemption reads as none.
        return Err(LedgerError::NotFound("redemption").into());
    }
    let status: String = row.try_get("status")?;
    match RedemptionStatus::parse(&status) {
        Some(RedemptionStatus::Pending) => {}
        Some(RedemptionStatus::Cancelled) => {
            return Err(
                LedgerError::Conflict("this redemption is already cancelled".into()).into(),
            );
        }
        _ => {
            return Err(LedgerError::Conflict(format!(
                "a {status} redemption cannot be cancelled"
            ))
            .into());
        }
    }
    let points_cost: i64 = row.try_get("points_cost")?;
    let redeemed_in: String = row.try_get("transfer_id")?;
    super::require_user(uow, conn, &user_id).await?;
    uow.load_merchant(conn, &merchant_id).await?;
    // Nothing can refuse from here on: the merchant's account holds every pending
    // redemption's points (merchants cannot spend them).
    let expires_at = refund_expiry(conn, &redeemed_in, points_cost).await?;
    let meta = TransferMeta {
        refund_of: Some(&redeemed_in),
        actor: Some(by.id()),
        description: Some("Redemption cancelled"),
        ..TransferMeta::kind(TransferKind::RedemptionRefund)
    };
    let spec = GrantSpec {
        amount: points_cost,
        source: GrantSource::Refund.as_str(),
        from: Side::Merchant(&merchant_id),
        priority: 0,
        expires_at,
    };
    let (transaction_id, _) = uow.grant(&user_id, spec, &meta);
    let product_id: String = row.try_get("product_id")?;
    let quantity: i64 = row.try_get("quantity")?;
    sqlx::query("UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3")
        .bind(quantity)
        .bind(uow.now_ms)
        .bind(&product_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE redemptions SET status = 'cancelled', refund_transfer_id = $1, cancelled_by = $2,
             updated_at = $3
         WHERE id = $4",
    )
    .bind(&transaction_id)
    .bind(by.id())
    .bind(uow.now_ms)
    .bind(redemption_id)
    .execute(&mut *conn)
    .await?;
    let receipt = RedemptionReceipt {
        id: redemption_id.to_string(),
        balance_after: matches!(by, Canceller::Member(_)).then(|| balance(uow, &user_id)),
        user_id,
        product_id,
        product_name: row.try_get("product_name")?,
        merchant_id,
        quantity,
        unit_price: row.try_get("unit_price")?,
        points_cost,
        status: RedemptionStatus::Cancelled,
        transaction_id,
        created_at_ms: row.try_get("created_at")?,
    };
    announce(uow, conn, EventType::RedemptionCancelled, &receipt).await?;
    Ok(Outcome::RedemptionCancelled(Box::new(receipt)))
}

/// The redemption's event, created in its transaction, delivered to the endpoints that want it.
async fn announce(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    event: EventType,
    receipt: &RedemptionReceipt,
) -> Result<(), StoreError> {
    let data = serde_json::json!({
        "redemption_id": receipt.id, "user_id": receipt.user_id,
        "merchant_id": receipt.merchant_id, "product_id": receipt.product_id,
        "quantity": receipt.quantity, "points_cost": receipt.points_cost,
        "status": receipt.status.as_str(),
    });
    uow.emit(conn, event, &data).await?;
    Ok(())
}
