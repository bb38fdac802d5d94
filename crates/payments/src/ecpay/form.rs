//! The AioCheckOut order form: the fields the client posts to ECPay's cashier page (an
//! auto-submitting form), signed with `CheckMacValue`. ECPay is never called by the server to
//! create an order; the browser carries the form there.

use chrono::{DateTime, FixedOffset, Utc};

use super::checkmac::{self, HashKeys, MacHash};

pub const CHECKOUT_PATH: &str = "/Cashier/AioCheckOut/V5";
/// ECPay's limits on free-text fields, in characters.
const TRADE_DESC_CHARS_MAX: usize = 200;
const ITEM_NAME_CHARS_MAX: usize = 400;
/// How long an ATM virtual account stays open, in days (ECPay allows 1–60).
pub const ATM_EXPIRE_DAYS: u32 = 1;
/// Convenience-store codes and barcodes stay payable for a week by default, longer than an
/// order waits, and their codes are issued on ECPay's page rather than shown by Bursar: hidden
/// from the cashier (`ChoosePayment=ALL` offers every other method).
pub const IGNORE_PAYMENT: &str = "CVS#BARCODE";

/// Taiwan keeps UTC+8 all year, and `MerchantTradeDate` is read in Taiwan time.
fn taiwan() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// `yyyy/MM/dd HH:mm:ss` in Taiwan time.
pub fn merchant_trade_date(at: DateTime<Utc>) -> String {
    at.with_timezone(&taiwan())
        .format("%Y/%m/%d %H:%M:%S")
        .to_string()
}

/// One order's form, before signing.
#[derive(Debug, Clone)]
pub struct Checkout<'a> {
    pub merchant_id: &'a str,
    pub merchant_trade_no: &'a str,
    pub trade_date: DateTime<Utc>,
    /// Whole New Taiwan dollars.
    pub total_twd: i64,
    pub description: &'a str,
    /// Server-to-server payment result: Bursar's webhook.
    pub return_url: &'a str,
    /// Server-to-server notice of an issued ATM account: the same webhook.
    pub payment_info_url: &'a str,
    /// Where the person's browser goes back to.
    pub client_back_url: &'a str,
    /// Bursar's payment id, echoed in every callback under the signature.
    pub payment_id: &'a str,
}

/// ECPay refuses `TradeDesc` with special characters and cuts long names; keep what is safe.
fn plain_text(text: &str, chars_max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .take(chars_max)
        .collect();
    match kept.trim() {
        "" => "Bursar credits".into(),
        kept => kept.to_string(),
    }
}

/// Every field to post, `CheckMacValue` last.
pub fn fields(keys: &HashKeys, checkout: &Checkout<'_>) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        ("MerchantID", checkout.merchant_id.to_string()),
        ("MerchantTradeNo", checkout.merchant_trade_no.to_string()),
        (
            "MerchantTradeDate",
            merchant_trade_date(checkout.trade_date),
        ),
        ("PaymentType", "aio".into()),
        ("TotalAmount", checkout.total_twd.to_string()),
        (
            "TradeDesc",
            plain_text(checkout.description, TRADE_DESC_CHARS_MAX),
        ),
        (
            "ItemName",
            plain_text(checkout.description, ITEM_NAME_CHARS_MAX),
        ),
        ("ReturnURL", checkout.return_url.to_string()),
        ("ChoosePayment", "ALL".into()),
        ("IgnorePayment", IGNORE_PAYMENT.into()),
        ("EncryptType", "1".into()),
        ("ClientBackURL", checkout.client_back_url.to_string()),
        ("PaymentInfoURL", checkout.payment_info_url.to_string()),
        ("ExpireDate", ATM_EXPIRE_DAYS.to_string()),
        ("CustomField1", checkout.payment_id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mac = checkmac::check_mac_value(
        keys,
        MacHash::Sha256,
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    fields.push((checkmac::FIELD.to_string(), mac));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_trade_date_is_written_in_taiwan_time() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 31, 17, 5, 9)
            .single()
            .expect("a valid date");
        assert_eq!(merchant_trade_date(at), "2027/01/01 01:05:09");
    }

    #[test]
    fn the_form_is_signed_over_every_field_it_carries() {
        let keys = HashKeys {
            key: "pwFHCqoQZGmho4w6".into(),
            iv: "EkRm7iFT261dpevs".into(),
        };
        let checkout = Checkout {
            merchant_id: "3002607",
            merchant_trade_no: "BU0123456789ABCDEFGH",
            trade_date: Utc::now(),
            total_twd: 300,
            description: "1 × Gold pack <special>",
            return_url: "https://bursar.example/api/v1/webhooks/ecpay",
            payment_info_url: "https://bursar.example/api/v1/webhooks/ecpay",
            client_back_url: "https://bursar.example/pay/result/pay_1",
            payment_id: "pay_1",
        };
        let fields = fields(&keys, &checkout);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(checkmac::verify(
            &keys,
            MacHash::Sha256,
            pairs.iter().copied()
        ));
        let get = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(get("TotalAmount"), Some("300"));
        assert_eq!(get("TradeDesc"), Some("1  Gold pack special"));
    }
}
