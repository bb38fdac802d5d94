//! Each command's own checks and effects, on top of the batch primitives. A command either
//! succeeds completely or returns an error; the writer rolls a failed command back to its
//! savepoint, so a refusal leaves no trace.

use bursar_core::{GrantSource, HoldStatus, LedgerError, SystemAccount, TransferKind};
use sqlx::{AnyConnection, Row};

use super::batch::{Batch, TransferMeta, UserAccount};
use super::{
    AdjustmentReceipt, CaptureReceipt, Command, GrantReceipt, HoldReceipt, RefundReceipt, Reply,
    SpendReceipt, VoidReceipt,
};
use crate::StoreError;
use crate::audit::{self, AuditRecord};
use crate::clock::rfc3339;
use crate::ids::new_id;

pub(crate) async fn apply(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    command: &Command,
) -> Result<Reply, StoreError> {
    match command {
        Command::Grant {
            user_id,
            amount,
            source,
            priority,
            expires_at_ms,
            description,
            actor,
        } => {
            let mut account = batch.lock_user(conn, user_id).await?;
            let meta = TransferMeta {
                description: description.as_deref(),
                actor: actor.as_deref(),
                ..TransferMeta::kind(source.transfer_kind())
            };
            let (posted, grant_id) = batch
                .grant(
                    conn,
                    &mut account,
                    amount.get(),
                    *source,
                    source.funding_account(),
                    *priority,
                    *expires_at_ms,
                    meta,
                )
                .await?;
            Ok(Reply::new(
                201,
                &GrantReceipt {
                    transaction_id: posted.transfer_id,
                    grant_id,
                    user_id: user_id.clone(),
                    amount: amount.get(),
                    balance_after: posted.balance_after,
                },
            ))
        }
        Command::Spend {
            user_id,
            amount,
            description,
            metadata,
            actor,
        } => {
            let mut account = batch.lock_user(conn, user_id).await?;
            ensure_spendable(batch, conn, &mut account, amount.get()).await?;
            let meta = TransferMeta {
                description: description.as_deref(),
                metadata: metadata.as_deref(),
                actor: Some(actor),
                ..TransferMeta::kind(TransferKind::Spend)
            };
            let (posted, paid_by) = batch
                .debit(
                    conn,
                    &mut account,
                    amount.get(),
                    SystemAccount::Revenue,
                    meta,
                )
                .await?;
            Ok(Reply::new(
                200,
                &SpendReceipt {
                    transaction_id: posted.transfer_id,
                    user_id: user_id.clone(),
                    amount: amount.get(),
                    balance_after: posted.balance_after,
                    available_after: account.available(),
                    paid_by,
                },
            ))
        }
        Command::Refund {
            transfer_id,
            amount,
            actor,
        } => refund(batch, conn, transfer_id, amount.map(|a| a.get()), actor).await,
        Command::Hold {
            user_id,
            amount,
            expires_in_ms,
            description,
            creator,
        } => {
            let mut account = batch.lock_user(conn, user_id).await?;
            ensure_spendable(batch, conn, &mut account, amount.get()).await?;
            let id = new_id("hld");
            let expires_at = batch.now_ms + expires_in_ms;
            sqlx::query(
                "INSERT INTO holds (id, account_id, user_id, creator, amount, status, description, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $8)",
            )
            .bind(&id)
            .bind(&account.id)
            .bind(user_id)
            .bind(creator)
            .bind(amount.get())
            .bind(description.as_deref())
            .bind(expires_at)
            .bind(batch.now_ms)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE accounts SET held = held + $1 WHERE id = $2")
                .bind(amount.get())
                .bind(&account.id)
                .execute(&mut *conn)
                .await?;
            account.held += amount.get();
            Ok(Reply::new(
                201,
                &HoldReceipt {
                    id,
                    user_id: user_id.clone(),
                    status: HoldStatus::Held.as_str(),
                    amount: amount.get(),
                    expires_at: rfc3339(expires_at),
                    available_after: account.available(),
                },
            ))
        }
        Command::Capture {
            hold_id,
            amount,
            creator,
        } => {
            let (mut account, hold) = lock_open_hold(batch, conn, hold_id, creator).await?;
            let captured = amount.map(|a| a.get()).unwrap_or(hold.amount);
            if captured > hold.amount {
                return Err(LedgerError::Invalid(format!(
                    "amount {captured} exceeds the held amount {}",
                    hold.amount
                ))
                .into());
            }
            // Expire grants while the hold still reserves its credits, so expiry cannot take them.
            batch.expire_overdue_grants(conn, &mut account).await?;
            settle_hold(batch, conn, &mut account, &hold, HoldStatus::Captured).await?;
            let meta = TransferMeta {
                hold_id: Some(hold_id),
                description: hold.description.as_deref(),
                actor: Some(creator),
                ..TransferMeta::kind(TransferKind::Spend)
            };
            let (posted, _) = batch
                .debit(conn, &mut account, captured, SystemAccount::Revenue, meta)
                .await?;
            sqlx::query("UPDATE holds SET captured = $1, transfer_id = $2 WHERE id = $3")
                .bind(captured)
                .bind(&posted.transfer_id)
                .bind(hold_id)
                .execute(&mut *conn)
                .await?;
            Ok(Reply::new(
                200,
                &CaptureReceipt {
                    id: hold_id.clone(),
                    status: HoldStatus::Captured.as_str(),
                    transaction_id: posted.transfer_id,
                    captured,
                    released: hold.amount - captured,
                    balance_after: posted.balance_after,
                },
            ))
        }
        Command::Void { hold_id, creator } => {
            let (mut account, hold) = lock_open_hold(batch, conn, hold_id, creator).await?;
            settle_hold(batch, conn, &mut account, &hold, HoldStatus::Voided).await?;
            Ok(Reply::new(
                200,
                &VoidReceipt {
                    id: hold_id.clone(),
                    status: HoldStatus::Voided.as_str(),
                    released: hold.amount,
                },
            ))
        }
        Command::Adjust {
            user_id,
            amount,
            reason,
            actor,
            ip,
        } => {
            let mut account = batch.lock_user(conn, user_id).await?;
            let meta = TransferMeta {
                description: Some(reason),
                actor: Some(actor),
                ..TransferMeta::kind(TransferKind::Adjustment)
            };
            let posted = if *amount > 0 {
                let (posted, _) = batch
                    .grant(
                        conn,
                        &mut account,
                        *amount,
                        GrantSource::Adjustment,
                        SystemAccount::Issuance,
                        0,
                        None,
                        meta,
                    )
                    .await?;
                posted
            } else {
                let debit = amount.unsigned_abs() as i64;
                ensure_spendable(batch, conn, &mut account, debit).await?;
                let (posted, _) = batch
                    .debit(conn, &mut account, debit, SystemAccount::Issuance, meta)
                    .await?;
                posted
            };
            let entry = AuditRecord {
                actor_id: Some(actor),
                actor_kind: "user",
                action: "ledger.adjustment",
                target: Some(user_id),
                details: serde_json::json!({
                    "amount": amount,
                    "reason": reason,
                    "transaction_id": posted.transfer_id,
                }),
                ip: ip.as_deref(),
            };
            audit::record(conn, entry, batch.now_ms).await?;
            Ok(Reply::new(
                201,
                &AdjustmentReceipt {
                    transaction_id: posted.transfer_id,
                    user_id: user_id.clone(),
                    amount: *amount,
                    reason: reason.clone(),
                    balance_after: posted.balance_after,
                },
            ))
        }
        Command::ExpireDue { max_accounts } => {
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT owner_id FROM accounts WHERE owner_kind = 'user' AND asset = $1 AND id IN (
                     SELECT account_id FROM grants
                      WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $2
                     UNION
                     SELECT account_id FROM holds WHERE status = 'held' AND expires_at <= $2)
                 ORDER BY id LIMIT $3",
            )
            .bind(&batch.asset)
            .bind(batch.now_ms)
            .bind(*max_accounts)
            .fetch_all(&mut *conn)
            .await?;
            for user_id in &users {
                let mut account = batch.lock_user(conn, user_id).await?;
                batch.release_overdue_holds(conn, &mut account).await?;
                batch.expire_overdue_grants(conn, &mut account).await?;
            }
            Ok(Reply::new(
                200,
                &serde_json::json!({ "accounts": users.len() }),
            ))
        }
    }
}

/// Settles overdue holds and grants on the account, then refuses with `insufficient_credits`
/// unless `amount` fits in what is available (plus any overdraft).
async fn ensure_spendable(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    account: &mut UserAccount,
    amount: i64,
) -> Result<(), StoreError> {
    batch.release_overdue_holds(conn, account).await?;
    batch.expire_overdue_grants(conn, account).await?;
    if account.spendable() < amount {
        return Err(LedgerError::InsufficientCredits {
            available: account.available(),
            requested: amount,
        }
        .into());
    }
    Ok(())
}

struct OpenHold {
    id: String,
    amount: i64,
    description: Option<String>,
}

/// Locks the hold's account and checks that the hold is still open and belongs to `creator`.
/// A hold of someone else's reads as not found, so ids cannot be probed.
async fn lock_open_hold(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    hold_id: &str,
    creator: &str,
) -> Result<(UserAccount, OpenHold), StoreError> {
    let owner: Option<(String, String)> =
        sqlx::query_as("SELECT user_id, creator FROM holds WHERE id = $1")
            .bind(hold_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((user_id, _)) = owner.filter(|(_, hold_creator)| hold_creator == creator) else {
        return Err(LedgerError::NotFound("hold").into());
    };
    // Every change to a hold locks its account first, so the hold read next is current.
    let account = batch.lock_user(conn, &user_id).await?;
    let row =
        sqlx::query("SELECT amount, status, expires_at, description FROM holds WHERE id = $1")
            .bind(hold_id)
            .fetch_one(&mut *conn)
            .await?;
    let status: String = row.try_get("status")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if status != HoldStatus::Held.as_str() {
        return Err(LedgerError::Conflict(format!("the hold is already {status}")).into());
    }
    if expires_at <= batch.now_ms {
        return Err(LedgerError::Conflict("the hold has expired".into()).into());
    }
    Ok((
        account,
        OpenHold {
            id: hold_id.to_string(),
            amount: row.try_get("amount")?,
            description: row.try_get("description")?,
        },
    ))
}

async fn settle_hold(
    batch: &Batch,
    conn: &mut AnyConnection,
    account: &mut UserAccount,
    hold: &OpenHold,
    status: HoldStatus,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE holds SET status = $1, settled_at = $2 WHERE id = $3 AND status = 'held'")
        .bind(status.as_str())
        .bind(batch.now_ms)
        .bind(&hold.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE accounts SET held = held - $1 WHERE id = $2")
        .bind(hold.amount)
        .bind(&account.id)
        .execute(&mut *conn)
        .await?;
    account.held -= hold.amount;
    Ok(())
}

/// Returns credits of a spend to the user as a new `refund` grant. The refund grant expires when
/// the latest of the grants that paid for the spend would have (never, if any of them never
/// expires or the spend ran into overdraft), so a refund cannot extend promotional credits.
async fn refund(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    transfer_id: &str,
    amount: Option<i64>,
    actor: &str,
) -> Result<Reply, StoreError> {
    let spend: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT a.owner_id, t.kind, t.amount FROM transfers t
         JOIN accounts a ON a.id = t.debit_account_id
         WHERE t.id = $1 AND a.owner_kind = 'user' AND t.asset = $2",
    )
    .bind(transfer_id)
    .bind(&batch.asset)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, _, spent)) =
        spend.filter(|(_, kind, _)| kind == TransferKind::Spend.as_str())
    else {
        return Err(LedgerError::NotFound("spend transaction").into());
    };
    // Refunds of one spend are serialised by the lock on the user's account.
    let mut account = batch.lock_user(conn, &user_id).await?;
    let refunded: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transfers WHERE refund_of = $1",
    )
    .bind(transfer_id)
    .fetch_one(&mut *conn)
    .await?;
    let refundable = spent - refunded;
    let amount = amount.unwrap_or(refundable);
    if refundable == 0 {
        return Err(LedgerError::Conflict("the spend is already fully refunded".into()).into());
    }
    if amount > refundable {
        return Err(LedgerError::Conflict(format!(
            "only {refundable} of this spend is left to refund"
        ))
        .into());
    }
    let paid: (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(tg.amount), 0) AS BIGINT),
                CAST(COUNT(g.expires_at) AS BIGINT) - CAST(COUNT(*) AS BIGINT),
                MAX(g.expires_at)
         FROM transfer_grants tg JOIN grants g ON g.id = tg.grant_id
         WHERE tg.transfer_id = $1",
    )
    .bind(transfer_id)
    .fetch_one(&mut *conn)
    .await?;
    let (covered_by_grants, never_expiring_negated, latest_expiry) = paid;
    let expires_at = if covered_by_grants < spent || never_expiring_negated != 0 {
        None
    } else {
        latest_expiry
    };
    let meta = TransferMeta {
        refund_of: Some(transfer_id),
        actor: Some(actor),
        ..TransferMeta::kind(TransferKind::Refund)
    };
    let (posted, _) = batch
        .grant(
            conn,
            &mut account,
            amount,
            GrantSource::Refund,
            SystemAccount::Revenue,
            0,
            expires_at,
            meta,
        )
        .await?;
    Ok(Reply::new(
        200,
        &RefundReceipt {
            transaction_id: posted.transfer_id,
            refund_of: transfer_id.to_string(),
            user_id,
            amount,
            total_refunded: refunded + amount,
            balance_after: posted.balance_after,
        },
    ))
}
