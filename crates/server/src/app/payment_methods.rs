//! Saved payment methods: a member saves a card once and auto top-up charges it without them.
//! Only what the provider gives back is kept (brand, last four digits, its token).

use bursar_store::payment_methods::{NewPaymentMethod, PaymentMethod, Removal};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Saves a card through `provider`. The sandbox takes its test cards; a Stripe method is
/// saved through a SetupIntent in the browser, which this server does not yet offer.
pub async fn save_card(
    state: &AppState,
    user_id: &str,
    provider: &str,
    card_number: Option<&str>,
) -> ApiResult<PaymentMethod> {
    if provider != "sandbox" {
        return Err(ApiError::invalid(format!(
            "payment methods can be saved with the sandbox provider only; {provider:?} is not \
             supported for saved methods on this server"
        )));
    }
    let number = card_number
        .ok_or_else(|| ApiError::invalid("card_number is required for a sandbox card"))?;
    let card = bursar_payments::sandbox::save_card(number).map_err(ApiError::invalid)?;
    let saved = state
        .store
        .save_payment_method(
            user_id,
            NewPaymentMethod {
                provider,
                brand: card.brand,
                last4: &card.last4,
                token: card.token,
            },
        )
        .await?;
    saved.ok_or_else(|| {
        ApiError::conflict(format!(
            "at most {} payment methods can be saved; remove one first",
            bursar_store::payment_methods::METHODS_PER_USER_MAX
        ))
    })
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
