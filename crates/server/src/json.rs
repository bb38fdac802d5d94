//! Request bodies, one extractor per kind of route: `Body<T>` (JSON), `OptionalBody<T>` (JSON
//! that may be left out), `NoBody` (routes that take none) and `RawBody` (a provider's own
//! format). Every refusal is a problem+json 4xx, and JSON bodies keep their raw bytes for
//! idempotency hashing.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: `Content-Type: application/json` (optionally `; charset=utf-8`) and at most
/// `BODY_BYTES_MAX` bytes, parsed into `T`.
pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(&request);
        let raw = read_bytes(request, state, crate::BODY_BYTES_MAX).await?;
        if !is_json {
            return Err(not_json());
        }
        Ok(Self {
            value: parse_checked(&raw)?,
            raw,
        })
    }
}

/// A body that may be left out (capture, logout): empty means `None`, whatever its type;
/// anything else must be a JSON body as for `Body`.
pub struct OptionalBody<T> {
    pub value: Option<T>,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(&request);
        let raw = read_bytes(request, state, crate::BODY_BYTES_MAX).await?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self { value: None, raw });
        }
        if !is_json {
            return Err(not_json());
        }
        if raw.trim_ascii() == b"null" {
            return Ok(Self { value: None, raw });
        }
        Ok(Self {
            value: Some(parse_checked(&raw)?),
            raw,
        })
    }
}

/// The most a route that takes no body accepts (clients that always send `{}` still work);
/// past it, 413 rather than silently reading and ignoring megabytes.
pub const NO_BODY_BYTES_MAX: usize = 256;

/// For routes that take no body: refuses one over `NO_BODY_BYTES_MAX`.
pub struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_bytes(request, state, NO_BODY_BYTES_MAX).await?;
        Ok(Self)
    }
}

/// The raw bytes of a body in a format of its sender's (provider webhooks), at most
/// `BODY_BYTES_MAX`, with the same problem+json 413 as every other body.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            read_bytes(request, state, crate::BODY_BYTES_MAX).await?,
        ))
    }
}

/// Whether the request says its body is JSON: `application/json`, with no parameter but an
/// optional `charset=utf-8` (JSON is UTF-8; `application/vnd.api+json` and other charsets are
/// other formats, refused rather than guessed at).
fn is_json(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        && parts.all(|parameter| {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request",
        "send the body as JSON with Content-Type: application/json",
    )
}

fn too_large(max: usize) -> ApiError {
    let limit = if max >= 1024 * 1024 {
        format!("{} MiB", max / (1024 * 1024))
    } else {
        format!("{max} bytes")
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is over {limit}"),
    )
}

/// Reads at most `max` bytes of body. An announced oversized body is refused before any of it
/// is read; one that runs past `max` while streaming is refused as soon as it does.
async fn read_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
    max: usize,
) -> Result<Bytes, ApiError> {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max as u64) {
        return Err(too_large(max));
    }
    let limited =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, max)));
    Bytes::from_request(limited, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(max)
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })
}

/// `parse`, with the rules every request body keeps: it is a JSON object (serde would also
/// read a struct from an array, `[1, "x"]`, which no client means), and it holds no NUL
/// (PostgreSQL text cannot, and no field needs one).
fn parse_checked<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let value = parse_lenient(raw)?;
    if raw.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    if has_nul_escape(raw) {
        return Err(ApiError::invalid(
            "text must not contain NUL (\\u0000) characters",
        ));
    }
    Ok(value)
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

/// Like `parse`, but a number written with a fraction of zero (`250.0`) reads as the integer
/// it is, as JSON Schema counts it: some clients' JSON encoders write every number so. Only a
/// body that failed to parse is read this second way, so the common case costs nothing more.
fn parse_lenient<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let strict = parse(raw);
    let Err(refusal) = &strict else {
        return strict;
    };
    if !refusal.detail.contains("floating point") {
        return strict;
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return strict;
    };
    if !integral_floats_to_integers(&mut value) {
        return strict;
    }
    let Ok(normalised) = serde_json::to_vec(&value) else {
        return strict;
    };
    parse(&normalised)
}

/// Turns every float that is exactly an integer within ±2^53 into that integer; answers whether
/// any was.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            let exact = float.fract() == 0.0 && float.abs() <= bursar_core::MAX_CREDITS as f64;
            if exact {
                *value = Value::from(float as i64);
            }
            exact
        }
        // Every element is visited (no short circuit): each may hold such a number.
        Value::Array(items) => {
            items
                .iter_mut()
                .map(integral_floats_to_integers)
                .filter(|changed| *changed)
                .count()
                > 0
        }
        Value::Object(fields) => {
            fields
                .values_mut()
                .map(integral_floats_to_integers)
                .filter(|changed| *changed)
                .count()
                > 0
        }
        _ => false,
    }
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
    fn a_whole_number_written_as_a_float_reads_as_an_integer() {
        #[derive(Debug, serde::Deserialize)]
        struct Amount {
            amount: i64,
        }
        let read = |raw: &[u8]| super::parse_lenient::<Amount>(raw).map(|a| a.amount);
        assert_eq!(read(br#"{"amount": 250.0}"#).ok(), Some(250));
        assert_eq!(read(br#"{"amount": -3.0}"#).ok(), Some(-3));
        assert!(read(br#"{"amount": 2.5}"#).is_err());
        assert!(read(br#"{"amount": 1e300}"#).is_err());
        assert!(read(br#"{"amount": 9007199254740994.0}"#).is_err());
    }

    #[test]
    fn trailing_bytes_after_the_value_are_malformed() {
        let parsed: Result<serde_json::Value, _> = super::parse(br#"{"a":1} garbage"#);
        assert_eq!(parsed.map_err(|e| e.status.as_u16()), Err(400));
        let parsed: Result<serde_json::Value, _> = super::parse(b"{\"a\":1}  \n");
        assert!(parsed.is_ok());
    }
}
