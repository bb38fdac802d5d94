//! WeChat Pay API v3 signatures. Requests: SHA256withRSA with the merchant key over five
//! lines (method, path and query, timestamp, nonce, body), each ending in `\n`, sent as
//! `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
//! timestamp="…",serial_no="…"`. Responses and callbacks: WeChat Pay's key over three lines
//! (timestamp, nonce, raw body), named by `Wechatpay-Serial`, at most 5 minutes off.

use super::keys::{MerchantKey, PlatformKey};

pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// WeChat Pay refuses, and so does Bursar, a signature more than this far from the clock.
pub const CLOCK_SKEW_S_MAX: i64 = 5 * 60;
/// WeChat Pay's deliberate probe signatures begin so; they must fail.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

pub const HEADER_TIMESTAMP: &str = "Wechatpay-Timestamp";
pub const HEADER_NONCE: &str = "Wechatpay-Nonce";
pub const HEADER_SIGNATURE: &str = "Wechatpay-Signature";
pub const HEADER_SERIAL: &str = "Wechatpay-Serial";

/// The five-line message a request's signature covers.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// Who signs a request: the merchant, its key, and its API certificate's serial.
#[derive(Debug)]
pub struct Merchant {
    pub mchid: String,
    pub serial_no: String,
    pub key: MerchantKey,
}

impl Merchant {
    /// The `Authorization` header of one request.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> String {
        let message = request_message(method, path_and_query, timestamp, nonce, body);
        let signature = self.key.sign(message.as_bytes());
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mchid, self.serial_no
        )
    }
}

/// The parameters of an `Authorization` header (order is free), for checking one.
pub fn authorization_params(header: &str) -> Option<Vec<(&str, &str)>> {
    let params = header.strip_prefix(SCHEME)?.trim_start();
    params
        .split(',')
        .map(|item| {
            let (key, value) = item.trim().split_once('=')?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            Some((key, value))
        })
        .collect()
}

/// The three-line message a response's or callback's signature covers.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// The `Wechatpay-*` headers of a response or callback.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub serial: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("a WECHATPAY/SIGNTEST/ probe signature")]
    SignTest,
    #[error("the timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the timestamp is more than 5 minutes off")]
    StaleTimestamp,
    #[error("unknown Wechatpay-Serial {0}")]
    UnknownSerial(String),
    #[error("the signature does not match")]
    BadSignature,
}

/// Verifies a response or callback: probe signatures and stale timestamps are refused before
/// any key is used, and the key is only ever the one the serial names.
pub fn verify(
    headers: SignedHeaders<'_>,
    body: &[u8],
    now_s: i64,
    key_for: impl FnOnce(&str) -> Option<PlatformKey>,
) -> Result<(), VerifyError> {
    if headers.signature.starts_with(SIGNTEST_PREFIX) {
        return Err(VerifyError::SignTest);
    }
    let timestamp: i64 = headers
        .timestamp
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (timestamp - now_s).abs() > CLOCK_SKEW_S_MAX {
        return Err(VerifyError::StaleTimestamp);
    }
    let key =
        key_for(headers.serial).ok_or_else(|| VerifyError::UnknownSerial(headers.serial.into()))?;
    let message = response_message(headers.timestamp, headers.nonce, body);
    if key.verifies(&message, headers.signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}
