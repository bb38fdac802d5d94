//! `ledger verify`: recomputes every invariant from the rows themselves.

use serde::Serialize;

use crate::db::Dialect;
use crate::{Db, StoreError};

#[derive(Debug, Serialize)]
pub struct AssetSummary {
    pub asset: String,
    pub sum_of_balances: i64,
    pub accounts: i64,
    pub transfers: i64,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub assets: Vec<AssetSummary>,
    pub problems: Vec<String>,
}

/// At most this many problems of one kind are listed; the count says how many there were.
const PROBLEMS_PER_CHECK_MAX: i64 = 20;

/// Each check selects the offending rows as one text column describing the problem.
const CHECKS: &[(&str, &str)] = &[
    (
        "balance differs from the sum of its transfers",
        // One pass over the journal, not one lookup per account: SQLite has no index by
        // account on `transfers` (see migration 004).
        "SELECT a.id || ': balance ' || CAST(a.balance AS TEXT) || ', transfers say '
                || CAST(COALESCE(m.total, 0) AS TEXT)
         FROM accounts a LEFT JOIN (
             SELECT account_id, SUM(amount) AS total FROM (
                 SELECT credit_account_id AS account_id, amount FROM transfers
                 UNION ALL
                 SELECT debit_account_id, -amount FROM transfers
             ) moves GROUP BY account_id
         ) m ON m.account_id = a.id
         WHERE a.balance <> COALESCE(m.total, 0)",
    ),
    (
        "user balance differs from its live grants",
        "SELECT a.id || ': balance ' || CAST(a.balance AS TEXT) || ', grants hold ' || CAST(
             COALESCE((SELECT SUM(remaining) FROM grants WHERE account_id = a.id), 0) AS TEXT)
         FROM accounts a
         WHERE a.owner_kind = 'user'
           AND CASE WHEN a.balance > 0 THEN a.balance ELSE 0 END
               <> COALESCE((SELECT SUM(remaining) FROM grants WHERE account_id = a.id), 0)",
    ),
    (
        "account below its overdraft limit",
        "SELECT id || ': balance ' || CAST(balance AS TEXT) || ', held ' || CAST(held AS TEXT)
                || ', limit ' || CAST(overdraft_limit AS TEXT)
         FROM accounts WHERE overdraft_limit IS NOT NULL AND balance - held < -overdraft_limit",
    ),
    (
        "held credits differ from the account's open holds",
        "SELECT a.id || ': held ' || CAST(a.held AS TEXT) || ', open holds ' || CAST(
             COALESCE((SELECT SUM(amount) FROM holds WHERE account_id = a.id AND status = 'held'), 0) AS TEXT)
         FROM accounts a
         WHERE a.held <> COALESCE((SELECT SUM(amount) FROM holds WHERE account_id = a.id AND status = 'held'), 0)",
    ),
    (
        "grant out of range",
        "SELECT id || ': amount ' || CAST(amount AS TEXT) || ', remaining ' || CAST(remaining AS TEXT)
         FROM grants WHERE remaining < 0 OR remaining > amount",
    ),
    (
        "transfer paid by more grant credits than its amount",
        "SELECT t.id FROM transfers t
         WHERE t.amount < (SELECT COALESCE(SUM(tg.amount), 0) FROM transfer_grants tg WHERE tg.transfer_id = t.id)",
    ),
    (
        "transfer with a non-positive amount",
        "SELECT id FROM transfers WHERE amount <= 0",
    ),
    (
        "refunds exceed the spend they refund",
        "SELECT s.id FROM transfers s
         WHERE s.amount < (SELECT COALESCE(SUM(r.amount), 0) FROM transfers r WHERE r.refund_of = s.id)",
    ),
    (
        "order's grants differ from what it records as granted",
        "SELECT o.id || ': ' || o.status || ', granted ' || CAST(o.credits_granted AS TEXT)
                || ', transfers say ' || CAST(COALESCE((SELECT SUM(t.amount) FROM transfers t
                   WHERE t.order_id = o.id AND t.kind IN ('purchase', 'bonus')), 0) AS TEXT)
         FROM orders o
         WHERE COALESCE((SELECT SUM(t.amount) FROM transfers t
                         WHERE t.order_id = o.id AND t.kind IN ('purchase', 'bonus')), 0)
               <> CASE WHEN o.status IN ('paid', 'refunded') THEN o.credits_granted ELSE 0 END",
    ),
    (
        "order's clawbacks differ from what it records",
        "SELECT o.id FROM orders o
         WHERE o.credits_clawed_back <> COALESCE((SELECT SUM(t.amount) FROM transfers t
                                                  WHERE t.order_id = o.id AND t.kind = 'clawback'), 0)",
    ),
    (
        "coupon's counts differ from its orders",
        "SELECT c.id || ': reserved ' || CAST(c.reserved AS TEXT) || ', redeemed ' || CAST(c.redeemed AS TEXT)
         FROM coupons c
         WHERE c.reserved <> (SELECT COUNT(*) FROM orders o WHERE o.coupon_id = c.id AND o.status = 'pending')
            OR c.redeemed <> (SELECT COUNT(*) FROM orders o
                              WHERE o.coupon_id = c.id AND o.status IN ('paid', 'refunded'))",
    ),
];

/// SQLite's history index, built in runs (`ledger/history.rs`): every transfer up to the mark
/// has both its entries, and no entry stands for anything else.
const SQLITE_CHECKS: &[(&str, &str)] = &[
    (
        "transfer missing from the account history",
        "SELECT t.id FROM transfers t
         WHERE t.rowid <= (SELECT indexed_through FROM history_index)
           AND (NOT EXISTS (SELECT 1 FROM account_entries e WHERE e.transfer = t.rowid
                              AND e.account = (SELECT rowid FROM accounts WHERE id = t.debit_account_id))
             OR NOT EXISTS (SELECT 1 FROM account_entries e WHERE e.transfer = t.rowid
                              AND e.account = (SELECT rowid FROM accounts WHERE id = t.credit_account_id)))",
    ),
    (
        "account history entry without an indexed transfer of that account",
        "SELECT 'account #' || CAST(e.account AS TEXT) || ', transfer #' || CAST(e.transfer AS TEXT)
         FROM account_entries e
         WHERE NOT EXISTS (SELECT 1 FROM transfers t JOIN accounts a ON a.rowid = e.account
                           WHERE t.rowid = e.transfer
                             AND a.id IN (t.debit_account_id, t.credit_account_id)
                             AND t.rowid <= (SELECT indexed_through FROM history_index))",
    ),
];

/// PostgreSQL enforces the journal's references here rather than with foreign keys, whose
/// row-by-row triggers were a third of a batch's work (migration 006); SQLite's still hold.
const POSTGRES_CHECKS: &[(&str, &str)] = &[
    (
        "transfer naming an account that does not exist",
        "SELECT t.id FROM transfers t
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.debit_account_id)
            OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.credit_account_id)",
    ),
    (
        "refund of a transfer that does not exist",
        "SELECT r.id || ': refund of ' || r.refund_of FROM transfers r
         WHERE r.refund_of IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM transfers s WHERE s.id = r.refund_of)",
    ),
    (
        "grant payment naming a transfer or grant that does not exist",
        "SELECT tg.transfer_id || ', ' || tg.grant_id FROM transfer_grants tg
         WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = tg.transfer_id)
            OR NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = tg.grant_id)",
    ),
];

pub async fn verify(db: &Db) -> Result<VerifyReport, StoreError> {
    let mut problems = Vec::new();
    let assets: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT asset, CAST(SUM(balance) AS BIGINT), CAST(COUNT(*) AS BIGINT)
         FROM accounts GROUP BY asset ORDER BY asset",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut summaries = Vec::with_capacity(assets.len());
    for (asset, sum, accounts) in assets {
        let transfers: i64 =
            sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM transfers WHERE asset = $1")
                .bind(&asset)
                .fetch_one(&db.pool)
                .await?;
        if sum != 0 {
            problems.push(format!("asset {asset}: balances sum to {sum}, not 0"));
        }
        summaries.push(AssetSummary {
            asset,
            sum_of_balances: sum,
            accounts,
            transfers,
        });
    }
    let dialect_checks = match db.dialect {
        Dialect::Sqlite => SQLITE_CHECKS,
        Dialect::Postgres => POSTGRES_CHECKS,
    };
    for (what, sql) in CHECKS.iter().chain(dialect_checks) {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{sql} LIMIT {}",
            PROBLEMS_PER_CHECK_MAX + 1
        )))
        .fetch_all(&db.pool)
        .await?;
        for row in rows.iter().take(PROBLEMS_PER_CHECK_MAX as usize) {
            problems.push(format!("{what}: {row}"));
        }
        if rows.len() as i64 > PROBLEMS_PER_CHECK_MAX {
            problems.push(format!("{what}: more not listed"));
        }
    }
    Ok(VerifyReport {
        ok: problems.is_empty(),
        assets: summaries,
        problems,
    })
}
