//! WeChat Pay's HTTP API: every request signed with the merchant key, every answer's
//! signature checked with WeChat Pay's key before its body is trusted.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::certificates::PlatformKeys;
use super::signing::{self, Merchant, SignedHeaders, VerifyError};
use crate::provider::ProviderError;

/// WeChat Pay answers within seconds; a stuck connection must not hold a checkout open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const NONCE_BYTES: usize = 16;

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 32 random hex digits, fresh for every request.
fn nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    hex::encode_upper(bytes)
}

/// The `Wechatpay-*` headers of an answer, if all are there.
pub fn signed_headers(headers: &HeaderMap) -> Result<SignedHeaders<'_>, VerifyError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingHeader(name))
    };
    Ok(SignedHeaders {
        timestamp: get(signing::HEADER_TIMESTAMP)?,
        nonce: get(signing::HEADER_NONCE)?,
        signature: get(signing::HEADER_SIGNATURE)?,
        serial: get(signing::HEADER_SERIAL)?,
    })
}

/// An answer whose signature is still to be checked.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// Checks the signature with `keys` and decodes a JSON body (or `()`-like empty ones).
    pub fn verified<T: DeserializeOwned>(self, keys: &PlatformKeys) -> Result<T, ProviderError> {
        self.check(keys)?;
        decode(&self.body)
    }

    pub fn check(&self, keys: &PlatformKeys) -> Result<(), ProviderError> {
        let now = now_s();
        signed_headers(&self.headers)
            .and_then(|h| signing::verify(h, &self.body, now, |serial| keys.get(serial, now)))
            .map_err(|e| {
                ProviderError::Unavailable(format!("WeChat Pay's answer failed verification: {e}"))
            })
    }
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    let body = if body.is_empty() {
        b"null".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ProviderError::Unavailable(format!("unexpected WeChat Pay answer: {e}")))
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: Option<String>,
}

impl Answer {
    /// WeChat Pay's error code (`ORDER_NOT_EXIST`, `SIGN_ERROR`…) of a refusal.
    pub fn error_code(&self) -> Option<String> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|e| e.code)
    }

    /// The answer if it is a success, else the provider's error: a refusal is final
    /// (`Declined`) unless WeChat Pay says it is busy or failing.
    pub fn success(self) -> Result<Self, ProviderError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let error = serde_json::from_slice::<ErrorBody>(&self.body).ok();
        let text = error.as_ref().map_or_else(
            || format!("HTTP {}", self.status),
            |e| format!("{}: {}", e.code, e.message.as_deref().unwrap_or("")),
        );
        let busy = matches!(
            error.as_ref().map(|e| e.code.as_str()),
            Some("SYSTEM_ERROR" | "FREQUENCY_LIMITED" | "RATELIMIT_EXCEEDED")
        );
        Err(
            if self.status.is_client_error()
                && self.status != StatusCode::TOO_MANY_REQUESTS
                && !busy
            {
                ProviderError::Declined(format!("WeChat Pay refused: {text}"))
            } else {
                ProviderError::Unavailable(format!("WeChat Pay: {text}"))
            },
        )
    }
}

pub struct Client {
    base: String,
    http: reqwest::Client,
    merchant: Arc<Merchant>,
}

impl Client {
    /// # Panics
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does.
    pub fn new(base: &str, merchant: Arc<Merchant>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bursar-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            merchant,
        }
    }

    /// Sends a signed request. The answer, whatever its status, comes back unverified: the
    /// caller checks it with the keys it trusts.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ProviderError> {
        let body = body.map(ToString::to_string).unwrap_or_default();
        let authorization =
            self.merchant
                .authorization(method.as_str(), path_and_query, now_s(), &nonce(), &body);
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json");
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("WeChat Pay request failed: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("WeChat Pay answer unreadable: {e}")))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
