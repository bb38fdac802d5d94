//! The merchants' points marketplace: merchants keep their products and fulfil redemptions;
//! members browse, redeem and cancel. Redeeming and cancelling move points, so they are ledger
//! commands (exactly once, with `Idempotency-Key`); a merchant never sees or touches another
//! merchant's products or redemptions (they read as not found).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bursar_core::Role;
use bursar_store::ledger::{Canceller, Command};
use bursar_store::marketplace::{Owner, Product, ProductFields};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::marketplace;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody};
use crate::outcomes::{RedemptionView, execute};
use crate::views::PageQuery;

pub(crate) use crate::app::marketplace::{DESCRIPTION_CHARS_MAX, NAME_CHARS_MAX};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    pub name: String,
    pub description: Option<String>,
    /// Points per item, at least 1.
    pub points_price: i64,
    /// Items left to redeem; setting it restocks.
    pub stock: i64,
    /// The most one member may redeem in all (cancelled redemptions not counted).
    pub limit_per_member: Option<i64>,
    /// Offered to members (default true); an inactive product is hidden but kept.
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Product)]
pub struct ProductView {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub points_price: i64,
    pub stock: i64,
    pub limit_per_member: Option<i64>,
    pub active: bool,
    /// Set once the merchant delisted it: no longer redeemable or editable.
    pub delisted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            id: p.id,
            merchant_id: p.merchant_id,
            name: p.name,
            description: p.description,
            points_price: p.points_price,
            stock: p.stock,
            limit_per_member: p.limit_per_member,
            active: p.active,
            delisted_at: p.delisted_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub data: Vec<ProductView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionList {
    pub data: Vec<RedemptionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRequest {
    pub product_id: String,
    /// 1 to 1,000 (default 1).
    pub quantity: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantBalance {
    pub asset: String,
    pub balance: i64,
}

fn require_role(caller: &Caller, wanted: Role) -> ApiResult<&str> {
    match caller {
        Caller::User { id, role } if *role == wanted => Ok(id),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("only a {wanted} may do this"),
        )),
    }
}

fn fields(request: ProductRequest) -> ApiResult<ProductFields> {
    marketplace::product_fields(ProductFields {
        name: request.name,
        description: request.description,
        points_price: request.points_price,
        stock: request.stock,
        limit_per_member: request.limit_per_member,
        active: request.active.unwrap_or(true),
    })
}

/// The merchant's own products, delisted ones included, newest first.
#[utoipa::path(get, path = "/api/v1/merchant/products", tag = "marketplace",
    params(PageQuery),
    responses((status = 200, body = ProductList), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_own_products(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ProductList>> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let page = state
        .store
        .merchant_products(merchant, &query.parse()?)
        .await?;
    Ok(Json(ProductList {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// List a product for members to redeem with points.
#[utoipa::path(post, path = "/api/v1/merchant/products", tag = "marketplace",
    request_body = ProductRequest,
    responses((status = 201, body = ProductView), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<ProductRequest>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let fields = fields(body.value)?;
    let product = state.store.create_product(merchant, &fields).await?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

/// Replace one of the merchant's listed products (setting `stock` restocks it). Redemptions
/// keep the price they were made at.
#[utoipa::path(put, path = "/api/v1/merchant/products/{id}", tag = "marketplace",
    params(("id" = String, Path)),
    request_body = ProductRequest,
    responses((status = 200, body = ProductView), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 404, description = "not one of this merchant's listed products", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ProductRequest>,
) -> ApiResult<Json<ProductView>> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let fields = fields(body.value)?;
    let product = state
        .store
        .update_product(merchant, &id, &fields)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Json(product.into()))
}

/// Delist one of the merchant's products: no longer redeemable or editable; it and its
/// redemptions stay in the history.
#[utoipa::path(delete, path = "/api/v1/merchant/products/{id}", tag = "marketplace",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 404, description = "not one of this merchant's listed products", body = Problem)),
    security(("bearer" = [])))]
pub async fn delist_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    let merchant = require_role(&caller, Role::Merchant)?;
    if !state.store.delist_product(merchant, &id).await? {
        return Err(ApiError::not_found("product"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Redemptions of the merchant's products, newest first.
#[utoipa::path(get, path = "/api/v1/merchant/redemptions", tag = "marketplace",
    params(PageQuery),
    responses((status = 200, body = RedemptionList), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_merchant_redemptions(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<RedemptionList>> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let page = state
        .store
        .redemptions(Owner::Merchant(merchant), &query.parse()?)
        .await?;
    Ok(Json(RedemptionList {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Mark a pending redemption of the merchant's product fulfilled (handed over). A fulfilled
/// redemption can no longer be cancelled; a cancelled one cannot be fulfilled.
#[utoipa::path(post, path = "/api/v1/merchant/redemptions/{id}/fulfil", tag = "marketplace",
    params(("id" = String, Path)),
    responses((status = 200, body = RedemptionView), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem),
        (status = 404, description = "not a redemption of this merchant's products", body = Problem),
        (status = 409, description = "already fulfilled or cancelled", body = Problem)),
    security(("bearer" = [])))]
pub async fn fulfil_redemption(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Json<RedemptionView>> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let redemption = marketplace::fulfil(&state, merchant, &id).await?;
    Ok(Json(redemption.into()))
}

/// The merchant's points account: credited by every redemption of its products, debited by
/// every cancellation.
#[utoipa::path(get, path = "/api/v1/merchant/balance", tag = "marketplace",
    responses((status = 200, body = MerchantBalance), (status = 401, body = Problem),
        (status = 403, description = "not a merchant", body = Problem)),
    security(("bearer" = [])))]
pub async fn merchant_balance(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<MerchantBalance>> {
    let merchant = require_role(&caller, Role::Merchant)?;
    let balance = state.store.merchant_balance(merchant).await?;
    Ok(Json(MerchantBalance {
        asset: state.store.asset.clone(),
        balance,
    }))
}

/// Products on offer: active, listed and in stock, newest first.
#[utoipa::path(get, path = "/api/v1/products", tag = "marketplace",
    params(PageQuery),
    responses((status = 200, body = ProductList), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn products_on_offer(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ProductList>> {
    caller.require_user()?;
    let page = state.store.products_on_offer(&query.parse()?).await?;
    Ok(Json(ProductList {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Redeem a product with points: in one transaction the stock is taken and the points move to
/// the merchant through the normal spend rules (available balance, holds, grants soonest to
/// expire first, overdraft). The price is kept as it is now.
#[utoipa::path(post, path = "/api/v1/redemptions", tag = "marketplace",
    request_body = RedemptionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; a retry with the same key and body replays the first response")),
    responses((status = 201, body = RedemptionView), (status = 401, body = Problem),
        (status = 403, description = "not a member, or `account_suspended`", body = Problem),
        (status = 404, description = "no such product on offer", body = Problem),
        (status = 409, description = "`out_of_stock`, `insufficient_credits`, or past the product's limit per member", body = Problem),
        (status = 422, description = "bad quantity, or idempotency_mismatch", body = Problem)),
    security(("bearer" = [])))]
pub async fn redeem(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body<RedemptionRequest>,
) -> ApiResult<Response> {
    let member = require_role(&caller, Role::Member)?.to_string();
    let request = &body.value;
    let command = marketplace::redemption(
        &member,
        &request.product_id,
        request.quantity.unwrap_or(1),
        caller.id(),
    )?;
    execute(
        &state,
        &headers,
        &caller,
        "POST /redemptions",
        &body.raw,
        command,
    )
    .await
}

/// The member's own redemptions, newest first.
#[utoipa::path(get, path = "/api/v1/me/redemptions", tag = "marketplace",
    params(PageQuery),
    responses((status = 200, body = RedemptionList), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn my_redemptions(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<RedemptionList>> {
    let member = caller.require_user()?;
    let page = state
        .store
        .redemptions(Owner::Member(member), &query.parse()?)
        .await?;
    Ok(Json(RedemptionList {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Cancel a pending redemption: its member, the merchant whose product it is, or an admin.
/// The points go back to the member and the stock is restored, exactly once.
#[utoipa::path(post, path = "/api/v1/redemptions/{id}/cancel", tag = "marketplace",
    params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 characters")),
    responses((status = 200, body = RedemptionView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "not a redemption this caller may cancel", body = Problem),
        (status = 409, description = "already cancelled, or fulfilled", body = Problem),
        (status = 422, description = "idempotency_mismatch", body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel_redemption(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let by = match &caller {
        Caller::User {
            id,
            role: Role::Member,
        } => Canceller::Member(id.clone()),
        Caller::User {
            id,
            role: Role::Merchant,
        } => Canceller::Merchant(id.clone()),
        Caller::User {
            id,
            role: Role::Admin,
        } => Canceller::Admin(id.clone()),
        Caller::Service { .. } => return Err(ApiError::forbidden()),
    };
    let route = format!("POST /redemptions/{id}/cancel");
    let command = Command::CancelRedemption {
        redemption_id: id,
        by,
    };
    execute(&state, &headers, &caller, &route, b"", command).await
}
