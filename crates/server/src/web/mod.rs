//! The web UI: server-rendered pages for members and merchants, in English, Simplified and
//! Traditional Chinese. Pages call the same use cases as the JSON API (`crate::app`, the store's
//! reads), never a second implementation of a rule.

// A handler's error is the finished error page; it is returned once per request, so its size
// costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod account;
mod actions;
mod assets;
mod auth_pages;
mod buy;
pub mod context;
mod cookies;
pub mod errors;
pub mod format;
mod forms;
pub mod gate;
mod history;
pub mod i18n;
mod marketplace;
mod merchant;
mod orders;
pub mod pay_result;
mod provider_sign_in;
mod rewards;
mod subscriptions;
mod topup;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};

use crate::AppState;
use context::Page;

/// Every page, behind the gate (session, language, CSRF, security headers).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(auth_pages::home))
        .route(
            "/login",
            get(auth_pages::login_form).post(auth_pages::login),
        )
        .route(
            "/register",
            get(auth_pages::register_form).post(auth_pages::register),
        )
        .route(
            "/login/code",
            get(auth_pages::code_form).post(auth_pages::send_code),
        )
        .route("/login/code/verify", post(auth_pages::verify_code))
        .route("/login/{provider}", post(provider_sign_in::start))
        .route(
            "/login/{provider}/callback",
            get(provider_sign_in::callback_get).post(provider_sign_in::callback_post),
        )
        .route("/login/{provider}/finish", get(provider_sign_in::finish))
        .route("/logout", post(auth_pages::logout))
        .route("/account", get(account::dashboard))
        .route(
            "/account/settings",
            get(account::settings_form).post(account::save_settings),
        )
        .route("/account/password", post(account::change_password))
        .route("/account/buy", get(buy::buy_form).post(buy::place))
        .route("/account/buy/quote", get(buy::quote))
        .route("/account/orders", get(orders::list))
        .route("/account/orders/{id}", get(orders::detail))
        .route("/account/orders/{id}/receipt", get(orders::receipt))
        .route("/account/transactions", get(history::list))
        .route("/account/transactions.csv", get(history::csv))
        .route("/account/rewards", get(rewards::show))
        .route("/account/rewards/gift", post(rewards::claim_gift))
        .route("/account/rewards/{id}/claim", post(rewards::claim_reward))
        .route("/account/marketplace", get(marketplace::show))
        .route("/account/marketplace/redeem", post(marketplace::redeem))
        .route(
            "/account/marketplace/redemptions/{id}/cancel",
            get(marketplace::confirm_cancel).post(marketplace::cancel_own),
        )
        .route("/account/subscriptions", get(subscriptions::show))
        .route(
            "/account/subscriptions/{id}",
            post(subscriptions::set_renewal),
        )
        .route("/account/auto-top-up", get(topup::show).post(topup::save))
        .route("/account/auto-top-up/preview", get(topup::preview))
        .route("/account/auto-top-up/cards", post(topup::add_card))
        .route(
            "/account/auto-top-up/cards/stripe",
            post(topup::add_stripe_card),
        )
        .route(
            "/account/auto-top-up/cards/stripe/return",
            get(topup::stripe_card_return),
        )
        .route(
            "/account/auto-top-up/cards/{id}/remove",
            post(topup::remove_card),
        )
        .route("/merchant", get(merchant::home))
        .route("/merchant/products", post(merchant::create_product))
        .route(
            "/merchant/products/{id}",
            get(merchant::edit_form).post(merchant::update_product),
        )
        .route(
            "/merchant/products/{id}/delist",
            get(merchant::confirm_delist).post(merchant::delist),
        )
        .route("/merchant/redemptions/{id}/fulfil", post(merchant::fulfil))
        .route(
            "/merchant/redemptions/{id}/cancel",
            get(merchant::confirm_cancel).post(merchant::cancel_redemption),
        )
        .layer(axum::middleware::from_fn_with_state(state, gate::gate))
        .merge(assets::router())
}

/// The HTML 404 for a path that names nothing, in the language asked for (`?lang=`, the
/// switcher's cookie, the browser's); no session is read for a path that does not exist.
pub fn not_found_page(
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    zone: bursar_worker::Tz,
) -> Response {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    let language = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "lang"))
        .and_then(|(_, v)| i18n::parse_tag(&v))
        .or_else(|| {
            jar.get(cookies::LANGUAGE)
                .and_then(|c| i18n::parse_tag(c.value()))
        })
        .or_else(|| i18n::from_accept_language(headers))
        .unwrap_or(bursar_core::Language::En);
    let page = Page::new(language, zone, None, String::new(), "/".into());
    errors::page(&page, errors::Problem::NotFound)
}

/// Whether `path` is one of the web UI's pages, whose errors are pages too.
pub fn is_web_path(path: &str) -> bool {
    path == "/"
        || ["/login", "/register", "/logout", "/account", "/merchant"]
            .iter()
            .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// Whether a request for an unknown path came from a person's browser rather than an API
/// client, so the 404 is a page rather than problem+json.
pub fn wants_page(path: &str, headers: &axum::http::HeaderMap) -> bool {
    !path.starts_with("/api/")
        && headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}
