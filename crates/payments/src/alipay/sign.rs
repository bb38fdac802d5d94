//! What Alipay signs: the parameters sorted by key (byte order) and joined as `k=v` with `&`,
//! raw values, empty ones left out; and for responses, the raw JSON text of the
//! `…_response` value as it was received.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// The signed string of `params`, leaving out `excluded` keys and empty values.
pub fn sign_content(params: &BTreeMap<String, String>, excluded: &[&str]) -> String {
    // A BTreeMap of Strings iterates in byte order of the keys: Alipay's sort.
    params
        .iter()
        .filter(|(key, value)| !value.is_empty() && !excluded.contains(&key.as_str()))
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Which keys a notification's signature leaves out. Trade notifications leave out `sign`
/// and `sign_type`; gateway notifications (those naming a `method`) sign `sign_type` too.
pub fn notify_excluded(params: &BTreeMap<String, String>) -> &'static [&'static str] {
    if params.contains_key("method") {
        &["sign"]
    } else {
        &["sign", "sign_type"]
    }
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// The parts of a gateway response: the raw text of its `…_response` (or `error_response`)
/// value, which is what is signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponse {
    pub key: String,
    pub content: String,
    pub sign: Option<String>,
}

/// Cuts the response value for `method` out of `body` exactly as received (re-serialising
/// it would change what was signed); `None` when the body is not such a response.
pub fn signed_response(body: &str, method: &str) -> Option<SignedResponse> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(body).ok()?;
    let sign = fields
        .get("sign")
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let wanted = response_key(method);
    let (key, raw) = fields
        .get_key_value(wanted.as_str())
        .or_else(|| fields.get_key_value("error_response"))?;
    Some(SignedResponse {
        key: key.clone(),
        content: raw.get().to_string(),
        sign,
    })
}
