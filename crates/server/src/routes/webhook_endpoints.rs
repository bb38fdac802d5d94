//! Admins' outgoing webhooks: endpoints (the secret shown once), their deliveries, and a retry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bursar_core::EventType;
use bursar_store::webhooks::{Delivery, Endpoint, EndpointChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{Body, NoBody, Query};
use crate::reads::Page;
use crate::routes::admin::entry;
use crate::views::PageQuery;

pub(crate) const URL_CHARS_MAX: usize = 2048;
pub(crate) const DESCRIPTION_CHARS_MAX: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// An `http` or `https` URL; redirects are not followed.
    pub url: String,
    /// The event types to send: `order.paid`, `order.failed`, `order.refunded`, `balance.low`,
    /// `auto_topup.succeeded`, `auto_topup.failed`, …
    pub events: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: Option<String>,
    /// The signing secret: only in the answer that creates the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
}

fn view(endpoint: Endpoint, with_secret: bool) -> EndpointView {
    EndpointView {
        id: endpoint.id,
        url: endpoint.url,
        events: endpoint
            .events
            .iter()
            .map(|e| e.as_str().to_string())
            .collect(),
        enabled: endpoint.enabled,
        description: endpoint.description,
        secret: with_secret.then_some(endpoint.secret),
        created_at: bursar_store::clock::rfc3339(endpoint.created_at_ms),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// About when the next attempt is made (the queue adds up to a fifth either way).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
        }
    }
}

fn check_url(url: &str) -> ApiResult<String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ApiError::invalid(format!("url is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::invalid(
            "url must be an http or https URL with a host",
        ));
    }
    if url.chars().count() > URL_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "url must be at most {URL_CHARS_MAX} characters"
        )));
    }
    Ok(url.to_string())
}

fn check_events(events: &[String]) -> ApiResult<Vec<EventType>> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events must name at least one event type",
        ));
    }
    let mut parsed = Vec::new();
    for name in events {
        let event = EventType::parse(name)
            .ok_or_else(|| ApiError::invalid(format!("{name:?} is not an event type")))?;
        if !parsed.contains(&event) {
            parsed.push(event);
        }
    }
    Ok(parsed)
}

fn check_description(description: Option<String>) -> ApiResult<Option<String>> {
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_CHARS_MAX)
    {
        return Err(ApiError::invalid(format!(
            "description must be at most {DESCRIPTION_CHARS_MAX} characters"
        )));
    }
    Ok(description)
}

/// Webhook endpoints (without their secrets).
#[utoipa::path(get, path = "/api/v1/admin/webhook-endpoints", tag = "admin",
    responses((status = 200, body = EndpointList), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<EndpointList>> {
    caller.require_admin()?;
    let endpoints = state.store.endpoints().await?;
    Ok(Json(EndpointList {
        data: endpoints.into_iter().map(|e| view(e, false)).collect(),
    }))
}

/// Add an endpoint. Its signing secret is in this answer only: every delivery carries
/// `Bursar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
#[utoipa::path(post, path = "/api/v1/admin/webhook-endpoints", tag = "admin",
    request_body = EndpointRequest,
    responses((status = 201, body = EndpointView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    body: Body<EndpointRequest>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    caller.require_admin()?;
    let request = body.value;
    let url = check_url(&request.url)?;
    let events = check_events(&request.events)?;
    let description = check_description(request.description)?;
    let audit = entry(
        &caller,
        &ip,
        "webhook_endpoint.create",
        None,
        serde_json::json!({ "url": url }),
    );
    let endpoint = state
        .store
        .create_endpoint(&url, description.as_deref(), &events, audit)
        .await?;
    Ok((StatusCode::CREATED, Json(view(endpoint, true))))
}

/// Change an endpoint's URL, events, description, or turn it off and on.
#[utoipa::path(patch, path = "/api/v1/admin/webhook-endpoints/{id}", tag = "admin",
    params(("id" = String, Path)),
    request_body = EndpointChanges,
    responses((status = 200, body = EndpointView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: Body<EndpointChanges>,
) -> ApiResult<Json<EndpointView>> {
    caller.require_admin()?;
    let request = body.value;
    let change = EndpointChange {
        url: request.url.as_deref().map(check_url).transpose()?,
        events: request.events.as_deref().map(check_events).transpose()?,
        description: check_description(request.description)?,
        enabled: request.enabled,
    };
    let audit = entry(
        &caller,
        &ip,
        "webhook_endpoint.update",
        Some(&id),
        serde_json::json!({ "url": change.url, "enabled": change.enabled }),
    );
    let endpoint = state
        .store
        .update_endpoint(&id, &change, audit)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Ok(Json(view(endpoint, false)))
}

/// Delete an endpoint: its pending deliveries stop.
#[utoipa::path(delete, path = "/api/v1/admin/webhook-endpoints/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let audit = entry(
        &caller,
        &ip,
        "webhook_endpoint.delete",
        Some(&id),
        serde_json::Value::Null,
    );
    if !state.store.delete_endpoint(&id, audit).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first, with their attempts.
#[utoipa::path(get, path = "/api/v1/admin/webhook-endpoints/{id}/deliveries", tag = "admin",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    caller.require_admin()?;
    if state.store.endpoint(&id).await?.is_none() {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let page = state.store.deliveries(&id, &query.parse()?).await?;
    Ok(Json(Page::from_store(page, DeliveryView::from)))
}

/// Send a delivery again now, whatever its status (202: it is queued and sent at once).
#[utoipa::path(post, path = "/api/v1/admin/webhook-deliveries/{id}/retry", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "no such delivery, or its endpoint was deleted", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    caller.require_admin()?;
    let audit = entry(
        &caller,
        &ip,
        "webhook_delivery.retry",
        Some(&id),
        serde_json::Value::Null,
    );
    let key = state
        .store
        .retry_delivery(&id, audit)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    // Sent now by this request when it can; the queue sends it otherwise.
    crate::jobs::run_now(&state, &key, std::time::Duration::ZERO).await;
    let delivery = state
        .store
        .delivery(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}
