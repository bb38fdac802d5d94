//! The OpenAPI document's frame; the paths come from the handlers' annotations.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bursar",
        description = "Prepaid credits: a double-entry ledger, spends and holds, auth and admin. \
                       Errors are application/problem+json with a stable `code`.",
    ),
    tags(
        (name = "auth", description = "Register, sign in, refresh, sign out"),
        (name = "me", description = "The signed-in user"),
        (name = "credits", description = "Balances, spends, refunds and holds"),
        (name = "catalog", description = "Packages users can buy"),
        (name = "orders", description = "Orders, payments, provider webhooks and receipts"),
        (name = "pages", description = "Hosted HTML pages: the sandbox payment page and the result page"),
        (name = "admin", description = "Back office (admins only)"),
    )
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Adds what the annotations cannot: the bearer scheme (JWT or `bsk_` API key).
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A JWT access token, or a service API key (bsk_…)"))
                .build(),
        ),
    );
    doc
}
