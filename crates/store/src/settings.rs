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

/// The stored value for `key`, if any.
pub async fn get(db: &Db, key: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// Stores `value` under `key`, replacing what was there (values one instance refreshes for
/// all, such as WeChat Pay's platform certificates).
pub async fn put(db: &Db, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(key)
    .bind(value)
    .execute(&db.pool)
    .await?;
    Ok(())
}
