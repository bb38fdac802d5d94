//! `Spend`: debits a user's credits to `revenue`, burning grants in order.

use sqlx::AnyConnection;

use super::{debit_used_credits, ensure_spendable, refuse_if_suspended};
use crate::StoreError;
use crate::ledger::state::{TransferMeta, UnitOfWork};
use crate::ledger::{Outcome, SpendReceipt};

pub(super) async fn spend(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
    meta: &TransferMeta<'_>,
) -> Result<Outcome, StoreError> {
    refuse_if_suspended(uow, conn, user_id).await?;
    ensure_spendable(uow, conn, user_id, amount).await?;
    let (transaction_id, paid_by) = debit_used_credits(uow, conn, user_id, amount, meta).await?;
    let account = uow.account(user_id).expect("loaded above");
    Ok(Outcome::Spent(SpendReceipt {
        transaction_id,
        user_id: user_id.to_string(),
        amount,
        balance_after: account.balance,
        available_after: account.available(),
        paid_by,
    }))
}
