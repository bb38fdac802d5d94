//! The signed-in user: profile, balance and history.

use crate::reads::Page;
use crate::reads::{Balance, Transaction};
use axum::Json;
use axum::extract::State;
use bursar_store::users::UserChanges;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::app::accounts::{
    check_display_name, check_language, check_password, check_phone, check_time_zone,
};
use crate::auth::Caller;
use crate::auth::password;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, Query};
use crate::views::{PageQuery, UserView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    /// A new password (8–256 characters). Ends every session, this one included: their refresh
    /// tokens stop working, and access tokens already issued run out within minutes.
    pub password: Option<String>,
    /// `en`, `zh-Hans` or `zh-Hant`: the language of this user's messages.
    pub language: Option<String>,
    /// E.164 (`+8613800000000`), where SMS messages go; an empty string removes it.
    pub phone: Option<String>,
    /// An IANA time zone (`Asia/Taipei`) for dates on pages; an empty string goes back to the
    /// server's.
    pub time_zone: Option<String>,
}

async fn current_user(state: &AppState, caller: &Caller) -> ApiResult<UserView> {
    let user_id = caller.require_user()?;
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(UserView::from(&user))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = UserView), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<UserView>> {
    Ok(Json(current_user(&state, &caller).await?))
}

/// Change the display name, the password, the language of messages or the phone number.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me",
    request_body = ProfileChanges,
    responses((status = 200, body = UserView), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_me(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<ProfileChanges>,
) -> ApiResult<Json<UserView>> {
    let user_id = caller.require_user()?.to_string();
    let request = body.value;
    let mut changes = UserChanges {
        display_name: check_display_name(request.display_name)?,
        language: check_language(request.language)?,
        phone: check_phone(request.phone)?,
        time_zone: check_time_zone(request.time_zone)?,
        ..UserChanges::default()
    };
    if let Some(new_password) = request.password {
        check_password(&new_password)?;
        changes.password_hash = Some(password::hash(new_password).await?);
    }
    state.store.update_user(&user_id, &changes).await?;
    Ok(Json(current_user(&state, &caller).await?))
}

/// Balance, available credits (balance less active holds) and the live grants in burn order.
#[utoipa::path(get, path = "/api/v1/me/balance", tag = "credits",
    responses((status = 200, body = Balance), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn balance(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Balance>> {
    let user_id = caller.require_user()?;
    let view = state
        .store
        .balance(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(Json(view.into()))
}

/// The user's credit movements, newest first; `amount` is negative when credits left.
#[utoipa::path(get, path = "/api/v1/me/transactions", tag = "credits",
    params(PageQuery),
    responses((status = 200, body = Page<Transaction>), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn transactions(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Transaction>>> {
    let user_id = caller.require_user()?;
    let page = state.store.transactions(user_id, &query.parse()?).await?;
    Ok(Json(Page::from_store(page, Transaction::from)))
}
