//! Every error response in one of two shapes, whichever layer or extractor made it: the API's
//! errors are problem+json with a stable `code`; the hosted pages' are an HTML page a person
//! can read. Handlers already answer this way; this catches what axum, tower and the
//! extractors answer on their own (a timeout, a form of the wrong type, a body too large).

use askama::Template;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

/// How much of a bare error's plain-text body becomes the problem's `detail`.
const DETAIL_BYTES_MAX: usize = 512;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// Paths that are pages for people rather than the API.
fn is_page(path: &str) -> bool {
    path.starts_with("/pay/") || crate::web::is_web_path(path)
}

pub async fn uniform_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let page = is_page(&path);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let wanted = if page {
        "text/html"
    } else {
        "application/problem+json"
    };
    // A page answered for a browser outside the API (the HTML 404) is already what a person
    // should see.
    if content_type.starts_with(wanted)
        || (!path.starts_with("/api/") && content_type.starts_with("text/html"))
    {
        return response;
    }
    // A problem+json from a handler keeps its detail on a page; a bare text body its text.
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = if content_type.starts_with("application/problem+json") {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
    } else {
        Some(String::from_utf8_lossy(&body[..body.len().min(DETAIL_BYTES_MAX)]).into_owned())
    }
    .map(|d| d.trim().to_string())
    .filter(|d| !d.is_empty() && !status.is_server_error())
    .unwrap_or_else(|| reason(status));
    let mut rewritten = if page {
        html_error(status, &detail)
    } else {
        ApiError::new(status, code_for(status), detail).into_response()
    };
    // The original's other headers stay (`Allow` on a 405, `Retry-After`, `WWW-Authenticate`).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    rewritten
}

/// A person's error page.
pub fn html_error(status: StatusCode, message: &str) -> Response {
    let title = match status.as_u16() {
        404 => "Not found",
        400..=499 => "That did not work",
        _ => "Something went wrong",
    };
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "error page template failed");
            (
                status,
                Html(String::from("<!doctype html><title>Error</title>")),
            )
                .into_response()
        }
    }
}

fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_lowercase()
}

/// The stable code for an error status that no handler named.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        413 => "payload_too_large",
        429 => "rate_limited",
        500..=599 => "internal",
        _ => "invalid_request",
    }
}
