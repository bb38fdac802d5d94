//! Errors as pages: a person gets a friendly page in their language with a way back; API
//! clients keep getting problem+json from `/api`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::context::Page;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NotFound,
    Forbidden,
    Csrf,
    TooLarge,
    TooMany,
    Internal,
}

impl Problem {
    fn status(self) -> StatusCode {
        match self {
            Problem::NotFound => StatusCode::NOT_FOUND,
            Problem::Forbidden | Problem::Csrf => StatusCode::FORBIDDEN,
            Problem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::TooMany => StatusCode::TOO_MANY_REQUESTS,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Problem::NotFound => "error-not-found",
            Problem::Forbidden => "error-forbidden",
            Problem::Csrf => "error-csrf",
            Problem::TooLarge => "error-too-large",
            Problem::TooMany => "error-too-many",
            Problem::Internal => "error-internal",
        }
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    page: &'a Page,
    status: u16,
    title: String,
    detail: String,
}

pub fn page(page: &Page, problem: Problem) -> Response {
    let status = problem.status();
    let view = ErrorPage {
        page,
        status: status.as_u16(),
        title: page.t.t(&format!("{}-title", problem.key())),
        detail: page.t.t(problem.key()),
    };
    match view.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "the error page failed to render");
            internal_page()
        }
    }
}

pub fn forbidden_page(page: &Page) -> Response {
    self::page(page, Problem::Forbidden)
}

/// The last resort, when not even the page context is at hand: plain and in English.
pub fn internal_page() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("<!doctype html><html lang=\"en\"><title>Error · Bursar</title><h1>Something went wrong</h1><p>Please try again in a moment.</p><p><a href=\"/\">Home</a></p></html>"),
    )
        .into_response()
}

/// A use case's error on a page that has no form to show it beside: the matching error page.
pub fn from_api(page: &Page, error: &ApiError) -> Response {
    let problem = match error.status {
        StatusCode::NOT_FOUND => Problem::NotFound,
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Problem::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => Problem::TooMany,
        _ => {
            if error.status.is_server_error() {
                tracing::error!(code = error.code, "a page's use case failed");
            }
            Problem::Internal
        }
    };
    self::page(page, problem)
}

/// What a page handler returns: its page, or an error page.
pub type PageResult = Result<Response, Response>;

/// Renders a template as a 200 page.
pub fn render(page: &Page, template: &impl Template) -> PageResult {
    render_with(page, template, StatusCode::OK)
}

pub fn render_with(page: &Page, template: &impl Template, status: StatusCode) -> PageResult {
    template
        .render()
        .map(|html| (status, Html(html)).into_response())
        .map_err(|error| {
            tracing::error!(%error, "a page template failed");
            self::page(page, Problem::Internal)
        })
}

/// Turns a use case's error into the error page, for `?`.
pub trait OrPage<T> {
    fn or_page(self, page: &Page) -> Result<T, Response>;
}

impl<T, E: Into<ApiError>> OrPage<T> for Result<T, E> {
    fn or_page(self, page: &Page) -> Result<T, Response> {
        self.map_err(|e| from_api(page, &e.into()))
    }
}
