//! `QueryTradeInfo/V5`: where an order stands at ECPay, for reconciliation when a
//! notification never came. The request and the form-encoded answer are both signed with
//! `CheckMacValue`.

use super::callback::Fields;
use super::checkmac::{self, HashKeys, MacHash};

pub const PATH: &str = "/Cashier/QueryTradeInfo/V5";

/// The signed request fields.
pub fn request_fields(
    keys: &HashKeys,
    merchant_id: &str,
    merchant_trade_no: &str,
    now_s: i64,
) -> Vec<(String, String)> {
    let mut fields = vec![
        ("MerchantID".to_string(), merchant_id.to_string()),
        ("MerchantTradeNo".to_string(), merchant_trade_no.to_string()),
        ("TimeStamp".to_string(), now_s.to_string()),
    ];
    let mac = checkmac::check_mac_value(
        keys,
        MacHash::Sha256,
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    fields.push((checkmac::FIELD.to_string(), mac));
    fields
}

/// What the answer says, once its signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeInfo {
    pub merchant_id: String,
    /// `1` paid, `0` not paid yet; other codes are ECPay's failures.
    pub trade_status: String,
    /// Whole New Taiwan dollars.
    pub trade_amt: Option<i64>,
    pub trade_no: Option<String>,
}

pub fn read_answer(keys: &HashKeys, body: &[u8]) -> Result<TradeInfo, String> {
    let fields = Fields::decode(body);
    if !fields.verify(keys) {
        return Err("ECPay's QueryTradeInfo answer failed CheckMacValue verification".into());
    }
    Ok(TradeInfo {
        merchant_id: fields.get("MerchantID").unwrap_or_default().to_string(),
        trade_status: fields
            .get("TradeStatus")
            .ok_or("ECPay's answer has no TradeStatus")?
            .to_string(),
        trade_amt: fields.get("TradeAmt").and_then(|v| v.parse().ok()),
        trade_no: fields
            .get("TradeNo")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    })
}
