//! The web UI's cookies. All HttpOnly and SameSite=Lax; Secure when the public URL is https.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use bursar_core::Language;

/// The session: a random token whose hash names a row of `web_sessions`.
pub const SESSION: &str = "bursar_session";
/// A visitor's CSRF token, for the forms posted before there is a session (sign in, sign up).
pub const VISITOR_CSRF: &str = "bursar_csrf";
/// A visitor's language, chosen with the switcher.
pub const LANGUAGE: &str = "bursar_lang";
/// A sign-in with Google, Apple or Facebook under way: the secret that binds the provider's
/// answer to this browser (see `web::provider_sign_in`).
pub const SIGN_IN_FLOW: &str = "bursar_sign_in";
/// Sent only to the sign-in pages, which are the only ones that read it.
const SIGN_IN_FLOW_PATH: &str = "/login";

fn base(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

/// The session cookie; it lives as long as the browser does, the session as long as the server
/// says (`expires_at`).
pub fn session(token: String, secure: bool) -> Cookie<'static> {
    base(SESSION, token, secure)
}

pub fn session_removed(secure: bool) -> Cookie<'static> {
    let mut cookie = base(SESSION, String::new(), secure);
    cookie.make_removal();
    cookie
}

pub fn visitor_csrf(token: String, secure: bool) -> Cookie<'static> {
    base(VISITOR_CSRF, token, secure)
}

/// Lives as long as the person may take at the provider; removed when the sign-in ends.
pub fn sign_in_flow(value: String, max_age_s: i64, secure: bool) -> Cookie<'static> {
    let mut cookie = base(SIGN_IN_FLOW, value, secure);
    cookie.set_path(SIGN_IN_FLOW_PATH);
    cookie.set_max_age(Some(time::Duration::seconds(max_age_s)));
    cookie
}

pub fn sign_in_flow_removed(secure: bool) -> Cookie<'static> {
    let mut cookie = base(SIGN_IN_FLOW, String::new(), secure);
    cookie.set_path(SIGN_IN_FLOW_PATH);
    cookie.make_removal();
    cookie
}

pub fn language(language: Language, secure: bool) -> Cookie<'static> {
    let mut cookie = base(LANGUAGE, language.as_str().to_string(), secure);
    cookie.set_max_age(Some(time::Duration::days(365)));
    cookie
}

pub fn append(headers: &mut HeaderMap, cookie: Cookie<'static>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}
