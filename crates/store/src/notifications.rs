//! Notifications: a message to a user, written in the same transaction as what it reports and
//! sent by a job (`send_notification`), so none is lost and none is sent for a change that did
//! not commit. Every message is kept, whatever channel carried it.

use bursar_core::messages::Message;
use bursar_core::{Language, NotificationChannel, NotificationKind, NotificationStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::clock::rfc3339;
use crate::ids::new_id;
use crate::jobs::{ClaimedJob, NewJob};
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

/// The job kind that sends one notification.
pub const SEND_JOB: &str = "send_notification";
/// Sending is retried this many times (a mail server that is down).
pub const SEND_ATTEMPTS_MAX: i64 = 8;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SendPayload {
    pub notification_id: String,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub channel: NotificationChannel,
    pub destination: Option<String>,
    pub language: Language,
    pub subject: String,
    pub body_text: String,
    pub status: NotificationStatus,
    pub error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// How one attempt to send a notification went.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub status: NotificationStatus,
    pub channel: NotificationChannel,
    pub destination: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub user_id: Option<String>,
    pub kind: Option<NotificationKind>,
    pub status: Option<NotificationStatus>,
}

const COLUMNS: &str = "id, user_id, kind, channel, destination, language, subject, body_text,
    status, error, created_at, sent_at";

fn from_row(row: &AnyRow) -> Result<Notification, StoreError> {
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    Ok(Notification {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        channel: NotificationChannel::parse(&channel).unwrap_or(NotificationChannel::Log),
        destination: row.try_get("destination")?,
        language: Language::parse(&row.try_get::<String, _>("language")?).unwrap_or(Language::En),
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        status: NotificationStatus::parse(&status).unwrap_or(NotificationStatus::Queued),
        error: row.try_get("error")?,
        created_at: rfc3339(row.try_get("created_at")?),
        sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(rfc3339),
    })
}

/// The language `user_id` reads messages in, inside the caller's transaction.
pub(crate) async fn language_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<Language, StoreError> {
    let language: Option<String> = sqlx::query_scalar("SELECT language FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(language
        .as_deref()
        .and_then(Language::parse)
        .unwrap_or(Language::En))
}

/// Records `message` for `user_id` inside the caller's transaction and returns the job that
/// sends it, for the caller to enqueue in the same transaction. The sending job picks the
/// channel (email, SMS, or the log when neither is configured) and records it.
pub(crate) async fn record_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    message: &Message,
    now_ms: i64,
) -> Result<NewJob, StoreError> {
    let id = new_id("ntf");
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, channel, language, subject, body_text,
             status, created_at)
         VALUES ($1, $2, $3, 'log', $4, $5, $6, 'queued', $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(message.kind.as_str())
    .bind(message.language.as_str())
    .bind(&message.subject)
    .bind(&message.text)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let payload = SendPayload {
        notification_id: id.clone(),
    };
    Ok(NewJob::new(SEND_JOB, &payload, SEND_ATTEMPTS_MAX).unique(format!("{SEND_JOB}:{id}")))
}

/// Records `message` and enqueues its sending, both inside the caller's transaction.
pub(crate) async fn notify_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    message: &Message,
    now_ms: i64,
) -> Result<(), StoreError> {
    let job = record_on(conn, user_id, message, now_ms).await?;
    crate::jobs::enqueue_in(conn, &job, now_ms).await?;
    Ok(())
}

impl Store {
    pub async fn notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM notifications WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Notifications, newest first, narrowed by `filter`.
    pub async fn notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications
             WHERE id < $1 AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR kind = $3)
               AND ($4 IS NULL OR status = $4)
             ORDER BY id DESC LIMIT $5"
        ));
        let rows = sqlx::query(sql)
            .bind(page.before_or_max())
            .bind(filter.user_id.as_deref())
            .bind(filter.kind.map(NotificationKind::as_str))
            .bind(filter.status.map(NotificationStatus::as_str))
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let list = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(list, |n| n.id.clone()))
    }

    /// Records how sending went, through which channel and to where: `sent`, `failed` with
    /// the reason, or still `queued` with the last error while it is retried. With `completes`
    /// (the sending job, on success) the job's completion is recorded in the same transaction:
    /// one write where there were two.
    pub async fn mark_notification(
        &self,
        id: &str,
        delivery: &Delivery<'_>,
        completes: Option<&ClaimedJob>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mark = sqlx::query(
            "UPDATE notifications SET status = $1, error = $2, channel = $3, destination = $4,
                 sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END
             WHERE id = $6",
        )
        .bind(delivery.status.as_str())
        .bind(delivery.error)
        .bind(delivery.channel.as_str())
        .bind(delivery.destination)
        .bind(now)
        .bind(id);
        crate::jobs::execute_completing(&self.db, mark, completes, now).await
    }
}
