//! `ClaimReward`: an inbox item marked claimed and its `gift` grant from `promotions`, together.

use bursar_core::GrantSource;
use sqlx::AnyConnection;

use super::grant::{NewGrant, grant};
use super::require_user;
use crate::StoreError;
use crate::ledger::state::UnitOfWork;
use crate::ledger::{Outcome, RewardReceipt};

pub(super) async fn claim(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    item_id: &str,
) -> Result<Outcome, StoreError> {
    // Refusals first (someone else's item, claimed, expired); the claim is a guarded write.
    require_user(uow, conn, user_id).await?;
    let reward = crate::rewards::claim_on(conn, user_id, item_id, uow.now_ms).await?;
    // The marker `verify` matches against the claim.
    let metadata =
        serde_json::json!({"reward_id": reward.reward_id, "inbox_item_id": item_id}).to_string();
    let gift = NewGrant {
        amount: reward.credits,
        source: GrantSource::Gift,
        priority: 0,
        expires_at_ms: None,
        description: Some(&reward.title),
        metadata: Some(&metadata),
        actor: None,
    };
    let Outcome::Granted(granted) = grant(uow, conn, user_id, &gift).await? else {
        unreachable!("a grant answers with its receipt");
    };
    crate::rewards::record_transfer_on(conn, item_id, &granted.transaction_id).await?;
    Ok(Outcome::RewardClaimed(RewardReceipt {
        id: item_id.to_string(),
        reward_id: reward.reward_id,
        transaction_id: granted.transaction_id,
        credits: reward.credits,
        balance_after: granted.balance_after,
    }))
}
