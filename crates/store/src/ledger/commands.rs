//! Each command's checks and effects on the unit of work. Every command checks everything that
//! can refuse it before it changes anything, so a refusal leaves no trace.

use bursar_core::{GrantSource, HoldStatus, LedgerError, SystemAccount, TransferKind};
use sqlx::AnyConnection;

use super::state::{GrantSpec, NewHold, TransferMeta, UnitOfWork};
use super::{
    AdjustmentReceipt, CaptureReceipt, Command, GrantReceipt, HoldReceipt, RefundReceipt, Reply,
    SpendReceipt, VoidReceipt,
};
use crate::StoreError;
use crate::audit::AuditRecord;
use crate::clock::rfc3339;
use crate::ids::new_id;

/// The users and holds a command will touch, so a batch can load them all up front.
pub(crate) fn wants(command: &Command) -> (Option<&str>, Option<&str>) {
    match command {
        Command::Grant { user_id, .. }
        | Command::Spend { user_id, .. }
        | Command::Hold { user_id, .. }
        | Command::Adjust { user_id, .. } => (Some(user_id), None),
        Command::Capture { hold_id, .. } | Command::Void { hold_id, .. } => (None, Some(hold_id)),
        Command::Refund { .. }
        | Command::ExpireDue { .. }
        | Command::Fulfil(_)
        | Command::RefundOrder(_) => (None, None),
    }
}

pub(crate) async fn apply(
    uow: &mut UnitOfWork,
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
            require_user(uow, conn, user_id).await?;
            let meta = TransferMeta {
                description: description.as_deref(),
                actor: actor.as_deref(),
                ..TransferMeta::kind(source.transfer_kind())
            };
            let spec = GrantSpec {
                amount: amount.get(),
                source: source.as_str(),
                from: source.funding_account(),
                priority: *priority,
                expires_at: *expires_at_ms,
            };
            let (transaction_id, grant_id) = uow.grant(user_id, spec, &meta);
            Ok(Reply::new(
                201,
                &GrantReceipt {
                    transaction_id,
                    grant_id,
                    user_id: user_id.clone(),
                    amount: amount.get(),
                    balance_after: balance(uow, user_id),
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
            ensure_spendable(uow, conn, user_id, amount.get()).await?;
            let meta = TransferMeta {
                description: description.as_deref(),
                metadata: metadata.as_deref(),
                actor: Some(actor),
                ..TransferMeta::kind(TransferKind::Spend)
            };
            let (transaction_id, paid_by) =
                uow.debit(user_id, amount.get(), SystemAccount::Revenue, &meta);
            let account = uow.account(user_id).expect("loaded above");
            Ok(Reply::new(
                200,
                &SpendReceipt {
                    transaction_id,
                    user_id: user_id.clone(),
                    amount: amount.get(),
                    balance_after: account.balance,
                    available_after: account.available(),
                    paid_by,
                },
            ))
        }
        Command::Refund {
            transfer_id,
            amount,
            actor,
        } => refund(uow, conn, transfer_id, amount.map(|a| a.get()), actor).await,
        Command::Hold {
            user_id,
            amount,
            expires_in_ms,
            description,
            creator,
        } => {
            ensure_spendable(uow, conn, user_id, amount.get()).await?;
            let account_id = uow.account(user_id).expect("loaded above").id.clone();
            let expires_at = uow.now_ms + expires_in_ms;
            let id = new_id("hld");
            uow.add_hold(NewHold {
                id: id.clone(),
                account_id,
                user_id: user_id.clone(),
                creator: creator.clone(),
                amount: amount.get(),
                description: description.clone(),
                expires_at,
            });
            let account = uow.account_mut(user_id).expect("loaded above");
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
            let (user_id, held) = open_hold(uow, conn, hold_id, creator).await?;
            let captured = amount.map(|a| a.get()).unwrap_or(held);
            if captured > held {
                return Err(LedgerError::Invalid(format!(
                    "amount {captured} exceeds the held amount {held}"
                ))
                .into());
            }
            release_hold(uow, &user_id, hold_id, HoldStatus::Captured, held);
            let description = uow.holds[hold_id.as_str()].description.clone();
            let meta = TransferMeta {
                hold_id: Some(hold_id),
                description: description.as_deref(),
                actor: Some(creator),
                ..TransferMeta::kind(TransferKind::Spend)
            };
            let (transaction_id, _) = uow.debit(&user_id, captured, SystemAccount::Revenue, &meta);
            let hold = uow.hold_mut(hold_id).expect("loaded above");
            hold.captured = Some(captured);
            hold.transfer_id = Some(transaction_id.clone());
            Ok(Reply::new(
                200,
                &CaptureReceipt {
                    id: hold_id.clone(),
                    status: HoldStatus::Captured.as_str(),
                    transaction_id,
                    captured,
                    released: held - captured,
                    balance_after: balance(uow, &user_id),
                },
            ))
        }
        Command::Void { hold_id, creator } => {
            let (user_id, held) = open_hold(uow, conn, hold_id, creator).await?;
            release_hold(uow, &user_id, hold_id, HoldStatus::Voided, held);
            Ok(Reply::new(
                200,
                &VoidReceipt {
                    id: hold_id.clone(),
                    status: HoldStatus::Voided.as_str(),
                    released: held,
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
            let meta = TransferMeta {
                description: Some(reason),
                actor: Some(actor),
                ..TransferMeta::kind(TransferKind::Adjustment)
            };
            let transaction_id = if *amount > 0 {
                require_user(uow, conn, user_id).await?;
                let source = GrantSource::Adjustment;
                let spec = GrantSpec {
                    amount: *amount,
                    source: source.as_str(),
                    from: SystemAccount::Issuance,
                    priority: 0,
                    expires_at: None,
                };
                let (id, _) = uow.grant(user_id, spec, &meta);
                id
            } else {
                let debit = amount.unsigned_abs() as i64;
                ensure_spendable(uow, conn, user_id, debit).await?;
                uow.debit(user_id, debit, SystemAccount::Issuance, &meta).0
            };
            uow.audit(AuditRecord {
                actor_id: Some(actor),
                actor_kind: "user",
                action: "ledger.adjustment",
                target: Some(user_id),
                details: serde_json::json!({
                    "amount": amount,
                    "reason": reason,
                    "transaction_id": transaction_id,
                }),
                ip: ip.as_deref(),
            });
            Ok(Reply::new(
                201,
                &AdjustmentReceipt {
                    transaction_id,
                    user_id: user_id.clone(),
                    amount: *amount,
                    reason: reason.clone(),
                    balance_after: balance(uow, user_id),
                },
            ))
        }
        Command::Fulfil(event) => super::orders::fulfil(uow, conn, event).await,
        Command::RefundOrder(refund) => {
            let receipt = super::orders::refund_order(uow, conn, refund, "pending").await?;
            Ok(Reply::new(200, &receipt))
        }
        Command::ExpireDue { max_accounts } => {
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT owner_id FROM accounts WHERE owner_kind = 'user' AND asset = $1 AND id IN (
                     SELECT account_id FROM grants
                      WHERE live AND expires_at IS NOT NULL AND expires_at <= $2
                     UNION
                     SELECT account_id FROM holds WHERE status = 'held' AND expires_at <= $2)
                 ORDER BY id LIMIT $3",
            )
            .bind(&uow.asset)
            .bind(uow.now_ms)
            .bind(*max_accounts)
            .fetch_all(&mut *conn)
            .await?;
            let ids: Vec<&str> = users.iter().map(String::as_str).collect();
            uow.load_users(conn, &ids).await?;
            for user in &ids {
                uow.settle_overdue(user);
            }
            Ok(Reply::new(
                200,
                &serde_json::json!({ "accounts": users.len() }),
            ))
        }
    }
}

fn balance(uow: &UnitOfWork, user_id: &str) -> i64 {
    uow.account(user_id).map_or(0, |a| a.balance)
}

async fn require_user(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(), StoreError> {
    uow.load_users(conn, &[user_id]).await?;
    if uow.account(user_id).is_none() {
        return Err(LedgerError::NotFound("user").into());
    }
    Ok(())
}

/// Settles overdue holds and grants on the account, then refuses with `insufficient_credits`
/// unless `amount` fits in what is available (plus any overdraft).
async fn ensure_spendable(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
) -> Result<(), StoreError> {
    require_user(uow, conn, user_id).await?;
    uow.settle_overdue(user_id);
    let account = uow.account(user_id).expect("loaded above");
    if account.spendable() < amount {
        return Err(LedgerError::InsufficientCredits {
            available: account.available(),
            requested: amount,
        }
        .into());
    }
    Ok(())
}

/// Checks that the hold exists, belongs to `creator` and is still open; returns its user and
/// amount. Someone else's hold reads as not found, so ids cannot be probed. Overdue grants are
/// settled first, while the hold still reserves its credits, so expiry cannot take them.
async fn open_hold(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    hold_id: &str,
    creator: &str,
) -> Result<(String, i64), StoreError> {
    uow.load_holds(conn, &[hold_id]).await?;
    let Some(hold) = uow.holds.get(hold_id).filter(|h| h.creator == creator) else {
        return Err(LedgerError::NotFound("hold").into());
    };
    let user_id = hold.user_id.clone();
    uow.settle_overdue(&user_id);
    let hold = &uow.holds[hold_id];
    if hold.status != HoldStatus::Held {
        return Err(LedgerError::Conflict(format!("the hold is already {}", hold.status)).into());
    }
    Ok((user_id, hold.amount))
}

fn release_hold(
    uow: &mut UnitOfWork,
    user_id: &str,
    hold_id: &str,
    status: HoldStatus,
    amount: i64,
) {
    let now = uow.now_ms;
    let hold = uow.hold_mut(hold_id).expect("loaded by open_hold");
    hold.status = status;
    hold.settled_at = Some(now);
    if let Some(account) = uow.account_mut(user_id) {
        account.held -= amount;
    }
}

/// Returns credits of a spend to the user as a new `refund` grant. The refund grant expires when
/// the latest of the grants that paid for the spend would have (never, if any of them never
/// expires or the spend ran into overdraft), so a refund cannot extend promotional credits.
async fn refund(
    uow: &mut UnitOfWork,
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
    let expires_at = if covered_by_grants < spent || never_expiring > 0 {
        None
    } else {
        latest_expiry
    };
    let meta = TransferMeta {
        refund_of: Some(transfer_id),
        actor: Some(actor),
        ..TransferMeta::kind(TransferKind::Refund)
    };
    let source = GrantSource::Refund;
    let spec = GrantSpec {
        amount,
        source: source.as_str(),
        from: SystemAccount::Revenue,
        priority: 0,
        expires_at,
    };
    let (transaction_id, _) = uow.grant(&user_id, spec, &meta);
    *uow.refunded_in_batch
        .entry(transfer_id.to_string())
        .or_default() += amount;
    Ok(Reply::new(
        200,
        &RefundReceipt {
            transaction_id,
            refund_of: transfer_id.to_string(),
            balance_after: balance(uow, &user_id),
            user_id,
            amount,
            total_refunded: refunded + amount,
        },
    ))
}
