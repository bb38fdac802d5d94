//! The catalog of packages users can buy, and who may see each.

use bursar_core::{Money, PackageKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditRecord};
use crate::ids::new_id;
use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Package {
    pub id: String,
    pub spec: PackageSpec,
    pub created_at_ms: i64,
}

/// Everything an admin sets on a package.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub name: String,
    pub kind: PackageKind,
    pub credits: i64,
    pub bonus_credits: i64,
    pub price: Money,
    pub daily_credits: Option<i64>,
    pub duration_days: Option<i64>,
    pub first_purchase_bonus_percent: Option<i64>,
    /// The package's `bonus_credits` wait in the buyer's inbox to be claimed, rather than
    /// arriving with the purchase.
    pub bonus_to_inbox: bool,
    pub min_level_hundredths: i64,
    pub min_balance: i64,
    pub sort_order: i64,
    pub active: bool,
}

const COLUMNS: &str = "id, name, kind, credits, bonus_credits, price_amount, price_currency,
    daily_credits, duration_days, first_purchase_bonus_percent, min_level_hundredths,
    min_balance, sort_order, active, bonus_to_inbox, created_at";

fn package_from_row(row: &AnyRow) -> Result<Package, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Package {
        id: row.try_get("id")?,
        created_at_ms: row.try_get("created_at")?,
        spec: PackageSpec {
            name: row.try_get("name")?,
            kind: PackageKind::parse(&kind).unwrap_or(PackageKind::CreditPack),
            credits: row.try_get("credits")?,
            bonus_credits: row.try_get("bonus_credits")?,
            price: Money {
                amount: row.try_get("price_amount")?,
                currency: row.try_get("price_currency")?,
            },
            daily_credits: row.try_get("daily_credits")?,
            duration_days: row.try_get("duration_days")?,
            first_purchase_bonus_percent: row.try_get("first_purchase_bonus_percent")?,
            min_level_hundredths: row.try_get("min_level_hundredths")?,
            min_balance: row.try_get("min_balance")?,
            sort_order: row.try_get("sort_order")?,
            active: row.try_get::<i64, _>("active")? == 1,
            bonus_to_inbox: row.try_get::<i64, _>("bonus_to_inbox")? == 1,
        },
    })
}

/// Binds a package's 14 settings as `$1`…`$14`, in the order both statements list them.
fn bind_spec<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    spec: &'q PackageSpec,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&spec.name)
        .bind(spec.kind.as_str())
        .bind(spec.credits)
        .bind(spec.bonus_credits)
        .bind(spec.price.amount)
        .bind(&spec.price.currency)
        .bind(spec.daily_credits)
        .bind(spec.duration_days)
        .bind(spec.first_purchase_bonus_percent)
        .bind(spec.min_level_hundredths)
        .bind(spec.min_balance)
        .bind(spec.sort_order)
        .bind(i64::from(spec.active))
        .bind(i64::from(spec.bonus_to_inbox))
}

/// The demo catalog: volume discounts on credit packs, priced in CNY.
pub fn demo_catalog() -> Vec<PackageSpec> {
    [(100, 1000), (500, 4500), (1000, 8000), (5000, 35000)]
        .into_iter()
        .enumerate()
        .map(|(i, (credits, price))| PackageSpec {
            name: format!("{credits} credits"),
            kind: PackageKind::CreditPack,
            credits,
            bonus_credits: 0,
            price: Money {
                amount: price,
                currency: "CNY".into(),
            },
            daily_credits: None,
            duration_days: None,
            first_purchase_bonus_percent: None,
            min_level_hundredths: 0,
            min_balance: 0,
            sort_order: i as i64 * 10,
            active: true,
            bonus_to_inbox: false,
        })
        .collect()
}

impl Store {
    /// Adds a package; `audit` (its target set to the new package) commits with it.
    pub async fn create_package(
        &self,
        spec: &PackageSpec,
        audit: AuditRecord<'_>,
    ) -> Result<Package, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let package = insert_package(&mut tx, spec, now).await?;
        let entry = AuditRecord {
            target: Some(&package.id),
            ..audit
        };
        audit::record(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(package)
    }

    /// Replaces a package's settings; `None` if there is no such (undeleted) package. `audit`
    /// commits with the change.
    pub async fn update_package(
        &self,
        id: &str,
        spec: &PackageSpec,
        audit: AuditRecord<'_>,
    ) -> Result<Option<Package>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let update = sqlx::query(
            "UPDATE packages SET name = $1, kind = $2, credits = $3, bonus_credits = $4,
                 price_amount = $5, price_currency = $6, daily_credits = $7, duration_days = $8,
                 first_purchase_bonus_percent = $9, min_level_hundredths = $10, min_balance = $11,
                 sort_order = $12, active = $13, bonus_to_inbox = $14, updated_at = $15
             WHERE id = $16 AND deleted_at IS NULL",
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
        self.package(id).await
    }

    /// Takes a package off the catalog for good (the row stays for order history). `audit`
    /// commits with the change.
    pub async fn delete_package(
        &self,
        id: &str,
        audit: AuditRecord<'_>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE packages SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL";
        audit::change_row(&self.db, sql, id, audit, self.clock.now_ms()).await
    }

    pub async fn package(&self, id: &str) -> Result<Option<Package>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM packages WHERE id = $1 AND deleted_at IS NULL"
        ));
        sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(package_from_row)
            .transpose()
    }

    /// Every undeleted package, in catalog order (for admins).
    pub async fn packages(&self) -> Result<Vec<Package>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM packages WHERE deleted_at IS NULL ORDER BY sort_order, id"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.db.pool).await?;
        rows.iter().map(package_from_row).collect()
    }

    /// The active packages this user may see and buy: those whose `min_level` and `min_balance`
    /// the user meets.
    pub async fn visible_packages(&self, user_id: &str) -> Result<Vec<Package>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM packages
             WHERE deleted_at IS NULL AND active = 1
               AND min_level_hundredths <= (SELECT level_hundredths FROM users WHERE id = $1)
               AND min_balance <= COALESCE((SELECT balance FROM accounts
                                            WHERE owner_kind = 'user' AND owner_id = $1 AND asset = $2), 0)
             ORDER BY sort_order, id"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(&self.asset)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(package_from_row).collect()
    }

    /// Creates the demo catalog when the database has never had a package. Returns whether it
    /// did. The check and the inserts share one write transaction (and, on PostgreSQL, a lock),
    /// so instances starting together seed it once.
    pub async fn seed_demo_catalog(&self) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        if self.db.dialect == crate::Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7364013)")
                .execute(&mut *tx)
                .await?;
        }
        let any: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM packages")
            .fetch_one(&mut *tx)
            .await?;
        if any > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let now = self.clock.now_ms();
        for spec in demo_catalog() {
            insert_package(&mut tx, &spec, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

async fn insert_package(
    conn: &mut sqlx::AnyConnection,
    spec: &PackageSpec,
    now_ms: i64,
) -> Result<Package, StoreError> {
    let id = new_id("pkg");
    let insert = sqlx::query(
        "INSERT INTO packages (name, kind, credits, bonus_credits, price_amount, price_currency,
             daily_credits, duration_days, first_purchase_bonus_percent, min_level_hundredths,
             min_balance, sort_order, active, bonus_to_inbox, id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    );
    bind_spec(insert, spec)
        .bind(&id)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(Package {
        id,
        spec: spec.clone(),
        created_at_ms: now_ms,
    })
}
