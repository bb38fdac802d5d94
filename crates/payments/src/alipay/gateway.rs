//! Calls to Alipay's open-platform gateway: the common parameters, the request signature, and
//! the check of the response's signature before any of it is believed.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use super::keys::{AlipayPublicKey, AppPrivateKey};
use super::sign::{sign_content, signed_response};
use crate::provider::ProviderError;

/// Alipay answers in well under a second; a stuck connection must not hold a request open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The gateway's answer to a call that worked.
const CODE_SUCCESS: &str = "10000";

/// Alipay's timestamps are China Standard Time (UTC+8), `yyyy-MM-dd HH:mm:ss`.
pub fn china_time(at: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    at.with_timezone(&china)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The parameters of one gateway call, signed: the common ones, `biz_content`, and `extra`
/// (`notify_url`, `return_url`).
pub fn signed_params(
    app_id: &str,
    key: &AppPrivateKey,
    method: &str,
    biz_content: &Value,
    extra: &[(&str, &str)],
    now: DateTime<Utc>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = [
        ("app_id", app_id),
        ("method", method),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.insert("timestamp".into(), china_time(now));
    params.insert("biz_content".into(), biz_content.to_string());
    let signature = key.sign(sign_content(&params, &["sign"]).as_bytes());
    params.insert("sign".into(), signature);
    params
}

/// A verified answer: the `…_response` object of a call whose `code` was `10000`.
pub type Answer = serde_json::Map<String, Value>;

/// What a call came to: Alipay's verified answer, or its refusal with its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(Answer),
    Refused { sub_code: String, message: String },
}

/// Reads a gateway response for `method`: the signature over the raw `…_response` text is
/// checked before its fields are read. A refusal may come unsigned (the gateway refuses some
/// calls before it knows the app); it is believed only as a refusal, never as a success.
pub fn read_reply(
    body: &str,
    method: &str,
    alipay_key: &AlipayPublicKey,
) -> Result<Reply, ProviderError> {
    let response = signed_response(body, method).ok_or_else(|| {
        ProviderError::Unavailable(format!("Alipay answered {method} with no response object"))
    })?;
    let verified = response
        .sign
        .as_deref()
        .is_some_and(|sign| alipay_key.verifies(response.content.as_bytes(), sign));
    let answer: Answer = serde_json::from_str(&response.content).map_err(|_| {
        ProviderError::Unavailable(format!("Alipay's {method} response is not an object"))
    })?;
    let text = |name: &str| answer.get(name).and_then(Value::as_str).unwrap_or_default();
    if text("code") == CODE_SUCCESS && response.key != "error_response" {
        if !verified {
            return Err(ProviderError::Unavailable(format!(
                "the signature of Alipay's {method} response does not verify"
            )));
        }
        return Ok(Reply::Ok(answer));
    }
    let sub_code = text("sub_code").to_string();
    let message = [text("sub_msg"), text("msg"), text("code")]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or("refused")
        .to_string();
    Ok(Reply::Refused { sub_code, message })
}

/// One gateway call: POSTs the signed parameters as a form and reads the reply.
pub async fn call(
    client: &reqwest::Client,
    gateway: &str,
    params: &BTreeMap<String, String>,
    alipay_key: &AlipayPublicKey,
) -> Result<Reply, ProviderError> {
    let method = params.get("method").cloned().unwrap_or_default();
    let response = client
        .post(format!("{gateway}?charset=utf-8"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(super::form::encode(params))
        .send()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("Alipay {method}: {e}")))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("Alipay {method}: {e}")))?;
    if !status.is_success() {
        return Err(ProviderError::Unavailable(format!(
            "Alipay {method} answered HTTP {status}"
        )));
    }
    read_reply(&body, &method, alipay_key)
}
