//! Receipts of paid orders: everything an invoicing (fapiao) system needs, as JSON and as a
//! printable page.

use askama::Template;
use bursar_store::clock::rfc3339;
use bursar_store::orders::Order;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Seller;
use crate::error::{ApiError, ApiResult};
use crate::routes::catalog::MoneyBody;

/// Receipt numbers as printed: `R-00000042`.
pub fn number(sequence: i64) -> String {
    format!("R-{sequence:08}")
}

/// Currencies whose minor unit is the whole unit (ISO 4217 exponent 0).
pub use bursar_core::money::format_amount;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SellerView {
    pub name: String,
    pub address: Option<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptItem {
    pub description: String,
    pub quantity: i64,
    pub unit_price: MoneyBody,
    pub amount: MoneyBody,
    /// Credits this line granted, bonuses included.
    pub credits: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptView {
    /// Sequential, without gaps: `R-00000042`.
    pub number: String,
    pub order_id: String,
    pub issued_at: String,
    pub seller: SellerView,
    pub buyer_id: String,
    pub buyer_email: Option<String>,
    pub items: Vec<ReceiptItem>,
    pub subtotal: MoneyBody,
    pub discount: MoneyBody,
    pub coupon_code: Option<String>,
    pub total: MoneyBody,
    pub amount_refunded: MoneyBody,
    /// The provider, and its reference for the payment.
    pub payment_method: String,
    pub payment_reference: Option<String>,
    pub status: String,
}

/// The receipt of an order, once it has been paid.
pub fn build(seller: &Seller, order: &Order, buyer_email: Option<String>) -> Option<ReceiptView> {
    let sequence = order.receipt_number?;
    let currency = &order.currency;
    let subtotal = order.unit_price * order.quantity;
    let mut items = vec![ReceiptItem {
        description: order.package_name.clone(),
        quantity: order.quantity,
        unit_price: MoneyBody::new(order.unit_price, currency),
        amount: MoneyBody::new(subtotal, currency),
        credits: order.credits_granted,
    }];
    // An automatic top-up's processing fee, which its buyer bears, is a line of its own.
    if order.fee > 0 {
        items.push(ReceiptItem {
            description: "Processing fee".into(),
            quantity: 1,
            unit_price: MoneyBody::new(order.fee, currency),
            amount: MoneyBody::new(order.fee, currency),
            credits: 0,
        });
    }
    Some(ReceiptView {
        number: number(sequence),
        order_id: order.id.clone(),
        issued_at: rfc3339(order.paid_at_ms.unwrap_or(order.created_at_ms)),
        seller: SellerView {
            name: seller.name.clone(),
            address: seller.address.clone(),
            tax_id: seller.tax_id.clone(),
            email: seller.email.clone(),
        },
        buyer_id: order.user_id.clone(),
        buyer_email,
        items,
        subtotal: MoneyBody::new(subtotal + order.fee, currency),
        discount: MoneyBody::new(order.discount, currency),
        coupon_code: order.coupon_code.clone(),
        total: MoneyBody::new(order.total, currency),
        amount_refunded: MoneyBody::new(order.amount_refunded, currency),
        payment_method: order.provider.clone(),
        payment_reference: order.provider_ref.clone(),
        status: order.status.as_str().to_string(),
    })
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage<'a> {
    r: &'a ReceiptView,
    /// Each item with its unit price and amount written out.
    lines: Vec<(&'a ReceiptItem, String, String)>,
    subtotal: String,
    discount: String,
    total: String,
    refunded: String,
}

/// The printable page of a receipt.
pub fn html(receipt: &ReceiptView) -> ApiResult<String> {
    let currency = &receipt.total.currency;
    let amount = |m: &MoneyBody| format!("{} {currency}", format_amount(m.amount, currency));
    ReceiptPage {
        r: receipt,
        lines: receipt
            .items
            .iter()
            .map(|item| (item, amount(&item.unit_price), amount(&item.amount)))
            .collect(),
        subtotal: amount(&receipt.subtotal),
        discount: amount(&receipt.discount),
        total: amount(&receipt.total),
        refunded: amount(&receipt.amount_refunded),
    }
    .render()
    .map_err(|e| {
        tracing::error!(error = %e, "receipt template failed");
        ApiError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_in_major_units() {
        assert_eq!(format_amount(4500, "CNY"), "45.00");
        assert_eq!(format_amount(5, "USD"), "0.05");
        assert_eq!(format_amount(500, "JPY"), "500");
        assert_eq!(number(42), "R-00000042");
    }
}
