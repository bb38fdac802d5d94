//! Automatic top-up: the rule (threshold, target, card, limits) with the fee shown live as it
//! is typed, and the saved cards. Saved through the same use cases as the API.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bursar_core::Money;
use bursar_core::topup::TopupQuote;
use bursar_store::auto_topup::Rule;
use bursar_store::payment_methods::PaymentMethod;
use serde::Deserialize;

use super::actions::{Flash, after};
use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render, render_with};
use super::forms::{FieldErrors, filled};
use crate::AppState;
use crate::app::auto_topup::{self, RuleRequest};
use crate::app::payment_methods::{self, MethodToSave};
use crate::auth::ClientAddr;

const HERE: &str = "/account/auto-top-up";
const STRIPE: &str = "stripe";

/// The rule form as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RuleForm {
    enabled: Option<String>,
    threshold: Option<String>,
    target: Option<String>,
    payment_method_id: Option<String>,
    max_topups_per_day: Option<String>,
    /// In major units of the top-up currency, as people write money.
    monthly_limit: Option<String>,
}

impl RuleForm {
    fn of(rule: &Rule) -> Self {
        Self {
            enabled: (rule.status.as_str() == "active").then(|| "on".into()),
            threshold: Some(rule.threshold.to_string()),
            target: Some(rule.target.to_string()),
            payment_method_id: Some(rule.payment_method_id.clone()),
            max_topups_per_day: rule.max_topups_per_day.map(|n| n.to_string()),
            monthly_limit: rule
                .monthly_limit
                .as_ref()
                .map(|m| bursar_core::money::format_amount(m.amount, &m.currency)),
        }
    }

    fn number(text: &Option<String>) -> Option<i64> {
        filled(text).and_then(|t| t.replace(',', "").parse().ok())
    }

    fn threshold(&self) -> Option<i64> {
        Self::number(&self.threshold)
    }

    fn target(&self) -> Option<i64> {
        Self::number(&self.target)
    }

    fn value(text: &Option<String>) -> String {
        text.clone().unwrap_or_default()
    }

    fn is_enabled(&self) -> bool {
        self.enabled.is_some()
    }

    fn method_is(&self, id: &str) -> bool {
        self.payment_method_id.as_deref() == Some(id)
    }
}

#[derive(Template)]
#[template(path = "web/topup.html")]
struct TopupPage<'a> {
    page: &'a Page,
    rule: Option<Rule>,
    methods: Vec<PaymentMethod>,
    form: RuleForm,
    quote: Option<TopupQuote>,
    currency: String,
    errors: FieldErrors,
    notice: Option<String>,
    error: Option<String>,
    /// Cards can be saved on Stripe's page (Stripe is configured here).
    stripe: bool,
}

#[derive(Template)]
#[template(path = "web/topup_quote.html")]
struct QuotePart<'a> {
    page: &'a Page,
    quote: Option<TopupQuote>,
    currency: String,
}

async fn topup_page(
    state: &AppState,
    page: &Page,
    user_id: &str,
    form: Option<RuleForm>,
    errors: FieldErrors,
    flash: &Flash,
) -> PageResult {
    let rule = state.store.auto_topup_rule(user_id).await.or_page(page)?;
    let methods = state.store.payment_methods(user_id).await.or_page(page)?;
    let form = form.unwrap_or_else(|| rule.as_ref().map(RuleForm::of).unwrap_or_default());
    let quote = match (form.threshold(), form.target()) {
        (Some(threshold), Some(target)) => auto_topup::quote_for_rule(state, threshold, target),
        _ => None,
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let view = TopupPage {
        page,
        rule,
        methods,
        form,
        quote,
        currency: state.config.topup.currency.clone(),
        errors,
        notice: flash.notice(page),
        error: flash.error(page),
        stripe: state.payments.get(STRIPE).is_some(),
    };
    render_with(page, &view, status)
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    topup_page(
        &state,
        &page,
        &user.id,
        None,
        FieldErrors::default(),
        &flash,
    )
    .await
}

/// The fee box alone, for htmx to swap in as the threshold and target change.
pub async fn preview(
    State(state): State<AppState>,
    SignedIn { page, .. }: SignedIn,
    Query(form): Query<RuleForm>,
) -> PageResult {
    let quote = match (form.threshold(), form.target()) {
        (Some(threshold), Some(target)) => auto_topup::quote_for_rule(&state, threshold, target),
        _ => None,
    };
    let currency = state.config.topup.currency.clone();
    render(
        &page,
        &QuotePart {
            page: &page,
            quote,
            currency,
        },
    )
}

pub async fn save(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    SignedIn { page, user }: SignedIn,
    Form(form): Form<RuleForm>,
) -> PageResult {
    let mut errors = FieldErrors::default();
    let threshold = form.threshold();
    if threshold.is_none() {
        errors.add("threshold", page.t.t("topup-number-rule"));
    }
    let target = form.target();
    if target.is_none() {
        errors.add("target", page.t.t("topup-number-rule"));
    }
    let method = filled(&form.payment_method_id);
    if method.is_none() {
        errors.add("payment_method_id", page.t.t("topup-card-required"));
    }
    let per_day = filled(&form.max_topups_per_day);
    let max_topups_per_day = per_day.as_deref().map(|t| t.parse::<i64>().ok());
    if max_topups_per_day.is_some_and(|n| n.is_none()) {
        errors.add("max_topups_per_day", page.t.t("topup-number-rule"));
    }
    let currency = state.config.topup.currency.clone();
    let limit = filled(&form.monthly_limit);
    let monthly_limit = limit
        .as_deref()
        .map(|text| bursar_core::money::parse_amount(text, &currency));
    if monthly_limit.is_some_and(|m| m.is_none()) {
        errors.add("monthly_limit", page.t.t("topup-money-rule"));
    }
    if errors.is_empty() {
        let request = RuleRequest {
            enabled: form.is_enabled(),
            threshold: threshold.unwrap_or_default(),
            target: target.unwrap_or_default(),
            payment_method_id: method.unwrap_or_default(),
            max_topups_per_day: max_topups_per_day.flatten(),
            monthly_limit: monthly_limit.flatten().map(|amount| Money {
                amount,
                currency: currency.clone(),
            }),
        };
        match auto_topup::save_rule(&state, &user.id, &request, &address).await {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("{HERE}?notice=notice-rule-saved")).into_response()
                );
            }
            Err(error) if error.status.is_client_error() => {
                let detail = error.detail.as_str();
                let field = ["threshold", "target", "max_topups_per_day", "monthly_limit"]
                    .into_iter()
                    .find(|f| detail.starts_with(f))
                    .unwrap_or(if error.status == StatusCode::NOT_FOUND {
                        "payment_method_id"
                    } else {
                        ""
                    });
                errors.add(field, page.t.t("topup-rule-refused"));
            }
            Err(error) => return Err(super::errors::from_api(&page, &error)),
        }
    }
    topup_page(
        &state,
        &page,
        &user.id,
        Some(form),
        errors,
        &Flash::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct CardForm {
    card_number: String,
}

/// Saves a sandbox test card (a Stripe card is entered on Stripe's page: [`add_stripe_card`]).
pub async fn add_card(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Form(form): Form<CardForm>,
) -> Response {
    let request = MethodToSave {
        provider: "sandbox",
        card_number: Some(form.card_number.trim()),
        setup_ref: None,
    };
    let saved = payment_methods::save(&state, &user.id, request)
        .await
        .map(|_| ());
    after(HERE, saved.as_ref().map(|_| "notice-card-saved"))
}

pub async fn remove_card(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let removed = payment_methods::remove(&state, &user.id, &id).await;
    after(HERE, removed.as_ref().map(|_| "notice-card-removed"))
}

/// Sends the member to Stripe's page (Checkout in setup mode) to enter a card; Stripe sends
/// them back to [`stripe_card_return`].
pub async fn add_stripe_card(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
) -> Response {
    let public = state.config.public_url.trim_end_matches('/');
    let success_url =
        format!("{public}{HERE}/cards/stripe/return?session_id={{CHECKOUT_SESSION_ID}}");
    let cancel_url = format!("{public}{HERE}");
    let started =
        payment_methods::start_hosted_setup(&state, &user.id, STRIPE, &success_url, &cancel_url)
            .await;
    match started {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(error) => card_not_saved(&error),
    }
}

#[derive(Deserialize)]
pub struct StripeReturn {
    session_id: Option<String>,
}

/// Back from Stripe's page: the session is read from Stripe and its card saved as the API
/// saves a SetupIntent (once, however often this page or Stripe's webhook reports it).
pub async fn stripe_card_return(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Query(query): Query<StripeReturn>,
) -> Response {
    let session_id = query.session_id.unwrap_or_default();
    let saved =
        payment_methods::finish_hosted_setup(&state, &user.id, STRIPE, session_id.trim()).await;
    match saved {
        Ok(_) => after(HERE, Ok("notice-card-saved")),
        Err(error) => card_not_saved(&error),
    }
}

fn card_not_saved(error: &crate::error::ApiError) -> Response {
    if error.status.is_server_error() {
        tracing::warn!(
            code = error.code,
            "saving a Stripe card from the page failed"
        );
    }
    Redirect::to(&format!("{HERE}?error=error-card-not-saved")).into_response()
}
