//! What ledger commands answer: one typed outcome per command, and how an idempotent request's
//! first outcome is kept for its retries.
//!
//! The idempotency record must be written in the same transaction as the effect, and a retry
//! must get the first response byte for byte, even after an upgrade changed how outcomes are
//! presented. So the caller hands the writer its rendering with the command (`Render`), the
//! writer stores the rendered bytes under the key in the transaction, and a retry gets those
//! bytes back (`Executed::Replayed`). The store never interprets them: it speaks no HTTP.

use bursar_core::{FulfilmentOutcome, HoldStatus};
use serde::Serialize;

use super::Idempotency;

/// What a command did, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Spent(SpendReceipt),
    Granted(GrantReceipt),
    Refunded(RefundReceipt),
    Held(HoldReceipt),
    Captured(CaptureReceipt),
    Voided(VoidReceipt),
    Adjusted(AdjustmentReceipt),
    /// `ExpireDue`: how many accounts had their overdue holds and grants settled.
    Expired {
        accounts: usize,
    },
    Fulfilment(Fulfilment),
    OrderRefunded(super::orders::OrderRefundReceipt),
    /// `GrantAllowance` for a day already granted: nothing changed.
    AllowanceAlreadyGranted,
    Redeemed(Box<RedemptionReceipt>),
    RedemptionCancelled(Box<RedemptionReceipt>),
    GiftClaimed(GiftReceipt),
    RewardClaimed(RewardReceipt),
    /// `PrepareTopup`'s decision, and whether the job's completion was recorded with it (`Some`:
    /// recorded, and whether the claim still held the lease).
    TopupPrepared {
        step: crate::auto_topup::TopupStep,
        job_completed: Option<bool>,
    },
}

/// A caller's presentation of an outcome: a status code of its choosing and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub body: String,
}

/// Renders an outcome. A plain function, not a closure: what is stored for retries must follow
/// from the outcome alone, never from anything else the first request carried.
pub type Render = fn(&Outcome) -> Rendered;

/// An idempotency key, with the rendering to store under it.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub key: Idempotency,
    pub render: Render,
}

/// What executing a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// Applied now. `rendered` is what was stored under the request's idempotency key, if any.
    Applied {
        outcome: Outcome,
        rendered: Option<Rendered>,
    },
    /// A retry of an idempotent request: what was stored when it was first applied.
    Replayed(Rendered),
}

impl Executed {
    /// The typed outcome, when the command was applied now (not a replay).
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Executed::Applied { outcome, .. } => Some(outcome),
            Executed::Replayed(_) => None,
        }
    }
}

/// Which grant paid how much of a debit; also a part of the history's read model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaidBy {
    pub grant_id: String,
    pub source: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendReceipt {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub available_after: i64,
    pub paid_by: Vec<PaidBy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantReceipt {
    pub transaction_id: String,
    pub grant_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReceipt {
    pub transaction_id: String,
    pub refund_of: String,
    pub user_id: String,
    pub amount: i64,
    pub total_refunded: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldReceipt {
    pub id: String,
    pub user_id: String,
    pub status: HoldStatus,
    pub amount: i64,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
    pub available_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureReceipt {
    pub id: String,
    pub status: HoldStatus,
    pub transaction_id: String,
    pub captured: i64,
    pub released: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidReceipt {
    pub id: String,
    pub status: HoldStatus,
    pub released: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentReceipt {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub reason: String,
    pub balance_after: i64,
}

/// A redemption as its command left it. `transaction_id` is the points' move (the redemption's,
/// or its cancellation's refund); `balance_after` the member's balance after it, told only to
/// the member (a merchant or an admin who cancels does not learn it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionReceipt {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub product_name: String,
    pub merchant_id: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub points_cost: i64,
    pub status: bursar_core::RedemptionStatus,
    pub transaction_id: String,
    pub balance_after: Option<i64>,
    pub created_at_ms: i64,
}

/// What a payment event did to its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfilment {
    pub outcome: FulfilmentOutcome,
    pub order_id: Option<String>,
    /// For `refund_required`: the refund to send to the provider now.
    pub refund_id: Option<String>,
    /// For `FulfilForJob`: whether the job's completion was recorded (`false`: its claim had
    /// lost the lease, and the record was left to the new holder).
    pub job_completed: Option<bool>,
}

/// A daily gift claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftReceipt {
    pub transaction_id: String,
    pub user_id: String,
    /// The local date claimed, `YYYY-MM-DD`.
    pub day: String,
    /// Consecutive local days claimed, this one included.
    pub streak: i64,
    pub credits: i64,
    pub balance_after: i64,
}

/// An inbox reward claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardReceipt {
    /// The inbox item's id.
    pub id: String,
    pub reward_id: String,
    pub transaction_id: String,
    pub credits: i64,
    pub balance_after: i64,
}
