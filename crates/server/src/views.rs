//! Response shapes shared by several routes, and the small request parsers they rely on.

use axum::http::HeaderMap;
use bursar_store::clock::rfc3339;
use bursar_store::ledger::Idempotency;
use bursar_store::page::{DEFAULT_LIMIT, MAX_LIMIT, PageRequest};
use bursar_store::users::User;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    /// `member`, `merchant` or `admin`.
    pub role: String,
    /// `active` or `suspended`.
    pub status: String,
    /// The game level, with up to two decimals (99.99).
    pub level: f64,
    /// `en`, `zh-Hans` or `zh-Hant`: the language of this user's messages.
    pub language: String,
    /// E.164; where SMS messages go.
    pub phone: Option<String>,
    /// The IANA time zone dates are shown in; `null`: the server's.
    pub time_zone: Option<String>,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            role: user.role.as_str().to_string(),
            status: user.status.as_str().to_string(),
            level: user.level_hundredths as f64 / 100.0,
            language: user.language.as_str().to_string(),
            phone: user.phone.clone(),
            time_zone: user.time_zone.clone(),
            created_at: rfc3339(user.created_at_ms),
        }
    }
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(PageRequest {
            limit,
            before: self.cursor.clone().filter(|c| !c.is_empty()),
        })
    }
}

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub(crate) const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

/// Reads `Idempotency-Key`. The stored hash covers the method, the path and the exact body, so
/// the same key with anything different is refused rather than replayed.
pub fn idempotency(
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    raw_body: &[u8],
) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    // Printable ASCII (spaces inside only): the rule the OpenAPI document states.
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|b| (b' '..=b'~').contains(b));
    let trimmed = bytes.first() != Some(&b' ') && bytes.last() != Some(&b' ');
    if !(printable && trimmed) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be printable ASCII, with no space at either end",
        ));
    }
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    let mut material = Vec::with_capacity(route.len() + raw_body.len() + 1);
    material.extend_from_slice(route.as_bytes());
    material.push(b'\n');
    material.extend_from_slice(raw_body);
    Ok(Some(Idempotency {
        scope: caller.id().to_string(),
        key: key.to_string(),
        request_hash: bursar_store::ids::sha256_hex(&material),
    }))
}

/// Parses a caller-chosen level (up to two decimals) into hundredths.
pub fn level_hundredths(level: f64) -> Result<i64, ApiError> {
    let hundredths = (level * 100.0).round();
    if !level.is_finite()
        || !(0.0..=1e9).contains(&level)
        || ((level * 100.0) - hundredths).abs() > 1e-6
    {
        return Err(ApiError::invalid(
            "level must be between 0 and 1000000000 with at most two decimals",
        ));
    }
    Ok(hundredths as i64)
}

/// Parses a caller-given instant: RFC 3339 (`2026-11-22T08:00:00Z`) or a date (`2026-11-22`,
/// midnight UTC). Returns Unix milliseconds.
pub fn parse_instant(text: &str, field: &str) -> Result<i64, ApiError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc().timestamp_millis());
    }
    Err(ApiError::invalid(format!(
        "{field} must be an RFC 3339 time or a YYYY-MM-DD date"
    )))
}
