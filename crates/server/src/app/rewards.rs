//! The reward inbox: an admin sends a reward to listed users or to every member (audit-logged,
//! delivered by jobs in bounded chunks); each recipient claims it once, before it expires.

use bursar_core::MAX_CREDITS;
use bursar_store::audit::AuditRecord;
use bursar_store::ledger::{Command, Executed, Idempotent, Request};
use bursar_store::rewards::{Audience, DeliveryPayload, NewReward, RewardCreation};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub const TITLE_CHARS_MAX: usize = 200;
/// Users one request may list; larger audiences are sent to all members.
pub const USER_IDS_MAX: usize = 1000;

/// A reward as an admin asks for it, before it is checked.
#[derive(Debug, Clone)]
pub struct RewardDraft {
    pub title: String,
    pub credits: i64,
    pub user_ids: Option<Vec<String>>,
    pub all_members: Option<bool>,
    pub expires_at_ms: Option<i64>,
}

/// Checks a draft: a title, positive credits, exactly one audience, an expiry in the future.
fn check(draft: RewardDraft, now_ms: i64) -> ApiResult<NewReward> {
    let title = draft.title.trim();
    if title.is_empty() || title.chars().count() > TITLE_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "title must be 1 to {TITLE_CHARS_MAX} characters"
        )));
    }
    if !(1..=MAX_CREDITS).contains(&draft.credits) {
        return Err(ApiError::invalid(
            "credits must be a whole number from 1 to 2^53 - 1",
        ));
    }
    let audience = match (draft.user_ids, draft.all_members == Some(true)) {
        (Some(ids), false) => {
            let mut distinct: Vec<String> = Vec::with_capacity(ids.len());
            for id in ids {
                if !distinct.contains(&id) {
                    distinct.push(id);
                }
            }
            if distinct.is_empty() || distinct.len() > USER_IDS_MAX {
                return Err(ApiError::invalid(format!(
                    "user_ids must list 1 to {USER_IDS_MAX} users"
                )));
            }
            Audience::Users(distinct)
        }
        (None, true) => Audience::AllMembers,
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of user_ids and all_members: true",
            ));
        }
    };
    if draft.expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    Ok(NewReward {
        title: title.to_string(),
        credits: draft.credits,
        audience,
        expires_at_ms: draft.expires_at_ms,
    })
}

/// Sends a reward: recorded with its audit entry and its delivery jobs in one transaction.
/// Answers its id and how many users it goes to.
pub async fn send(
    state: &AppState,
    draft: RewardDraft,
    audit: AuditRecord<'_>,
) -> ApiResult<(String, i64)> {
    let reward = check(draft, state.store.clock.now_ms())?;
    match state
        .store
        .create_reward(&reward, state.config.reward_delivery_chunk, audit)
        .await?
    {
        RewardCreation::Created { id, recipients } => Ok((id, recipients)),
        RewardCreation::UnknownUsers(unknown) => {
            let shown: Vec<&str> = unknown.iter().take(10).map(String::as_str).collect();
            Err(ApiError::invalid(format!(
                "user_ids names {} unknown user(s): {}",
                unknown.len(),
                shown.join(", ")
            )))
        }
    }
}

/// Delivers one chunk of a reward (the delivery job's work). Answers how many inboxes it
/// reached.
pub async fn deliver(state: &AppState, payload: &DeliveryPayload) -> ApiResult<u64> {
    Ok(state
        .store
        .deliver_reward_chunk(payload, state.config.reward_delivery_chunk)
        .await?)
}

/// Claims the user's inbox item `item_id`: `not_found` for anyone else's, `already_claimed`
/// the second time, `expired` past its expiry.
pub async fn claim(
    state: &AppState,
    user_id: &str,
    item_id: &str,
    idempotent: Option<Idempotent>,
) -> ApiResult<Executed> {
    let request = Request {
        command: Command::ClaimReward {
            user_id: user_id.to_string(),
            item_id: item_id.to_string(),
        },
        idempotent,
    };
    Ok(state.store.ledger.execute(request).await?)
}
