//! Request bodies. `Body<T>` is axum's JSON extraction with every rejection turned into a
//! problem+json 4xx, and with the raw bytes kept for idempotency hashing.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over 1 MiB",
            )
        };
        // Refuse an announced oversized body before reading any of it.
        let announced = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|length| length > crate::BODY_BYTES_MAX as u64) {
            return Err(too_large());
        }
        let raw = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            })?;
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let value = parse(&raw)?;
        if has_nul_escape(&raw) {
            // PostgreSQL text cannot hold NUL, and no field needs one: refuse it everywhere.
            return Err(ApiError::invalid(
                "text must not contain NUL (\\u0000) characters",
            ));
        }
        Ok(Self { value, raw })
    }
}

/// Refuses a request whose path or query holds an encoded NUL (`%00`): no id or filter has one,
/// and PostgreSQL text cannot store it, so it must not reach the database.
pub async fn refuse_nul_in_uri(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request
        .uri()
        .path_and_query()
        .is_some_and(|pq| pq.as_str().contains("%00"))
    {
        return ApiError::bad_request("the URL must not contain NUL (%00) characters")
            .into_response();
    }
    next.run(request).await
}

/// Whether well-formed JSON holds the escape `\u0000` (and not an escaped backslash followed
/// by the text `u0000`).
pub fn has_nul_escape(raw: &[u8]) -> bool {
    raw.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000" && raw[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

/// Parses JSON, telling syntax errors (400) from well-formed bodies of the wrong shape (422).
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::bad_request(format!("malformed JSON: {inner}"))
            }
            _ => ApiError::invalid(format!("invalid request body{at}: {inner}")),
        }
    })?;
    // Anything after the JSON value (other than whitespace) is malformed, not ignored.
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Query-string extraction with problem+json rejections.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))
    }
}

/// An optional JSON body: empty means `None`. For routes such as capture whose body may be
/// left out entirely.
pub fn parse_optional<T: DeserializeOwned>(raw: &[u8]) -> Result<Option<T>, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(super::has_nul_escape(br#"{"a":"x\u0000y"}"#));
        assert!(super::has_nul_escape(br#"{"a":"\\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"a":"\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"a":"u0000"}"#));
    }

    #[test]
    fn trailing_bytes_after_the_value_are_malformed() {
        let parsed: Result<serde_json::Value, _> = super::parse(br#"{"a":1} garbage"#);
        assert_eq!(parsed.map_err(|e| e.status.as_u16()), Err(400));
        let parsed: Result<serde_json::Value, _> = super::parse(b"{\"a\":1}  \n");
        assert!(parsed.is_ok());
    }
}
