//! The marketplace for members: products on offer, redeemed with points through the same
//! ledger command as the API; the member's own redemptions, cancellable while pending.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bursar_core::RedemptionStatus;
use bursar_store::ledger::{Canceller, Command, Request};
use bursar_store::marketplace::{Owner, Product, Redemption};
use bursar_store::page::PageRequest;
use serde::Deserialize;

use super::actions::{self, Flash, KeyedForm, after, idempotent, settled};
use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render};
use crate::AppState;
use crate::app::marketplace;
use crate::error::ApiError;

const ROWS: i64 = 30;
const HERE: &str = "/account/marketplace";

#[derive(Debug, Default, Deserialize)]
pub struct Listing {
    cursor: Option<String>,
    #[serde(flatten)]
    flash: Flash,
}

#[derive(Template)]
#[template(path = "web/marketplace.html")]
struct MarketplacePage<'a> {
    page: &'a Page,
    products: Vec<Product>,
    next: Option<String>,
    redemptions: Vec<Redemption>,
    notice: Option<String>,
    error: Option<String>,
    form_key: String,
}

impl MarketplacePage<'_> {
    fn pending(&self, redemption: &Redemption) -> bool {
        redemption.status == RedemptionStatus::Pending
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(listing): Query<Listing>,
) -> PageResult {
    let request = PageRequest {
        limit: ROWS,
        before: listing.cursor.filter(|c| !c.is_empty()),
    };
    let offer = state
        .store
        .products_on_offer(&request)
        .await
        .or_page(&page)?;
    let mine = PageRequest {
        limit: ROWS,
        before: None,
    };
    let redemptions = state
        .store
        .redemptions(Owner::Member(&user.id), &mine)
        .await
        .or_page(&page)?
        .data;
    let view = MarketplacePage {
        page: &page,
        products: offer.data,
        next: offer.next_cursor,
        redemptions,
        notice: listing.flash.notice(&page),
        error: listing.flash.error(&page),
        form_key: actions::new_form_key(),
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct RedeemForm {
    product_id: String,
    quantity: Option<String>,
    form_key: String,
}

pub async fn redeem(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Form(form): Form<RedeemForm>,
) -> Response {
    let quantity = form
        .quantity
        .as_deref()
        .and_then(|q| q.trim().parse().ok())
        .unwrap_or(0);
    let outcome = async {
        let command = marketplace::redemption(&user.id, &form.product_id, quantity, &user.id)?;
        let material = format!("{}\n{quantity}", form.product_id);
        let request = Request {
            command,
            idempotent: Some(idempotent(
                &user.id,
                &form.form_key,
                "POST /redemptions",
                &material,
            )),
        };
        settled(state.store.ledger.execute(request).await?)
    }
    .await;
    after(HERE, outcome.as_ref().map(|_| "notice-redeemed"))
}

/// A pending redemption cancelled: the points go back, the stock is restored, once.
pub async fn cancel(
    state: &AppState,
    by: Canceller,
    id: &str,
    form_key: &str,
) -> Result<(), ApiError> {
    let route = format!("POST /redemptions/{id}/cancel");
    let request = Request {
        idempotent: Some(idempotent(by.id(), form_key, &route, "")),
        command: Command::CancelRedemption {
            redemption_id: id.to_string(),
            by,
        },
    };
    settled(state.store.ledger.execute(request).await?)
}

#[derive(Template)]
#[template(path = "web/confirm.html")]
pub struct ConfirmPage<'a> {
    pub page: &'a Page,
    pub title: String,
    pub question: String,
    pub action: String,
    pub back: String,
    pub button: String,
    pub form_key: String,
}

/// Asks before cancelling, so a stray click cannot (with JavaScript off there is no dialog).
pub async fn confirm_cancel(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let redemption = state
        .store
        .redemption(&id)
        .await
        .or_page(&page)?
        .filter(|r| r.user_id == user.id)
        .ok_or_else(|| super::errors::page(&page, super::errors::Problem::NotFound))?;
    confirm_cancel_page(
        &page,
        &redemption,
        &format!("{HERE}/redemptions/{id}/cancel"),
        HERE,
    )
}

/// "Cancel this redemption?", posting to `action`, for its member and its merchant alike.
pub fn confirm_cancel_page(
    page: &Page,
    redemption: &Redemption,
    action: &str,
    back: &str,
) -> PageResult {
    let view = ConfirmPage {
        page,
        title: page.t.t("redemption-cancel-title"),
        question: page.t.t2(
            "redemption-cancel-question",
            "product",
            &redemption.product_name,
            "points",
            &page.fmt.credits(redemption.points_cost),
        ),
        action: action.to_string(),
        back: back.to_string(),
        button: page.t.t("redemption-cancel"),
        form_key: actions::new_form_key(),
    };
    render(page, &view)
}

pub async fn cancel_own(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<KeyedForm>,
) -> Response {
    let outcome = cancel(
        &state,
        Canceller::Member(user.id.clone()),
        &id,
        &form.form_key,
    )
    .await;
    after(
        HERE,
        outcome.as_ref().map(|_| "notice-redemption-cancelled"),
    )
}
