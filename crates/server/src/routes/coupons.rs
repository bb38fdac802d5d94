//! Admin management of coupons.

use crate::reads::Page;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bursar_core::{Discount, MAX_CREDITS};
use bursar_store::clock::rfc3339;
use bursar_store::coupons::{Coupon, CouponSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin;
use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody};
use crate::views::parse_instant;

pub(crate) const CODE_CHARS_MAX: usize = 64;
pub(crate) const PACKAGES_MAX: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponRequest {
    /// Letters, digits, `-` and `_`; matched case-insensitively.
    pub code: String,
    /// 1–100. Exactly one of `percent_off` and `amount_off`.
    pub percent_off: Option<i64>,
    /// Minor units of `currency`.
    pub amount_off: Option<i64>,
    /// Required with `amount_off`; with `percent_off`, limits the coupon to that currency.
    pub currency: Option<String>,
    /// RFC 3339 or YYYY-MM-DD.
    pub valid_from: Option<String>,
    /// RFC 3339 or YYYY-MM-DD; the coupon stops working at this instant.
    pub valid_until: Option<String>,
    /// Uses by all users together (pending and paid orders count).
    pub max_redemptions: Option<i64>,
    pub max_per_user: Option<i64>,
    /// The packages it applies to; leave out for all.
    pub package_ids: Option<Vec<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    pub id: String,
    pub code: String,
    pub percent_off: Option<i64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub max_redemptions: Option<i64>,
    pub max_per_user: Option<i64>,
    pub package_ids: Option<Vec<String>>,
    pub active: bool,
    /// Paid orders that used it.
    pub times_redeemed: i64,
    /// Pending orders holding it.
    pub reserved: i64,
    pub created_at: String,
}

fn view(coupon: &Coupon) -> CouponView {
    let spec = &coupon.spec;
    let (percent_off, amount_off) = match spec.discount {
        Discount::Percent(p) => (Some(p), None),
        Discount::Amount(a) => (None, Some(a)),
    };
    CouponView {
        id: coupon.id.clone(),
        code: spec.code.clone(),
        percent_off,
        amount_off,
        currency: spec.currency.clone(),
        valid_from: spec.valid_from_ms.map(rfc3339),
        valid_until: spec.valid_until_ms.map(rfc3339),
        max_redemptions: spec.max_redemptions,
        max_per_user: spec.max_per_user,
        package_ids: spec.package_ids.clone(),
        active: spec.active,
        times_redeemed: coupon.redeemed,
        reserved: coupon.reserved,
        created_at: rfc3339(coupon.created_at_ms),
    }
}

fn positive(value: Option<i64>, field: &str) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if !(1..=MAX_CREDITS).contains(&v) => Err(ApiError::invalid(format!(
            "{field} must be a positive integer up to 2^53 - 1"
        ))),
        other => Ok(other),
    }
}

/// Checks every field of a coupon request and the rules between them.
fn parse(request: CouponRequest) -> ApiResult<CouponSpec> {
    let code = request.code.trim().to_uppercase();
    if code.is_empty()
        || code.chars().count() > CODE_CHARS_MAX
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(format!(
            "code must be 1 to {CODE_CHARS_MAX} letters, digits, '-' or '_'"
        )));
    }
    let discount = match (request.percent_off, request.amount_off) {
        (Some(p), None) if (1..=100).contains(&p) => Discount::Percent(p),
        (Some(_), None) => return Err(ApiError::invalid("percent_off must be between 1 and 100")),
        (None, Some(a)) if (1..=MAX_CREDITS).contains(&a) => Discount::Amount(a),
        (None, Some(_)) => return Err(ApiError::invalid("amount_off must be a positive integer")),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of percent_off and amount_off",
            ));
        }
    };
    let currency = request
        .currency
        .map(|c| {
            bursar_core::Money::new(0, &c)
                .map(|m| m.currency)
                .map_err(|e| ApiError::invalid(format!("currency: {e}")))
        })
        .transpose()?;
    if matches!(discount, Discount::Amount(_)) && currency.is_none() {
        return Err(ApiError::invalid("amount_off needs a currency"));
    }
    let valid_from_ms = request
        .valid_from
        .as_deref()
        .map(|t| parse_instant(t, "valid_from"))
        .transpose()?;
    let valid_until_ms = request
        .valid_until
        .as_deref()
        .map(|t| parse_instant(t, "valid_until"))
        .transpose()?;
    if let (Some(from), Some(until)) = (valid_from_ms, valid_until_ms)
        && until <= from
    {
        return Err(ApiError::invalid("valid_until must be after valid_from"));
    }
    if let Some(ids) = &request.package_ids
        && (ids.is_empty() || ids.len() > PACKAGES_MAX || ids.iter().any(|id| id.is_empty()))
    {
        return Err(ApiError::invalid(format!(
            "package_ids must list 1 to {PACKAGES_MAX} package ids (leave it out for all packages)"
        )));
    }
    Ok(CouponSpec {
        code,
        discount,
        currency,
        valid_from_ms,
        valid_until_ms,
        max_redemptions: positive(request.max_redemptions, "max_redemptions")?,
        max_per_user: positive(request.max_per_user, "max_per_user")?,
        package_ids: request.package_ids,
        active: request.active.unwrap_or(true),
    })
}

#[utoipa::path(get, path = "/api/v1/admin/coupons", tag = "admin",
    responses((status = 200, body = Page<CouponView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_coupons(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Page<CouponView>>> {
    caller.require_admin()?;
    let coupons = state.store.coupons().await?;
    Ok(Json(Page {
        data: coupons.iter().map(view).collect(),
        next_cursor: None,
    }))
}

/// Create a coupon.
#[utoipa::path(post, path = "/api/v1/admin/coupons", tag = "admin",
    request_body = CouponRequest,
    responses((status = 201, body = CouponView), (status = 403, body = Problem),
        (status = 409, description = "the code is taken", body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_coupon(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<CouponRequest>,
) -> ApiResult<(StatusCode, Json<CouponView>)> {
    caller.require_admin()?;
    let spec = parse(body.value)?;
    let audit = admin::entry(
        &caller,
        &ip,
        "coupon.create",
        None,
        serde_json::json!({ "code": spec.code }),
    );
    let coupon = state
        .store
        .create_coupon(&spec, audit)
        .await?
        .ok_or_else(|| ApiError::conflict(format!("the code {} is taken", spec.code)))?;
    Ok((StatusCode::CREATED, Json(view(&coupon))))
}

#[utoipa::path(get, path = "/api/v1/admin/coupons/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = CouponView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_coupon(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CouponView>> {
    caller.require_admin()?;
    let coupon = state
        .store
        .coupon(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("coupon"))?;
    Ok(Json(view(&coupon)))
}

/// Replace a coupon's settings (the same body as creating one). A limit below the uses already
/// made is refused with 409.
#[utoipa::path(put, path = "/api/v1/admin/coupons/{id}", tag = "admin",
    params(("id" = String, Path)),
    request_body = CouponRequest,
    responses((status = 200, body = CouponView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_coupon(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<CouponRequest>,
) -> ApiResult<Json<CouponView>> {
    caller.require_admin()?;
    let spec = parse(body.value)?;
    let existing = state
        .store
        .coupon(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("coupon"))?;
    if spec
        .max_redemptions
        .is_some_and(|max| max < existing.reserved + existing.redeemed)
    {
        return Err(ApiError::conflict(format!(
            "max_redemptions cannot go below the {} uses already made",
            existing.reserved + existing.redeemed
        )));
    }
    let audit = admin::entry(
        &caller,
        &ip,
        "coupon.update",
        Some(&id),
        serde_json::json!({ "code": spec.code, "active": spec.active }),
    );
    let coupon = match state.store.update_coupon(&id, &spec, audit).await {
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::conflict(format!(
                "the code {} is taken",
                spec.code
            )));
        }
        Err(bursar_store::StoreError::Database(e))
            if e.as_database_error()
                .is_some_and(|d| d.is_check_violation()) =>
        {
            return Err(ApiError::conflict(
                "the new limits are below the uses already made",
            ));
        }
        other => other?.ok_or_else(|| ApiError::not_found("coupon"))?,
    };
    Ok(Json(view(&coupon)))
}

/// Retire a coupon: it stops working at once; orders that used it keep their history.
#[utoipa::path(delete, path = "/api/v1/admin/coupons/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_coupon(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let audit = admin::entry(
        &caller,
        &ip,
        "coupon.delete",
        Some(&id),
        serde_json::json!({}),
    );
    if !state.store.delete_coupon(&id, audit).await? {
        return Err(ApiError::not_found("coupon"));
    }
    Ok(StatusCode::NO_CONTENT)
}
