//! `ExpireDue`: releases overdue holds and moves overdue grants' remainders to `expired`, for at
//! most `max_accounts` accounts. Answers `{accounts}`: how many were processed.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::ledger::Outcome;
use crate::ledger::state::UnitOfWork;

pub(super) async fn expire_due(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    max_accounts: i64,
) -> Result<Outcome, StoreError> {
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
    .bind(max_accounts)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    uow.load_users(conn, &ids).await?;
    for user in &ids {
        uow.settle_overdue(user);
    }
    Ok(Outcome::Expired {
        accounts: users.len(),
    })
}
