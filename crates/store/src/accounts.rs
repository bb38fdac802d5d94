//! Accounts: one per owner and asset. System accounts exist from the first start; a user's
//! account is created with the user.

use bursar_core::SystemAccount;
use sqlx::AnyConnection;

use crate::ledger::epoch;
use crate::{Db, StoreError, ids::new_id};

pub async fn ensure_system_accounts(db: &Db, asset: &str, now_ms: i64) -> Result<(), StoreError> {
    for system in SystemAccount::ALL {
        sqlx::query(
            "INSERT INTO accounts (id, asset, owner_kind, owner_id, balance, held, overdraft_limit, created_at)
             VALUES ($1, $2, 'system', $3, 0, 0, NULL, $4)
             ON CONFLICT (owner_kind, owner_id, asset) DO NOTHING",
        )
        .bind(new_id("acc"))
        .bind(asset)
        .bind(system.as_str())
        .bind(now_ms)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// Creates `user_id`'s account for `asset` inside the caller's transaction (no-op if present).
pub async fn create_user_account(
    conn: &mut AnyConnection,
    user_id: &str,
    asset: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    create_owned_account(conn, "user", user_id, asset, now_ms).await
}

/// An account of `owner_kind` with no overdraft, unless there is one.
async fn create_owned_account(
    conn: &mut AnyConnection,
    owner_kind: &str,
    owner_id: &str,
    asset: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO accounts (id, asset, owner_kind, owner_id, balance, held, overdraft_limit, created_at)
         VALUES ($1, $2, $3, $4, 0, 0, 0, $5)
         ON CONFLICT (owner_kind, owner_id, asset) DO NOTHING",
    )
    .bind(new_id("acc"))
    .bind(asset)
    .bind(owner_kind)
    .bind(owner_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates a merchant's points account for `asset` inside the caller's transaction (no-op if
/// present): credited by every redemption of the merchant's products, debited by every
/// cancellation, never overdrawn.
pub async fn create_merchant_account(
    conn: &mut AnyConnection,
    merchant_id: &str,
    asset: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    create_owned_account(conn, "merchant", merchant_id, asset, now_ms).await
}

/// Sets a user's overdraft limit. Refused (409) when the balance is already below the new limit.
/// On PostgreSQL the change advances the ledger epoch, so that no writer keeps using the old
/// limit from its cache (SQLite's writer sees any other connection's commit).
pub async fn set_overdraft_limit(
    db: &Db,
    user_id: &str,
    asset: &str,
    limit: i64,
) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    set_overdraft_limit_on(&mut tx, user_id, asset, limit).await?;
    tx.commit().await?;
    Ok(())
}

/// `set_overdraft_limit` on `conn`, inside the caller's transaction.
pub(crate) async fn set_overdraft_limit_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    asset: &str,
    limit: i64,
) -> Result<(), StoreError> {
    epoch::advance(&mut *conn, asset).await?;
    let changed = sqlx::query(
        "UPDATE accounts SET overdraft_limit = $1
         WHERE owner_kind = 'user' AND owner_id = $2 AND asset = $3 AND balance - held >= -$1",
    )
    .bind(limit)
    .bind(user_id)
    .bind(asset)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(bursar_core::LedgerError::Conflict(
            "the account's balance is already below the requested overdraft limit".into(),
        )
        .into());
    }
    Ok(())
}
