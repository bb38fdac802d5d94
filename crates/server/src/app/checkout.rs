//! Checkout: a basket priced from the catalog and a coupon, the order created with its coupon
//! use and its `Idempotency-Key` claimed in one transaction, and the payment started with the
//! provider. The API calls it today; the web UI and auto top-up will call it the same way.

use axum::http::StatusCode;
use bursar_core::{MAX_CREDITS, OrderStatus};
use bursar_payments::PaymentRequest;
use bursar_store::idempotency::{Idempotency, KeyClaim};
use bursar_store::ids::new_id;
use bursar_store::ledger::Rendered;
use bursar_store::orders::{NewOrder, Order};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::receipts;

/// What a buyer asks for.
#[derive(Debug, Clone)]
pub struct Basket {
    pub package_id: String,
    pub quantity: i64,
    pub coupon_code: Option<String>,
    pub provider: String,
    /// How to pay at providers that offer more than one way (Alipay: `page`).
    pub mode: Option<String>,
}

/// The answer to a checkout: the response as rendered (and stored under the key), and whether
/// it is a replay of an earlier request's.
#[derive(Debug)]
pub struct Placed {
    pub response: Rendered,
    pub replayed: bool,
}

/// How a checkout's result is presented; stored under its idempotency key, so it may depend on
/// the result alone.
pub type RenderOrder = fn(&ApiResult<Order>) -> Rendered;

pub(crate) const QUANTITY_MAX: i64 = 1000;
/// A provider's payment page closes this long before its order expires, so money cannot arrive
/// for an order that has just expired.
const PAYMENT_CLOSES_EARLY_S: i64 = 60;
/// Stripe Checkout sessions last between 30 minutes and 24 hours.
const STRIPE_WINDOW_S: (i64, i64) = (30 * 60 + 2 * PAYMENT_CLOSES_EARLY_S, 24 * 3600);

/// ECPay orders may be paid by ATM transfer into a virtual account open for a day
/// (`ExpireDate=1`, to the end of the next day in Taiwan): the order waits that long, so a
/// transfer made in time never arrives for an expired order (ECPay refunds are not automatic).
const ECPAY_WINDOW_S_MIN: i64 = 2 * 24 * 3600;

/// How long an order waits for its payment.
fn payment_window_s(config: &crate::Config, provider: &str) -> i64 {
    match provider {
        "bank_transfer" => config.bank_transfer_ttl_s,
        "ecpay" => config.order_ttl_s.max(ECPAY_WINDOW_S_MIN),
        "stripe" => config
            .order_ttl_s
            .clamp(STRIPE_WINDOW_S.0, STRIPE_WINDOW_S.1),
        _ => config.order_ttl_s,
    }
    .max(1)
}

/// Places an order for `basket` and starts its payment. With `key`, a retry gets the first
/// response even if the package or the coupon has changed since, and a concurrent retry is
/// told the first is still in progress.
pub async fn place_order(
    state: &AppState,
    user_id: &str,
    basket: &Basket,
    key: Option<&Idempotency>,
    render: RenderOrder,
) -> ApiResult<Placed> {
    if let Some(key) = key
        && let Some(earlier) = state.store.peek_key(key).await?
    {
        return answer_from_key(earlier);
    }
    let draft = price_order(state, user_id, basket).await?;
    let claim = state
        .store
        .create_order(&draft, key)
        .await?
        .map_err(ApiError::conflict)?;
    if claim != KeyClaim::Claimed {
        return answer_from_key(claim);
    }
    let response = render(&start_payment(state, &draft, basket.mode.as_deref()).await);
    if let Some(key) = key {
        state.store.complete_key(key, &response).await?;
    }
    Ok(Placed {
        response,
        replayed: false,
    })
}

/// The answer an `Idempotency-Key` already holds: the stored response, or why there is none.
fn answer_from_key(claim: KeyClaim) -> ApiResult<Placed> {
    match claim {
        KeyClaim::Replay(response) => Ok(Placed {
            response,
            replayed: true,
        }),
        KeyClaim::Mismatch => Err(bursar_core::LedgerError::IdempotencyMismatch.into()),
        KeyClaim::InProgress | KeyClaim::Claimed => Err(ApiError::conflict(
            "a request with this Idempotency-Key is still in progress",
        )),
    }
}

/// Prices an order from the package the user may see and the coupon, if any.
pub(crate) async fn price_order(
    state: &AppState,
    user_id: &str,
    basket: &Basket,
) -> ApiResult<NewOrder> {
    let quantity = basket.quantity;
    if !(1..=QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::invalid(format!(
            "quantity must be between 1 and {QUANTITY_MAX}"
        )));
    }
    state.payments.for_order(&basket.provider)?;
    // A package the user may not see is not sold to them either: it reads as not found.
    let package = state
        .store
        .visible_packages(user_id)
        .await?
        .into_iter()
        .find(|p| p.id == basket.package_id)
        .ok_or_else(|| ApiError::not_found("package"))?;
    let spec = &package.spec;
    if let Some(taken) = crate::payments::currencies_taken(&basket.provider)
        && !taken.contains(&spec.price.currency.as_str())
    {
        return Err(ApiError::invalid(format!(
            "{} takes {} only; this package is priced in {}",
            basket.provider,
            taken.join(", "),
            spec.price.currency
        )));
    }
    let times = |value: i64, what: &str| {
        value
            .checked_mul(quantity)
            .filter(|v| *v <= MAX_CREDITS)
            .ok_or_else(|| ApiError::invalid(format!("{what} × quantity is too large")))
    };
    let subtotal = times(spec.price.amount, "price")?;
    let credits = times(spec.credits, "credits")?;
    let bonus_credits = times(spec.bonus_credits, "bonus_credits")?;
    let now = state.store.clock.now_ms();
    let coupon = match basket.coupon_code.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code) => {
            let coupon = state
                .store
                .coupon_by_code(code)
                .await?
                .ok_or_else(|| ApiError::invalid(format!("there is no coupon {code:?}")))?;
            if let Some(refusal) = coupon.refusal(&package.id, &spec.price.currency, now) {
                return Err(ApiError::invalid(refusal));
            }
            Some(coupon)
        }
    };
    let discount = coupon.as_ref().map_or(0, |c| c.spec.discount.off(subtotal));
    let total = bursar_payments::Amount {
        amount: subtotal - discount,
        currency: spec.price.currency.clone(),
    };
    if let Some(refusal) = crate::payments::amount_refusal(&basket.provider, &total) {
        return Err(ApiError::invalid(refusal));
    }
    let order_id = new_id("ord");
    Ok(NewOrder {
        payment_id: new_id("pay"),
        id: order_id,
        user_id: user_id.to_string(),
        kind: bursar_core::OrderKind::Package,
        package_id: Some(package.id.clone()),
        fee: 0,
        payment_method_id: None,
        package_name: spec.name.clone(),
        quantity,
        currency: spec.price.currency.clone(),
        unit_price: spec.price.amount,
        discount,
        total: subtotal - discount,
        credits,
        bonus_credits,
        first_purchase_bonus_percent: spec.first_purchase_bonus_percent.filter(|p| *p > 0),
        coupon,
        provider: basket.provider.clone(),
        expires_at_ms: now + payment_window_s(&state.config, &basket.provider) * 1000,
    })
}

/// Asks the provider for the payment and stores what the client must do next. When the
/// provider refuses, the order fails with its reason and the caller gets 502.
async fn start_payment(state: &AppState, draft: &NewOrder, mode: Option<&str>) -> ApiResult<Order> {
    let provider = state.payments.for_order(&draft.provider)?;
    let email = state.store.user(&draft.user_id).await?.map(|u| u.email);
    let request = PaymentRequest {
        order_id: draft.id.clone(),
        payment_id: draft.payment_id.clone(),
        amount: bursar_payments::Amount {
            amount: draft.total,
            currency: draft.currency.clone(),
        },
        description: format!("{} × {}", draft.quantity, draft.package_name),
        customer_email: email,
        return_url: format!(
            "{}/pay/result/{}",
            state.config.public_url.trim_end_matches('/'),
            draft.payment_id
        ),
        idempotency_key: draft.id.clone(),
        expires_at_s: Some(draft.expires_at_ms / 1000 - PAYMENT_CLOSES_EARLY_S),
        mode: mode.map(str::to_string),
    };
    match provider.create_payment(&request).await {
        Ok(created) => {
            let mut payment = serde_json::json!({ "id": draft.payment_id });
            if let Some(url) = &created.redirect_url {
                payment["redirect_url"] = url.clone().into();
            }
            if let Some(secret) = &created.client_secret {
                payment["client_secret"] = secret.clone().into();
            }
            if let Some(code) = &created.qr_code {
                payment["qr_code"] = code.clone().into();
                if let Some(svg) = crate::qr::svg(code) {
                    payment["qr_svg"] = svg.into();
                }
            }
            if let Some(form) = &created.form {
                payment["form"] =
                    serde_json::json!({ "action": form.action, "fields": form.fields });
            }
            if draft.provider == "bank_transfer"
                && let Some(reference) = &created.provider_ref
            {
                payment["reference"] = reference.clone().into();
                let into = match &state.config.bank_account {
                    Some(account) => {
                        payment["account"] = account.clone().into();
                        format!(" to {account}")
                    }
                    None => String::new(),
                };
                payment["instructions"] = format!(
                    "Transfer {} {}{into} quoting {reference}; an admin confirms the order when it arrives.",
                    receipts::format_amount(draft.total, &draft.currency), draft.currency
                )
                .into();
            }
            state
                .store
                .set_order_payment(
                    &draft.id,
                    created.provider_ref.as_deref(),
                    &payment.to_string(),
                )
                .await?;
        }
        Err(error) => {
            tracing::warn!(order = %draft.id, provider = %draft.provider, %error, "payment creation failed");
            let reason = crate::payments::shown_reason(&error);
            state
                .store
                .close_pending(&draft.id, OrderStatus::Failed, Some(&reason))
                .await?;
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                format!("the payment provider could not create the payment: {reason}"),
            ));
        }
    }
    state
        .store
        .order(&draft.id)
        .await?
        .ok_or_else(ApiError::internal)
}
