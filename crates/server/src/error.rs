//! `ApiError` is the one error type at the HTTP boundary. Handlers return it; it renders once,
//! as `application/problem+json`. Internal causes are logged with the request id, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bursar_core::LedgerError;
use bursar_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds, for 429.
    pub retry_after_s: Option<u64>,
}

/// The body of every error response (RFC 9457), with a stable machine-readable `code`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after_s: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you are not allowed to do this",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; try again later",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::InsufficientCredits { .. } => Self::new(
                StatusCode::CONFLICT,
                "insufficient_credits",
                error.to_string(),
            ),
            LedgerError::Conflict(detail) => Self::conflict(detail),
            LedgerError::OutOfStock { .. } => {
                Self::new(StatusCode::CONFLICT, "out_of_stock", error.to_string())
            }
            LedgerError::NotFound(what) => Self::not_found(what),
            LedgerError::Invalid(detail) => Self::invalid(detail),
            LedgerError::IdempotencyMismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_mismatch",
                error.to_string(),
            ),
            LedgerError::AccountSuspended => Self::new(
                StatusCode::FORBIDDEN,
                "account_suspended",
                error.to_string(),
            ),
            LedgerError::AlreadyClaimed(detail) => {
                Self::new(StatusCode::CONFLICT, "already_claimed", detail)
            }
            LedgerError::Expired(detail) => Self::new(StatusCode::CONFLICT, "expired", detail),
            LedgerError::BalanceOutOfRange { .. } => Self::new(
                StatusCode::CONFLICT,
                "balance_out_of_range",
                error.to_string(),
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Domain(error) => error.into(),
            StoreError::CommitOutcomeUnknown => {
                tracing::error!("a commit's outcome is unknown: its connection was lost");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    StoreError::CommitOutcomeUnknown.to_string(),
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::internal()
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        tracing::error!(error = %error, "internal failure");
        Self::internal()
    }
}

impl ApiError {
    /// The problem+json body this error renders as.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!(
                "https://bursar.dev/problems/{}",
                self.code.replace('_', "-")
            ),
            title: self.title().to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let mut response = (self.status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
