//! Service API keys (`bsk_…`): shown once at creation, stored only as SHA-256 hashes. The keys
//! carry 256 random bits, so a fast hash is enough; passwords are another matter (Argon2id).

use serde::Serialize;

use crate::audit::{self, AuditRecord};
use crate::clock::rfc3339;
use crate::ids::{new_id, new_secret, sha256_hex};
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A key just created: the only time `secret` exists outside the caller's hands.
#[derive(Debug, Serialize)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub secret: String,
}

impl Store {
    /// Records when keys were last used (`(key id, Unix ms)`); never moves a time backwards.
    pub async fn record_api_key_uses(&self, uses: &[(String, i64)]) -> Result<(), StoreError> {
        for (key_id, at_ms) in uses {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .bind(key_id)
            .bind(at_ms)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    /// Creates a key. `audit` commits with it, naming the new key and its prefix (never the
    /// secret).
    pub async fn create_api_key(
        &self,
        name: &str,
        created_by: Option<&str>,
        audit: AuditRecord<'_>,
    ) -> Result<NewApiKey, StoreError> {
        let secret = new_secret("bsk");
        let id = new_id("key");
        let now = self.clock.now_ms();
        let prefix: String = secret.chars().take(12).collect();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, prefix, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(sha256_hex(&secret))
        .bind(&prefix)
        .bind(created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let entry = AuditRecord {
            target: Some(&id),
            details: serde_json::json!({ "name": name, "prefix": prefix }),
            ..audit
        };
        audit::record(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(NewApiKey {
            key: ApiKeyView {
                id,
                name: name.to_string(),
                prefix,
                created_by: created_by.map(str::to_string),
                created_at: rfc3339(now),
                last_used_at: None,
            },
            secret,
        })
    }

    /// The id of the live key whose secret hashes (SHA-256, hex) to `key_hash`.
    pub async fn api_key_id_by_hash(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            )
            .bind(key_hash)
            .fetch_optional(&self.db.pool)
            .await?,
        )
    }

    pub async fn list_api_keys(&self, page: &PageRequest) -> Result<Page<ApiKeyView>, StoreError> {
        type Row = (String, String, String, Option<String>, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, prefix, created_by, created_at, last_used_at FROM api_keys
             WHERE revoked_at IS NULL AND id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(page.before_or_max())
        .bind(page.fetch_limit())
        .fetch_all(&self.db.pool)
        .await?;
        let keys = rows
            .into_iter()
            .map(
                |(id, name, prefix, created_by, created_at, last_used_at)| ApiKeyView {
                    id,
                    name,
                    prefix,
                    created_by,
                    created_at: rfc3339(created_at),
                    last_used_at: last_used_at.map(rfc3339),
                },
            )
            .collect();
        Ok(page.finish(keys, |k| k.id.clone()))
    }

    /// Revokes a key; it stops working on the next request. Returns whether a live key was found.
    /// `audit` commits with the revocation.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        audit: AuditRecord<'_>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        audit::change_row(&self.db, sql, id, audit, self.clock.now_ms()).await
    }
}
