//! Outgoing webhooks: events, the endpoints that receive them, and each delivery's record. An
//! event is written in the transaction of what it reports (`emit_on`) together with one
//! delivery per enabled endpoint subscribed to its type, each sent by a job of its own (also
//! enqueued in that transaction), so a slow receiver holds up nobody else.

use bursar_core::{DeliveryStatus, EventType};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditRecord};
use crate::clock::rfc3339;
use crate::ids::{new_id, new_secret};
use crate::jobs::NewJob;
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

/// The job that turns one event into a delivery per subscribed endpoint. Events now get their
/// deliveries in their own transaction (`emit_on`); the kind stays for fan-outs enqueued before.
pub const FAN_OUT_JOB: &str = "fan_out_event";
/// The job that sends one delivery.
pub const DELIVER_JOB: &str = "deliver_webhook";
/// Attempts per delivery: with back-off from 30 s doubling to 6 hours, about three days.
pub const DELIVERY_ATTEMPTS_MAX: i64 = 21;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FanOutPayload {
    pub event_id: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeliverPayload {
    pub delivery_id: String,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    /// JSON text.
    pub data: String,
    pub created_at_ms: i64,
}

#[derive(Clone)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<EventType>,
    pub secret: String,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub deleted: bool,
}

/// Everything but the signing secret, so a logged endpoint leaks nothing.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// An endpoint as an admin sets it up; `None` leaves a field as it is (on update).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

/// Records `event_type` with `data` inside the caller's transaction, with a delivery for each
/// enabled endpoint subscribed to its type, and returns the jobs that send them, for the caller
/// to enqueue in the same transaction. Doing the fan-out here rather than in a job of its own
/// saves a transaction per event (three on SQLite: the job's claim, the fan-out and the job's
/// completion), each of which waits for the database's one write lock; with no endpoint
/// subscribed (the usual case) it is one read.
pub(crate) async fn emit_on(
    conn: &mut sqlx::AnyConnection,
    event_type: EventType,
    data: &serde_json::Value,
    now_ms: i64,
) -> Result<Vec<NewJob>, StoreError> {
    let id = new_id("evt");
    sqlx::query("INSERT INTO events (id, type, data, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(event_type.as_str())
        .bind(data.to_string())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    deliveries_on(conn, &id, event_type.as_str(), now_ms).await
}

/// `emit_on` with the deliveries' jobs enqueued too, for transactions outside the ledger writer.
pub(crate) async fn emit_and_enqueue_on(
    conn: &mut sqlx::AnyConnection,
    event_type: EventType,
    data: &serde_json::Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    for job in emit_on(conn, event_type, data, now_ms).await? {
        crate::jobs::enqueue_in(conn, &job, now_ms).await?;
    }
    Ok(())
}

/// Makes a delivery of event `event_id` (of type `event_type`) to every enabled endpoint
/// subscribed to its type, inside the caller's transaction, and returns their sending jobs. A
/// delivery the event already has is not made again.
async fn deliveries_on(
    conn: &mut sqlx::AnyConnection,
    event_id: &str,
    event_type: &str,
    now_ms: i64,
) -> Result<Vec<NewJob>, StoreError> {
    let endpoints: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, events FROM webhook_endpoints
         WHERE enabled = 1 AND deleted_at IS NULL ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut jobs = Vec::new();
    for (endpoint_id, events) in endpoints {
        let names: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
        if !names.iter().any(|name| name == event_type) {
            continue;
        }
        let id = new_id("whd");
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, next_attempt_at,
                 created_at, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $4, $4)
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(&id)
        .bind(&endpoint_id)
        .bind(event_id)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            jobs.push(deliver_job(&id, 0));
        }
    }
    Ok(jobs)
}

/// The job that sends `delivery_id`, once per `round` (a retry by hand starts a new round).
pub fn deliver_job(delivery_id: &str, round: i64) -> NewJob {
    let payload = DeliverPayload {
        delivery_id: delivery_id.to_string(),
    };
    NewJob::new(DELIVER_JOB, &payload, DELIVERY_ATTEMPTS_MAX)
        .unique(format!("{DELIVER_JOB}:{delivery_id}:{round}"))
}

const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, secret, enabled, created_at, deleted_at";

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint, StoreError> {
    let events: String = row.try_get("events")?;
    let names: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    Ok(Endpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events: names.iter().filter_map(|n| EventType::parse(n)).collect(),
        secret: row.try_get("secret")?,
        enabled: row.try_get::<i64, _>("enabled")? == 1,
        created_at_ms: row.try_get("created_at")?,
        deleted: row.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
    })
}

fn events_json(events: &[EventType]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.status,
    d.attempts, d.last_status_code, d.last_error, d.next_attempt_at, d.created_at";

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: row.try_get("attempts")?,
        last_status_code: row.try_get("last_status_code")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(rfc3339),
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

impl Store {
    /// Creates an endpoint with a new signing secret, audit-logged in the same transaction.
    pub async fn create_endpoint(
        &self,
        url: &str,
        description: Option<&str>,
        events: &[EventType],
        audit: AuditRecord<'_>,
    ) -> Result<Endpoint, StoreError> {
        let now = self.clock.now_ms();
        let id = new_id("whe");
        let secret = new_secret("whsec");
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret, enabled,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&id)
        .bind(url)
        .bind(description)
        .bind(events_json(events))
        .bind(&secret)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            AuditRecord {
                target: Some(&id),
                ..audit
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Endpoint {
            id,
            url: url.to_string(),
            description: description.map(str::to_string),
            events: events.to_vec(),
            secret,
            enabled: true,
            created_at_ms: now,
            deleted: false,
        })
    }

    /// Endpoints that are not deleted, newest first.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL
             ORDER BY id DESC"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.db.pool).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// One endpoint, deleted or not.
    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Changes a live endpoint, audit-logged in the same transaction. `None`: no such endpoint.
    pub async fn update_endpoint(
        &self,
        id: &str,
        change: &EndpointChange,
        audit: AuditRecord<'_>,
    ) -> Result<Option<Endpoint>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($1, url),
                 description = COALESCE($2, description), events = COALESCE($3, events),
                 enabled = COALESCE($4, enabled), updated_at = $5
             WHERE id = $6 AND deleted_at IS NULL",
        )
        .bind(change.url.as_deref())
        .bind(change.description.as_deref())
        .bind(change.events.as_deref().map(events_json))
        .bind(change.enabled.map(i64::from))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.endpoint(id).await
    }

    /// Deletes an endpoint: its pending deliveries stop. `false`: no such live endpoint.
    pub async fn delete_endpoint(
        &self,
        id: &str,
        audit: AuditRecord<'_>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $1, enabled = 0, updated_at = $1
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'the endpoint was deleted',
                 next_attempt_at = NULL, updated_at = $1
             WHERE endpoint_id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let row = sqlx::query("SELECT id, type, data, created_at FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|row| {
            Ok(Event {
                id: row.try_get("id")?,
                event_type: row.try_get("type")?,
                data: row.try_get("data")?,
                created_at_ms: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Makes a delivery of `event_id` to every enabled endpoint subscribed to its type, each
    /// with its sending job, in one transaction (a `fan_out_event` job enqueued before events
    /// got their deliveries with them). Running it again adds nothing; with no endpoint to
    /// deliver to it writes nothing and takes no write lock.
    pub async fn fan_out(&self, event_id: &str) -> Result<usize, StoreError> {
        let Some(event) = self.event(event_id).await? else {
            return Ok(0);
        };
        let subscribed = self
            .endpoints()
            .await?
            .iter()
            .any(|e| e.enabled && e.events.iter().any(|t| t.as_str() == event.event_type));
        if !subscribed {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let jobs = deliveries_on(&mut tx, &event.id, &event.event_type, now).await?;
        for job in &jobs {
            crate::jobs::enqueue_in(&mut tx, job, now).await?;
        }
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(jobs.len())
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// An endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.endpoint_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(endpoint_id)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let list = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(list, |d| d.id.clone()))
    }

    /// Records one attempt: `delivered`, or still `pending` until `next_attempt_at`, or
    /// `failed` after the last attempt. A delivered one stays delivered: a slower attempt of an
    /// earlier round (an admin's retry runs beside it) cannot undo it. With `completes` (the
    /// sending job, when this attempt ends its work) the job's completion is recorded in the
    /// same transaction: one write where there were two.
    pub async fn record_attempt(
        &self,
        id: &str,
        status: DeliveryStatus,
        status_code: Option<i64>,
        error: Option<&str>,
        next_attempt_at_ms: Option<i64>,
        completes: Option<&crate::jobs::ClaimedJob>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let record = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1,
                 last_status_code = $2, last_error = $3, next_attempt_at = $4, updated_at = $5
             WHERE id = $6 AND status <> 'delivered'",
        )
        .bind(status.as_str())
        .bind(status_code)
        .bind(error)
        .bind(next_attempt_at_ms)
        .bind(now)
        .bind(id);
        crate::jobs::execute_completing(&self.db, record, completes, now).await
    }

    /// Queues a delivery to be sent again now (an admin's retry), whatever its status, unless
    /// its endpoint is deleted. Returns the job's unique key, or `None` when there is no such
    /// delivery or its endpoint is gone.
    pub async fn retry_delivery(
        &self,
        id: &str,
        audit: AuditRecord<'_>,
    ) -> Result<Option<String>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1
             WHERE id = $2 AND endpoint_id IN
                 (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        // Each retry by hand is a new round of the job, with its attempts of its own.
        let job = deliver_job(id, now);
        let key = job.unique_key.clone();
        crate::jobs::enqueue_in(&mut tx, &job, now).await?;
        audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(key)
    }
}

/// What an order event says about its order, `status` being what the order has just become.
pub(crate) fn order_data(order: &crate::orders::Order, status: &str) -> serde_json::Value {
    serde_json::json!({
        "order_id": order.id,
        "user_id": order.user_id,
        "kind": order.kind.as_str(),
        "status": status,
        "total": {"amount": order.total, "currency": order.currency},
        "credits": order.credits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_out_the_secret() {
        let endpoint = Endpoint {
            id: "whe_1".into(),
            url: "https://example.com/hook".into(),
            description: None,
            events: vec![EventType::OrderPaid],
            secret: "whsec_do_not_log".into(),
            enabled: true,
            created_at_ms: 0,
            deleted: false,
        };
        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("whsec_do_not_log"), "{shown}");
        assert!(shown.contains("example.com"));
    }
}
