//! The stylesheet and htmx, compiled into the binary (no CDN). Their names carry a version,
//! so browsers may keep them for a year.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const APP_CSS: &str = include_str!("../../assets/app.css");
/// The one script of our own: sends a provider's checkout form (ECPay) by itself.
const APP_JS: &str = include_str!("../../assets/app.js");
/// htmx 2.0.11, pinned on purpose: 4.x swaps error responses into pages by default.
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS, false) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS, false) }),
        )
        .route(
            "/static/htmx-2.0.11.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX, true) }),
        )
}

fn asset(content_type: &'static str, body: &'static str, immutable: bool) -> impl IntoResponse {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}
