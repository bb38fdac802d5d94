//! The start page, signing up, signing in and out.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bursar_core::CodeChannel;
use bursar_store::packages::Package;
use bursar_store::users::UserChanges;
use serde::Deserialize;

use super::context::Page;
use super::cookies;
use super::errors::{OrPage, PageResult, render, render_with};
use super::forms::{FieldErrors, filled, safe_next};
use super::provider_sign_in::{self, ProviderButton};
use crate::AppState;
use crate::app::accounts::{self, Registration};
use crate::app::sign_in_codes;
use crate::auth::ClientAddr;

#[derive(Template)]
#[template(path = "web/home.html")]
struct HomePage<'a> {
    page: &'a Page,
    packages: Vec<Package>,
}

/// The public start page: what Bursar is and the packages on sale.
pub async fn home(State(state): State<AppState>, page: Page) -> PageResult {
    let packages = state.store.packages().await.or_page(&page)?;
    // What anyone may buy: packages without a level or balance condition.
    let packages = packages
        .into_iter()
        .filter(|p| p.spec.active && p.spec.min_level_hundredths == 0 && p.spec.min_balance <= 0)
        .collect();
    render(
        &page,
        &HomePage {
            page: &page,
            packages,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Why a sign-in with a provider did not happen (one of a fixed set of catalog keys).
    error: Option<String>,
    provider: Option<String>,
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage<'a> {
    page: &'a Page,
    email: String,
    next: String,
    errors: FieldErrors,
    /// Sign in with Google, Apple, Facebook: those configured.
    providers: Vec<ProviderButton>,
}

pub async fn login_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<LoginQuery>,
) -> PageResult {
    if page.signed_in() {
        return Ok(Redirect::to(&safe_next(query.next.as_deref())).into_response());
    }
    let mut errors = FieldErrors::default();
    if let Some(message) =
        provider_sign_in::failure_message(&page, query.error.as_deref(), query.provider.as_deref())
    {
        errors.add("", message);
    }
    let view = LoginPage {
        page: &page,
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        errors,
        providers: provider_sign_in::buttons(&state),
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    match accounts::password_sign_in(&state, &address, &form.email, form.password).await {
        Ok(user) => start_session(&state, &page, &user.id, &next, "password").await,
        Err(error) => {
            let mut errors = FieldErrors::default();
            let (key, status) = match error.status {
                StatusCode::TOO_MANY_REQUESTS => ("login-too-many", StatusCode::TOO_MANY_REQUESTS),
                _ if error.detail.contains("suspended") => {
                    ("login-suspended", StatusCode::UNAUTHORIZED)
                }
                StatusCode::UNAUTHORIZED => ("login-wrong", StatusCode::UNAUTHORIZED),
                _ => return Err(super::errors::from_api(&page, &error)),
            };
            errors.add("", page.t.t(key));
            let view = LoginPage {
                page: &page,
                email: form.email,
                next,
                errors,
                providers: provider_sign_in::buttons(&state),
            };
            render_with(&page, &view, status)
        }
    }
}

/// Starts a web session for `user_id` (signed in `with` a password, a code or a provider) and
/// sends the browser on to `next`.
pub(super) async fn start_session(
    state: &AppState,
    page: &Page,
    user_id: &str,
    next: &str,
    with: &str,
) -> PageResult {
    let token = state
        .store
        .start_web_session(user_id, state.config.refresh_token_ttl_s * 1000, with)
        .await
        .or_page(page)?;
    let secure = state.config.public_url.starts_with("https://");
    let mut response = Redirect::to(next).into_response();
    cookies::append(response.headers_mut(), cookies::session(token, secure));
    Ok(response)
}

#[derive(Template)]
#[template(path = "web/register.html")]
struct RegisterPage<'a> {
    page: &'a Page,
    email: String,
    display_name: String,
    merchant: bool,
    errors: FieldErrors,
    /// Sign up with Google, Apple, Facebook (as a member): those configured.
    providers: Vec<ProviderButton>,
    /// Where a provider's sign-up goes afterwards.
    next: &'static str,
}

pub async fn register_form(State(state): State<AppState>, page: Page) -> PageResult {
    if page.signed_in() {
        return Ok(Redirect::to("/account").into_response());
    }
    let view = RegisterPage {
        page: &page,
        email: String::new(),
        display_name: String::new(),
        merchant: false,
        errors: FieldErrors::default(),
        providers: provider_sign_in::buttons(&state),
        next: "/account",
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct RegisterForm {
    email: String,
    password: String,
    display_name: Option<String>,
    /// `member` or `merchant`.
    account_type: Option<String>,
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    Form(form): Form<RegisterForm>,
) -> PageResult {
    let merchant = form.account_type.as_deref() == Some("merchant");
    let mut errors = FieldErrors::default();
    // The same checks as the API, asked one by one so each error sits beside its field.
    let email = accounts::normalize_email(&form.email);
    if email.is_err() {
        errors.add("email", page.t.t("register-email-invalid"));
    }
    if accounts::check_password(&form.password).is_err() {
        errors.add("password", page.t.t("register-password-rule"));
    }
    let display_name = filled(&form.display_name);
    if accounts::check_display_name(display_name.clone()).is_err() {
        errors.add("display_name", page.t.t("register-name-rule"));
    }
    if let Ok(email) = &email
        && errors.is_empty()
    {
        if let Err(error) = state.limiter.check(&address, email) {
            return Err(super::errors::from_api(&page, &error));
        }
        let registration = Registration {
            email: email.clone(),
            password: form.password,
            display_name,
            role: merchant.then(|| "merchant".to_string()),
        };
        match accounts::register(&state.store, registration).await {
            Ok(user) => {
                // Someone who signs up on a page in Chinese reads Bursar in Chinese from then on.
                let language = UserChanges {
                    language: Some(page.t.language),
                    ..UserChanges::default()
                };
                state
                    .store
                    .update_user(&user.id, &language)
                    .await
                    .or_page(&page)?;
                let next = if merchant { "/merchant" } else { "/account" };
                return start_session(&state, &page, &user.id, next, "password").await;
            }
            Err(error) if error.status == StatusCode::CONFLICT => {
                errors.add("email", page.t.t("register-email-taken"));
            }
            Err(error) => return Err(super::errors::from_api(&page, &error)),
        }
    }
    let view = RegisterPage {
        page: &page,
        email: form.email,
        display_name: form.display_name.unwrap_or_default(),
        merchant,
        errors,
        providers: provider_sign_in::buttons(&state),
        next: "/account",
    };
    render_with(&page, &view, StatusCode::UNPROCESSABLE_ENTITY)
}

/// Ends this browser's session (the gate has checked the form's CSRF token).
pub async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    page: Page,
) -> Result<Response, Response> {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&headers);
    if let Some(cookie) = jar.get(cookies::SESSION) {
        state
            .store
            .end_web_session(cookie.value())
            .await
            .or_page(&page)?;
    }
    let secure = state.config.public_url.starts_with("https://");
    let mut response = Redirect::to("/").into_response();
    cookies::append(response.headers_mut(), cookies::session_removed(secure));
    Ok(response)
}

#[derive(Template)]
#[template(path = "web/login_code.html")]
struct CodePage<'a> {
    page: &'a Page,
    /// An email address, or a phone number when codes go by text message here too.
    email: String,
    /// The code was sent: ask for it.
    sent: bool,
    /// Codes can be sent by text message: the field takes a phone number as well.
    by_sms: bool,
    errors: FieldErrors,
}

/// Where a code goes: a phone number (E.164, so it starts with `+`) by text message when this
/// server sends them, anything else by email.
fn code_channel(state: &AppState, destination: &str) -> CodeChannel {
    if destination.trim_start().starts_with('+') && sms_codes(state) {
        CodeChannel::Sms
    } else {
        CodeChannel::Email
    }
}

fn sms_codes(state: &AppState) -> bool {
    sign_in_codes::channels(state).contains(&CodeChannel::Sms)
}

/// Signing in with a one-time code sent by email: for someone without a password, or who
/// forgot it (they can set a new one right after).
pub async fn code_form(State(state): State<AppState>, page: Page) -> PageResult {
    let view = CodePage {
        page: &page,
        email: String::new(),
        sent: false,
        by_sms: sms_codes(&state),
        errors: FieldErrors::default(),
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct CodeRequestForm {
    email: String,
}

pub async fn send_code(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    Form(form): Form<CodeRequestForm>,
) -> PageResult {
    let mut errors = FieldErrors::default();
    let channel = code_channel(&state, &form.email);
    let sent = match sign_in_codes::destination(channel, &form.email) {
        Err(_) => {
            let key = match channel {
                CodeChannel::Email => "register-email-invalid",
                CodeChannel::Sms => "code-phone-invalid",
            };
            errors.add("email", page.t.t(key));
            false
        }
        Ok(email) => {
            let asked = async {
                state.limiter.check_address(&address)?;
                sign_in_codes::request(&state, channel, &email, &address).await
            };
            match asked.await {
                Ok(()) => true,
                Err(error) if error.status == StatusCode::TOO_MANY_REQUESTS => {
                    errors.add("", page.t.t("login-too-many"));
                    false
                }
                Err(error) if error.status.is_client_error() => {
                    errors.add("", page.t.t("code-unavailable"));
                    false
                }
                Err(error) => return Err(super::errors::from_api(&page, &error)),
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let view = CodePage {
        page: &page,
        email: form.email,
        sent,
        by_sms: sms_codes(&state),
        errors,
    };
    render_with(&page, &view, status)
}

#[derive(Deserialize)]
pub struct CodeVerifyForm {
    email: String,
    code: String,
}

pub async fn verify_code(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    page: Page,
    Form(form): Form<CodeVerifyForm>,
) -> PageResult {
    let channel = code_channel(&state, &form.email);
    let verified = async {
        let email = sign_in_codes::destination(channel, &form.email)?;
        state.limiter.check_address(&address)?;
        let code: String = form
            .code
            .chars()
            .filter(char::is_ascii_digit)
            .take(16)
            .collect();
        sign_in_codes::verify(&state, channel, &email, &code).await
    };
    match verified.await {
        Ok((user, _)) => {
            start_session(
                &state,
                &page,
                &user.id,
                "/account/settings#password",
                "code",
            )
            .await
        }
        Err(error) if error.status.is_client_error() => {
            let mut errors = FieldErrors::default();
            let key = if error.status == StatusCode::TOO_MANY_REQUESTS {
                "code-too-many"
            } else {
                "code-wrong"
            };
            errors.add("code", page.t.t(key));
            let view = CodePage {
                page: &page,
                email: form.email,
                sent: true,
                by_sms: sms_codes(&state),
                errors,
            };
            render_with(&page, &view, StatusCode::UNAUTHORIZED)
        }
        Err(error) => Err(super::errors::from_api(&page, &error)),
    }
}
