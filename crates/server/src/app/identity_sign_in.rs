//! Signing in with Google, Apple or Facebook: the provider's token is verified before anything
//! in it is believed, then the identity signs in to the account it is linked to, links to the
//! account whose email the provider vouches for, or makes a member account. The same for the
//! JSON API and the web pages.

use bursar_core::{IdentityProvider, LedgerError};
use bursar_store::StoreError;
use bursar_store::identities::Claimed;
use bursar_store::users::User;

use crate::AppState;
use crate::auth::oidc::{TokenError, VerifiedPerson};
use crate::error::{ApiError, ApiResult};

/// A refused token: 401, the reason logged (never the token).
pub fn refused(error: TokenError) -> ApiError {
    tracing::info!(%error, "a sign-in token was refused");
    ApiError::unauthorized(error.to_string())
}

pub fn not_configured(provider: IdentityProvider) -> ApiError {
    ApiError::invalid(format!(
        "sign-in with {provider} is not configured on this server (GET /api/v1/auth/methods \
         lists what is)"
    ))
}

/// Verifies a Google or Apple ID token at the server's clock, and its nonce when one is given.
pub async fn verify_id_token(
    state: &AppState,
    provider: IdentityProvider,
    id_token: &str,
    nonce: Option<&str>,
) -> ApiResult<VerifiedPerson> {
    let verifier = state
        .sign_in
        .oidc(provider)
        .ok_or_else(|| not_configured(provider))?;
    let now_s = state.store.clock.now_ms().div_euclid(1000);
    verifier
        .verify(id_token, nonce, now_s)
        .await
        .map_err(refused)
}

/// Checks a Facebook user access token with the Graph API under this server's app.
pub async fn verify_facebook_token(
    state: &AppState,
    access_token: &str,
) -> ApiResult<VerifiedPerson> {
    let facebook = state
        .sign_in
        .facebook
        .as_ref()
        .ok_or_else(|| not_configured(IdentityProvider::Facebook))?;
    let now_s = state.store.clock.now_ms().div_euclid(1000);
    facebook.verify(access_token, now_s).await.map_err(refused)
}

/// Signs in with an identity the provider has vouched for: its account, else the account with
/// the email it verified, else a new member. Whether the account was made now comes back with
/// it. A suspended account is refused (401).
pub async fn sign_in(
    state: &AppState,
    provider: IdentityProvider,
    person: &VerifiedPerson,
) -> ApiResult<(User, bool)> {
    sign_in_claimed(state, &claimed(provider, person)).await
}

/// What a verified token says about the person, as the store takes it.
pub fn claimed(provider: IdentityProvider, person: &VerifiedPerson) -> Claimed<'_> {
    Claimed {
        provider,
        subject: &person.subject,
        email: person.email.as_deref(),
        email_verified: person.email_verified,
        display_name: person.name.as_deref(),
    }
}

/// The same for any identity (a one-time code's too).
pub async fn sign_in_claimed(state: &AppState, claimed: &Claimed<'_>) -> ApiResult<(User, bool)> {
    match state.store.sign_in_with(claimed).await {
        Ok(signed_in) => Ok((signed_in.user, signed_in.created)),
        Err(StoreError::Domain(LedgerError::AccountSuspended)) => {
            Err(ApiError::unauthorized("this account is suspended"))
        }
        Err(other) => Err(other.into()),
    }
}
