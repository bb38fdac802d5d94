//! The member's auto top-up: the rule, its preview, and the saved payment methods it charges.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bursar_core::Money;
use bursar_store::auto_topup::Rule;
use bursar_store::clock::rfc3339;
use bursar_store::payment_methods::PaymentMethod;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::auto_topup::{self, RuleRequest};
use crate::app::payment_methods::{self, MethodToSave, Saved};
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody};
use crate::routes::catalog::MoneyBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTopupRequest {
    /// On: Bursar may charge the saved method without the member present (their consent is
    /// recorded with the time and address). Off: nothing is charged.
    pub enabled: bool,
    /// A top-up runs when the balance falls below this many credits.
    pub threshold: i64,
    /// It brings the balance back to this many credits; greater than `threshold`.
    pub target: i64,
    /// One of the member's saved payment methods.
    pub payment_method_id: String,
    /// Top-ups per local day (at most the operator's `BURSAR_TOPUP_MAX_PER_DAY`, the default).
    pub max_topups_per_day: Option<i64>,
    /// The most top-ups may charge in a calendar month, in the currency they are charged in.
    pub monthly_limit: Option<MoneyBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoTopupView {
    pub enabled: bool,
    pub threshold: i64,
    pub target: i64,
    pub payment_method_id: String,
    pub max_topups_per_day: Option<i64>,
    pub monthly_limit: Option<MoneyBody>,
    /// `active`, `paused` (a limit stopped it until `next_attempt_at`) or `off` (by the
    /// member, or by itself after 3 declines in a row, with `last_error`).
    pub status: String,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_topup_at: Option<String>,
    /// No top-up is tried before this (after a decline, or while paused).
    pub next_attempt_at: Option<String>,
    /// When the member last enabled the rule, and from where.
    pub consent_at: Option<String>,
    pub consent_ip: Option<String>,
}

impl From<Rule> for AutoTopupView {
    fn from(rule: Rule) -> Self {
        Self {
            enabled: rule.status != bursar_core::AutoTopupStatus::Off,
            threshold: rule.threshold,
            target: rule.target,
            payment_method_id: rule.payment_method_id,
            max_topups_per_day: rule.max_topups_per_day,
            monthly_limit: rule
                .monthly_limit
                .map(|m| MoneyBody::new(m.amount, &m.currency)),
            status: rule.status.as_str().to_string(),
            consecutive_failures: rule.consecutive_failures,
            last_error: rule.last_error,
            last_topup_at: rule.last_topup_at_ms.map(rfc3339),
            next_attempt_at: rule.next_attempt_at_ms.map(rfc3339),
            consent_at: rule.consent_at_ms.map(rfc3339),
            consent_ip: rule.consent_ip,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoTopupPreview {
    pub balance: i64,
    /// Credits a top-up would buy now: `target − balance` when the balance is below the
    /// threshold, else 0.
    pub topup_credits: i64,
    /// `topup_credits × BURSAR_CREDIT_PRICE`.
    pub price: MoneyBody,
    /// The processing fee the member bears: `BURSAR_TOPUP_FEE_PERCENT` of the price, rounded
    /// half up, plus `BURSAR_TOPUP_FEE_FIXED`.
    pub fee: MoneyBody,
    /// What the saved method is charged: price + fee.
    pub total: MoneyBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodRequest {
    /// `sandbox`: a test card (4242 4242 4242 4242 always succeeds, 4000 0000 0000 0002 is
    /// always declined). `stripe`: a card saved through a SetupIntent — without
    /// `setup_intent_id` the answer is a SetupIntent to confirm with Stripe.js; with it, the
    /// completed SetupIntent's card is saved.
    pub provider: String,
    /// A sandbox test card's number; only the brand and last four digits are kept.
    pub card_number: Option<String>,
    /// A Stripe SetupIntent (`seti_…`) the member has completed.
    pub setup_intent_id: Option<String>,
}

/// A SetupIntent the member completes with Stripe.js (`stripe.confirmCardSetup`). The card is
/// saved when it succeeds: by Stripe's `setup_intent.succeeded` webhook, or at once by posting
/// its `setup_intent_id` back.
#[derive(Serialize, ToSchema)]
pub struct PaymentMethodSetup {
    pub provider: String,
    pub setup_intent_id: String,
    /// For Stripe.js only; not kept by Bursar.
    pub client_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodView {
    pub id: String,
    pub provider: String,
    pub brand: String,
    pub last4: String,
    pub created_at: String,
}

impl From<PaymentMethod> for PaymentMethodView {
    fn from(method: PaymentMethod) -> Self {
        Self {
            id: method.id,
            provider: method.provider,
            brand: method.brand,
            last4: method.last4,
            created_at: method.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodList {
    pub data: Vec<PaymentMethodView>,
}

async fn rule_of(state: &AppState, user_id: &str) -> ApiResult<Rule> {
    state
        .store
        .auto_topup_rule(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("auto top-up rule"))
}

/// The member's auto top-up rule; 404 until one is saved.
#[utoipa::path(get, path = "/api/v1/me/auto-topup", tag = "auto top-up",
    responses((status = 200, body = AutoTopupView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AutoTopupView>> {
    let user_id = caller.require_user()?;
    Ok(Json(rule_of(&state, user_id).await?.into()))
}

/// Set the auto top-up rule. When the balance falls below `threshold` (checked right after
/// every spend and capture, and every 5 minutes), the saved method is charged for
/// `target − balance` credits plus the fee; at most one top-up is in flight at a time.
#[utoipa::path(put, path = "/api/v1/me/auto-topup", tag = "auto top-up",
    request_body = AutoTopupRequest,
    responses((status = 200, body = AutoTopupView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "no such payment method of this member", body = Problem),
        (status = 422, description = "invalid input, or a rule outside the operator's bounds", body = Problem)),
    security(("bearer" = [])))]
pub async fn put_rule(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<AutoTopupRequest>,
) -> ApiResult<Json<AutoTopupView>> {
    let user_id = caller.require_user()?;
    let request = body.value;
    let monthly_limit = match request.monthly_limit {
        None => None,
        Some(limit) => Some(
            Money::new(limit.amount, &limit.currency)
                .map_err(|e| ApiError::invalid(format!("monthly_limit: {e}")))?,
        ),
    };
    let rule = RuleRequest {
        enabled: request.enabled,
        threshold: request.threshold,
        target: request.target,
        payment_method_id: request.payment_method_id,
        max_topups_per_day: request.max_topups_per_day,
        monthly_limit,
    };
    let saved = auto_topup::save_rule(&state, user_id, &rule, &ip).await?;
    Ok(Json(saved.into()))
}

/// What a top-up would charge now, with the current balance.
#[utoipa::path(get, path = "/api/v1/me/auto-topup/preview", tag = "auto top-up",
    responses((status = 200, body = AutoTopupPreview), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AutoTopupPreview>> {
    let user_id = caller.require_user()?;
    let preview = auto_topup::preview(&state, user_id).await?;
    let money = |amount| MoneyBody::new(amount, &preview.currency);
    Ok(Json(AutoTopupPreview {
        balance: preview.balance,
        topup_credits: preview.quote.credits,
        price: money(preview.quote.price),
        fee: money(preview.quote.fee),
        total: money(preview.quote.total),
    }))
}

/// The member's saved payment methods, newest first.
#[utoipa::path(get, path = "/api/v1/me/payment-methods", tag = "auto top-up",
    responses((status = 200, body = PaymentMethodList), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_methods(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<PaymentMethodList>> {
    let user_id = caller.require_user()?;
    let methods = state.store.payment_methods(user_id).await?;
    Ok(Json(PaymentMethodList {
        data: methods.into_iter().map(Into::into).collect(),
    }))
}

/// Save a payment method for charges made without the member present (auto top-up).
#[utoipa::path(post, path = "/api/v1/me/payment-methods", tag = "auto top-up",
    request_body = PaymentMethodRequest,
    responses((status = 201, description = "saved", body = PaymentMethodView),
        (status = 202, description = "a Stripe SetupIntent for the member to complete", body = PaymentMethodSetup),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "no such SetupIntent of this member's", body = Problem),
        (status = 409, description = "too many saved methods, a SetupIntent not completed yet, or one whose card was removed since", body = Problem),
        (status = 422, description = "not a test card, or a provider without saved methods here", body = Problem),
        (status = 502, description = "the provider could not be reached or refused", body = Problem)),
    security(("bearer" = [])))]
pub async fn add_method(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<PaymentMethodRequest>,
) -> ApiResult<Response> {
    let user_id = caller.require_user()?;
    let request = body.value;
    let saved = payment_methods::save(
        &state,
        user_id,
        MethodToSave {
            provider: &request.provider,
            card_number: request.card_number.as_deref(),
            setup_ref: request.setup_intent_id.as_deref(),
        },
    )
    .await?;
    Ok(match saved {
        Saved::Method(method) => {
            (StatusCode::CREATED, Json(PaymentMethodView::from(method))).into_response()
        }
        Saved::SetupStarted(setup) => (
            StatusCode::ACCEPTED,
            Json(PaymentMethodSetup {
                provider: request.provider,
                setup_intent_id: setup.provider_ref,
                client_secret: setup.client_secret,
            }),
        )
            .into_response(),
    })
}

/// Remove a saved method. One an enabled auto top-up rule charges is refused (409) until the
/// rule is turned off or pointed at another method.
#[utoipa::path(delete, path = "/api/v1/me/payment-methods/{id}", tag = "auto top-up",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_method(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    let user_id = caller.require_user()?;
    payment_methods::remove(&state, user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
