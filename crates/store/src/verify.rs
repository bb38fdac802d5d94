//! `ledger verify`: recomputes every invariant from the rows themselves.

use serde::Serialize;

use crate::db::Dialect;
use crate::{Db, StoreError};

#[derive(Debug, Serialize)]
pub struct AssetSummary {
    pub asset: String,
    /// Summed without overflow, however far a damaged ledger's balances are off.
    pub sum_of_balances: i128,
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

/// Sums of many amounts are taken in two parts, `amount / 2^26` and `amount % 2^26`, and joined
/// in `i128` here: SQLite's `SUM` fails on any intermediate overflow (a journal of many large
/// transfers in and out passes 2^63 long before its net does), and PostgreSQL's `numeric` sum
/// would not fit back into a `BIGINT`. Each part stays in range for 2^36 rows of amounts up to
/// 2^53, so the check holds for any ledger Bursar can write.
const SPLIT: i128 = 1 << 26;

/// Every account whose balance differs from its transfers, with both (one pass over the
/// journal, not one lookup per account: SQLite has no index by account on `transfers`, see
/// migration 004). The comparison is made in SQL only where neither `hi * 2^26` nor
/// `balance - lo` can leave 64 bits (SQLite would turn them into inexact floats); beyond that
/// the row is returned and judged in `i128`.
const BALANCE_VERSUS_TRANSFERS: &str = "
    SELECT a.id, a.balance, CAST(COALESCE(m.hi, 0) AS BIGINT), CAST(COALESCE(m.lo, 0) AS BIGINT)
    FROM accounts a LEFT JOIN (
        SELECT account_id, SUM(amount / 67108864) AS hi, SUM(amount % 67108864) AS lo FROM (
            SELECT credit_account_id AS account_id, amount FROM transfers
            UNION ALL
            SELECT debit_account_id, -amount FROM transfers
        ) moves GROUP BY account_id
    ) m ON m.account_id = a.id
    WHERE CASE WHEN COALESCE(m.hi, 0) >= 137438953472 OR COALESCE(m.hi, 0) <= -137438953472 THEN 1
               WHEN a.balance > 2305843009213693952 OR a.balance < -2305843009213693952 THEN 1
               WHEN a.balance - COALESCE(m.lo, 0) <> COALESCE(m.hi, 0) * 67108864 THEN 1
               ELSE 0 END = 1";

fn joined(hi: i64, lo: i64) -> i128 {
    i128::from(hi) * SPLIT + i128::from(lo)
}

/// Whether a check failed because a sum left the database's integers (SQLite's `SUM` raises
/// "integer overflow"; PostgreSQL "out of range"): that is a finding about the ledger, listed
/// as a problem, not a failure of the verification.
fn is_overflow(error: &sqlx::Error) -> bool {
    let text = error.to_string();
    text.contains("integer overflow") || text.contains("out of range")
}

/// Each check selects the offending rows as one text column describing the problem.
const CHECKS: &[(&str, &str)] = &[
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
                   WHERE t.order_id = o.id AND t.kind IN ('purchase', 'bonus', 'auto_topup')), 0) AS TEXT)
         FROM orders o
         WHERE COALESCE((SELECT SUM(t.amount) FROM transfers t
                         WHERE t.order_id = o.id AND t.kind IN ('purchase', 'bonus', 'auto_topup')), 0)
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
    (
        "merchant balance differs from its redemptions",
        "SELECT a.id || ': balance ' || CAST(a.balance AS TEXT) || ', redemptions say ' || CAST(
             COALESCE((SELECT SUM(r.points_cost) FROM redemptions r
                       WHERE r.merchant_id = a.owner_id AND r.status <> 'cancelled'), 0) AS TEXT)
         FROM accounts a
         WHERE a.owner_kind = 'merchant'
           AND a.balance <> COALESCE((SELECT SUM(r.points_cost) FROM redemptions r
                                      WHERE r.merchant_id = a.owner_id AND r.status <> 'cancelled'), 0)",
    ),
    (
        "product's stock and redemptions differ from the stock added",
        "SELECT p.id || ': stock ' || CAST(p.stock AS TEXT) || ', added ' || CAST(p.stock_added AS TEXT)
         FROM products p
         WHERE p.stock + COALESCE((SELECT SUM(r.quantity) FROM redemptions r
                                   WHERE r.product_id = p.id AND r.status <> 'cancelled'), 0)
               <> p.stock_added",
    ),
    (
        "redemption not paid, or not refunded, exactly as recorded",
        "SELECT r.id FROM redemptions r
         WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = r.transfer_id
                             AND t.kind = 'redemption' AND t.amount = r.points_cost)
            OR (r.status = 'cancelled'
                AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = r.refund_transfer_id
                                  AND t.kind = 'redemption_refund' AND t.amount = r.points_cost
                                  AND t.refund_of = r.transfer_id))",
    ),
    (
        "redemption transfer without its redemption",
        "SELECT t.id FROM transfers t
         WHERE (t.kind = 'redemption'
                AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.transfer_id = t.id))
            OR (t.kind = 'redemption_refund'
                AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.refund_transfer_id = t.id))",
    ),
    (
        "daily gift claim not credited exactly once",
        "SELECT c.user_id || ' on ' || c.day FROM daily_gift_claims c
         WHERE NOT EXISTS (SELECT 1 FROM transfers t JOIN accounts a ON a.id = t.credit_account_id
                           WHERE t.id = c.transfer_id AND t.kind = 'gift' AND t.amount = c.credits
                             AND a.owner_kind = 'user' AND a.owner_id = c.user_id)",
    ),
    (
        // The claims' side is one to one by the unique index on their `transfer_id`; this is
        // the transfers' side, by the marker the claim's command writes in their metadata.
        "daily gift transfer without its claim",
        "SELECT t.id FROM transfers t
         WHERE t.kind = 'gift' AND t.metadata LIKE '%\"daily_gift\":%'
           AND NOT EXISTS (SELECT 1 FROM daily_gift_claims c WHERE c.transfer_id = t.id)",
    ),
    (
        "inbox claim not credited exactly once",
        "SELECT i.id FROM inbox_items i JOIN rewards r ON r.id = i.reward_id
         WHERE (i.claimed_at IS NULL AND i.transfer_id IS NOT NULL)
            OR (i.claimed_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM transfers t JOIN accounts a ON a.id = t.credit_account_id
                WHERE t.id = i.transfer_id AND t.kind = 'gift' AND t.amount = r.credits
                  AND a.owner_kind = 'user' AND a.owner_id = i.user_id))",
    ),
    (
        "inbox reward transfer without its claim",
        "SELECT t.id FROM transfers t
         WHERE t.kind = 'gift' AND t.metadata LIKE '%\"inbox_item_id\":%'
           AND NOT EXISTS (SELECT 1 FROM inbox_items i WHERE i.transfer_id = t.id)",
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
    (
        "account history entry whose kind or time differs from its transfer's",
        "SELECT t.id FROM account_entries e JOIN transfers t ON t.rowid = e.transfer
         WHERE e.kind <> t.kind OR e.created_at <> t.created_at",
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
    // Only reads: after a lost connection it is run once more, on connections the pool checks.
    crate::db::again_if_lost(|| verify_once(db)).await
}

async fn verify_once(db: &Db) -> Result<VerifyReport, StoreError> {
    let mut problems = Vec::new();
    let assets: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT asset, CAST(SUM(balance / 67108864) AS BIGINT),
                CAST(SUM(balance % 67108864) AS BIGINT), CAST(COUNT(*) AS BIGINT)
         FROM accounts GROUP BY asset ORDER BY asset",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut summaries = Vec::with_capacity(assets.len());
    for (asset, hi, lo, accounts) in assets {
        let sum = joined(hi, lo);
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
    let what = "balance differs from the sum of its transfers";
    let rows: Vec<(String, i64, i64, i64)> = match sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{BALANCE_VERSUS_TRANSFERS} LIMIT {}",
        PROBLEMS_PER_CHECK_MAX + 1
    )))
    .fetch_all(&db.pool)
    .await
    {
        Ok(rows) => rows,
        Err(error) if is_overflow(&error) => {
            problems.push(format!("{what}: a sum is beyond 64-bit integers"));
            Vec::new()
        }
        Err(error) => return Err(error.into()),
    };
    let differing: Vec<String> = rows
        .iter()
        .filter(|(_, balance, hi, lo)| i128::from(*balance) != joined(*hi, *lo))
        .map(|(id, balance, hi, lo)| {
            format!(
                "{id}: balance {balance}, transfers say {}",
                joined(*hi, *lo)
            )
        })
        .collect();
    list(&mut problems, what, &differing);
    for (what, sql) in CHECKS.iter().chain(dialect_checks) {
        let rows: Vec<String> = match sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{sql} LIMIT {}",
            PROBLEMS_PER_CHECK_MAX + 1
        )))
        .fetch_all(&db.pool)
        .await
        {
            Ok(rows) => rows,
            Err(error) if is_overflow(&error) => {
                problems.push(format!("{what}: a sum is beyond 64-bit integers"));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        list(&mut problems, what, &rows);
    }
    Ok(VerifyReport {
        ok: problems.is_empty(),
        assets: summaries,
        problems,
    })
}

/// Lists up to `PROBLEMS_PER_CHECK_MAX` of a check's findings, then says there were more.
fn list(problems: &mut Vec<String>, what: &str, rows: &[String]) {
    for row in rows.iter().take(PROBLEMS_PER_CHECK_MAX as usize) {
        problems.push(format!("{what}: {row}"));
    }
    if rows.len() as i64 > PROBLEMS_PER_CHECK_MAX {
        problems.push(format!("{what}: more not listed"));
    }
}
