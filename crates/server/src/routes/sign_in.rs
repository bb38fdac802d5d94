//! Signing in with Google, Apple or Facebook, the methods this server offers, and a user's
//! linked identities. A provider's token is verified before anything in it is believed; a
//! caller already signed in who presents one links that identity to their account instead.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bursar_core::{CodeChannel, IdentityProvider};
use bursar_store::identities::{Identity, Linking, Unlinking};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::{identity_sign_in, sign_in_codes};
use crate::auth::oidc::VerifiedPerson;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody};
use crate::routes::auth::session_for;
use crate::views::UserView;

/// Longest token accepted (real ID tokens are a few kilobytes).
pub(crate) const TOKEN_CHARS_MAX: usize = 16_384;
pub(crate) const NONCE_CHARS_MAX: usize = 512;

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInMethods {
    /// `password` always; `google`, `apple` and `facebook` when configured; `email_code` and
    /// `sms_code` when mail or the SMS gateway is (both, to the log, when neither is).
    pub methods: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcRequest {
    /// The ID token the provider gave the client (a JWT).
    pub id_token: String,
    /// The nonce the client sent the provider; the token must carry it.
    pub nonce: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacebookRequest {
    /// The user access token Facebook Login gave the client.
    pub access_token: String,
}

/// A session, as login answers, and whether this sign-in made the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInSession {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: String,
    /// `password`, `google`, `apple`, `facebook`, `email_code` or `sms_code`.
    pub provider: String,
    /// The provider's id for the person.
    pub subject: String,
    pub email: Option<String>,
    pub created_at: String,
}

impl From<Identity> for IdentityView {
    fn from(identity: Identity) -> Self {
        Self {
            id: identity.id,
            provider: identity.provider.as_str().to_string(),
            subject: identity.subject,
            email: identity.email,
            created_at: identity.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub data: Vec<IdentityView>,
}

/// The ways to sign in to this server.
#[utoipa::path(get, path = "/api/v1/auth/methods", tag = "auth",
    responses((status = 200, body = SignInMethods)))]
pub async fn methods(State(state): State<AppState>) -> Json<SignInMethods> {
    let mut methods: Vec<String> = state
        .sign_in
        .methods()
        .into_iter()
        .map(|m| m.as_str().to_string())
        .collect();
    for channel in sign_in_codes::channels(&state) {
        methods.push(
            match channel {
                CodeChannel::Email => IdentityProvider::EmailCode,
                CodeChannel::Sms => IdentityProvider::SmsCode,
            }
            .as_str()
            .to_string(),
        );
    }
    Json(SignInMethods { methods })
}

fn checked_token(token: &str, what: &str) -> ApiResult<()> {
    if token.is_empty() || token.chars().count() > TOKEN_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "{what} must be 1 to {TOKEN_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// Sign in (or, signed in already, link) with a Google or Apple ID token. A new identity links
/// to the account with the email the provider verified, else makes a member account.
#[utoipa::path(post, path = "/api/v1/auth/oidc/{provider}", tag = "auth",
    params(("provider" = String, Path, description = "`google` or `apple`")),
    request_body = OidcRequest,
    responses((status = 200, body = SignInSession),
        (status = 401, description = "the token was refused (signature, issuer, audience, expiry, nonce), or the account is suspended", body = Problem),
        (status = 404, description = "not a provider of ID tokens", body = Problem),
        (status = 409, description = "linking: the identity belongs to another account", body = Problem),
        (status = 422, description = "the provider is not configured here, or a malformed request", body = Problem),
        (status = 429, description = "too many attempts from this address", body = Problem)))]
pub async fn oidc(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(provider): Path<String>,
    caller: Option<Caller>,
    body: Body<OidcRequest>,
) -> ApiResult<Json<SignInSession>> {
    let provider = IdentityProvider::parse(&provider)
        .filter(|p| matches!(p, IdentityProvider::Google | IdentityProvider::Apple))
        .ok_or_else(|| ApiError::not_found("ID token provider"))?;
    if state.sign_in.oidc(provider).is_none() {
        return Err(identity_sign_in::not_configured(provider));
    }
    let request = body.value;
    checked_token(&request.id_token, "id_token")?;
    if request
        .nonce
        .as_ref()
        .is_some_and(|n| n.chars().count() > NONCE_CHARS_MAX)
    {
        return Err(ApiError::invalid(format!(
            "nonce must be at most {NONCE_CHARS_MAX} characters"
        )));
    }
    state.limiter.check_address(&address)?;
    let person = identity_sign_in::verify_id_token(
        &state,
        provider,
        &request.id_token,
        request.nonce.as_deref(),
    )
    .await?;
    finish(&state, caller, provider, person).await
}

/// Sign in (or, signed in already, link) with a Facebook user access token, checked with the
/// Graph API's `debug_token` under this server's app.
#[utoipa::path(post, path = "/api/v1/auth/facebook", tag = "auth",
    request_body = FacebookRequest,
    responses((status = 200, body = SignInSession),
        (status = 401, description = "the token was refused (another app's, invalid, expired), or the account is suspended", body = Problem),
        (status = 409, description = "linking: the identity belongs to another account", body = Problem),
        (status = 422, description = "Facebook sign-in is not configured here, or a malformed request", body = Problem),
        (status = 429, description = "too many attempts from this address", body = Problem)))]
pub async fn facebook(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    caller: Option<Caller>,
    body: Body<FacebookRequest>,
) -> ApiResult<Json<SignInSession>> {
    if state.sign_in.facebook.is_none() {
        return Err(identity_sign_in::not_configured(IdentityProvider::Facebook));
    }
    checked_token(&body.value.access_token, "access_token")?;
    state.limiter.check_address(&address)?;
    let person = identity_sign_in::verify_facebook_token(&state, &body.value.access_token).await?;
    finish(&state, caller, IdentityProvider::Facebook, person).await
}

/// Signs the person in with the verified identity, or links it to the caller.
async fn finish(
    state: &AppState,
    caller: Option<Caller>,
    provider: IdentityProvider,
    person: VerifiedPerson,
) -> ApiResult<Json<SignInSession>> {
    let (user, created) = match caller {
        Some(caller) => {
            let claimed = identity_sign_in::claimed(provider, &person);
            let user_id = caller.require_user()?;
            match state.store.link_identity(user_id, &claimed).await? {
                Linking::Linked(_) => {}
                Linking::TakenByAnother => {
                    return Err(ApiError::conflict(format!(
                        "this {provider} account signs in to another Bursar account"
                    )));
                }
            }
            let user = state
                .store
                .user(user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
            (user, false)
        }
        None => identity_sign_in::sign_in(state, provider, &person).await?,
    };
    respond_signed_in(state, &user, created).await
}

async fn respond_signed_in(
    state: &AppState,
    user: &bursar_store::users::User,
    created: bool,
) -> ApiResult<Json<SignInSession>> {
    let session = session_for(state, user, None).await?;
    Ok(Json(SignInSession {
        user: session.user,
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        token_type: session.token_type,
        expires_in: session.expires_in,
        created,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// `email` or `sms`.
    pub channel: String,
    /// An email address, or a phone number in E.164.
    pub destination: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// Seconds the code works for.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeVerification {
    pub channel: String,
    pub destination: String,
    /// The six digits received.
    pub code: String,
}

fn channel_of(text: &str) -> ApiResult<CodeChannel> {
    CodeChannel::parse(text).ok_or_else(|| ApiError::invalid("channel must be email or sms"))
}

/// Send a one-time sign-in code by email or SMS. The answer is the same whether or not an
/// account has that address.
#[utoipa::path(post, path = "/api/v1/auth/codes", tag = "auth",
    request_body = CodeRequest,
    responses((status = 202, body = CodeSent),
        (status = 422, description = "a bad channel or destination, or a channel not configured here", body = Problem),
        (status = 429, description = "`rate_limited`: this destination's or this address's codes for the hour", body = Problem)))]
pub async fn request_code(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    body: Body<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeSent>)> {
    let channel = channel_of(&body.value.channel)?;
    let destination = sign_in_codes::destination(channel, &body.value.destination)?;
    state.limiter.check_address(&address)?;
    sign_in_codes::request(&state, channel, &destination, &address).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSent {
            expires_in: sign_in_codes::CODE_TTL_MINUTES * 60,
        }),
    ))
}

/// Sign in (or sign up) with the code received.
#[utoipa::path(post, path = "/api/v1/auth/codes/verify", tag = "auth",
    request_body = CodeVerification,
    responses((status = 200, body = SignInSession),
        (status = 401, description = "`invalid_code`, `code_expired` (expired or used), or a suspended account", body = Problem),
        (status = 422, body = Problem),
        (status = 429, description = "`too_many_attempts`: the code is dead after 5 wrong tries; or `rate_limited`", body = Problem)))]
pub async fn verify_code(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    body: Body<CodeVerification>,
) -> ApiResult<Json<SignInSession>> {
    let request = body.value;
    let channel = channel_of(&request.channel)?;
    let destination = sign_in_codes::destination(channel, &request.destination)?;
    if request.code.chars().count() > 16 {
        return Err(ApiError::invalid("code must be the six digits received"));
    }
    state.limiter.check_address(&address)?;
    let (user, created) =
        sign_in_codes::verify(&state, channel, &destination, request.code.trim()).await?;
    respond_signed_in(&state, &user, created).await
}

/// The ways the signed-in user can sign in.
#[utoipa::path(get, path = "/api/v1/me/identities", tag = "me",
    responses((status = 200, body = IdentityList), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn my_identities(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<IdentityList>> {
    let user_id = caller.require_user()?;
    let identities = state.store.identities_of(user_id).await?;
    Ok(Json(IdentityList {
        data: identities.into_iter().map(Into::into).collect(),
    }))
}

/// Remove one way to sign in; the last one cannot be removed. Removing the password forgets it
/// and ends every session.
#[utoipa::path(delete, path = "/api/v1/me/identities/{id}", tag = "me",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "the account's last way to sign in", body = Problem)),
    security(("bearer" = [])))]
pub async fn unlink_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    let user_id = caller.require_user()?;
    match state.store.unlink_identity(user_id, &id).await? {
        Unlinking::Removed => {
            state.access.forget_user(user_id);
            Ok(StatusCode::NO_CONTENT)
        }
        Unlinking::Last => Err(ApiError::conflict(
            "this is the account's last way to sign in: link another first",
        )),
        Unlinking::NotFound => Err(ApiError::not_found("identity")),
    }
}

/// A user's ways to sign in, for an admin.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}/identities", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = IdentityList), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn user_identities(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IdentityList>> {
    caller.require_admin()?;
    if state.store.user(&id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let identities = state.store.identities_of(&id).await?;
    Ok(Json(IdentityList {
        data: identities.into_iter().map(Into::into).collect(),
    }))
}
