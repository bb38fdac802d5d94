//! What every page knows about the request: who is signed in, in which language and time zone,
//! and the CSRF token its forms carry. Built once per request by [`super::gate`] and read by
//! handlers through the [`Page`] and [`SignedIn`] extractors.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use bursar_core::{Language, Role};
use bursar_store::users::User;
use bursar_worker::Tz;

use super::format::Formatter;
use super::i18n::Translator;
use crate::AppState;

/// The request as a page sees it.
#[derive(Clone)]
pub struct Page {
    pub t: Translator,
    pub fmt: Formatter,
    /// The signed-in user, active (a suspended user's session is ended before any page runs).
    pub user: Option<User>,
    /// The token every form on this page must send back as `csrf`.
    pub csrf: String,
    /// The path and query of this request, for the language switcher and `next=`.
    pub path: String,
    /// Signed in minutes ago with a one-time code: a new password may be set without the old.
    pub fresh_code_sign_in: bool,
}

impl Page {
    pub fn new(
        language: Language,
        zone: Tz,
        user: Option<User>,
        csrf: String,
        path: String,
    ) -> Self {
        Self {
            t: Translator::new(language),
            fmt: Formatter::new(language, zone),
            user,
            csrf,
            path,
            fresh_code_sign_in: false,
        }
    }

    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    pub fn is_merchant(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Merchant)
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Admin)
    }

    /// What the navigation calls the user.
    pub fn user_name(&self) -> String {
        self.user.as_ref().map_or_else(String::new, |u| {
            u.display_name.clone().unwrap_or_else(|| u.email.clone())
        })
    }

    /// This page in another language, for the switcher.
    pub fn lang_link(&self, tag: &str) -> String {
        let (path, query) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).unwrap_or_default();
        pairs.retain(|(k, _)| k != "lang");
        pairs.push(("lang".into(), tag.into()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{path}?{query}")
    }

    /// Whether `prefix` is the section this page is in, for the navigation's current item.
    pub fn is_at(&self, prefix: &str) -> bool {
        let path = self.path.split('?').next().unwrap_or_default();
        path == prefix || (prefix != "/account" && path.starts_with(prefix))
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Page>()
            .cloned()
            .ok_or_else(super::errors::internal_page)
    }
}

/// A page that needs a session: a visitor without one is sent to `/login` (303), to come back
/// here after signing in.
pub struct SignedIn {
    pub page: Page,
    pub user: User,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let page = Page::from_request_parts(parts, state).await?;
        match page.user.clone() {
            Some(user) => Ok(SignedIn { page, user }),
            None => {
                let next = serde_urlencoded::to_string([("next", &page.path)]).unwrap_or_default();
                Err(Redirect::to(&format!("/login?{next}")).into_response())
            }
        }
    }
}

/// A merchant's page: a visitor goes to `/login`, a signed-in user of another role gets 403.
pub struct MerchantIn(pub SignedIn);

impl FromRequestParts<AppState> for MerchantIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if signed_in.user.role != Role::Merchant {
            return Err(super::errors::forbidden_page(&signed_in.page));
        }
        Ok(MerchantIn(signed_in))
    }
}
