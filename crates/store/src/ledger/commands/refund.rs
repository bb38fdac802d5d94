//! `Refund`: returns (part of) a spend to the user.

use bursar_core::{GrantSource, LedgerError, SystemAccount, TransferKind};
use sqlx::AnyConnection;

use super::{balance, require_user};
use crate::StoreError;
use crate::ledger::state::{GrantSpec, Side, TransferMeta, UnitOfWork};
use crate::ledger::{Outcome, RefundReceipt};

/// When credits given back for a debit expire: when the latest of the grants that paid for it
/// would have (never, if any of them never expires or the debit ran into overdraft), so giving
/// them back cannot extend promotional credits.
pub(super) async fn refund_expiry(
    conn: &mut AnyConnection,
    transfer_id: &str,
    debited: i64,
) -> Result<Option<i64>, StoreError> {
    let (covered_by_grants, never_expiring, latest_expiry): (i64, i64, Option<i64>) =
        sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(tg.amount), 0) AS BIGINT),
                CAST(COUNT(*) AS BIGINT) - CAST(COUNT(g.expires_at) AS BIGINT),
                MAX(g.expires_at)
         FROM transfer_grants tg JOIN grants g ON g.id = tg.grant_id
         WHERE tg.transfer_id = $1",
        )
        .bind(transfer_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(if covered_by_grants < debited || never_expiring > 0 {
        None
    } else {
        latest_expiry
    })
}

/// Returns credits of a spend to the user as a new `refund` grant. The refund grant expires when
/// the latest of the grants that paid for the spend would have (never, if any of them never
/// expires or the spend ran into overdraft), so a refund cannot extend promotional credits.
pub(super) async fn refund(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    transfer_id: &str,
    amount: Option<i64>,
    actor: &str,
) -> Result<Outcome, StoreError> {
    let spend: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT a.owner_id, t.kind, t.amount FROM transfers t
         JOIN accounts a ON a.id = t.debit_account_id
         WHERE t.id = $1 AND a.owner_kind = 'user' AND t.asset = $2",
    )
    .bind(transfer_id)
    .bind(&uow.asset)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, _, spent)) =
        spend.filter(|(_, kind, _)| kind == TransferKind::Spend.as_str())
    else {
        return Err(LedgerError::NotFound("spend transaction").into());
    };
    require_user(uow, conn, &user_id).await?;
    let refunded_before: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transfers WHERE refund_of = $1",
    )
    .bind(transfer_id)
    .fetch_one(&mut *conn)
    .await?;
    let refunded = refunded_before + uow.refunded_in_batch.get(transfer_id).copied().unwrap_or(0);
    let refundable = spent - refunded;
    if refundable == 0 {
        return Err(LedgerError::Conflict("the spend is already fully refunded".into()).into());
    }
    let amount = amount.unwrap_or(refundable);
    if amount > refundable {
        return Err(LedgerError::Conflict(format!(
            "only {refundable} of this spend is left to refund"
        ))
        .into());
    }
    let expires_at = refund_expiry(conn, transfer_id, spent).await?;
    let meta = TransferMeta {
        refund_of: Some(transfer_id),
        actor: Some(actor),
        ..TransferMeta::kind(TransferKind::Refund)
    };
    let source = GrantSource::Refund;
    let spec = GrantSpec {
        amount,
        source: source.as_str(),
        from: Side::System(SystemAccount::Revenue),
        priority: 0,
        expires_at,
    };
    let (transaction_id, _) = uow.grant(&user_id, spec, &meta);
    *uow.refunded_in_batch
        .entry(transfer_id.to_string())
        .or_default() += amount;
    Ok(Outcome::Refunded(RefundReceipt {
        transaction_id,
        refund_of: transfer_id.to_string(),
        balance_after: balance(uow, &user_id),
        user_id,
        amount,
        total_refunded: refunded + amount,
    }))
}
