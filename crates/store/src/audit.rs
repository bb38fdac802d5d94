//! The audit log: who did what to whom, when, and from which address.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::ids::new_id;
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub actor_id: Option<String>,
    /// `user`, `api_key`, `cli` or `system`.
    pub actor_kind: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: String,
}

/// An entry to write; `details` must never hold a secret.
pub struct AuditRecord<'a> {
    pub actor_id: Option<&'a str>,
    pub actor_kind: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub details: serde_json::Value,
    pub ip: Option<&'a str>,
}

impl<'a> AuditRecord<'a> {
    /// An entry for an action taken from the command line on this machine.
    pub fn by_cli(action: &'a str) -> Self {
        Self {
            actor_id: None,
            actor_kind: "cli",
            action,
            target: None,
            details: serde_json::Value::Null,
            ip: None,
        }
    }
}

/// Writes an entry on `conn`, so an action and its entry can commit together.
pub async fn record(
    conn: &mut sqlx::AnyConnection,
    record: AuditRecord<'_>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, actor_id, actor_kind, action, target, details, ip, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id("aud"))
    .bind(record.actor_id)
    .bind(record.actor_kind)
    .bind(record.action)
    .bind(record.target)
    .bind(record.details.to_string())
    .bind(record.ip)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs a one-row change, `sql` with `$1` the time and `$2` the row's id, and when it changed
/// the row, writes `entry` in the same transaction. Answers whether it changed the row.
pub(crate) async fn change_row(
    db: &crate::Db,
    sql: &'static str,
    id: &str,
    entry: AuditRecord<'_>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let changed = sqlx::query(sql)
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    record(&mut tx, entry, now_ms).await?;
    tx.commit().await?;
    Ok(true)
}

impl Store {
    pub async fn audit(&self, entry: AuditRecord<'_>) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        record(&mut conn, entry, self.clock.now_ms()).await
    }

    pub async fn audit_log(&self, page: &PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        type Row = (
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, actor_id, actor_kind, action, target, details, ip, created_at FROM audit_log
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(page.before_or_max())
        .bind(page.fetch_limit())
        .fetch_all(&self.db.pool)
        .await?;
        let entries = rows
            .into_iter()
            .map(
                |(id, actor_id, actor_kind, action, target, details, ip, created_at)| AuditEntry {
                    id,
                    actor_id,
                    actor_kind,
                    action,
                    target,
                    details: details
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                    ip,
                    created_at: rfc3339(created_at),
                },
            )
            .collect();
        Ok(page.finish(entries, |e| e.id.clone()))
    }
}
