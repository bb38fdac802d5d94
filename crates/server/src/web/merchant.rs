//! The merchant's pages: the points balance, products (create, edit, restock, delist) and the
//! redemptions of them to fulfil or cancel. Only a merchant may open them (403 for others).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bursar_core::RedemptionStatus;
use bursar_store::ledger::Canceller;
use bursar_store::marketplace::{Owner, Product, ProductFields, Redemption};
use bursar_store::page::PageRequest;
use serde::Deserialize;

use super::actions::{self, Flash, KeyedForm, after};
use super::context::{MerchantIn, Page, SignedIn};
use super::errors::{OrPage, PageResult, Problem, render, render_with};
use super::forms::{FieldErrors, filled};
use super::marketplace::{ConfirmPage, cancel, confirm_cancel_page};
use crate::AppState;
use crate::app::marketplace;
use crate::error::ApiError;

const ROWS: i64 = 50;
const HERE: &str = "/merchant";

/// A product form as typed, kept to show again beside its errors.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ProductForm {
    name: String,
    description: Option<String>,
    points_price: String,
    stock: String,
    limit_per_member: Option<String>,
    /// A checkbox: present when ticked.
    active: Option<String>,
}

impl ProductForm {
    fn of(product: &Product) -> Self {
        Self {
            name: product.name.clone(),
            description: product.description.clone(),
            points_price: product.points_price.to_string(),
            stock: product.stock.to_string(),
            limit_per_member: product.limit_per_member.map(|l| l.to_string()),
            active: product.active.then(|| "on".to_string()),
        }
    }

    fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The fields, checked by the same rules as the API; errors beside each field.
    fn checked(&self, page: &Page) -> Result<ProductFields, FieldErrors> {
        let mut errors = FieldErrors::default();
        let number = |text: &str| text.trim().parse::<i64>().ok();
        let points_price = number(&self.points_price);
        if points_price.is_none_or(|p| p < 1) {
            errors.add("points_price", page.t.t("product-price-rule"));
        }
        let stock = number(&self.stock);
        if stock.is_none_or(|s| s < 0) {
            errors.add("stock", page.t.t("product-stock-rule"));
        }
        let limit = filled(&self.limit_per_member);
        let limit_per_member = limit.as_deref().map(number);
        if limit_per_member.is_some_and(|l| l.is_none_or(|l| l < 1)) {
            errors.add("limit_per_member", page.t.t("product-limit-rule"));
        }
        if self.name.trim().is_empty() {
            errors.add("name", page.t.t("product-name-rule"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        marketplace::product_fields(ProductFields {
            name: self.name.clone(),
            description: filled(&self.description),
            points_price: points_price.unwrap_or_default(),
            stock: stock.unwrap_or_default(),
            limit_per_member: limit_per_member.flatten(),
            active: self.is_active(),
        })
        .map_err(|error| {
            let mut errors = FieldErrors::default();
            let field = [
                "name",
                "description",
                "points_price",
                "stock",
                "limit_per_member",
            ]
            .into_iter()
            .find(|f| error.detail.starts_with(f))
            .unwrap_or("");
            errors.add(field, page.t.t("product-invalid"));
            errors
        })
    }
}

#[derive(Template)]
#[template(path = "web/merchant.html")]
struct MerchantPage<'a> {
    page: &'a Page,
    balance: i64,
    products: Vec<Product>,
    redemptions: Vec<Redemption>,
    form: ProductForm,
    errors: FieldErrors,
    notice: Option<String>,
    error: Option<String>,
}

impl MerchantPage<'_> {
    fn pending(&self, redemption: &Redemption) -> bool {
        redemption.status == RedemptionStatus::Pending
    }
}

async fn merchant_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: ProductForm,
    errors: FieldErrors,
    flash: &Flash,
    status: StatusCode,
) -> PageResult {
    let SignedIn { page, user } = signed_in;
    let first = PageRequest {
        limit: ROWS,
        before: None,
    };
    let balance = state.store.merchant_balance(&user.id).await.or_page(page)?;
    let products = state
        .store
        .merchant_products(&user.id, &first)
        .await
        .or_page(page)?
        .data;
    let redemptions = state
        .store
        .redemptions(Owner::Merchant(&user.id), &first)
        .await
        .or_page(page)?
        .data;
    let view = MerchantPage {
        page,
        balance,
        products,
        redemptions,
        form,
        errors,
        notice: flash.notice(page),
        error: flash.error(page),
    };
    render_with(page, &view, status)
}

pub async fn home(
    State(state): State<AppState>,
    MerchantIn(signed_in): MerchantIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let form = ProductForm {
        active: Some("on".into()),
        stock: "1".into(),
        ..ProductForm::default()
    };
    merchant_page(
        &state,
        &signed_in,
        form,
        FieldErrors::default(),
        &flash,
        StatusCode::OK,
    )
    .await
}

pub async fn create_product(
    State(state): State<AppState>,
    MerchantIn(signed_in): MerchantIn,
    Form(form): Form<ProductForm>,
) -> PageResult {
    match form.checked(&signed_in.page) {
        Ok(fields) => {
            state
                .store
                .create_product(&signed_in.user.id, &fields)
                .await
                .or_page(&signed_in.page)?;
            Ok(Redirect::to("/merchant?notice=notice-product-saved").into_response())
        }
        Err(errors) => {
            let flash = Flash::default();
            merchant_page(
                &state,
                &signed_in,
                form,
                errors,
                &flash,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "web/product.html")]
struct ProductPage<'a> {
    page: &'a Page,
    product: Product,
    form: ProductForm,
    errors: FieldErrors,
}

/// One of this merchant's listed products; anything else reads as not found.
async fn own_product(
    state: &AppState,
    page: &Page,
    merchant: &str,
    id: &str,
) -> Result<Product, Response> {
    state
        .store
        .product(id)
        .await
        .or_page(page)?
        .filter(|p| p.merchant_id == merchant && p.delisted_at.is_none())
        .ok_or_else(|| super::errors::page(page, Problem::NotFound))
}

pub async fn edit_form(
    State(state): State<AppState>,
    MerchantIn(SignedIn { page, user }): MerchantIn,
    Path(id): Path<String>,
) -> PageResult {
    let product = own_product(&state, &page, &user.id, &id).await?;
    let view = ProductPage {
        page: &page,
        form: ProductForm::of(&product),
        product,
        errors: FieldErrors::default(),
    };
    render(&page, &view)
}

pub async fn update_product(
    State(state): State<AppState>,
    MerchantIn(SignedIn { page, user }): MerchantIn,
    Path(id): Path<String>,
    Form(form): Form<ProductForm>,
) -> PageResult {
    let product = own_product(&state, &page, &user.id, &id).await?;
    match form.checked(&page) {
        Ok(fields) => {
            state
                .store
                .update_product(&user.id, &id, &fields)
                .await
                .or_page(&page)?
                .ok_or_else(|| super::errors::page(&page, Problem::NotFound))?;
            Ok(Redirect::to("/merchant?notice=notice-product-saved").into_response())
        }
        Err(errors) => {
            let view = ProductPage {
                page: &page,
                product,
                form,
                errors,
            };
            render_with(&page, &view, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

pub async fn confirm_delist(
    State(state): State<AppState>,
    MerchantIn(SignedIn { page, user }): MerchantIn,
    Path(id): Path<String>,
) -> PageResult {
    let product = own_product(&state, &page, &user.id, &id).await?;
    let view = ConfirmPage {
        page: &page,
        title: page.t.t("product-delist-title"),
        question: page
            .t
            .t1("product-delist-question", "product", &product.name),
        action: format!("/merchant/products/{id}/delist"),
        back: HERE.into(),
        button: page.t.t("product-delist"),
        form_key: actions::new_form_key(),
    };
    render(&page, &view)
}

pub async fn delist(
    State(state): State<AppState>,
    MerchantIn(SignedIn { page, user }): MerchantIn,
    Path(id): Path<String>,
) -> PageResult {
    if !state
        .store
        .delist_product(&user.id, &id)
        .await
        .or_page(&page)?
    {
        return Err(super::errors::page(&page, Problem::NotFound));
    }
    Ok(Redirect::to("/merchant?notice=notice-product-delisted").into_response())
}

pub async fn fulfil(
    State(state): State<AppState>,
    MerchantIn(SignedIn { user, .. }): MerchantIn,
    Path(id): Path<String>,
) -> Response {
    let outcome = marketplace::fulfil(&state, &user.id, &id).await.map(|_| ());
    after(
        HERE,
        outcome.as_ref().map(|_| "notice-redemption-fulfilled"),
    )
}

pub async fn confirm_cancel(
    State(state): State<AppState>,
    MerchantIn(SignedIn { page, user }): MerchantIn,
    Path(id): Path<String>,
) -> PageResult {
    let redemption = state
        .store
        .redemption(&id)
        .await
        .or_page(&page)?
        .filter(|r| r.merchant_id == user.id)
        .ok_or_else(|| super::errors::page(&page, Problem::NotFound))?;
    confirm_cancel_page(
        &page,
        &redemption,
        &format!("/merchant/redemptions/{id}/cancel"),
        HERE,
    )
}

pub async fn cancel_redemption(
    State(state): State<AppState>,
    MerchantIn(SignedIn { user, .. }): MerchantIn,
    Path(id): Path<String>,
    Form(form): Form<KeyedForm>,
) -> Response {
    let outcome: Result<(), ApiError> = cancel(
        &state,
        Canceller::Merchant(user.id.clone()),
        &id,
        &form.form_key,
    )
    .await;
    after(
        HERE,
        outcome.as_ref().map(|_| "notice-redemption-cancelled"),
    )
}
