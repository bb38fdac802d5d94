//! The ledger's write path. Every credit-moving change is a `Command` sent to the `Ledger`,
//! which applies it inside a transaction on the single writer (see `writer.rs`), together with
//! the idempotency record that makes a retry safe. Reads are in `read.rs`, and balance reads
//! are coalesced in `balances.rs`.

mod balances;
mod commands;
mod durability;
pub(crate) mod epoch;
mod history;
pub mod orders;
pub mod read;
mod sql;
mod state;
mod writer;

use bursar_core::{Credits, GrantSource, Money};
use serde::Serialize;

pub use balances::BalanceReads;
pub use writer::Ledger;

/// An `Idempotency-Key` as stored: per caller, with a hash of the request it was first used for.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub command: Command,
    pub idempotency: Option<Idempotency>,
}

impl From<Command> for Request {
    fn from(command: Command) -> Self {
        Self {
            command,
            idempotency: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Command {
    /// Credits a user from the system account that funds `source`.
    Grant {
        user_id: String,
        amount: Credits,
        source: GrantSource,
        priority: i64,
        expires_at_ms: Option<i64>,
        description: Option<String>,
        actor: Option<String>,
    },
    Spend {
        user_id: String,
        amount: Credits,
        description: Option<String>,
        metadata: Option<String>,
        actor: String,
    },
    Refund {
        transfer_id: String,
        amount: Option<Credits>,
        actor: String,
    },
    Hold {
        user_id: String,
        amount: Credits,
        expires_in_ms: i64,
        description: Option<String>,
        creator: String,
    },
    Capture {
        hold_id: String,
        amount: Option<Credits>,
        creator: String,
    },
    Void {
        hold_id: String,
        creator: String,
    },
    /// A signed manual correction by an admin, audit-logged in the same transaction.
    Adjust {
        user_id: String,
        amount: i64,
        reason: String,
        actor: String,
        ip: Option<String>,
    },
    /// Releases overdue holds and moves overdue grants' remainders to `expired`, for at most
    /// `max_accounts` accounts. Answers `{accounts}`: how many were processed.
    ExpireDue {
        max_accounts: i64,
    },
    /// Applies a verified payment provider event to its order, exactly once.
    Fulfil(PaymentEvent),
    /// Refunds (part of) a paid order and claws back its credits.
    RefundOrder(orders::OrderRefund),
}

/// A provider's webhook, verified and parsed, in the ledger's terms.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub outcome: PaymentOutcome,
    /// Bursar's payment id, when the provider echoes it; else `provider_ref` finds the order.
    pub payment_id: Option<String>,
    pub provider_ref: Option<String>,
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Succeeded,
    /// The payment is over and failed.
    Failed(String),
    /// One attempt failed; the buyer may still pay.
    AttemptFailed(String),
    /// The provider has refunded this much of the payment in all.
    Refunded {
        total_refunded: i64,
    },
    Ignored,
}

/// What a command answered: the HTTP status and the JSON body, exactly as first sent. A replay
/// of an idempotent request returns the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

impl Reply {
    pub(crate) fn new(status: u16, body: &impl Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
            replayed: false,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaidBy {
    pub grant_id: String,
    pub source: String,
    pub amount: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpendReceipt {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub available_after: i64,
    pub paid_by: Vec<PaidBy>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantReceipt {
    pub transaction_id: String,
    pub grant_id: String,
    pub user_id: String,
    pub amount: i64,
    pub balance_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundReceipt {
    pub transaction_id: String,
    pub refund_of: String,
    pub user_id: String,
    pub amount: i64,
    pub total_refunded: i64,
    pub balance_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoldReceipt {
    pub id: String,
    pub user_id: String,
    pub status: &'static str,
    pub amount: i64,
    pub expires_at: String,
    pub available_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaptureReceipt {
    pub id: String,
    pub status: &'static str,
    pub transaction_id: String,
    pub captured: i64,
    pub released: i64,
    pub balance_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VoidReceipt {
    pub id: String,
    pub status: &'static str,
    pub released: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustmentReceipt {
    pub transaction_id: String,
    pub user_id: String,
    pub amount: i64,
    pub reason: String,
    pub balance_after: i64,
}
