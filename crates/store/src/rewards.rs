//! The reward inbox: rewards an admin sends (to listed users or to every member), delivered
//! into inboxes by jobs in bounded chunks, and claimed once each by the ledger's `ClaimReward`
//! command (`ledger/commands/claim_reward.rs`).

use bursar_core::LedgerError;
use sqlx::{AnyConnection, Row};

use crate::audit::AuditRecord;
use crate::ids::new_id;
use crate::jobs::NewJob;
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError};

/// The job that delivers one chunk of a reward.
pub const DELIVERY_JOB: &str = "reward_delivery";
/// Rows per multi-row statement: far below both backends' limits on bound parameters.
const ROWS_PER_STATEMENT_MAX: usize = 200;

/// Who a reward goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// These users (distinct ids).
    Users(Vec<String>),
    /// Every member registered when the reward is sent.
    AllMembers,
}

#[derive(Debug, Clone)]
pub struct NewReward {
    pub title: String,
    pub credits: i64,
    pub audience: Audience,
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardCreation {
    Created {
        id: String,
        recipients: i64,
    },
    /// Some listed ids name no user: nothing was created.
    UnknownUsers(Vec<String>),
}

/// One chunk of a reward's delivery: the listed users it names, or the members after `after`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeliveryPayload {
    pub reward_id: String,
    #[serde(default)]
    pub user_ids: Option<Vec<String>>,
    #[serde(default)]
    pub after: Option<String>,
}

/// A reward in a user's inbox.
#[derive(Debug, Clone)]
pub struct InboxItem {
    pub id: String,
    pub reward_id: String,
    pub title: String,
    pub credits: i64,
    pub expires_at_ms: Option<i64>,
    pub claimed_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// What a claimable inbox item grants.
pub(crate) struct Claimable {
    pub reward_id: String,
    pub title: String,
    pub credits: i64,
}

fn delivery_job(payload: &DeliveryPayload, unique: String) -> NewJob {
    NewJob::new(DELIVERY_JOB, payload, 10).unique(unique)
}

/// The listed ids that name no user.
async fn unknown_users(
    conn: &mut AnyConnection,
    user_ids: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut unknown = Vec::new();
    for chunk in user_ids.chunks(ROWS_PER_STATEMENT_MAX) {
        let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!("SELECT id FROM users WHERE id IN ({})", marks.join(", "));
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        let found = query.fetch_all(&mut *conn).await?;
        unknown.extend(chunk.iter().filter(|id| !found.contains(id)).cloned());
    }
    Ok(unknown)
}

/// Puts the reward in each user's inbox, once: a user who has it already is skipped.
async fn deliver_on(
    conn: &mut AnyConnection,
    reward_id: &str,
    user_ids: &[String],
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut delivered = 0;
    for chunk in user_ids.chunks(ROWS_PER_STATEMENT_MAX) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|n| {
                let base = n * 4;
                format!(
                    "(${}, ${}, ${}, ${})",
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO inbox_items (id, reward_id, user_id, created_at) VALUES {}
             ON CONFLICT (reward_id, user_id) DO NOTHING",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for user_id in chunk {
            query = query
                .bind(new_id("inb"))
                .bind(reward_id)
                .bind(user_id)
                .bind(now_ms);
        }
        delivered += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(delivered)
}

/// Marks the user's inbox item claimed in the caller's (the ledger batch's) transaction, after
/// checking everything that refuses a claim: it is the user's, unclaimed and not expired.
pub(crate) async fn claim_on(
    conn: &mut AnyConnection,
    user_id: &str,
    item_id: &str,
    now_ms: i64,
) -> Result<Claimable, StoreError> {
    let row = sqlx::query(
        "SELECT i.reward_id, i.claimed_at, r.title, r.credits, r.expires_at
         FROM inbox_items i JOIN rewards r ON r.id = i.reward_id
         WHERE i.id = $1 AND i.user_id = $2",
    )
    .bind(item_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(LedgerError::NotFound("reward"))?;
    let already = LedgerError::AlreadyClaimed("this reward was already claimed");
    if row.try_get::<Option<i64>, _>("claimed_at")?.is_some() {
        return Err(already.into());
    }
    if row
        .try_get::<Option<i64>, _>("expires_at")?
        .is_some_and(|expires_at| expires_at <= now_ms)
    {
        return Err(LedgerError::Expired("this reward expired before it was claimed").into());
    }
    // Guarded, so a claim committed elsewhere meanwhile is never paid again.
    let claimed =
        sqlx::query("UPDATE inbox_items SET claimed_at = $1 WHERE id = $2 AND claimed_at IS NULL")
            .bind(now_ms)
            .bind(item_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if claimed != 1 {
        return Err(already.into());
    }
    Ok(Claimable {
        reward_id: row.try_get("reward_id")?,
        title: row.try_get("title")?,
        credits: row.try_get("credits")?,
    })
}

/// Names the transfer that paid the claim.
pub(crate) async fn record_transfer_on(
    conn: &mut AnyConnection,
    item_id: &str,
    transfer_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE inbox_items SET transfer_id = $1 WHERE id = $2")
        .bind(transfer_id)
        .bind(item_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How much of a paid order's bonus waits in the buyer's inbox: all of it when its package
/// sends the bonus there, else none.
pub(crate) async fn inbox_bonus_on(
    conn: &mut AnyConnection,
    order: &crate::orders::Order,
) -> Result<i64, StoreError> {
    let Some(package_id) = order
        .package_id
        .as_deref()
        .filter(|_| order.bonus_credits > 0)
    else {
        return Ok(0);
    };
    let to_inbox: Option<i64> =
        sqlx::query_scalar("SELECT bonus_to_inbox FROM packages WHERE id = $1")
            .bind(package_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(if to_inbox == Some(1) {
        order.bonus_credits
    } else {
        0
    })
}

/// Puts a paid order's bonus in its buyer's inbox, in the payment's transaction.
pub(crate) async fn deliver_order_bonus_on(
    conn: &mut AnyConnection,
    order: &crate::orders::Order,
    credits: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let id = new_id("rwd");
    sqlx::query(
        "INSERT INTO rewards (id, title, credits, audience, recipients, order_id, created_at)
         VALUES ($1, $2, $3, 'order', 1, $4, $5)",
    )
    .bind(&id)
    .bind(format!("Bonus: {}", order.package_name))
    .bind(credits)
    .bind(&order.id)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    deliver_on(conn, &id, std::slice::from_ref(&order.user_id), now_ms).await?;
    Ok(())
}

/// The inbox bonus of an order its buyer has claimed: the claim's transfer and its credits.
pub(crate) async fn claimed_order_bonus_on(
    conn: &mut AnyConnection,
    order: &crate::orders::Order,
) -> Result<Option<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT i.transfer_id, r.credits FROM inbox_items i JOIN rewards r ON r.id = i.reward_id
         WHERE r.order_id = $1 AND i.user_id = $2 AND i.claimed_at IS NOT NULL
           AND i.transfer_id IS NOT NULL",
    )
    .bind(&order.id)
    .bind(&order.user_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Closes the unclaimed inbox bonus of a refunded order (in the refund's transaction): its
/// expiry becomes now, so it can no longer be claimed. A bonus already claimed is clawed back
/// with the order's credits (`claimed_order_bonus_on`).
pub(crate) async fn close_order_bonus_on(
    conn: &mut AnyConnection,
    order_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rewards SET expires_at = $1
         WHERE order_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now_ms)
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records a reward and its audit entry, and enqueues its delivery in chunks of at most
    /// `chunk` users, all in one transaction. Listed ids must all name users.
    pub async fn create_reward(
        &self,
        reward: &NewReward,
        chunk: usize,
        audit: AuditRecord<'_>,
    ) -> Result<RewardCreation, StoreError> {
        let chunk = chunk.max(1);
        let now = self.clock.now_ms();
        let id = new_id("rwd");
        let mut tx = self.db.begin_write().await?;
        let (audience, recipients, jobs) = match &reward.audience {
            Audience::Users(user_ids) => {
                let unknown = unknown_users(&mut tx, user_ids).await?;
                if !unknown.is_empty() {
                    tx.rollback().await?;
                    return Ok(RewardCreation::UnknownUsers(unknown));
                }
                let jobs: Vec<NewJob> = user_ids
                    .chunks(chunk)
                    .enumerate()
                    .map(|(n, ids)| {
                        let payload = DeliveryPayload {
                            reward_id: id.clone(),
                            user_ids: Some(ids.to_vec()),
                            after: None,
                        };
                        delivery_job(&payload, format!("{DELIVERY_JOB}:{id}:{n}"))
                    })
                    .collect();
                ("users", user_ids.len() as i64, jobs)
            }
            Audience::AllMembers => {
                let members: i64 = sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM users
                     WHERE role = 'member' AND created_at <= $1",
                )
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let payload = DeliveryPayload {
                    reward_id: id.clone(),
                    user_ids: None,
                    after: Some(String::new()),
                };
                let first = delivery_job(&payload, format!("{DELIVERY_JOB}:{id}:after:"));
                ("all_members", members, vec![first])
            }
        };
        sqlx::query(
            "INSERT INTO rewards (id, title, credits, audience, recipients, expires_at, created_by,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&reward.title)
        .bind(reward.credits)
        .bind(audience)
        .bind(recipients)
        .bind(reward.expires_at_ms)
        .bind(audit.actor_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for job in &jobs {
            crate::jobs::enqueue_in(&mut tx, job, now).await?;
        }
        let details = serde_json::json!({
            "title": reward.title,
            "credits": reward.credits,
            "audience": audience,
            "recipients": recipients,
            "expires_at": reward.expires_at_ms.map(crate::clock::rfc3339),
        });
        let audit = AuditRecord {
            target: Some(&id),
            details,
            ..audit
        };
        crate::audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(RewardCreation::Created { id, recipients })
    }

    /// Delivers one chunk of a reward in one transaction: its listed users, or the next
    /// `chunk` members (by id) registered by the time the reward was sent, enqueueing the chunk
    /// after them in the same transaction. Run twice, it delivers nothing twice. Answers how
    /// many inboxes it reached.
    pub async fn deliver_reward_chunk(
        &self,
        payload: &DeliveryPayload,
        chunk: usize,
    ) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let sent_at: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM rewards WHERE id = $1")
                .bind(&payload.reward_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(sent_at) = sent_at else {
            return Err(LedgerError::NotFound("reward").into());
        };
        let delivered = match (&payload.user_ids, &payload.after) {
            (Some(user_ids), _) => deliver_on(&mut tx, &payload.reward_id, user_ids, now).await?,
            (None, after) => {
                let after = after.as_deref().unwrap_or_default();
                let limit = chunk.max(1) as i64;
                let members: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM users WHERE role = 'member' AND created_at <= $1 AND id > $2
                     ORDER BY id LIMIT $3",
                )
                .bind(sent_at)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let delivered = deliver_on(&mut tx, &payload.reward_id, &members, now).await?;
                if let (true, Some(last)) = (members.len() as i64 == limit, members.last()) {
                    let next = DeliveryPayload {
                        reward_id: payload.reward_id.clone(),
                        user_ids: None,
                        after: Some(last.clone()),
                    };
                    let unique = format!("{DELIVERY_JOB}:{}:after:{last}", payload.reward_id);
                    crate::jobs::enqueue_in(&mut tx, &delivery_job(&next, unique), now).await?;
                }
                delivered
            }
        };
        tx.commit().await?;
        self.jobs.wake().notify_one();
        Ok(delivered)
    }

    /// The user's inbox, newest first.
    pub async fn inbox(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<Page<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.reward_id, r.title, r.credits, r.expires_at, i.claimed_at, i.created_at
             FROM inbox_items i JOIN rewards r ON r.id = i.reward_id
             WHERE i.user_id = $1 AND i.id < $2 ORDER BY i.id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(page.before_or_max())
        .bind(page.fetch_limit())
        .fetch_all(&self.db.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(InboxItem {
                    id: row.try_get("id")?,
                    reward_id: row.try_get("reward_id")?,
                    title: row.try_get("title")?,
                    credits: row.try_get("credits")?,
                    expires_at_ms: row.try_get("expires_at")?,
                    claimed_at_ms: row.try_get("claimed_at")?,
                    created_at_ms: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page.finish(items, |item| item.id.clone()))
    }
}
