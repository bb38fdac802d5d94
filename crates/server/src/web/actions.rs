//! What the pages share when a form changes something: the form's own idempotency key (a form
//! posted twice changes things once), and a short notice or error carried to the next page.

use bursar_store::ledger::{Executed, Idempotency, Idempotent};
use serde::Deserialize;

use super::context::Page;
use crate::error::ApiError;

/// The key of one rendered form: the same form posted twice is one request. `route` and
/// `material` say what the form asked, so the same key with a different request is refused.
pub fn form_key(user_id: &str, form_key: &str, route: &str, material: &str) -> Idempotency {
    Idempotency {
        scope: user_id.to_string(),
        key: format!("web:{}", form_key.chars().take(100).collect::<String>()),
        request_hash: bursar_store::ids::sha256_hex(format!("web {route}\n{material}")),
    }
}

/// The same, as the ledger takes it: responses rendered as the API's, so a replay reads alike.
pub fn idempotent(user_id: &str, key: &str, route: &str, material: &str) -> Idempotent {
    Idempotent {
        key: form_key(user_id, key, route, material),
        render: crate::outcomes::render,
    }
}

/// A form that only carries its idempotency key (a claim, a cancellation).
#[derive(Deserialize)]
pub struct KeyedForm {
    pub form_key: String,
}

/// A fresh key for a form about to be rendered.
pub fn new_form_key() -> String {
    bursar_store::ids::new_id("web")
}

/// A ledger request's result as success or the error a replay stored.
pub fn settled(executed: Executed) -> Result<(), ApiError> {
    match executed {
        Executed::Replayed(rendered) if rendered.status >= 400 => {
            let body: serde_json::Value = serde_json::from_str(&rendered.body).unwrap_or_default();
            let status = axum::http::StatusCode::from_u16(rendered.status)
                .unwrap_or(axum::http::StatusCode::CONFLICT);
            Err(ApiError::new(
                status,
                "replayed",
                body["detail"].as_str().unwrap_or_default(),
            ))
        }
        _ => Ok(()),
    }
}

/// `?notice=…` or `?error=…` after a form: a catalog key, shown on the page it lands on.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// Keys a redirect may name; anything else in the query is ignored, so a link cannot put
/// arbitrary text on a page.
const FLASH_KEYS: &[&str] = &[
    "notice-gift-claimed",
    "notice-reward-claimed",
    "notice-redeemed",
    "notice-redemption-cancelled",
    "notice-redemption-fulfilled",
    "notice-product-saved",
    "notice-product-delisted",
    "notice-rule-saved",
    "notice-card-saved",
    "notice-card-removed",
    "notice-subscription-saved",
    "error-insufficient-credits",
    "error-already-claimed",
    "error-expired",
    "error-out-of-stock",
    "error-limit-reached",
    "error-not-pending",
    "error-action-failed",
    "error-card-not-saved",
];

impl Flash {
    pub fn notice(&self, page: &Page) -> Option<String> {
        Self::shown(page, &self.notice)
    }

    pub fn error(&self, page: &Page) -> Option<String> {
        Self::shown(page, &self.error)
    }

    fn shown(page: &Page, key: &Option<String>) -> Option<String> {
        key.as_deref()
            .filter(|k| FLASH_KEYS.contains(k))
            .map(|k| page.t.t(k))
    }
}

/// The flash key for a refused action, from the use case's error.
pub fn error_key(error: &ApiError) -> &'static str {
    let detail = error.detail.to_lowercase();
    if error.code == "insufficient_credits" || detail.contains("insufficient") {
        "error-insufficient-credits"
    } else if error.code == "already_claimed" || detail.contains("already claimed") {
        "error-already-claimed"
    } else if error.code == "expired" || detail.contains("expired") {
        "error-expired"
    } else if error.code == "out_of_stock" || detail.contains("stock") {
        "error-out-of-stock"
    } else if detail.contains("limit") {
        "error-limit-reached"
    } else if detail.contains("already")
        || detail.contains("cancelled")
        || detail.contains("fulfilled")
    {
        "error-not-pending"
    } else {
        "error-action-failed"
    }
}

/// Where to send the browser after an action: `path` with a notice or an error.
pub fn after(path: &str, outcome: Result<&'static str, &ApiError>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = match outcome {
        Ok(notice) => format!("notice={notice}"),
        Err(error) => format!("error={}", error_key(error)),
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{path}{separator}{query}")).into_response()
}
