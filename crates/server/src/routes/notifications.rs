//! Notifications as their recipient and the admins see them.

use axum::Json;
use axum::extract::State;
use bursar_core::{NotificationKind, NotificationStatus};
use bursar_store::notifications::{Notification, NotificationFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::Query;
use crate::reads::Page;
use crate::views::PageQuery;

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub user_id: String,
    /// `order_paid`, `payment_failed`, `auto_topup_succeeded`, `auto_topup_failed`,
    /// `auto_topup_disabled`, `balance_low`, `subscription_ending`, `subscription_ended` or
    /// `sign_in_code`.
    pub kind: String,
    /// `email`, `sms`, or `log` (no gateway configured: written to the server's log and kept).
    pub channel: String,
    pub subject: String,
    pub text: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            user_id: n.user_id,
            kind: n.kind,
            channel: n.channel.as_str().to_string(),
            subject: n.subject,
            text: n.body_text,
            status: n.status.as_str().to_string(),
            error: n.error,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// Messages sent to the signed-in user, newest first.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me",
    params(PageQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<NotificationView>>> {
    let user_id = caller.require_user()?;
    let filter = NotificationFilter {
        user_id: Some(user_id.to_string()),
        ..NotificationFilter::default()
    };
    let page = state.store.notifications(&filter, &query.parse()?).await?;
    Ok(Json(Page::from_store(page, NotificationView::from)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    /// `queued`, `sent` or `failed`.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every message, newest first, narrowed by recipient, kind and status.
#[utoipa::path(get, path = "/api/v1/admin/notifications", tag = "admin",
    params(NotificationsQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn all(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<NotificationsQuery>,
) -> ApiResult<Json<Page<NotificationView>>> {
    caller.require_admin()?;
    let kind = match query.kind.as_deref() {
        None => None,
        Some(text) => Some(NotificationKind::parse(text).ok_or_else(|| {
            ApiError::invalid(format!("kind {text:?} is not a notification kind"))
        })?),
    };
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(NotificationStatus::parse(text).ok_or_else(|| {
            ApiError::invalid("status must be queued, sent or failed".to_string())
        })?),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let filter = NotificationFilter {
        user_id: query.user_id,
        kind,
        status,
    };
    let page = state.store.notifications(&filter, &page.parse()?).await?;
    Ok(Json(Page::from_store(page, NotificationView::from)))
}
