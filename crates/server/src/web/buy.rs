//! Buying credits: pick a package, maybe a coupon (the price is recomputed as it is typed, or
//! with the "check price" button when JavaScript is off), pick a provider, then go to the
//! provider's page. Orders are placed through the same checkout use case as the API's.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use bursar_store::ledger::Idempotency;
use bursar_store::orders::NewOrder;
use bursar_store::packages::Package;
use serde::Deserialize;

use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render, render_with};
use super::forms::{FieldErrors, filled};
use crate::AppState;
use crate::app::checkout::{self, Basket};
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    package_id: Option<String>,
    coupon_code: Option<String>,
    provider: Option<String>,
    quantity: Option<String>,
}

impl Choice {
    fn quantity(&self) -> i64 {
        self.quantity
            .as_deref()
            .and_then(|q| q.trim().parse().ok())
            .unwrap_or(1)
    }
}

#[derive(Template)]
#[template(path = "web/buy.html")]
struct BuyPage<'a> {
    page: &'a Page,
    packages: Vec<Package>,
    providers: Vec<&'static str>,
    package_id: String,
    coupon_code: String,
    provider: String,
    quantity: i64,
    quote: Option<NewOrder>,
    errors: FieldErrors,
    /// A fresh key per rendered form, so a double-submitted form places one order.
    order_key: String,
}

#[derive(Template)]
#[template(path = "web/quote.html")]
struct QuotePart<'a> {
    page: &'a Page,
    quote: Option<NewOrder>,
    errors: FieldErrors,
}

/// The providers a person can pay with here, in a fixed order.
fn providers(state: &AppState) -> Vec<&'static str> {
    let names = state.payments.names();
    [
        "stripe",
        "alipay",
        "wechatpay",
        "ecpay",
        "bank_transfer",
        "sandbox",
    ]
    .into_iter()
    .filter(|p| names.contains(p))
    .collect()
}

/// The price of the chosen basket, or why it cannot be bought, beside the field at fault.
async fn quote_for(
    state: &AppState,
    page: &Page,
    user_id: &str,
    choice: &Choice,
    providers: &[&'static str],
) -> Result<(Option<NewOrder>, FieldErrors), axum::response::Response> {
    let mut errors = FieldErrors::default();
    let Some(package_id) = filled(&choice.package_id) else {
        return Ok((None, errors));
    };
    let basket = Basket {
        package_id,
        quantity: choice.quantity(),
        coupon_code: filled(&choice.coupon_code),
        provider: filled(&choice.provider)
            .or_else(|| providers.first().map(|p| (*p).to_string()))
            .unwrap_or_default(),
        mode: None,
    };
    match checkout::price_order(state, user_id, &basket).await {
        Ok(order) => Ok((Some(order), errors)),
        Err(error) => {
            add_basket_error(page, &mut errors, &error)?;
            Ok((None, errors))
        }
    }
}

/// Puts a checkout refusal beside the field it is about.
fn add_basket_error(
    page: &Page,
    errors: &mut FieldErrors,
    error: &ApiError,
) -> Result<(), axum::response::Response> {
    if error.status.is_server_error() {
        return Err(super::errors::from_api(page, error));
    }
    let detail = error.detail.to_lowercase();
    if detail.contains("coupon") {
        errors.add("coupon_code", page.t.t("buy-coupon-unusable"));
    } else if detail.contains("quantity") {
        errors.add("quantity", page.t.t("buy-quantity-rule"));
    } else if error.status == StatusCode::NOT_FOUND {
        errors.add("package_id", page.t.t("buy-package-missing"));
    } else if detail.contains("provider") || detail.contains("currency") {
        errors.add("provider", page.t.t("buy-provider-unusable"));
    } else if error.status == StatusCode::BAD_GATEWAY
        || error.status == StatusCode::SERVICE_UNAVAILABLE
    {
        errors.add("", page.t.t("buy-provider-down"));
    } else {
        errors.add("", page.t.t("buy-failed"));
    }
    Ok(())
}

pub async fn buy_form(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(choice): Query<Choice>,
) -> PageResult {
    let packages = state
        .store
        .visible_packages(&user.id)
        .await
        .or_page(&page)?;
    let providers = providers(&state);
    let (quote, errors) = quote_for(&state, &page, &user.id, &choice, &providers).await?;
    let view = BuyPage {
        page: &page,
        package_id: choice.package_id.clone().unwrap_or_default(),
        coupon_code: choice.coupon_code.clone().unwrap_or_default(),
        provider: filled(&choice.provider)
            .or_else(|| providers.first().map(|p| (*p).to_string()))
            .unwrap_or_default(),
        quantity: choice.quantity(),
        packages,
        providers,
        quote,
        errors,
        order_key: bursar_store::ids::new_id("web"),
    };
    render(&page, &view)
}

/// The price box alone, for htmx to swap in as the form changes.
pub async fn quote(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(choice): Query<Choice>,
) -> PageResult {
    let providers = providers(&state);
    let (quote, errors) = quote_for(&state, &page, &user.id, &choice, &providers).await?;
    render(
        &page,
        &QuotePart {
            page: &page,
            quote,
            errors,
        },
    )
}

#[derive(Deserialize)]
pub struct PlaceForm {
    #[serde(flatten)]
    choice: Choice,
    order_key: String,
    /// `quote`: only show the price (the form's "check price" button, for JavaScript off).
    action: Option<String>,
}

pub async fn place(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Form(form): Form<PlaceForm>,
) -> PageResult {
    let providers = providers(&state);
    let choice = &form.choice;
    if form.action.as_deref() == Some("quote") {
        let (quote, errors) = quote_for(&state, &page, &user.id, choice, &providers).await?;
        let packages = state
            .store
            .visible_packages(&user.id)
            .await
            .or_page(&page)?;
        let view = BuyPage {
            page: &page,
            package_id: choice.package_id.clone().unwrap_or_default(),
            coupon_code: choice.coupon_code.clone().unwrap_or_default(),
            provider: choice.provider.clone().unwrap_or_default(),
            quantity: choice.quantity(),
            packages,
            providers,
            quote,
            errors,
            order_key: form.order_key.clone(),
        };
        return render(&page, &view);
    }
    let mut errors = FieldErrors::default();
    if filled(&choice.package_id).is_none() {
        errors.add("package_id", page.t.t("buy-package-required"));
    }
    let provider = filled(&choice.provider).unwrap_or_default();
    if !providers.contains(&provider.as_str()) {
        errors.add("provider", page.t.t("buy-provider-required"));
    }
    if errors.is_empty() {
        let basket = Basket {
            package_id: filled(&choice.package_id).unwrap_or_default(),
            quantity: choice.quantity(),
            coupon_code: filled(&choice.coupon_code),
            provider,
            mode: None,
        };
        let key = order_key(&user.id, &form.order_key, &basket);
        let placed = checkout::place_order(
            &state,
            &user.id,
            &basket,
            Some(&key),
            crate::routes::orders::render,
        )
        .await;
        match placed {
            Ok(placed) if (200..300).contains(&placed.response.status) => {
                let order: serde_json::Value =
                    serde_json::from_str(&placed.response.body).unwrap_or_default();
                let id = order["id"].as_str().unwrap_or_default();
                let target = match order["payment"]["redirect_url"].as_str() {
                    Some(url) if !url.is_empty() => url.to_string(),
                    _ => format!("/account/orders/{id}"),
                };
                return Ok(Redirect::to(&target).into_response());
            }
            Ok(placed) => {
                let problem: serde_json::Value =
                    serde_json::from_str(&placed.response.body).unwrap_or_default();
                let status = StatusCode::from_u16(placed.response.status)
                    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                let error = ApiError::new(
                    status,
                    "checkout",
                    problem["detail"].as_str().unwrap_or_default(),
                );
                add_basket_error(&page, &mut errors, &error)?;
            }
            Err(error) => add_basket_error(&page, &mut errors, &error)?,
        }
    }
    let packages = state
        .store
        .visible_packages(&user.id)
        .await
        .or_page(&page)?;
    let view = BuyPage {
        page: &page,
        package_id: choice.package_id.clone().unwrap_or_default(),
        coupon_code: choice.coupon_code.clone().unwrap_or_default(),
        provider: choice.provider.clone().unwrap_or_default(),
        quantity: choice.quantity(),
        packages,
        providers,
        quote: None,
        errors,
        order_key: bursar_store::ids::new_id("web"),
    };
    render_with(&page, &view, StatusCode::UNPROCESSABLE_ENTITY)
}

/// The idempotency key of one rendered form: the same form posted twice places one order.
fn order_key(user_id: &str, form_key: &str, basket: &Basket) -> Idempotency {
    let material = format!(
        "web POST /account/buy\n{}\n{}\n{}\n{}",
        basket.package_id,
        basket.quantity,
        basket.coupon_code.as_deref().unwrap_or_default(),
        basket.provider
    );
    Idempotency {
        scope: user_id.to_string(),
        key: format!("web:{}", form_key.chars().take(100).collect::<String>()),
        request_hash: bursar_store::ids::sha256_hex(material),
    }
}
