//! Coupons: discounts applied when an order is created, limited in time, in total and per user.

use bursar_core::Discount;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditRecord};
use crate::ids::new_id;
use crate::{Store, StoreError};

/// Everything an admin sets on a coupon.
#[derive(Debug, Clone)]
pub struct CouponSpec {
    pub code: String,
    pub discount: Discount,
    /// Required with a fixed amount off; a percent coupon may name one or apply to any.
    pub currency: Option<String>,
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub max_per_user: Option<i64>,
    /// `None`: every package.
    pub package_ids: Option<Vec<String>>,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct Coupon {
    pub id: String,
    pub spec: CouponSpec,
    /// Pending orders holding the coupon.
    pub reserved: i64,
    /// Paid orders that used it.
    pub redeemed: i64,
    pub created_at_ms: i64,
}

impl Coupon {
    /// Why this coupon cannot be used now on this package in this currency, if it cannot.
    pub fn refusal(&self, package_id: &str, currency: &str, now_ms: i64) -> Option<&'static str> {
        let spec = &self.spec;
        if !spec.active {
            return Some("the coupon is not active");
        }
        if spec.valid_from_ms.is_some_and(|from| now_ms < from) {
            return Some("the coupon is not valid yet");
        }
        if spec.valid_until_ms.is_some_and(|until| now_ms >= until) {
            return Some("the coupon has expired");
        }
        if spec.currency.as_deref().is_some_and(|c| c != currency) {
            return Some("the coupon is for another currency");
        }
        if let Some(ids) = &spec.package_ids
            && !ids.iter().any(|id| id == package_id)
        {
            return Some("the coupon does not apply to this package");
        }
        None
    }
}

const COLUMNS: &str = "id, code, percent_off, amount_off, currency, valid_from, valid_until,
    max_redemptions, max_per_user, package_ids, reserved, redeemed, active, created_at";

fn coupon_from_row(row: &AnyRow) -> Result<Coupon, StoreError> {
    let percent: Option<i64> = row.try_get("percent_off")?;
    let amount: Option<i64> = row.try_get("amount_off")?;
    let package_ids: Option<String> = row.try_get("package_ids")?;
    Ok(Coupon {
        id: row.try_get("id")?,
        reserved: row.try_get("reserved")?,
        redeemed: row.try_get("redeemed")?,
        created_at_ms: row.try_get("created_at")?,
        spec: CouponSpec {
            code: row.try_get("code")?,
            discount: match (percent, amount) {
                (Some(p), _) => Discount::Percent(p),
                (None, a) => Discount::Amount(a.unwrap_or(0)),
            },
            currency: row.try_get("currency")?,
            valid_from_ms: row.try_get("valid_from")?,
            valid_until_ms: row.try_get("valid_until")?,
            max_redemptions: row.try_get("max_redemptions")?,
            max_per_user: row.try_get("max_per_user")?,
            package_ids: package_ids.and_then(|json| serde_json::from_str(&json).ok()),
            active: row.try_get::<i64, _>("active")? == 1,
        },
    })
}

/// Binds a coupon's 11 settings as `$1`…`$11`, in the order both statements list them.
fn bind_spec<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    spec: &'q CouponSpec,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let (percent, amount) = match spec.discount {
        Discount::Percent(p) => (Some(p), None),
        Discount::Amount(a) => (None, Some(a)),
    };
    query
        .bind(spec.code.to_uppercase())
        .bind(percent)
        .bind(amount)
        .bind(spec.currency.as_deref())
        .bind(spec.valid_from_ms)
        .bind(spec.valid_until_ms)
        .bind(spec.max_redemptions)
        .bind(spec.max_per_user)
        .bind(
            spec.package_ids
                .as_ref()
                .map(|ids| serde_json::Value::from(ids.clone()).to_string()),
        )
        .bind(i64::from(spec.active))
}

impl Store {
    /// Creates a coupon; `None` when its code is taken. `audit` (its target set to the new
    /// coupon) commits with it.
    pub async fn create_coupon(
        &self,
        spec: &CouponSpec,
        audit: AuditRecord<'_>,
    ) -> Result<Option<Coupon>, StoreError> {
        let id = new_id("cpn");
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let insert = sqlx::query(
            "INSERT INTO coupons (code, percent_off, amount_off, currency, valid_from, valid_until,
                 max_redemptions, max_per_user, package_ids, active, id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        );
        let result = bind_spec(insert, spec)
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match result.map_err(StoreError::from) {
            Err(e) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let entry = AuditRecord {
            target: Some(&id),
            ..audit
        };
        audit::record(&mut tx, entry, now).await?;
        tx.commit().await?;
        self.coupon(&id).await
    }

    /// Replaces a coupon's settings. `Ok(None)`: no such coupon. A limit below what is already
    /// used is refused by the database's CHECK and reported as a conflict by the caller.
    /// `audit` commits with the change.
    pub async fn update_coupon(
        &self,
        id: &str,
        spec: &CouponSpec,
        audit: AuditRecord<'_>,
    ) -> Result<Option<Coupon>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let update = sqlx::query(
            "UPDATE coupons SET code = $1, percent_off = $2, amount_off = $3, currency = $4,
                 valid_from = $5, valid_until = $6, max_redemptions = $7, max_per_user = $8,
                 package_ids = $9, active = $10, updated_at = $11
             WHERE id = $12 AND deleted_at IS NULL",
        );
        let changed = bind_spec(update, spec)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.coupon(id).await
    }

    /// `audit` commits with the change.
    pub async fn delete_coupon(
        &self,
        id: &str,
        audit: AuditRecord<'_>,
    ) -> Result<bool, StoreError> {
        let sql =
            "UPDATE coupons SET deleted_at = $1, active = 0 WHERE id = $2 AND deleted_at IS NULL";
        audit::change_row(&self.db, sql, id, audit, self.clock.now_ms()).await
    }

    pub async fn coupon(&self, id: &str) -> Result<Option<Coupon>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM coupons WHERE id = $1 AND deleted_at IS NULL"
        ));
        sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(coupon_from_row)
            .transpose()
    }

    /// The coupon with this code (codes are case-insensitive).
    pub async fn coupon_by_code(&self, code: &str) -> Result<Option<Coupon>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM coupons WHERE code = $1 AND deleted_at IS NULL"
        ));
        sqlx::query(sql)
            .bind(code.trim().to_uppercase())
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(coupon_from_row)
            .transpose()
    }

    pub async fn coupons(&self) -> Result<Vec<Coupon>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM coupons WHERE deleted_at IS NULL ORDER BY id DESC"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.db.pool).await?;
        rows.iter().map(coupon_from_row).collect()
    }
}

/// Takes one use of the coupon for a new pending order, unless its total limit is reached or
/// this user has used it `max_per_user` times (pending and paid orders count). On PostgreSQL
/// the guarded UPDATE locks the coupon's row, so concurrent orders for it queue here and the
/// per-user count that follows cannot race; on SQLite the write transaction serialises them.
pub(crate) async fn reserve(
    conn: &mut sqlx::AnyConnection,
    coupon: &Coupon,
    user_id: &str,
) -> Result<Result<(), &'static str>, StoreError> {
    let taken = sqlx::query(
        "UPDATE coupons SET reserved = reserved + 1
         WHERE id = $1 AND deleted_at IS NULL
           AND (max_redemptions IS NULL OR reserved + redeemed < max_redemptions)",
    )
    .bind(&coupon.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 0 {
        return Ok(Err("the coupon has been used up"));
    }
    if let Some(limit) = coupon.spec.max_per_user {
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM orders
             WHERE coupon_id = $1 AND user_id = $2 AND status IN ('pending', 'paid', 'refunded')",
        )
        .bind(&coupon.id)
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
        if used >= limit {
            return Ok(Err("you have already used this coupon as often as allowed"));
        }
    }
    Ok(Ok(()))
}

/// Gives back a pending order's use of a coupon (the order failed, was cancelled or expired).
pub(crate) async fn release(
    conn: &mut sqlx::AnyConnection,
    coupon_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE coupons SET reserved = reserved - 1 WHERE id = $1 AND reserved > 0")
        .bind(coupon_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Turns a pending order's reservation into a redemption (the order was paid).
pub(crate) async fn redeem(
    conn: &mut sqlx::AnyConnection,
    coupon_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE coupons SET reserved = reserved - 1, redeemed = redeemed + 1
         WHERE id = $1 AND reserved > 0",
    )
    .bind(coupon_id)
    .execute(conn)
    .await?;
    Ok(())
}
