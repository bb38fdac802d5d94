//! Registration, login, token refresh with rotation, and logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bursar_core::UserStatus;
use bursar_store::sessions::Rotation;
use bursar_store::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::app::accounts::{self, Registration};
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, OptionalBody};
use crate::views::UserView;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    /// `member` (default) or `merchant`; an admin can only be made by another admin or the CLI.
    pub role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

pub(crate) async fn session_for(
    state: &AppState,
    user: &User,
    family: Option<&str>,
) -> ApiResult<Session> {
    let now_s = state.store.clock.now_ms() / 1000;
    let access_token = state.tokens.issue(&user.id, user.role.as_str(), now_s)?;
    let refresh_token = state
        .store
        .issue_refresh_token(&user.id, family, state.config.refresh_token_ttl_s * 1000)
        .await?;
    Ok(Session {
        user: UserView::from(user),
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_s,
    })
}

/// Create an account (member or merchant) and sign in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = Session),
        (status = 409, description = "email already registered", body = Problem),
        (status = 422, description = "invalid email, short password or forbidden role", body = Problem),
        (status = 429, description = "too many attempts", body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    body: Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let request = body.value;
    let email = accounts::normalize_email(&request.email)?;
    state.limiter.check(&address, &email)?;
    let registration = Registration {
        email,
        password: request.password,
        display_name: request.display_name,
        role: request.role,
    };
    let user = accounts::register(&state.store, registration).await?;
    Ok((
        StatusCode::CREATED,
        Json(session_for(&state, &user, None).await?),
    ))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = Session),
        (status = 401, description = "wrong email or password, or a suspended account", body = Problem),
        (status = 429, description = "too many attempts", body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    body: Body<LoginRequest>,
) -> ApiResult<Json<Session>> {
    let request = body.value;
    let user =
        accounts::password_sign_in(&state, &address, &request.email, request.password).await?;
    Ok(Json(session_for(&state, &user, None).await?))
}

/// Trade a refresh token for a new pair. The old refresh token stops working; presenting it
/// again ends every session that descends from the same login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    body: Body<RefreshRequest>,
) -> ApiResult<Json<Session>> {
    let Rotation::Rotated { user_id, family_id } = state
        .store
        .rotate_refresh_token(&body.value.refresh_token)
        .await?
    else {
        return Err(ApiError::unauthorized(
            "the refresh token is invalid, expired or already used",
        ));
    };
    let user = state
        .store
        .user(&user_id)
        .await?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| ApiError::unauthorized("this account is suspended"))?;
    Ok(Json(session_for(&state, &user, Some(&family_id)).await?))
}

/// Sign out: revokes the given refresh token (and its rotations), or with no body every
/// session of the user. Access tokens already issued expire on their own (minutes).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body(content = Option<RefreshRequest>),
    responses((status = 204), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    body: OptionalBody<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let user_id = caller.require_user()?;
    if let Some(request) = body.value {
        state
            .store
            .revoke_refresh_token(user_id, &request.refresh_token)
            .await?;
    } else {
        state.store.revoke_all_refresh_tokens(user_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
