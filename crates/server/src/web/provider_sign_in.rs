//! Signing in (or up) with Google, Apple or Facebook from the pages, without the providers'
//! scripts: the browser goes to the provider and comes back to Bursar.
//!
//! The provider's answer must belong to the browser that asked, or someone could sign a
//! victim's browser in to their own account, or replay a token. Starting a sign-in (a form with
//! its CSRF token) puts a random secret in a short-lived HttpOnly cookie on `/login`; the
//! `state` and the `nonce` sent to the provider are SHA-256 hashes of that secret, each for its
//! own purpose, so neither gives the secret away (OpenID Connect Core §15.5.2).
//!
//! Google and Apple post the ID token back from their own site (`response_mode=form_post`), a
//! cross-site POST that carries no SameSite=Lax cookie, so nothing can be checked against the
//! browser yet. The gate lets exactly that path through without a CSRF token (the `state` is
//! its protection); the handler only keeps the token behind a random one-time ticket, for two
//! minutes, and answers 303 to `/login/{provider}/finish?ticket=…`. That GET is a top-level
//! navigation, which does carry the cookie: the ticket is taken (deleted, so it works once), its
//! `state` compared with the cookie's, and the ID token verified with the cookie's nonce.
//!
//! Facebook's dialog returns a code by GET to `/login/facebook/callback`, which carries the
//! cookie: the `state` is compared, the code exchanged server to server with the app secret,
//! and the access token checked like the API's.
//!
//! Only then does anyone sign in, through the API's own use case, and the browser gets a
//! session as after a password. Tokens never travel in a URL Bursar makes and are never logged.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use bursar_core::IdentityProvider;
use bursar_store::ids::{new_secret, sha256_hex};
use bursar_store::users::UserChanges;
use bursar_store::web_sign_in_tickets::NewSignInTicket;
use serde::Deserialize;

use super::auth_pages::start_session;
use super::context::Page;
use super::cookies;
use super::errors::{self, OrPage, PageResult, Problem};
use super::forms::safe_next;
use super::gate::constant_time_eq;
use crate::AppState;
use crate::app::identity_sign_in;
use crate::auth::ClientAddr;
use crate::auth::oidc::VerifiedPerson;
use crate::routes::sign_in::TOKEN_CHARS_MAX;

/// How long a person may take at the provider before the sign-in must start again.
const FLOW_TTL_S: i64 = 10 * 60;
/// How long an ID token waits for its browser between the provider's POST and the GET after it
/// (a redirect: normally milliseconds).
const TICKET_TTL_MS: i64 = 2 * 60 * 1000;
/// Longer `state`s, codes and tickets than these are no one's (ours are 64 to 70 characters).
const STATE_CHARS_MAX: usize = 128;
const CODE_CHARS_MAX: usize = 2048;
/// Apple's name for a new account, as it is kept (the rest is cut).
const NAME_CHARS_MAX: usize = 100;

/// The providers a page may offer, in the order it shows them.
const PROVIDERS: [IdentityProvider; 3] = [
    IdentityProvider::Google,
    IdentityProvider::Apple,
    IdentityProvider::Facebook,
];

/// The paths a provider posts its answer to from its own site: the only POSTs the gate takes
/// without a CSRF token.
pub fn posted_from_provider(path: &str) -> bool {
    matches!(path, "/login/google/callback" | "/login/apple/callback")
}

/// A provider's button on the sign-in and sign-up pages.
pub struct ProviderButton {
    pub slug: &'static str,
    pub name: &'static str,
}

/// The buttons for the providers configured here.
pub fn buttons(state: &AppState) -> Vec<ProviderButton> {
    PROVIDERS
        .into_iter()
        .filter(|p| configured(state, *p))
        .map(|p| ProviderButton {
            slug: p.as_str(),
            name: brand(p),
        })
        .collect()
}

/// The provider's own name, the same in every language.
pub fn brand(provider: IdentityProvider) -> &'static str {
    match provider {
        IdentityProvider::Google => "Google",
        IdentityProvider::Apple => "Apple",
        IdentityProvider::Facebook => "Facebook",
        _ => "",
    }
}

fn configured(state: &AppState, provider: IdentityProvider) -> bool {
    match provider {
        IdentityProvider::Google | IdentityProvider::Apple => {
            state.sign_in.oidc(provider).is_some()
        }
        IdentityProvider::Facebook => state.sign_in.facebook.is_some(),
        _ => false,
    }
}

/// The provider a path names, when it is one of the three and configured here.
fn offered(state: &AppState, slug: &str) -> Option<IdentityProvider> {
    IdentityProvider::parse(slug).filter(|p| PROVIDERS.contains(p) && configured(state, *p))
}

fn callback_url(state: &AppState, provider: IdentityProvider) -> String {
    format!(
        "{}/login/{}/callback",
        state.config.public_url.trim_end_matches('/'),
        provider.as_str()
    )
}

fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// The sign-in under way in this browser, from its cookie: `{provider}.{secret}.{next in hex}`.
struct Flow {
    provider: IdentityProvider,
    secret: String,
    next: String,
}

impl Flow {
    fn new(provider: IdentityProvider, next: String) -> Self {
        Self {
            provider,
            secret: new_secret("flow"),
            next,
        }
    }

    fn read(headers: &HeaderMap) -> Option<Self> {
        let jar = CookieJar::from_headers(headers);
        let value = jar.get(cookies::SIGN_IN_FLOW)?.value().to_string();
        let mut parts = value.splitn(3, '.');
        let provider = IdentityProvider::parse(parts.next()?)?;
        let secret = parts.next().filter(|s| s.len() >= 64 && s.len() <= 128)?;
        let next = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
        Some(Self {
            provider,
            secret: secret.to_string(),
            // Read back from the browser, so checked again.
            next: safe_next(Some(&next)),
        })
    }

    fn cookie_value(&self) -> String {
        format!(
            "{}.{}.{}",
            self.provider.as_str(),
            self.secret,
            hex::encode(&self.next)
        )
    }

    /// The `state` sent to the provider: bound to this browser's secret, not revealing it.
    fn state(&self) -> String {
        sha256_hex(format!("bursar sign-in state:{}", self.secret))
    }

    /// The `nonce` the ID token must carry.
    fn nonce(&self) -> String {
        sha256_hex(format!("bursar sign-in nonce:{}", self.secret))
    }

    fn sent_state_matches(&self, sent: &str) -> bool {
        constant_time_eq(sent.as_bytes(), self.state().as_bytes())
    }
}

/// Why a sign-in did not happen, as `/login` then says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The person said no at the provider.
    Cancelled,
    /// No sign-in under way in this browser (no cookie, another provider's), or its ticket is
    /// unknown, used or expired.
    Expired,
    /// The answer is not this browser's (another `state`), or the provider's token was refused.
    Refused,
    Suspended,
    /// The identity was removed from its account's ways to sign in.
    Unlinked,
    TooMany,
}

impl Failure {
    fn key(self) -> &'static str {
        match self {
            Failure::Cancelled => "provider-cancelled",
            Failure::Expired => "provider-expired",
            Failure::Refused => "provider-refused",
            Failure::Suspended => "login-suspended",
            Failure::Unlinked => "provider-unlinked",
            Failure::TooMany => "login-too-many",
        }
    }
}

/// The keys `/login?error=` may name, so a link cannot put other text on the page.
pub const FAILURE_KEYS: &[&str] = &[
    "provider-cancelled",
    "provider-expired",
    "provider-refused",
    "provider-unlinked",
    "login-suspended",
    "login-too-many",
];

/// The message `/login` shows for `?error=…&provider=…`, if they name one.
pub fn failure_message(page: &Page, key: Option<&str>, provider: Option<&str>) -> Option<String> {
    let key = key.filter(|k| FAILURE_KEYS.contains(k))?;
    let name = provider
        .and_then(IdentityProvider::parse)
        .map(brand)
        .filter(|name| !name.is_empty())
        .unwrap_or("");
    Some(page.t.t1(key, "provider", name))
}

/// Back to `/login` with the reason, the sign-in cookie gone.
fn failed(state: &AppState, provider: IdentityProvider, failure: Failure) -> Response {
    let mut response = Redirect::to(&format!(
        "/login?error={}&provider={}",
        failure.key(),
        provider.as_str()
    ))
    .into_response();
    cookies::append(
        response.headers_mut(),
        cookies::sign_in_flow_removed(secure(state)),
    );
    response
}

#[derive(Deserialize)]
pub struct StartForm {
    next: Option<String>,
}

/// `POST /login/{provider}` (the gate has checked the form's CSRF token): to the provider.
pub async fn start(
    State(state): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    axum::Form(form): axum::Form<StartForm>,
) -> PageResult {
    let Some(provider) = offered(&state, &slug) else {
        return Err(errors::page(&page, Problem::NotFound));
    };
    let flow = Flow::new(provider, safe_next(form.next.as_deref()));
    let redirect_uri = callback_url(&state, provider);
    let state_param = flow.state();
    let (endpoint, setting, params) = match (provider, state.sign_in.oidc(provider)) {
        (IdentityProvider::Google | IdentityProvider::Apple, Some(oidc)) => {
            let settings = oidc.settings();
            let (response_type, scope, setting) = if provider == IdentityProvider::Google {
                ("id_token", "openid email", "BURSAR_GOOGLE_AUTHORIZE_URL")
            } else {
                // Apple sends the name (only the first time) beside the token, not in it.
                (
                    "code id_token",
                    "openid email name",
                    "BURSAR_APPLE_AUTHORIZE_URL",
                )
            };
            let client_id = settings.client_ids.first().cloned().unwrap_or_default();
            let params = vec![
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("response_type", response_type.to_string()),
                ("response_mode", "form_post".to_string()),
                ("scope", scope.to_string()),
                ("state", state_param),
                ("nonce", flow.nonce()),
            ];
            (settings.authorize_url.clone(), setting, params)
        }
        _ => {
            let Some(facebook) = state.sign_in.facebook.as_ref() else {
                return Err(errors::page(&page, Problem::NotFound));
            };
            let settings = facebook.settings();
            let params = vec![
                ("client_id", settings.app_id.clone()),
                ("redirect_uri", redirect_uri),
                ("response_type", "code".to_string()),
                ("scope", "email".to_string()),
                ("state", state_param),
            ];
            (
                settings.dialog_url.clone(),
                "BURSAR_FACEBOOK_DIALOG_URL",
                params,
            )
        }
    };
    let url = reqwest::Url::parse_with_params(&endpoint, &params).map_err(|error| {
        tracing::error!(%error, setting, "the provider's sign-in address is not a URL");
        errors::page(&page, Problem::Internal)
    })?;
    let mut response = Redirect::to(url.as_str()).into_response();
    cookies::append(
        response.headers_mut(),
        cookies::sign_in_flow(flow.cookie_value(), FLOW_TTL_S, secure(&state)),
    );
    Ok(response)
}

/// What Google or Apple posts back (`response_mode=form_post`).
#[derive(Default, Deserialize)]
struct PostedAnswer {
    id_token: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// Apple, the first time: `{"name": {"firstName", "lastName"}, "email"}`.
    user: Option<String>,
}

/// `POST /login/{google,apple}/callback`, from the provider's site without Bursar's cookies:
/// the token is kept behind a one-time ticket and the browser sent to pick it up with a GET,
/// which carries the cookie that says whose sign-in this is.
pub async fn callback_post(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    Path(slug): Path<String>,
    body: Bytes,
) -> PageResult {
    let Some(provider) = offered(&state, &slug).filter(|p| *p != IdentityProvider::Facebook) else {
        return Err(errors::page(&page, Problem::NotFound));
    };
    let answer: PostedAnswer = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if let Some(error) = &answer.error {
        return Ok(failed(&state, provider, provider_error(error)));
    }
    let (Some(id_token), Some(sent_state)) = (&answer.id_token, &answer.state) else {
        return Ok(failed(&state, provider, Failure::Refused));
    };
    if id_token.is_empty()
        || id_token.len() > TOKEN_CHARS_MAX
        || sent_state.is_empty()
        || sent_state.len() > STATE_CHARS_MAX
    {
        return Ok(failed(&state, provider, Failure::Refused));
    }
    if state.limiter.check_address(&address).is_err() {
        return Ok(failed(&state, provider, Failure::TooMany));
    }
    let display_name = answer.user.as_deref().and_then(apple_name);
    let ticket = state
        .store
        .keep_sign_in_ticket(
            &NewSignInTicket {
                provider: provider.as_str(),
                state: sent_state,
                id_token,
                display_name: display_name.as_deref(),
            },
            TICKET_TTL_MS,
        )
        .await
        .or_page(&page)?;
    Ok(Redirect::to(&format!(
        "/login/{}/finish?ticket={ticket}",
        provider.as_str()
    ))
    .into_response())
}

/// `error=` from a provider: the person said no, or something else went wrong there.
fn provider_error(error: &str) -> Failure {
    match error {
        "access_denied" | "user_cancelled_authorize" => Failure::Cancelled,
        _ => Failure::Refused,
    }
}

/// The name in Apple's `user` field, if it has one.
fn apple_name(user: &str) -> Option<String> {
    let user: serde_json::Value = serde_json::from_str(user).ok()?;
    let part = |key: &str| {
        user["name"][key]
            .as_str()
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let name = format!("{} {}", part("firstName"), part("lastName"));
    let name: String = name.trim().chars().take(NAME_CHARS_MAX).collect();
    (!name.is_empty()).then_some(name)
}

#[derive(Default, Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

/// `GET /login/{google,apple}/finish?ticket=…`: the same browser, now with its cookie.
pub async fn finish(
    State(state): State<AppState>,
    page: Page,
    headers: HeaderMap,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let Some(provider) = offered(&state, &slug).filter(|p| *p != IdentityProvider::Facebook) else {
        return Err(errors::page(&page, Problem::NotFound));
    };
    let query: TicketQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    // Taken first, so a ticket works once whatever happens next.
    let ticket = match query.ticket.filter(|t| t.len() <= STATE_CHARS_MAX) {
        Some(ticket) => state
            .store
            .take_sign_in_ticket(&ticket)
            .await
            .or_page(&page)?,
        None => None,
    };
    let flow = Flow::read(&headers).filter(|flow| flow.provider == provider);
    let (Some(ticket), Some(flow)) = (ticket, flow) else {
        return Ok(failed(&state, provider, Failure::Expired));
    };
    if ticket.provider != provider.as_str() || !flow.sent_state_matches(&ticket.state) {
        tracing::info!(%provider, "a sign-in answer did not match its browser's state");
        return Ok(failed(&state, provider, Failure::Refused));
    }
    let verified =
        identity_sign_in::verify_id_token(&state, provider, &ticket.id_token, Some(&flow.nonce()))
            .await;
    let mut person = match verified {
        Ok(person) => person,
        Err(_) => return Ok(failed(&state, provider, Failure::Refused)),
    };
    if person.name.is_none() {
        person.name = ticket.display_name;
    }
    complete(&state, &page, provider, &person, &flow.next).await
}

#[derive(Default, Deserialize)]
struct DialogAnswer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/facebook/callback?code=…&state=…`: Facebook's dialog sends the browser back,
/// with its cookie.
pub async fn callback_get(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    headers: HeaderMap,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let Some(provider) = offered(&state, &slug).filter(|p| *p == IdentityProvider::Facebook) else {
        return Err(errors::page(&page, Problem::NotFound));
    };
    let Some(facebook) = state.sign_in.facebook.as_ref() else {
        return Err(errors::page(&page, Problem::NotFound));
    };
    let answer: DialogAnswer =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let Some(flow) = Flow::read(&headers).filter(|flow| flow.provider == provider) else {
        return Ok(failed(&state, provider, Failure::Expired));
    };
    let sent_state = answer.state.as_deref().unwrap_or_default();
    if sent_state.len() > STATE_CHARS_MAX || !flow.sent_state_matches(sent_state) {
        tracing::info!(%provider, "a sign-in answer did not match its browser's state");
        return Ok(failed(&state, provider, Failure::Refused));
    }
    if let Some(error) = &answer.error {
        return Ok(failed(&state, provider, provider_error(error)));
    }
    let Some(code) = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= CODE_CHARS_MAX)
    else {
        return Ok(failed(&state, provider, Failure::Refused));
    };
    if state.limiter.check_address(&address).is_err() {
        return Ok(failed(&state, provider, Failure::TooMany));
    }
    let redirect_uri = callback_url(&state, provider);
    let access_token = match facebook.exchange_code(&code, &redirect_uri).await {
        Ok(token) => token,
        Err(error) => {
            identity_sign_in::refused(error);
            return Ok(failed(&state, provider, Failure::Refused));
        }
    };
    let person = match identity_sign_in::verify_facebook_token(&state, &access_token).await {
        Ok(person) => person,
        Err(_) => return Ok(failed(&state, provider, Failure::Refused)),
    };
    complete(&state, &page, provider, &person, &flow.next).await
}

/// Signs the verified person in through the API's use case and starts the browser's session.
async fn complete(
    state: &AppState,
    page: &Page,
    provider: IdentityProvider,
    person: &VerifiedPerson,
    next: &str,
) -> PageResult {
    let (user, created) = match identity_sign_in::sign_in(state, provider, person).await {
        Ok(signed_in) => signed_in,
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            return Ok(failed(state, provider, Failure::Suspended));
        }
        Err(error) if error.status == StatusCode::CONFLICT => {
            return Ok(failed(state, provider, Failure::Unlinked));
        }
        Err(error) => return Err(errors::from_api(page, &error)),
    };
    if created {
        // Someone who signs up on a page in Chinese reads Bursar in Chinese from then on.
        let language = UserChanges {
            language: Some(page.t.language),
            ..UserChanges::default()
        };
        state
            .store
            .update_user(&user.id, &language)
            .await
            .or_page(page)?;
    }
    let mut response = start_session(state, page, &user.id, next, provider.as_str()).await?;
    cookies::append(
        response.headers_mut(),
        cookies::sign_in_flow_removed(secure(state)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_nonce_are_distinct_hashes_of_the_browsers_secret() {
        let flow = Flow::new(IdentityProvider::Google, "/account/buy?x=1".into());
        assert_ne!(flow.state(), flow.nonce());
        assert!(
            !flow
                .state()
                .contains(flow.secret.trim_start_matches("flow_"))
        );
        assert!(flow.sent_state_matches(&flow.state()));
        assert!(!flow.sent_state_matches(&flow.nonce()));
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("{}={}", cookies::SIGN_IN_FLOW, flow.cookie_value())
                .parse()
                .expect("a header"),
        );
        let read = Flow::read(&headers).expect("read back");
        assert_eq!(read.provider, IdentityProvider::Google);
        assert_eq!(read.next, "/account/buy?x=1");
        assert_eq!(read.state(), flow.state());
    }

    #[test]
    fn a_cookie_cannot_send_the_browser_elsewhere() {
        let value = format!(
            "google.{}.{}",
            "a".repeat(64),
            hex::encode("https://evil.example")
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("{}={value}", cookies::SIGN_IN_FLOW)
                .parse()
                .expect("a header"),
        );
        assert_eq!(Flow::read(&headers).expect("read").next, "/account");
    }

    #[test]
    fn apples_name_is_read_from_its_user_field() {
        assert_eq!(
            apple_name(r#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"a@b.c"}"#)
                .as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(apple_name(r#"{"email":"a@b.c"}"#), None);
        assert_eq!(apple_name("not json"), None);
    }
}
