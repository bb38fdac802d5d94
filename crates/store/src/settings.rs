//! Values the server generates once and keeps (the JWT secret when none is configured).

use crate::{Db, StoreError};

/// Returns the stored value for `key`, storing `make()` first if there is none. Two processes
/// starting at once agree on one value.
pub async fn get_or_init(
    db: &Db,
    key: &str,
    make: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(make())
        .execute(&db.pool)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&db.pool)
            .await?,
    )
}
