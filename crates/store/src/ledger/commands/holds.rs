//! `Hold`, `Capture` and `Void`: two-phase spends. A hold reserves credits; a capture spends at
//! most the held amount and releases the rest; a void releases everything.

use bursar_core::{CaptureSplit, HoldStatus, LedgerError, TransferKind, split_capture};
use sqlx::AnyConnection;

use super::{balance, ensure_spendable};
use crate::StoreError;
use crate::ids::new_id;
use crate::ledger::state::{NewHold, TransferMeta, UnitOfWork};
use crate::ledger::{CaptureReceipt, HoldReceipt, Outcome, VoidReceipt};

pub(super) struct NewHoldRequest<'a> {
    pub amount: i64,
    pub expires_in_ms: i64,
    pub description: Option<&'a str>,
    pub creator: &'a str,
}

pub(super) async fn hold(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    request: &NewHoldRequest<'_>,
) -> Result<Outcome, StoreError> {
    let amount = request.amount;
    super::refuse_if_suspended(uow, conn, user_id).await?;
    ensure_spendable(uow, conn, user_id, amount).await?;
    let account = uow.account(user_id).expect("loaded above");
    // With an overdraft, holds could reserve up to twice the largest balance; what is held
    // stays within ±(2^53 − 1) like every other figure of an account.
    if account.held.saturating_add(amount) > bursar_core::MAX_CREDITS {
        return Err(LedgerError::BalanceOutOfRange {
            account: account.id.clone(),
        }
        .into());
    }
    let account_id = account.id.clone();
    let expires_at = uow.now_ms + request.expires_in_ms;
    let id = new_id("hld");
    uow.add_hold(NewHold {
        id: id.clone(),
        account_id,
        user_id: user_id.to_string(),
        creator: request.creator.to_string(),
        amount,
        description: request.description.map(str::to_string),
        expires_at,
    });
    let account = uow.account_mut(user_id).expect("loaded above");
    account.held += amount;
    Ok(Outcome::Held(HoldReceipt {
        id,
        user_id: user_id.to_string(),
        status: HoldStatus::Held,
        amount,
        expires_at_ms: expires_at,
        available_after: account.available(),
    }))
}

pub(super) async fn capture(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    hold_id: &str,
    amount: Option<i64>,
    creator: &str,
) -> Result<Outcome, StoreError> {
    let (user_id, held) = open_hold(uow, conn, hold_id, creator).await?;
    super::refuse_if_suspended(uow, conn, &user_id).await?;
    let CaptureSplit { captured, released } = split_capture(held, amount)?;
    release_hold(uow, &user_id, hold_id, HoldStatus::Captured, held);
    let description = uow.holds[hold_id].description.clone();
    let meta = TransferMeta {
        hold_id: Some(hold_id),
        description: description.as_deref(),
        actor: Some(creator),
        ..TransferMeta::kind(TransferKind::Spend)
    };
    let (transaction_id, _) =
        super::debit_used_credits(uow, conn, &user_id, captured, &meta).await?;
    let hold = uow.hold_mut(hold_id).expect("loaded above");
    hold.captured = Some(captured);
    hold.transfer_id = Some(transaction_id.clone());
    Ok(Outcome::Captured(CaptureReceipt {
        id: hold_id.to_string(),
        status: HoldStatus::Captured,
        transaction_id,
        captured,
        released,
        balance_after: balance(uow, &user_id),
    }))
}

pub(super) async fn void(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    hold_id: &str,
    creator: &str,
) -> Result<Outcome, StoreError> {
    let (user_id, held) = open_hold(uow, conn, hold_id, creator).await?;
    release_hold(uow, &user_id, hold_id, HoldStatus::Voided, held);
    Ok(Outcome::Voided(VoidReceipt {
        id: hold_id.to_string(),
        status: HoldStatus::Voided,
        released: held,
    }))
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
