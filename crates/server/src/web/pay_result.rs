//! The page every provider returns a person to: the order's outcome in their language, reloading
//! itself while the payment is still on its way.

use askama::Template;
use axum::http::request::Parts;
use axum::response::Response;
use bursar_core::OrderStatus;
use bursar_store::orders::Order;

use super::context::Page;
use super::errors::render;
use super::gate;
use crate::AppState;

#[derive(Template)]
#[template(path = "web/pay_result.html")]
struct ResultPage<'a> {
    page: &'a Page,
    order: &'a Order,
    credits: i64,
}

pub async fn page(state: &AppState, parts: &Parts, order: &Order) -> Response {
    let found = match gate::find(state, parts).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let credits = if order.status == OrderStatus::Paid {
        order.credits_granted
    } else {
        0
    };
    let view = ResultPage {
        page: &found.page,
        order,
        credits,
    };
    let mut response = render(&found.page, &view).unwrap_or_else(|error_page| error_page);
    found.finish(state, &mut response);
    response
}
