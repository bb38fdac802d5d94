//! Saved payment methods: a member saves a card once and auto top-up or a renewal charges it
//! without them. Only what the provider gives back is kept (brand, last four digits, its
//! token). The sandbox takes its test cards directly; Stripe saves a card through a
//! SetupIntent the member completes with Stripe, on the Customer made for them on first use:
//! with Stripe.js and the API, or on Stripe's own page (Checkout in setup mode) from the web
//! pages, whose SetupIntent is then saved exactly as the API saves one.

use axum::http::StatusCode;
use bursar_payments::{
    CustomerRequest, HostedSetupRequest, PaymentProvider, ProviderError, SetupRequest, StartedSetup,
};
use bursar_store::ids::new_id;
use bursar_store::payment_methods::{NewPaymentMethod, PaymentMethod, Removal, Saving};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// What a member asked to save.
pub struct MethodToSave<'a> {
    pub provider: &'a str,
    /// A sandbox test card.
    pub card_number: Option<&'a str>,
    /// A provider's setup the member has completed, to be saved now.
    pub setup_ref: Option<&'a str>,
}

/// What a save came to: a method saved, or a setup the member must now complete with the
/// provider (after which the provider's webhook, or the member's client, saves it).
pub enum Saved {
    Method(PaymentMethod),
    SetupStarted(StartedSetup),
}

/// The longest setup id accepted (Stripe's are well under it).
pub const SETUP_REF_CHARS_MAX: usize = 255;

pub async fn save(state: &AppState, user_id: &str, request: MethodToSave<'_>) -> ApiResult<Saved> {
    if request.provider == "sandbox" {
        if request.setup_ref.is_some() {
            return Err(ApiError::invalid(
                "setup_intent_id is for Stripe; a sandbox card is saved with its card_number",
            ));
        }
        return save_sandbox_card(state, user_id, request.card_number)
            .await
            .map(Saved::Method);
    }
    let provider = setup_provider(state, request.provider)?;
    if request.card_number.is_some() {
        return Err(ApiError::invalid(
            "card numbers are never sent to Bursar for this provider: start a setup and enter \
             the card with the provider",
        ));
    }
    match request.setup_ref {
        Some(setup_ref) if setup_ref.chars().count() > SETUP_REF_CHARS_MAX => {
            Err(ApiError::invalid(format!(
                "setup_intent_id is at most {SETUP_REF_CHARS_MAX} characters"
            )))
        }
        Some(setup_ref) => finish_setup(state, provider, setup_ref, Some(user_id))
            .await
            .map(Saved::Method),
        None => start_setup(state, provider, user_id)
            .await
            .map(Saved::SetupStarted),
    }
}

/// A setup the member completes on the provider's own page: where to send their browser. The
/// provider sends it back to `success_url`.
pub async fn start_hosted_setup(
    state: &AppState,
    user_id: &str,
    provider_name: &str,
    success_url: &str,
    cancel_url: &str,
) -> ApiResult<String> {
    let provider = setup_provider(state, provider_name)?;
    let customer_ref = customer_of(state, provider, user_id).await?;
    let request = HostedSetupRequest {
        customer_ref,
        user_id: user_id.to_string(),
        currency: state.config.topup.currency.clone(),
        success_url: success_url.to_string(),
        cancel_url: cancel_url.to_string(),
        idempotency_key: new_id("setup"),
    };
    let started = provider
        .start_hosted_setup(&request)
        .await
        .map_err(|error| provider_failure(provider, error))?;
    Ok(started.redirect_url)
}

/// Saves the method a hosted setup made, once the member is back: the session is read from
/// the provider (never from the return URL), must be on the member's own customer record, and
/// its setup is saved through [`save`] as the API saves a `setup_intent_id`, so however often
/// the member returns or the provider's webhook reports it, it is saved once.
pub async fn finish_hosted_setup(
    state: &AppState,
    user_id: &str,
    provider_name: &str,
    session_ref: &str,
) -> ApiResult<PaymentMethod> {
    let provider = setup_provider(state, provider_name)?;
    if session_ref.is_empty() || session_ref.chars().count() > SETUP_REF_CHARS_MAX {
        return Err(ApiError::not_found("setup"));
    }
    let session = provider
        .fetch_hosted_setup(session_ref)
        .await
        .map_err(|error| match error {
            ProviderError::Declined(_) => ApiError::not_found("setup"),
            other => provider_failure(provider, other),
        })?;
    let owner = customer_owner(state, provider, session.customer_ref.as_deref()).await?;
    if owner.as_deref() != Some(user_id) {
        return Err(ApiError::not_found("setup"));
    }
    let setup_ref = session.setup_ref.ok_or_else(|| {
        ApiError::conflict(format!(
            "the setup is {}: the member must complete it with the provider first",
            session.status
        ))
    })?;
    let request = MethodToSave {
        provider: provider_name,
        card_number: None,
        setup_ref: Some(&setup_ref),
    };
    match save(state, user_id, request).await? {
        Saved::Method(method) => Ok(method),
        Saved::SetupStarted(_) => Err(ApiError::conflict("the setup saved nothing")),
    }
}

/// A provider that saves methods through a setup, by name.
fn setup_provider<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a dyn PaymentProvider> {
    let provider: &dyn PaymentProvider = state.payments.for_order(name)?.as_ref();
    if !provider.saves_methods_by_setup() {
        return Err(ApiError::invalid(format!(
            "payment methods cannot be saved with {name}; use sandbox or stripe"
        )));
    }
    Ok(provider)
}

async fn save_sandbox_card(
    state: &AppState,
    user_id: &str,
    card_number: Option<&str>,
) -> ApiResult<PaymentMethod> {
    let number = card_number
        .ok_or_else(|| ApiError::invalid("card_number is required for a sandbox card"))?;
    let card = bursar_payments::sandbox::save_card(number).map_err(ApiError::invalid)?;
    let saving = state
        .store
        .save_payment_method(
            user_id,
            NewPaymentMethod {
                provider: "sandbox",
                brand: card.brand,
                last4: &card.last4,
                token: card.token,
                setup_ref: None,
            },
        )
        .await?;
    saved_method(saving)
}

/// A setup on the user's customer record at the provider, made the first time.
async fn start_setup(
    state: &AppState,
    provider: &dyn PaymentProvider,
    user_id: &str,
) -> ApiResult<StartedSetup> {
    let customer_ref = customer_of(state, provider, user_id).await?;
    let request = SetupRequest {
        customer_ref,
        user_id: user_id.to_string(),
        idempotency_key: new_id("setup"),
    };
    provider
        .start_setup(&request)
        .await
        .map_err(|error| provider_failure(provider, error))
}

async fn customer_of(
    state: &AppState,
    provider: &dyn PaymentProvider,
    user_id: &str,
) -> ApiResult<String> {
    let name = provider.name();
    if let Some(customer_ref) = state.store.provider_customer(user_id, name).await? {
        return Ok(customer_ref);
    }
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    // Keyed by the user, so two first saves at once make one customer at the provider.
    let request = CustomerRequest {
        user_id: user_id.to_string(),
        email: Some(user.email),
        idempotency_key: format!("customer_{user_id}"),
    };
    let made = provider
        .create_customer(&request)
        .await
        .map_err(|error| provider_failure(provider, error))?;
    Ok(state
        .store
        .keep_provider_customer(user_id, name, &made)
        .await?)
}

/// The member a provider's customer record was made for, if Bursar made it.
async fn customer_owner(
    state: &AppState,
    provider: &dyn PaymentProvider,
    customer_ref: Option<&str>,
) -> ApiResult<Option<String>> {
    Ok(match customer_ref {
        Some(customer) => {
            state
                .store
                .user_of_customer(provider.name(), customer)
                .await?
        }
        None => None,
    })
}

/// Saves the method a completed setup holds, read back from the provider (never from what a
/// client or a webhook body claims). `member` is the user who asks, when a member asks: a setup
/// on someone else's customer record reads as not found.
pub async fn finish_setup(
    state: &AppState,
    provider: &dyn PaymentProvider,
    setup_ref: &str,
    member: Option<&str>,
) -> ApiResult<PaymentMethod> {
    let setup = provider
        .fetch_setup(setup_ref)
        .await
        .map_err(|error| match error {
            // An id the provider does not know, or one it refuses to show us.
            ProviderError::Declined(_) => ApiError::not_found("setup"),
            other => provider_failure(provider, other),
        })?;
    let owner = customer_owner(state, provider, setup.customer_ref.as_deref()).await?;
    let user_id = match (owner, member) {
        (Some(owner), Some(member)) if owner == member => owner,
        (Some(owner), None) => owner,
        _ => return Err(ApiError::not_found("setup")),
    };
    if !setup.succeeded() {
        return Err(ApiError::conflict(format!(
            "the setup is {}: the member must complete it with the provider first",
            setup.status
        )));
    }
    let method = setup
        .method
        .ok_or_else(|| ApiError::invalid("the setup saved no card; only cards can be saved"))?;
    let saving = state
        .store
        .save_payment_method(
            &user_id,
            NewPaymentMethod {
                provider: provider.name(),
                brand: &method.brand,
                last4: &method.last4,
                token: &method.token,
                setup_ref: Some(&setup.provider_ref),
            },
        )
        .await?;
    saved_method(saving)
}

fn saved_method(saving: Saving) -> ApiResult<PaymentMethod> {
    match saving {
        Saving::Saved(method) => Ok(method),
        Saving::Removed => Err(ApiError::conflict(
            "the method this setup saved has been removed since; start a new setup to save it \
             again",
        )),
        Saving::LimitReached => Err(ApiError::conflict(format!(
            "at most {} payment methods can be saved; remove one first",
            bursar_store::payment_methods::METHODS_PER_USER_MAX
        ))),
    }
}

fn provider_failure(provider: &dyn PaymentProvider, error: ProviderError) -> ApiError {
    tracing::warn!(provider = provider.name(), %error, "saving a payment method failed at the provider");
    let reason = crate::payments::shown_reason(&error);
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "provider_error",
        format!("the payment provider could not save the method: {reason}"),
    )
}

/// Removes one of the user's methods, unless an auto top-up rule that is on charges it.
pub async fn remove(state: &AppState, user_id: &str, method_id: &str) -> ApiResult<()> {
    match state
        .store
        .remove_payment_method(user_id, method_id)
        .await?
    {
        Removal::Removed => Ok(()),
        Removal::InUse => Err(ApiError::conflict(
            "auto top-up charges this payment method: turn auto top-up off or choose another \
             method first",
        )),
        Removal::NotFound => Err(ApiError::not_found("payment method")),
    }
}
