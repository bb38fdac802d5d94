//! Saved payment methods: what a provider gave back for a card or account the user saved
//! (brand, last four digits, the provider's token), never the number itself. Each belongs to
//! one user, and every read and removal is scoped to that user.

use sqlx::Row;

use crate::clock::rfc3339;
use crate::ids::new_id;
use crate::{Store, StoreError};

#[derive(Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub brand: String,
    pub last4: String,
    /// The provider's reference for charging it; never shown to anyone.
    pub token: String,
    pub created_at: String,
}

/// Everything but the provider's token, so a logged method leaks nothing.
impl std::fmt::Debug for PaymentMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentMethod")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
}

/// What a provider answered when the method was saved.
pub struct NewPaymentMethod<'a> {
    pub provider: &'a str,
    pub brand: &'a str,
    pub last4: &'a str,
    pub token: &'a str,
    /// The provider's setup it was saved through, when there was one.
    pub setup_ref: Option<&'a str>,
}

/// What became of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saving {
    /// Saved now, or earlier through the same setup.
    Saved(PaymentMethod),
    /// Saved earlier through the same setup, and removed by the user since.
    Removed,
    /// The user already has [`METHODS_PER_USER_MAX`].
    LimitReached,
}

/// What became of a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// An auto top-up rule that is on charges it.
    InUse,
    NotFound,
}

/// A user keeps at most this many live methods.
pub const METHODS_PER_USER_MAX: i64 = 20;

const COLUMNS: &str = "id, user_id, provider, brand, last4, token, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<PaymentMethod, StoreError> {
    Ok(PaymentMethod {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        brand: row.try_get("brand")?,
        last4: row.try_get("last4")?,
        token: row.try_get("token")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// The provider's token of a method that has not been removed, inside the caller's
/// transaction: what an off-session order is charged with again when it is retried.
pub(crate) async fn live_token_on(
    conn: &mut sqlx::AnyConnection,
    method_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar(
            "SELECT token FROM payment_methods WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(method_id)
        .fetch_optional(&mut *conn)
        .await?,
    )
}

impl Store {
    /// Saves a method for `user_id`. One saved through a setup is saved once: a second save of
    /// the same setup answers the first.
    pub async fn save_payment_method(
        &self,
        user_id: &str,
        method: NewPaymentMethod<'_>,
    ) -> Result<Saving, StoreError> {
        let mut tx = self.db.begin_write().await?;
        // Saves by one user take turns, so two at once cannot both pass the limit or both save
        // one setup (SQLite's write transaction already serialises them).
        if self.db.dialect == crate::db::Dialect::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(setup_ref) = method.setup_ref {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS}, deleted_at FROM payment_methods
                 WHERE provider = $1 AND setup_ref = $2"
            ));
            let earlier = sqlx::query(sql)
                .bind(method.provider)
                .bind(setup_ref)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = earlier {
                let deleted_at: Option<i64> = row.try_get("deleted_at")?;
                return Ok(match deleted_at {
                    Some(_) => Saving::Removed,
                    None => Saving::Saved(from_row(&row)?),
                });
            }
        }
        let live: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_methods
             WHERE user_id = $1 AND deleted_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if live >= METHODS_PER_USER_MAX {
            return Ok(Saving::LimitReached);
        }
        let id = new_id("pm");
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO payment_methods
                 (id, user_id, provider, brand, last4, token, created_at, setup_ref)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(method.provider)
        .bind(method.brand)
        .bind(method.last4)
        .bind(method.token)
        .bind(now)
        .bind(method.setup_ref)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Saving::Saved(PaymentMethod {
            id,
            user_id: user_id.to_string(),
            provider: method.provider.to_string(),
            brand: method.brand.to_string(),
            last4: method.last4.to_string(),
            token: method.token.to_string(),
            created_at: rfc3339(now),
        }))
    }

    /// The user's customer record at `provider`, once made.
    pub async fn provider_customer(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_ref FROM provider_customers WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_optional(&self.db.pool)
        .await?)
    }

    /// Keeps the customer record the provider made for the user, unless one was kept first
    /// (two first saves at once); answers the one kept.
    pub async fn keep_provider_customer(
        &self,
        user_id: &str,
        provider: &str,
        customer_ref: &str,
    ) -> Result<String, StoreError> {
        // No conflict target: two first saves at once insert the same customer (the provider
        // made it once, under the user's idempotency key), which clashes on the customer's own
        // unique index as well as on the user's, and PostgreSQL raises a clash on an index that
        // is not the named target (seen as a 500 in a full run).
        sqlx::query(
            "INSERT INTO provider_customers (user_id, provider, customer_ref, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(provider)
        .bind(customer_ref)
        .bind(self.clock.now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(sqlx::query_scalar(
            "SELECT customer_ref FROM provider_customers WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_one(&self.db.pool)
        .await?)
    }

    /// Whose customer record `customer_ref` is at `provider`.
    pub async fn user_of_customer(
        &self,
        provider: &str,
        customer_ref: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM provider_customers WHERE provider = $1 AND customer_ref = $2",
        )
        .bind(provider)
        .bind(customer_ref)
        .fetch_optional(&self.db.pool)
        .await?)
    }

    /// The user's live methods, newest first.
    pub async fn payment_methods(&self, user_id: &str) -> Result<Vec<PaymentMethod>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payment_methods
             WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id DESC"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// One live method of the user's; another user's reads as none.
    pub async fn payment_method(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<PaymentMethod>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payment_methods
             WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Removes one of the user's live methods, unless an auto top-up rule that is on charges
    /// it: the check and the removal are one statement, so a rule enabled at the same moment
    /// cannot be left pointing at a removed method.
    pub async fn remove_payment_method(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Removal, StoreError> {
        let removed = sqlx::query(
            "UPDATE payment_methods SET deleted_at = $3
             WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM auto_topup_rules r
                               WHERE r.payment_method_id = $1 AND r.status <> 'off')",
        )
        .bind(id)
        .bind(user_id)
        .bind(self.clock.now_ms())
        .execute(&self.db.pool)
        .await?;
        if removed.rows_affected() == 1 {
            return Ok(Removal::Removed);
        }
        Ok(if self.payment_method(user_id, id).await?.is_some() {
            Removal::InUse
        } else {
            Removal::NotFound
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_out_the_token() {
        let method = PaymentMethod {
            id: "pm_1".into(),
            user_id: "usr_1".into(),
            provider: "stripe".into(),
            brand: "visa".into(),
            last4: "4242".into(),
            token: "pm_secret_token".into(),
            created_at: "2026-12-05T00:00:00.000Z".into(),
        };
        let shown = format!("{method:?}");
        assert!(!shown.contains("pm_secret_token"), "{shown}");
        assert!(shown.contains("4242"));
    }
}
