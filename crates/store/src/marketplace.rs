//! The merchants' marketplace outside the ledger: products (made, edited, restocked and
//! delisted by their merchant), the redemptions' read models, fulfilment, and a merchant's
//! balance. Redeeming and cancelling move points, so they are ledger commands
//! (`ledger/commands/redeem.rs`).

use bursar_core::RedemptionStatus;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::clock::rfc3339;
use crate::ids::new_id;
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

/// The most of one product a single redemption may take.
pub const QUANTITY_MAX: i64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub points_price: i64,
    pub stock: i64,
    pub limit_per_member: Option<i64>,
    pub active: bool,
    pub delisted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a merchant sets on a product, when making it and (all of it) when editing it.
#[derive(Debug, Clone)]
pub struct ProductFields {
    pub name: String,
    pub description: Option<String>,
    pub points_price: i64,
    /// What is left to redeem; setting it restocks (or takes stock out).
    pub stock: i64,
    pub limit_per_member: Option<i64>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub id: String,
    pub product_id: String,
    pub product_name: String,
    pub merchant_id: String,
    pub user_id: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub points_cost: i64,
    pub status: RedemptionStatus,
    pub transaction_id: String,
    pub refund_transaction_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What became of a merchant's fulfilment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilment {
    Fulfilled(Box<Redemption>),
    /// Not one of this merchant's redemptions.
    NotFound,
    /// Already fulfilled or cancelled.
    Settled(RedemptionStatus),
}

const PRODUCT_COLUMNS: &str = "id, merchant_id, name, description, points_price, stock,
    limit_per_member, active, delisted_at, created_at, updated_at";

const REDEMPTION_COLUMNS: &str = "id, product_id, product_name, merchant_id, user_id, quantity,
    unit_price, points_cost, status, transfer_id, refund_transfer_id, created_at, updated_at";

fn product_from(row: &AnyRow) -> Result<Product, StoreError> {
    Ok(Product {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        points_price: row.try_get("points_price")?,
        stock: row.try_get("stock")?,
        limit_per_member: row.try_get("limit_per_member")?,
        active: row.try_get::<i64, _>("active")? == 1,
        delisted_at: row.try_get::<Option<i64>, _>("delisted_at")?.map(rfc3339),
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

fn redemption_from(row: &AnyRow) -> Result<Redemption, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Redemption {
        id: row.try_get("id")?,
        product_id: row.try_get("product_id")?,
        product_name: row.try_get("product_name")?,
        merchant_id: row.try_get("merchant_id")?,
        user_id: row.try_get("user_id")?,
        quantity: row.try_get("quantity")?,
        unit_price: row.try_get("unit_price")?,
        points_cost: row.try_get("points_cost")?,
        status: RedemptionStatus::parse(&status)
            .ok_or_else(|| StoreError::Config(format!("unknown redemption status {status}")))?,
        transaction_id: row.try_get("transfer_id")?,
        refund_transaction_id: row.try_get("refund_transfer_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

/// Whose products or redemptions a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Merchant(&'a str),
    Member(&'a str),
}

impl Store {
    pub async fn create_product(
        &self,
        merchant_id: &str,
        fields: &ProductFields,
    ) -> Result<Product, StoreError> {
        let id = new_id("prd");
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO products (id, merchant_id, name, description, points_price, stock,
                 stock_added, limit_per_member, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $9)",
        )
        .bind(&id)
        .bind(merchant_id)
        .bind(&fields.name)
        .bind(fields.description.as_deref())
        .bind(fields.points_price)
        .bind(fields.stock)
        .bind(fields.limit_per_member)
        .bind(i64::from(fields.active))
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        self.product(&id).await?.ok_or(StoreError::Config(
            "a product vanished as it was made".into(),
        ))
    }

    /// Replaces a listed product's fields; `None` when it is not one of the merchant's listed
    /// products. Setting `stock` adds (or takes out) the difference to the stock ever added,
    /// in the same statement, so redemptions running at the same moment keep the count right.
    pub async fn update_product(
        &self,
        merchant_id: &str,
        id: &str,
        fields: &ProductFields,
    ) -> Result<Option<Product>, StoreError> {
        let changed = sqlx::query(
            "UPDATE products SET name = $1, description = $2, points_price = $3,
                 stock_added = stock_added + ($4 - stock), stock = $4, limit_per_member = $5,
                 active = $6, updated_at = $7
             WHERE id = $8 AND merchant_id = $9 AND delisted_at IS NULL",
        )
        .bind(&fields.name)
        .bind(fields.description.as_deref())
        .bind(fields.points_price)
        .bind(fields.stock)
        .bind(fields.limit_per_member)
        .bind(i64::from(fields.active))
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(merchant_id)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        self.product(id).await
    }

    /// Delists one of the merchant's products: it can no longer be redeemed or edited, and
    /// keeps its row and its redemptions. False when there is no such listed product.
    pub async fn delist_product(&self, merchant_id: &str, id: &str) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE products SET delisted_at = $1, active = 0, updated_at = $1
             WHERE id = $2 AND merchant_id = $3 AND delisted_at IS NULL",
        )
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(merchant_id)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    pub async fn product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(product_from).transpose()
    }

    /// A merchant's own products (delisted ones too, marked), newest first.
    pub async fn merchant_products(
        &self,
        merchant_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Product>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products
             WHERE merchant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(merchant_id)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let list = rows
            .iter()
            .map(product_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(list, |p| p.id.clone()))
    }

    /// What members can redeem now: active, listed products with stock left, newest first.
    pub async fn products_on_offer(&self, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products
             WHERE active = 1 AND delisted_at IS NULL AND stock > 0 AND id < $1
             ORDER BY id DESC LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let list = rows
            .iter()
            .map(product_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(list, |p| p.id.clone()))
    }

    pub async fn redemption(&self, id: &str) -> Result<Option<Redemption>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(redemption_from).transpose()
    }

    /// A member's own redemptions, or those of a merchant's products, newest first.
    pub async fn redemptions(
        &self,
        owner: Owner<'_>,
        page: &PageRequest,
    ) -> Result<Page<Redemption>, StoreError> {
        let column = match owner {
            Owner::Merchant(_) => "merchant_id",
            Owner::Member(_) => "user_id",
        };
        let (Owner::Merchant(id) | Owner::Member(id)) = owner;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions
             WHERE {column} = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(id)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let list = rows
            .iter()
            .map(redemption_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(list, |r| r.id.clone()))
    }

    /// Marks one of the merchant's pending redemptions fulfilled. A guarded change: a
    /// cancellation at the same moment (on the ledger writer, which locks the row) leaves
    /// exactly one of the two to happen.
    pub async fn fulfil_redemption(
        &self,
        merchant_id: &str,
        id: &str,
    ) -> Result<Fulfilment, StoreError> {
        let changed = sqlx::query(
            "UPDATE redemptions SET status = 'fulfilled', updated_at = $1
             WHERE id = $2 AND merchant_id = $3 AND status = 'pending'",
        )
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(merchant_id)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        let now = self
            .redemption(id)
            .await?
            .filter(|r| r.merchant_id == merchant_id);
        Ok(match now {
            Some(redemption) if changed == 1 => Fulfilment::Fulfilled(Box::new(redemption)),
            Some(redemption) => Fulfilment::Settled(redemption.status),
            None => Fulfilment::NotFound,
        })
    }

    /// The merchant's points account balance (0 before its first redemption).
    pub async fn merchant_balance(&self, merchant_id: &str) -> Result<i64, StoreError> {
        let balance: Option<i64> = sqlx::query_scalar(
            "SELECT balance FROM accounts
             WHERE owner_kind = 'merchant' AND owner_id = $1 AND asset = $2",
        )
        .bind(merchant_id)
        .bind(&self.asset)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(balance.unwrap_or(0))
    }
}
