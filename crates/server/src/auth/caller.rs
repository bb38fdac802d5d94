//! The `Caller` extractor: every authenticated route takes one, so no route can forget to check.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use bursar_core::{Role, UserStatus};

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub enum Caller {
    User {
        id: String,
        role: Role,
    },
    /// A service using an API key: may spend and hold on any user's behalf.
    Service {
        key_id: String,
    },
}

impl Caller {
    /// The id under which this caller's idempotency keys and holds are kept.
    pub fn id(&self) -> &str {
        match self {
            Caller::User { id, .. } => id,
            Caller::Service { key_id } => key_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Caller::User { .. } => "user",
            Caller::Service { .. } => "api_key",
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Caller::User {
                role: Role::Admin,
                ..
            }
        )
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The signed-in user; services have no "me".
    pub fn require_user(&self) -> Result<&str, ApiError> {
        match self {
            Caller::User { id, .. } => Ok(id),
            Caller::Service { .. } => Err(ApiError::forbidden()),
        }
    }

    /// Which user a credits call acts for: a user acts for themselves (naming another user is
    /// forbidden); a service must name the user.
    pub fn acting_for(&self, user_id: Option<&str>) -> Result<String, ApiError> {
        match (self, user_id) {
            (Caller::User { id, .. }, None) => Ok(id.clone()),
            (Caller::User { id, .. }, Some(named)) if named == id => Ok(id.clone()),
            (Caller::User { .. }, Some(_)) => Err(ApiError::forbidden()),
            (Caller::Service { .. }, Some(named)) => Ok(named.to_string()),
            (Caller::Service { .. }, None) => Err(ApiError::invalid(
                "user_id is required when calling with an API key",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        if token.starts_with("bsk_") {
            let hash = bursar_store::ids::sha256_hex(token);
            let key_id = match state.access.api_key(&hash) {
                Some(cached) => cached,
                None => {
                    let found = state.store.api_key_id_by_hash(&hash).await?;
                    state.access.remember_api_key(hash, found.clone());
                    found
                }
            };
            let key_id =
                key_id.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
            state
                .access
                .note_key_use(&key_id, state.store.clock.now_ms());
            return Ok(Caller::Service { key_id });
        }
        let claims = state
            .tokens
            .verify(token)
            .ok_or_else(|| ApiError::unauthorized("the access token is invalid or expired"))?;
        match user_access(state, &claims.sub).await? {
            Some((role, UserStatus::Active)) => Ok(Caller::User {
                id: claims.sub,
                role,
            }),
            Some((_, UserStatus::Suspended)) => {
                Err(ApiError::unauthorized("this account is suspended"))
            }
            None => Err(ApiError::unauthorized("the account no longer exists")),
        }
    }
}

/// `Option<Caller>`: none without an `Authorization` header; with one, it must be valid (a
/// route that signs people in links the method to a caller who is signed in already).
impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// A user's role and status (`None`: no such user), from the access cache or the database.
pub async fn user_access(
    state: &AppState,
    user_id: &str,
) -> Result<Option<(Role, UserStatus)>, ApiError> {
    if let Some(cached) = state.access.user(user_id) {
        return Ok(cached);
    }
    let found = state.store.user_access(user_id).await?;
    state.access.remember_user(user_id.to_string(), found);
    Ok(found)
}

/// The client's address, for rate limits and the audit log.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_forwarded_for
            && let Some(forwarded) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
        {
            return Ok(ClientAddr(forwarded.trim().to_string()));
        }
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddr(address))
    }
}
