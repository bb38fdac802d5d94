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
            .iter()
            .map(transaction_view)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let mut page = page.finish(views, |t| t.id.clone());
        self.attach_paid_by(&mut page.data).await?;
        Ok(page)
    }

    /// The user's transfers that `filter` keeps, newest first, a page at a time: the filter is
    /// applied in the database, so a page is one statement however far back in the history its
    /// rows lie (a kind the user rarely has, or a date range long ago, reads the whole history
    /// there instead of in the caller). Without `paid_by`, which the pages and the CSV export
    /// do not show (`transactions` adds it, with a query per page). `limit` is capped at
    /// `HISTORY_LIMIT_MAX` (an export reads in batches of that many).
    pub async fn history(
        &self,
        user_id: &str,
        filter: &HistoryFilter,
        page: &PageRequest,
    ) -> Result<Page<TransactionView>, StoreError> {
        let page = PageRequest {
            limit: page.limit.clamp(1, HISTORY_LIMIT_MAX),
            before: page.before.clone(),
        };
        let sql = match self.db.dialect {
            Dialect::Postgres => HISTORY_FILTERED,
            Dialect::Sqlite => HISTORY_FILTERED_IN_RUNS,
        };
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(&self.asset)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .bind(filter.kind.as_deref().unwrap_or_default())
            .bind(filter.from_ms.unwrap_or(i64::MIN))
            .bind(filter.until_ms.unwrap_or(i64::MAX))
            .fetch_all(&self.db.pool)
            .await?;
        let views = rows
            .iter()
            .map(transaction_view)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(page.finish(views, |t| t.id.clone()))
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

/// What `Store::history` keeps. Empty keeps everything.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// One transfer kind (`TransferKind::as_str`).
    pub kind: Option<String>,
    /// Created at or after this, in milliseconds since the epoch.
    pub from_ms: Option<i64>,
    /// Created before this (exclusive).
    pub until_ms: Option<i64>,
}

/// The most rows one `Store::history` call returns.
pub const HISTORY_LIMIT_MAX: i64 = 5_000;

fn transaction_view(r: &sqlx::any::AnyRow) -> Result<TransactionView, sqlx::Error> {
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
}

/// An account's history where every transfer is indexed by account as it is written: its
/// debits and its credits as two ordered scans of `transfers_debit` and `transfers_credit`, each
/// stopping after `$4` rows, merged. (An `OR` join planned either a bitmap scan of every
/// transfer of the account, sorted for each page, or a backward walk of the primary key
/// filtered by account, which for a user with a short history reads most of the table: 0.06 s
/// for 11 rows of 10,000 at a million transfers.) A transfer never debits and credits one
/// account (`CHECK`), so no row comes twice.
const TRANSACTIONS_INDEXED: &str = "
    WITH account AS (
        SELECT id FROM accounts WHERE owner_kind = 'user' AND owner_id = $1 AND asset = $2
    )
    SELECT t.id, t.kind, t.amount, t.order_id, t.hold_id, t.refund_of, t.description,
           t.metadata, t.created_at,
           t.debit_account_id, a.id AS account_id,
           CASE WHEN t.debit_account_id = a.id THEN t.debit_balance_after
                ELSE t.credit_balance_after END AS balance_after
    FROM (
        (SELECT * FROM transfers
         WHERE debit_account_id = (SELECT id FROM account) AND id < $3
         ORDER BY id DESC LIMIT $4)
        UNION ALL
        (SELECT * FROM transfers
         WHERE credit_account_id = (SELECT id FROM account) AND id < $3
         ORDER BY id DESC LIMIT $4)
    ) t CROSS JOIN account a
    ORDER BY t.id DESC LIMIT $4";

/// SQLite, where the history index is built in runs (`ledger/history.rs`): the newest indexed
/// entries, plus the transfers written since the last run, found by scanning that short tail.
/// Newest first is by rowid, the order of commit (for one process, also the order of ids); the
/// cursor is the rowid of the id given, and an id that names no transfer starts from the newest.
/// One statement, so both parts come from one snapshot and a run between them cannot hide or
/// repeat a transfer. `CROSS JOIN` keeps the entries as the outer loop (SQLite does not reorder
/// it): for a large limit the planner otherwise walked the whole journal newest first, probing
/// an automatic index of the entries, to save sorting them (0.11 s instead of 0.03 s for 5,000
/// rows of a million).
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
    FROM entries CROSS JOIN transfers t ON t.rowid = entries.transfer CROSS JOIN account a
    ORDER BY t.rowid DESC LIMIT $4";

/// `Store::history` on PostgreSQL: `TRANSACTIONS_INDEXED` with `$5` a kind or '' for any and
/// `$6`..`$7` the creation time, applied in both scans before their limits. The scans pick ids
/// only, from the indexes that include the kind and the time (migration 023), so a filter that
/// keeps little of a long history is an index-only walk; the rows kept are then fetched by id.
const HISTORY_FILTERED: &str = "
    WITH account AS (
        SELECT id FROM accounts WHERE owner_kind = 'user' AND owner_id = $1 AND asset = $2
    )
    SELECT t.id, t.kind, t.amount, t.order_id, t.hold_id, t.refund_of, t.description,
           t.metadata, t.created_at,
           t.debit_account_id, a.id AS account_id,
           CASE WHEN t.debit_account_id = a.id THEN t.debit_balance_after
                ELSE t.credit_balance_after END AS balance_after
    FROM (
        (SELECT id FROM transfers
         WHERE debit_account_id = (SELECT id FROM account) AND id < $3
           AND ($5 = '' OR kind = $5) AND created_at >= $6 AND created_at < $7
         ORDER BY id DESC LIMIT $4)
        UNION ALL
        (SELECT id FROM transfers
         WHERE credit_account_id = (SELECT id FROM account) AND id < $3
           AND ($5 = '' OR kind = $5) AND created_at >= $6 AND created_at < $7
         ORDER BY id DESC LIMIT $4)
    ) picked JOIN transfers t ON t.id = picked.id CROSS JOIN account a
    ORDER BY t.id DESC LIMIT $4";

/// `Store::history` on SQLite: `TRANSACTIONS_INDEXED_IN_RUNS` with the filter applied inside
/// both parts, before their limits. The indexed part tests the kind and time the entries carry
/// (migration 021), so a filter that keeps little reads the account's entries, which lie
/// together, and visits only the transfers it keeps.
const HISTORY_FILTERED_IN_RUNS: &str = "
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
              AND ($5 = '' OR e.kind = $5) AND e.created_at >= $6 AND e.created_at < $7
            ORDER BY e.transfer DESC LIMIT $4
        )
        UNION ALL
        SELECT t.rowid FROM transfers t
        WHERE t.rowid > (SELECT indexed_through FROM history_index)
          AND t.rowid < (SELECT below FROM cursor)
          AND (t.debit_account_id = (SELECT id FROM account)
               OR t.credit_account_id = (SELECT id FROM account))
          AND ($5 = '' OR t.kind = $5) AND t.created_at >= $6 AND t.created_at < $7
    )
    SELECT t.id, t.kind, t.amount, t.order_id, t.hold_id, t.refund_of, t.description,
           t.metadata, t.created_at,
           t.debit_account_id, a.id AS account_id,
           CASE WHEN t.debit_account_id = a.id THEN t.debit_balance_after
                ELSE t.credit_balance_after END AS balance_after
    FROM entries CROSS JOIN transfers t ON t.rowid = entries.transfer CROSS JOIN account a
    ORDER BY t.rowid DESC LIMIT $4";
