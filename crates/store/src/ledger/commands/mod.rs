//! Each command's checks and effects on the unit of work, one file per command (the orders'
//! commands are in `ledger/orders.rs`). Every command checks everything that can refuse it
//! before it changes anything, so a refusal leaves no trace.

mod adjust;
mod claim_reward;
mod daily_gift;
mod expire;
mod grant;
mod holds;
mod prepare_topup;
mod redeem;
mod refund;
mod spend;

use bursar_core::{LedgerError, SystemAccount, TransferKind, topup};
use sqlx::AnyConnection;

use super::state::{Side, TransferMeta, UnitOfWork};
use super::{Command, Outcome, PaidBy};
use crate::StoreError;

/// Debits credits the service used (a spend, a captured hold) to `revenue`. When the debit
/// takes the balance below the user's auto top-up threshold, the top-up job and a `balance_low`
/// notification are enqueued in the same transaction: the writer knows the new balance here, so the check costs nothing for
/// users without a rule and nothing but a comparison for the rest.
pub(super) async fn debit_used_credits(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
    meta: &TransferMeta<'_>,
) -> Result<(String, Vec<PaidBy>), StoreError> {
    let revenue = Side::System(SystemAccount::Revenue);
    debit_watching_threshold(uow, conn, user_id, amount, revenue, meta).await
}

/// Debits `amount` from the user to `to` (revenue, or a merchant for a redemption), burning
/// grants in order, and reacts to a crossing of the auto top-up threshold as
/// `debit_used_credits` says.
pub(super) async fn debit_watching_threshold(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
    to: Side<'_>,
    meta: &TransferMeta<'_>,
) -> Result<(String, Vec<PaidBy>), StoreError> {
    let before = uow.account(user_id).map(|a| (a.balance, a.topup_threshold));
    let (transaction_id, paid_by) = uow.debit_preferring(user_id, amount, to, meta, |_| false);
    if let Some((before, Some(threshold))) = before {
        let after = uow.account(user_id).map_or(before, |a| a.balance);
        if topup::crossed_below(before, after, threshold) {
            // Once per crossing: the debit's transaction names the occasion.
            let job = crate::auto_topup::topup_job(user_id, &transaction_id);
            uow.enqueue(conn, &job).await?;
            // Told once per crossing, not once per debit below the threshold.
            let lang = crate::notifications::language_on(conn, user_id).await?;
            let told = bursar_core::messages::balance_low(lang, after, threshold);
            let send = crate::notifications::record_on(conn, user_id, &told, uow.now_ms).await?;
            uow.enqueue(conn, &send).await?;
            let data = serde_json::json!({"user_id": user_id, "balance": after,
                                          "threshold": threshold});
            uow.emit(conn, bursar_core::EventType::BalanceLow, &data)
                .await?;
        }
    }
    Ok((transaction_id, paid_by))
}

/// The users and holds a command will touch, so a batch can load them all up front.
pub(crate) fn wants(command: &Command) -> (Option<&str>, Option<&str>) {
    match command {
        Command::Grant { user_id, .. }
        | Command::Spend { user_id, .. }
        | Command::Hold { user_id, .. }
        | Command::Adjust { user_id, .. } => (Some(user_id), None),
        Command::Capture { hold_id, .. } | Command::Void { hold_id, .. } => (None, Some(hold_id)),
        Command::GrantAllowance { user_id, .. }
        | Command::ClaimDailyGift { user_id, .. }
        | Command::ClaimReward { user_id, .. }
        | Command::Redeem { user_id, .. }
        | Command::PrepareTopup { user_id, .. } => (Some(user_id), None),
        Command::Refund { .. }
        | Command::ExpireDue { .. }
        | Command::Fulfil(_)
        | Command::FulfilForJob(..)
        | Command::RefundOrder(_)
        | Command::CancelRedemption { .. } => (None, None),
    }
}

pub(crate) async fn apply(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    command: &Command,
) -> Result<Outcome, StoreError> {
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
            let grant = grant::NewGrant {
                amount: amount.get(),
                source: *source,
                priority: *priority,
                expires_at_ms: *expires_at_ms,
                description: description.as_deref(),
                metadata: None,
                actor: actor.as_deref(),
            };
            grant::grant(uow, conn, user_id, &grant).await
        }
        Command::Spend {
            user_id,
            amount,
            description,
            metadata,
            actor,
        } => {
            let meta = TransferMeta {
                description: description.as_deref(),
                metadata: metadata.as_deref(),
                actor: Some(actor),
                ..TransferMeta::kind(TransferKind::Spend)
            };
            spend::spend(uow, conn, user_id, amount.get(), &meta).await
        }
        Command::Refund {
            transfer_id,
            amount,
            actor,
        } => refund::refund(uow, conn, transfer_id, amount.map(|a| a.get()), actor).await,
        Command::Hold {
            user_id,
            amount,
            expires_in_ms,
            description,
            creator,
        } => {
            let hold = holds::NewHoldRequest {
                amount: amount.get(),
                expires_in_ms: *expires_in_ms,
                description: description.as_deref(),
                creator,
            };
            holds::hold(uow, conn, user_id, &hold).await
        }
        Command::Capture {
            hold_id,
            amount,
            creator,
        } => holds::capture(uow, conn, hold_id, amount.map(|a| a.get()), creator).await,
        Command::Void { hold_id, creator } => holds::void(uow, conn, hold_id, creator).await,
        Command::Adjust {
            user_id,
            amount,
            reason,
            actor,
            ip,
        } => adjust::adjust(uow, conn, user_id, *amount, reason, actor, ip.as_deref()).await,
        Command::GrantAllowance {
            subscription_id,
            user_id,
            day,
            amount,
            expires_at_ms,
        } => {
            // Refusals first: the day's row below is a write.
            require_user(uow, conn, user_id).await?;
            if !crate::subscriptions::claim_day_on(conn, subscription_id, day, uow.now_ms).await? {
                return Ok(Outcome::AllowanceAlreadyGranted);
            }
            let description = format!("Daily allowance for {day}");
            let grant = grant::NewGrant {
                amount: amount.get(),
                source: bursar_core::GrantSource::Allowance,
                priority: 0,
                expires_at_ms: Some(*expires_at_ms),
                description: Some(&description),
                metadata: None,
                actor: None,
            };
            grant::grant(uow, conn, user_id, &grant).await
        }
        Command::ClaimDailyGift {
            user_id,
            day,
            yesterday,
            schedule,
        } => daily_gift::claim(uow, conn, user_id, day, yesterday, schedule).await,
        Command::ClaimReward { user_id, item_id } => {
            claim_reward::claim(uow, conn, user_id, item_id).await
        }
        Command::Fulfil(event) => super::orders::fulfil(uow, conn, event).await,
        Command::FulfilForJob(event, job) => {
            // A fulfilment is never refused, so the job's record can follow it.
            let outcome = super::orders::fulfil(uow, conn, event).await?;
            let kept = crate::jobs::complete_in(conn, job, uow.now_ms).await?;
            Ok(match outcome {
                Outcome::Fulfilment(fulfilment) => Outcome::Fulfilment(super::Fulfilment {
                    job_completed: Some(kept),
                    ..fulfilment
                }),
                other => other,
            })
        }
        Command::Redeem {
            user_id,
            product_id,
            quantity,
            actor,
        } => redeem::redeem(uow, conn, user_id, product_id, *quantity, actor).await,
        Command::CancelRedemption { redemption_id, by } => {
            redeem::cancel(uow, conn, redemption_id, by).await
        }
        Command::RefundOrder(refund) => {
            let receipt =
                super::orders::refund_order(uow, conn, refund, bursar_core::RefundStatus::Pending)
                    .await?;
            Ok(Outcome::OrderRefunded(receipt))
        }
        Command::ExpireDue { max_accounts } => expire::expire_due(uow, conn, *max_accounts).await,
        Command::PrepareTopup {
            user_id,
            settings,
            completes,
        } => prepare_topup::prepare(uow, conn, user_id, settings, completes.as_ref()).await,
    }
}

pub(super) fn balance(uow: &UnitOfWork, user_id: &str) -> i64 {
    uow.account(user_id).map_or(0, |a| a.balance)
}

pub(super) async fn require_user(
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

/// A suspended user's credits are frozen for spends, holds and captures, whoever asks (a
/// service key, a job); admins may still adjust and refund.
pub(super) async fn refuse_if_suspended(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(), StoreError> {
    require_user(uow, conn, user_id).await?;
    if uow.account(user_id).is_some_and(|a| a.suspended) {
        return Err(LedgerError::AccountSuspended.into());
    }
    Ok(())
}

/// Settles overdue holds and grants on the account, then refuses with `insufficient_credits`
/// unless `amount` fits in what is available (plus any overdraft).
pub(super) async fn ensure_spendable(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
) -> Result<(), StoreError> {
    require_user(uow, conn, user_id).await?;
    uow.settle_overdue(user_id);
    let account = uow.account(user_id).expect("loaded above");
    Ok(bursar_core::ensure_spendable(
        account.available(),
        account.spendable(),
        amount,
    )?)
}
