//! The middleware every page passes through: it finds the session, picks the language, refuses
//! a form posted without its CSRF token (so no handler can forget; the one exception is where
//! Google and Apple post their sign-in answers), and adds the security headers and the cookies
//! the page needs.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use bursar_core::{Language, UserStatus};
use bursar_store::users::{User, UserChanges};
use bursar_store::web_sessions::WebSession;

use super::context::Page;
use super::{cookies, errors, i18n};
use crate::AppState;

/// How long after signing in with a one-time code a new password may be set without the old
/// one (the way back for someone who forgot it).
pub const FRESH_CODE_SIGN_IN_MS: i64 = 15 * 60 * 1000;

/// The largest form a page posts (a bank statement goes through the API, not a page).
const FORM_BYTES_MAX: usize = 64 * 1024;

/// `default-src 'self'` and no inline script: htmx and the stylesheet are served from here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self' https:";

/// What the gate found out about a request, and the cookies its answer must set.
pub struct Found {
    pub page: Page,
    new_visitor_token: Option<String>,
    asked_language: Option<Language>,
}

impl Found {
    /// Sets the cookies the request needs and the security headers on a page's response.
    pub fn finish(&self, state: &AppState, response: &mut Response) {
        let secure = state.config.public_url.starts_with("https://");
        let headers = response.headers_mut();
        if let Some(token) = &self.new_visitor_token {
            cookies::append(headers, cookies::visitor_csrf(token.clone(), secure));
        }
        if let Some(language) = self.asked_language {
            cookies::append(headers, cookies::language(language, secure));
        }
        security_headers(headers);
    }
}

/// The page context of a request: its session and user, language, time zone and CSRF token.
pub async fn find(state: &AppState, parts: &Parts) -> Result<Found, Response> {
    let jar = CookieJar::from_headers(&parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());

    let session = match jar.get(cookies::SESSION) {
        Some(cookie) => signed_in_user(state, cookie.value()).await?,
        None => None,
    };
    let (visitor_token, new_visitor_token) = match jar.get(cookies::VISITOR_CSRF) {
        Some(cookie) if cookie.value().len() >= 32 => (cookie.value().to_string(), None),
        _ => {
            let token = bursar_store::ids::new_secret("vcsrf");
            (token.clone(), Some(token))
        }
    };

    let asked = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "lang"))
        .and_then(|(_, v)| i18n::parse_tag(&v));
    let mut user = session.as_ref().map(|(user, _)| user.clone());
    if let (Some(language), Some(u)) = (asked, user.as_mut())
        && u.language != language
    {
        // The switcher changes a signed-in user's setting, so every page (and every email)
        // follows it from now on.
        let changes = UserChanges {
            language: Some(language),
            ..UserChanges::default()
        };
        if state.store.update_user(&u.id, &changes).await.is_ok() {
            u.language = language;
        }
    }
    let language = asked
        .or_else(|| user.as_ref().map(|u| u.language))
        .or_else(|| {
            jar.get(cookies::LANGUAGE)
                .and_then(|c| i18n::parse_tag(c.value()))
        })
        .or_else(|| i18n::from_accept_language(&parts.headers))
        .unwrap_or(Language::En);
    let zone = user
        .as_ref()
        .and_then(|u| u.time_zone.as_deref())
        .and_then(|z| z.parse().ok())
        .unwrap_or(state.config.timezone);
    let csrf = match &session {
        Some((_, session)) => session.csrf_token.clone(),
        None => visitor_token,
    };
    let mut page = Page::new(language, zone, user, csrf, path);
    page.fresh_code_sign_in = session.as_ref().is_some_and(|(_, session)| {
        session.signed_in_with == "code"
            && state.store.clock.now_ms() - session.created_at_ms < FRESH_CODE_SIGN_IN_MS
    });
    Ok(Found {
        page,
        new_visitor_token,
        asked_language: asked,
    })
}

pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let found = match find(&state, &parts).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, FORM_BYTES_MAX).await {
            Ok(bytes) => bytes,
            Err(_) => return errors::page(&found.page, errors::Problem::TooLarge),
        };
        // A provider posting its answer from its own site sends no cookie and no token: the
        // answer's `state`, checked against the browser's cookie afterwards, protects it.
        let from_provider = super::provider_sign_in::posted_from_provider(parts.uri.path());
        if !from_provider && !carries_token(&bytes, &found.page.csrf) {
            return errors::page(&found.page, errors::Problem::Csrf);
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(found.page.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    found.finish(&state, &mut response);
    response
}

/// The session's user, when the cookie names a live session of an active user. A suspended
/// user's session was ended with the suspension; a stale cookie is simply not a session.
async fn signed_in_user(
    state: &AppState,
    token: &str,
) -> Result<Option<(User, WebSession)>, Response> {
    let lookup = async {
        let Some(session) = state.store.web_session(token).await? else {
            return Ok(None);
        };
        let user = state.store.user(&session.user_id).await?;
        Ok::<_, bursar_store::StoreError>(
            user.filter(|u| u.status == UserStatus::Active)
                .map(|u| (u, session)),
        )
    };
    lookup.await.map_err(|error| {
        tracing::error!(%error, "reading a web session failed");
        errors::internal_page()
    })
}

/// Whether a posted form's `csrf` field is this page's token (compared in constant time).
fn carries_token(form: &Bytes, expected: &str) -> bool {
    let sent = form_urlencoded::parse(form)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    !sent.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes())
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn security_headers(headers: &mut axum::http::HeaderMap) {
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show a person's balance and orders: never kept by a shared cache.
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}
