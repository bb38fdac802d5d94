//! The catalog: what a user may buy, and the admin's packages.

use crate::reads::Page;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bursar_core::{MAX_CREDITS, Money, PackageKind};
use bursar_store::packages::{Package, PackageSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody};
use crate::views::level_hundredths;

use super::admin;

pub(crate) const NAME_CHARS_MAX: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    /// Minor units (4500 is ¥45.00).
    pub amount: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

impl MoneyBody {
    pub fn new(amount: i64, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.to_string(),
        }
    }
}

/// A package as a buyer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackageView {
    pub id: String,
    pub name: String,
    /// `credit_pack` or `subscription`.
    pub kind: String,
    pub credits: i64,
    pub bonus_credits: i64,
    pub price: MoneyBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_credits: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_purchase_bonus_percent: Option<i64>,
    /// The bonus waits in the buyer's inbox (`GET /me/inbox`) to be claimed.
    pub bonus_to_inbox: bool,
}

/// A package as an admin manages it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPackageView {
    #[serde(flatten)]
    pub package: PackageView,
    pub min_level: f64,
    pub min_balance: i64,
    pub sort_order: i64,
    pub active: bool,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    pub name: String,
    /// `credit_pack` or `subscription`.
    pub kind: String,
    pub credits: i64,
    pub bonus_credits: Option<i64>,
    pub price: MoneyBody,
    /// Subscriptions: credits granted each day.
    pub daily_credits: Option<i64>,
    /// Subscriptions: how long one lasts.
    pub duration_days: Option<i64>,
    /// 0–100: this share of `credits` is added as a bonus on the user's first paid order.
    pub first_purchase_bonus_percent: Option<i64>,
    /// `true`: `bonus_credits` go to the buyer's inbox, to be claimed there, instead of
    /// arriving with the purchase. Default `false`.
    pub bonus_to_inbox: Option<bool>,
    /// Shown and sold only to users at or above this level (two decimals).
    pub min_level: Option<f64>,
    /// Shown and sold only to users with at least this balance.
    pub min_balance: Option<i64>,
    pub sort_order: Option<i64>,
    pub active: Option<bool>,
}

fn view(package: &Package) -> PackageView {
    let spec = &package.spec;
    PackageView {
        id: package.id.clone(),
        name: spec.name.clone(),
        kind: spec.kind.as_str().to_string(),
        credits: spec.credits,
        bonus_credits: spec.bonus_credits,
        price: MoneyBody::new(spec.price.amount, &spec.price.currency),
        daily_credits: spec.daily_credits,
        duration_days: spec.duration_days,
        first_purchase_bonus_percent: spec.first_purchase_bonus_percent,
        bonus_to_inbox: spec.bonus_to_inbox,
    }
}

fn admin_view(package: &Package) -> AdminPackageView {
    AdminPackageView {
        package: view(package),
        min_level: package.spec.min_level_hundredths as f64 / 100.0,
        min_balance: package.spec.min_balance,
        sort_order: package.spec.sort_order,
        active: package.spec.active,
        created_at: bursar_store::clock::rfc3339(package.created_at_ms),
    }
}

fn in_range(value: i64, low: i64, field: &str) -> ApiResult<i64> {
    if (low..=MAX_CREDITS).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be between {low} and 2^53 - 1"
        )))
    }
}

/// Turns a request into a package, checking every field and the rules between them.
fn parse(request: PackageRequest) -> ApiResult<PackageSpec> {
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {NAME_CHARS_MAX} characters"
        )));
    }
    let kind = PackageKind::parse(&request.kind)
        .ok_or_else(|| ApiError::invalid("kind must be credit_pack or subscription"))?;
    let price = Money::new(request.price.amount, &request.price.currency)
        .map_err(|e| ApiError::invalid(format!("price: {e}")))?;
    let credits = in_range(request.credits, 0, "credits")?;
    let daily_credits = request
        .daily_credits
        .map(|d| in_range(d, 1, "daily_credits"))
        .transpose()?;
    let duration_days = request
        .duration_days
        .map(|d| in_range(d, 1, "duration_days"))
        .transpose()?;
    match kind {
        PackageKind::CreditPack if credits == 0 => {
            return Err(ApiError::invalid(
                "a credit pack must grant at least 1 credit",
            ));
        }
        PackageKind::Subscription if daily_credits.is_none() || duration_days.is_none() => {
            return Err(ApiError::invalid(
                "a subscription needs daily_credits and duration_days",
            ));
        }
        _ => {}
    }
    let bonus_percent = request.first_purchase_bonus_percent;
    if bonus_percent.is_some_and(|p| !(0..=100).contains(&p)) {
        return Err(ApiError::invalid(
            "first_purchase_bonus_percent must be between 0 and 100",
        ));
    }
    let sort_order = request.sort_order.unwrap_or(0);
    if sort_order.unsigned_abs() > MAX_CREDITS as u64 {
        return Err(ApiError::invalid("sort_order must be within ±(2^53 - 1)"));
    }
    Ok(PackageSpec {
        name,
        kind,
        credits,
        bonus_credits: in_range(request.bonus_credits.unwrap_or(0), 0, "bonus_credits")?,
        price,
        daily_credits,
        duration_days,
        first_purchase_bonus_percent: bonus_percent,
        min_level_hundredths: request
            .min_level
            .map(level_hundredths)
            .transpose()?
            .unwrap_or(0),
        min_balance: in_range(request.min_balance.unwrap_or(0), 0, "min_balance")?,
        sort_order,
        active: request.active.unwrap_or(true),
        bonus_to_inbox: request.bonus_to_inbox.unwrap_or(false),
    })
}

/// The packages this user may buy, in catalog order. A package with `min_level` or
/// `min_balance` appears only for users at or above both.
#[utoipa::path(get, path = "/api/v1/packages", tag = "catalog",
    responses((status = 200, body = Page<PackageView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_packages(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Page<PackageView>>> {
    let user_id = caller.require_user()?;
    let packages = state.store.visible_packages(user_id).await?;
    Ok(Json(Page {
        data: packages.iter().map(view).collect(),
        next_cursor: None,
    }))
}

/// Every package, active or not, in catalog order.
#[utoipa::path(get, path = "/api/v1/admin/packages", tag = "admin",
    responses((status = 200, body = Page<AdminPackageView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn admin_list_packages(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Page<AdminPackageView>>> {
    caller.require_admin()?;
    let packages = state.store.packages().await?;
    Ok(Json(Page {
        data: packages.iter().map(admin_view).collect(),
        next_cursor: None,
    }))
}

/// Add a package to the catalog.
#[utoipa::path(post, path = "/api/v1/admin/packages", tag = "admin",
    request_body = PackageRequest,
    responses((status = 201, body = AdminPackageView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_package(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<PackageRequest>,
) -> ApiResult<(StatusCode, Json<AdminPackageView>)> {
    caller.require_admin()?;
    let spec = parse(body.value)?;
    let audit = admin::entry(
        &caller,
        &ip,
        "package.create",
        None,
        serde_json::json!({ "name": spec.name }),
    );
    let package = state.store.create_package(&spec, audit).await?;
    Ok((StatusCode::CREATED, Json(admin_view(&package))))
}

/// One package.
#[utoipa::path(get, path = "/api/v1/admin/packages/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = AdminPackageView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_package(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminPackageView>> {
    caller.require_admin()?;
    let package = state
        .store
        .package(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    Ok(Json(admin_view(&package)))
}

/// Replace a package's settings (the same body as creating one).
#[utoipa::path(put, path = "/api/v1/admin/packages/{id}", tag = "admin",
    params(("id" = String, Path)),
    request_body = PackageRequest,
    responses((status = 200, body = AdminPackageView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_package(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<PackageRequest>,
) -> ApiResult<Json<AdminPackageView>> {
    caller.require_admin()?;
    let spec = parse(body.value)?;
    let audit = admin::entry(
        &caller,
        &ip,
        "package.update",
        Some(&id),
        serde_json::json!({ "name": spec.name, "active": spec.active }),
    );
    let package = state
        .store
        .update_package(&id, &spec, audit)
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    Ok(Json(admin_view(&package)))
}

/// Take a package off the catalog for good; orders that refer to it keep their history.
#[utoipa::path(delete, path = "/api/v1/admin/packages/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_package(
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
        "package.delete",
        Some(&id),
        serde_json::Value::Null,
    );
    if !state.store.delete_package(&id, audit).await? {
        return Err(ApiError::not_found("package"));
    }
    Ok(StatusCode::NO_CONTENT)
}
