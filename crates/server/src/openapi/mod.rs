//! The OpenAPI document: its frame here, the paths from the handlers' annotations, then what
//! annotations cannot say, added to the generated document: the errors every operation can
//! answer (`errors.rs`) and the limits the server enforces on each field (`constraints.rs`).

mod constraints;
mod errors;

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
        (name = "marketplace", description = "Merchants' products and members' redemptions with points"),
        (name = "engagement", description = "The daily gift with its streak, and the reward inbox"),
        (name = "pages", description = "Hosted HTML pages: the sandbox payment page and the result page"),
        (name = "admin", description = "Back office (admins only)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document served and snapshotted: the bearer scheme (JWT or `bsk_` API key), the errors
/// every operation can answer, and each field's limits, with `providers` the payment providers
/// this server takes orders for.
pub fn finish(doc: utoipa::openapi::OpenApi, providers: &[&str]) -> serde_json::Value {
    let doc = with_security_scheme(doc);
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    errors::document_errors(&mut value);
    constraints::apply(&mut value, providers);
    value
}

fn with_security_scheme(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
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
