//! Operations: health, readiness, metrics, the OpenAPI document and Swagger UI, and the
//! problem+json answers for unknown routes and methods.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::{ApiError, Problem};

/// The OpenAPI document and Swagger UI (the other operations are in the document itself).
pub fn router(openapi: serde_json::Value) -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (health) or `ready`.
    pub status: String,
}

/// The process is up (it answers even when the database does not).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Status)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready to serve: the database answers (on a fresh connection if a pooled one fails) and the
/// ledger writer runs.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Status),
        (status = 503, description = "the database does not answer or the ledger writer has stopped", body = Problem)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if !state.store.ledger.is_running() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the ledger writer has stopped",
        )
        .into_response();
    }
    if state.store.db.ping().await {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is not answering",
        )
        .into_response()
    }
}

/// Prometheus metrics; with `BURSAR_METRICS_TOKEN` set, only for `Authorization: Bearer <token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "the Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "a metrics token is configured and was not given", body = Problem)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(expected.as_str()) {
            return ApiError::unauthorized("a metrics token is required").into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::observe::render_metrics(),
    )
        .into_response()
}

/// problem+json for API clients; a page for a person's browser.
pub async fn not_found(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if crate::web::wants_page(uri.path(), &headers) {
        return crate::web::not_found_page(&uri, &headers, state.config.timezone);
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
