//! The member's orders: a list, each order's status and payment instructions, and a printable
//! receipt once it is paid.

use askama::Template;
use axum::extract::{Path, Query, State};
use bursar_store::orders::{Order, OrderFilter};
use bursar_store::page::PageRequest;
use serde::Deserialize;

use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, Problem, render};
use crate::AppState;
use crate::receipts::{self, ReceiptView};

const PAGE_ROWS: i64 = 20;

#[derive(Debug, Deserialize)]
pub struct Cursor {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "web/orders.html")]
struct OrdersPage<'a> {
    page: &'a Page,
    orders: Vec<Order>,
    next: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(query): Query<Cursor>,
) -> PageResult {
    let filter = OrderFilter {
        user_id: Some(user.id.clone()),
        ..OrderFilter::default()
    };
    let request = PageRequest {
        limit: PAGE_ROWS,
        before: query.cursor.filter(|c| !c.is_empty()),
    };
    let found = state.store.orders(&filter, &request).await.or_page(&page)?;
    render(
        &page,
        &OrdersPage {
            page: &page,
            orders: found.data,
            next: found.next_cursor,
        },
    )
}

/// The user's own order; anyone else's reads as not found.
async fn own_order(
    state: &AppState,
    page: &Page,
    user_id: &str,
    id: &str,
) -> Result<Order, axum::response::Response> {
    state
        .store
        .order(id)
        .await
        .or_page(page)?
        .filter(|o| o.user_id == user_id)
        .ok_or_else(|| super::errors::page(page, Problem::NotFound))
}

/// What the order's `payment` object tells the person to do (a transfer's reference and
/// account, a hosted page).
#[derive(Debug, Default)]
struct PaymentFacts {
    redirect_url: Option<String>,
    reference: Option<String>,
    account: Option<String>,
    qr_svg: Option<String>,
    /// A form to post to the provider (ECPay's checkout), with every field it needs.
    form: Option<ProviderForm>,
    /// A virtual bank account to pay into (ECPay ATM): bank code, account, deadline.
    atm: Option<(String, String, String)>,
}

#[derive(Debug, Default)]
struct ProviderForm {
    action: String,
    fields: Vec<(String, String)>,
}

impl PaymentFacts {
    fn of(order: &Order) -> Self {
        let payment: serde_json::Value = order
            .payment_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        Self {
            redirect_url: text(&payment["redirect_url"]),
            reference: text(&payment["reference"])
                .or_else(|| text(&payment["bank_transfer"]["reference"])),
            account: text(&payment["account"])
                .or_else(|| text(&payment["bank_transfer"]["account"])),
            qr_svg: text(&payment["qr_svg"]),
            form: text(&payment["form"]["action"]).map(|action| ProviderForm {
                action,
                fields: payment["form"]["fields"]
                    .as_object()
                    .map(|fields| {
                        fields
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            atm: text(&payment["atm"]["v_account"]).map(|account| {
                (
                    text(&payment["atm"]["bank_code"]).unwrap_or_default(),
                    account,
                    text(&payment["atm"]["expire_date"]).unwrap_or_default(),
                )
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "web/order.html")]
struct OrderPage<'a> {
    page: &'a Page,
    order: Order,
    payment: PaymentFacts,
}

pub async fn detail(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let order = own_order(&state, &page, &user.id, &id).await?;
    let payment = PaymentFacts::of(&order);
    render(
        &page,
        &OrderPage {
            page: &page,
            order,
            payment,
        },
    )
}

#[derive(Template)]
#[template(path = "web/receipt.html")]
struct ReceiptPage<'a> {
    page: &'a Page,
    receipt: ReceiptView,
}

pub async fn receipt(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let order = own_order(&state, &page, &user.id, &id).await?;
    let receipt = receipts::build(&state.config.seller, &order, Some(user.email.clone()))
        .ok_or_else(|| super::errors::page(&page, Problem::NotFound))?;
    render(
        &page,
        &ReceiptPage {
            page: &page,
            receipt,
        },
    )
}
