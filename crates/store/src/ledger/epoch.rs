//! The ledger epoch (migration 005 on PostgreSQL, 024 on SQLite): one counter per asset that
//! every change to the ledger's accounts advances, in the changing transaction, under the
//! counter row's lock (on SQLite, the database's write lock).
//! Writers of one asset therefore take turns (in every instance sharing the database), and a
//! writer that reads back its own last value plus one knows nobody else changed the ledger in
//! between, so it may keep using the accounts it cached (see `state::Cached`).

use sqlx::AnyConnection;

use crate::StoreError;

/// Advances `asset`'s epoch inside the caller's transaction, waiting for any other transaction
/// holding it, and returns the new value. The lock is held until the caller commits.
pub(crate) async fn advance(conn: &mut AnyConnection, asset: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(ADVANCE)
        .bind(asset)
        .fetch_one(conn)
        .await?)
}

/// The advance, its asset bound as `$1`.
pub(crate) const ADVANCE: &str = "INSERT INTO ledger_epochs (asset, epoch) VALUES ($1, 1)
     ON CONFLICT (asset) DO UPDATE SET epoch = ledger_epochs.epoch + 1
     RETURNING epoch";
