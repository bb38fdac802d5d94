//! `Grant`: credits a user from the system account that funds the grant's source.

use bursar_core::GrantSource;
use sqlx::AnyConnection;

use super::{balance, require_user};
use crate::StoreError;
use crate::ledger::state::{GrantSpec, Side, TransferMeta, UnitOfWork};
use crate::ledger::{GrantReceipt, Outcome};

pub(super) struct NewGrant<'a> {
    pub amount: i64,
    pub source: GrantSource,
    pub priority: i64,
    pub expires_at_ms: Option<i64>,
    pub description: Option<&'a str>,
    /// A JSON object naming what the grant is for (a daily gift's day, a reward).
    pub metadata: Option<&'a str>,
    pub actor: Option<&'a str>,
}

pub(super) async fn grant(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    grant: &NewGrant<'_>,
) -> Result<Outcome, StoreError> {
    require_user(uow, conn, user_id).await?;
    let meta = TransferMeta {
        description: grant.description,
        metadata: grant.metadata,
        actor: grant.actor,
        ..TransferMeta::kind(grant.source.transfer_kind())
    };
    let spec = GrantSpec {
        amount: grant.amount,
        source: grant.source.as_str(),
        from: Side::System(grant.source.funding_account()),
        priority: grant.priority,
        expires_at: grant.expires_at_ms,
    };
    let (transaction_id, grant_id) = uow.grant(user_id, spec, &meta);
    Ok(Outcome::Granted(GrantReceipt {
        transaction_id,
        grant_id,
        user_id: user_id.to_string(),
        amount: grant.amount,
        balance_after: balance(uow, user_id),
    }))
}
