//! `Adjust`: an admin's signed manual correction, audit-logged in the same transaction.

use bursar_core::{GrantSource, SystemAccount, TransferKind};
use sqlx::AnyConnection;

use super::{balance, ensure_spendable, require_user};
use crate::StoreError;
use crate::audit::AuditRecord;
use crate::ledger::state::{GrantSpec, Side, TransferMeta, UnitOfWork};
use crate::ledger::{AdjustmentReceipt, Outcome};

pub(super) async fn adjust(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    amount: i64,
    reason: &str,
    actor: &str,
    ip: Option<&str>,
) -> Result<Outcome, StoreError> {
    let meta = TransferMeta {
        description: Some(reason),
        actor: Some(actor),
        ..TransferMeta::kind(TransferKind::Adjustment)
    };
    let transaction_id = if amount > 0 {
        require_user(uow, conn, user_id).await?;
        let source = GrantSource::Adjustment;
        let spec = GrantSpec {
            amount,
            source: source.as_str(),
            from: Side::System(SystemAccount::Issuance),
            priority: 0,
            expires_at: None,
        };
        uow.grant(user_id, spec, &meta).0
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
        ip,
    });
    Ok(Outcome::Adjusted(AdjustmentReceipt {
        transaction_id,
        user_id: user_id.to_string(),
        amount,
        reason: reason.to_string(),
        balance_after: balance(uow, user_id),
    }))
}
