//! Reads of the ledger: a user's balance with its grants, and their history.

use serde::Serialize;
use sqlx::Row;

use crate::clock::rfc3339;
use crate::db::{Dialect, again_if_lost};
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    pub id: String,
    pub source: String,
    pub amount: i64,
    pub remaining: i64,
    pub priority: i64,
    pub expires_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BalanceView {
    pub user_id: String,
    pub asset: String,
    pub balance: i64,
    /// Balance less the credits reserved by active holds.
    pub available: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub grants: Vec<GrantView>,
}

#[derive(Debug, Serialize)]
pub struct TransactionView {
    pub id: String,
    pub kind: String,
    /// Signed from the user's point of view: negative when credits left the account.
    pub amount: i64,
    pub balance_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// For debits: which grants paid, and so whether purchased, bonus or allowance credits
    /// were used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paid_by: Vec<crate::ledger::PaidBy>,
    pub created_at: String,
}

impl Store {
    /// `None` when the user has no account (no such user). Read together with the other
    /// balance reads in flight (see `balances.rs`).
    pub async fn balance(&self, user_id: &str) -> Result<Option<BalanceView>, StoreError> {
        again_if_lost(|| self.balances.read(user_id)).await
    }

    /// The user's transfers, newest first: `$1` user, `$2` asset, before `$3`, at most `$4`.
    pub async fn transactions(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<Page<TransactionView>, StoreError> {
        let sql = match self.db.dialect {
            Dialect::Postgres => TRANSACTIONS_INDEXED,
            Dialect::Sqlite => TRANSACTIONS_INDEXED_IN_RUNS,
        };
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(&self.asset)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let views = rows
            .into_iter()
            .map(|r| {
                let amount: i64 = r.try_get("amount")?;
                let debit_account: String = r.try_get("debit_account_id")?;
                let account: String = r.try_get("account_id")?;
                Ok(TransactionView {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    amount: if debit_account == account {
                        -amount
                    } else {
                        amount
                    },
                    balance_after: r.try_get("balance_after")?,
                    order_id: r.try_get("order_id")?,
                    hold_id: r.try_get("hold_id")?,
                    refund_of: r.try_get("refund_of")?,
                    description: r.try_get("description")?,
                    metadata: r
                        .try_get::<Option<String>, _>("metadata")?
                        .and_then(|m| serde_json::from_str(&m).ok()),
                    paid_by: Vec::new(),
                    created_at: rfc3339(r.try_get("created_at")?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let mut page = page.finish(views, |t| t.id.clone());
        self.attach_paid_by(&mut page.data).await?;
        Ok(page)
    }

    /// Fills `paid_by` for the debits on a page, in one query.
    async fn attach_paid_by(&self, views: &mut [TransactionView]) -> Result<(), StoreError> {
        let debits: Vec<String> = views
            .iter()
            .filter(|t| t.amount < 0)
            .map(|t| t.id.clone())
            .collect();
        if debits.is_empty() {
            return Ok(());
        }
        let mut params = super::sql::Params::new(self.db.dialect);
        let placeholders = (0..debits.len())
            .map(|_| params.next())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT tg.transfer_id, tg.grant_id, g.source, tg.amount
             FROM transfer_grants tg JOIN grants g ON g.id = tg.grant_id
             WHERE tg.transfer_id IN ({placeholders}) ORDER BY tg.transfer_id, tg.grant_id"
        );
        let mut query =
            sqlx::query_as::<_, (String, String, String, i64)>(sqlx::AssertSqlSafe(sql))
                .persistent(false);
        for id in &debits {
            query = query.bind(id);
        }
        for (transfer_id, grant_id, source, amount) in query.fetch_all(&self.db.pool).await? {
            if let Some(view) = views.iter_mut().find(|t| t.id == transfer_id) {
                view.paid_by.push(crate::ledger::PaidBy {
                    grant_id,
                    source,
                    amount,
                });
            }
        }
        Ok(())
    }

    /// Forgets idempotency records older than `age_ms`; they are kept at least 24 hours.
    pub async fn purge_idempotency_keys(&self, age_ms: i64) -> Result<u64, StoreError> {
        let cutoff = self.clock.now_ms() - age_ms.max(24 * 3600 * 1000);
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(cutoff)
                .execute(&self.db.pool)
                .await?
                .rows_affected(),
        )
    }
}

/// An account's history where every transfer is indexed by account as it is written.
const TRANSACTIONS_INDEXED: &str = "
    SELECT t.id, t.kind, t.amount, t.order_id, t.hold_id, t.refund_of, t.description,
           t.metadata, t.created_at,
           t.debit_account_id, a.id AS account_id,
           CASE WHEN t.debit_account_id = a.id THEN t.debit_balance_after
                ELSE t.credit_balance_after END AS balance_after
    FROM accounts a JOIN transfers t
      ON (t.debit_account_id = a.id OR t.credit_account_id = a.id)
    WHERE a.owner_kind = 'user' AND a.owner_id = $1 AND a.asset = $2 AND t.id < $3
    ORDER BY t.id DESC LIMIT $4";

/// SQLite, where the history index is built in runs (`ledger/history.rs`): the newest indexed
/// entries, plus the transfers written since the last run, found by scanning that short tail.
/// Newest first is by rowid, the order of commit (for one process, also the order of ids); the
/// cursor is the rowid of the id given, and an id that names no transfer starts from the newest.
/// One statement, so both parts come from one snapshot and a run between them cannot hide or
/// repeat a transfer.
const TRANSACTIONS_INDEXED_IN_RUNS: &str = "
    WITH account AS (
        SELECT rowid AS seq, id FROM accounts
        WHERE owner_kind = 'user' AND owner_id = $1 AND asset = $2
    ),
    cursor AS (
        SELECT COALESCE((SELECT rowid FROM transfers WHERE id = $3), 9223372036854775807) AS below
    ),
    entries AS (
        SELECT transfer FROM (
            SELECT e.transfer FROM account_entries e
            WHERE e.account = (SELECT seq FROM account) AND e.transfer < (SELECT below FROM cursor)
            ORDER BY e.transfer DESC LIMIT $4
        )
        UNION ALL
        SELECT t.rowid FROM transfers t
        WHERE t.rowid > (SELECT indexed_through FROM history_index)
          AND t.rowid < (SELECT below FROM cursor)
          AND (t.debit_account_id = (SELECT id FROM account)
               OR t.credit_account_id = (SELECT id FROM account))
    )
    SELECT t.id, t.kind, t.amount, t.order_id, t.hold_id, t.refund_of, t.description,
           t.metadata, t.created_at,
           t.debit_account_id, a.id AS account_id,
           CASE WHEN t.debit_account_id = a.id THEN t.debit_balance_after
                ELSE t.credit_balance_after END AS balance_after
    FROM entries JOIN transfers t ON t.rowid = entries.transfer CROSS JOIN account a
    ORDER BY t.rowid DESC LIMIT $4";
