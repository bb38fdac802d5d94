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
mod outcome;
pub mod read;
pub(crate) mod sql;
mod state;
mod writer;

use bursar_core::{Credits, GiftSchedule, GrantSource, Money};

pub use balances::BalanceReads;
pub use writer::Ledger;

pub use crate::idempotency::Idempotency;

#[derive(Debug, Clone)]
pub struct Request {
    pub command: Command,
    /// With a key, the first outcome's rendering is stored and every retry gets it back.
    pub idempotent: Option<Idempotent>,
}

impl From<Command> for Request {
    fn from(command: Command) -> Self {
        Self {
            command,
            idempotent: None,
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
    /// `max_accounts` accounts. Answers how many accounts were processed.
    ExpireDue {
        max_accounts: i64,
    },
    /// Grants a subscription's allowance for one local day, once: the day is recorded in the
    /// same transaction, so a second command for it grants nothing (`AllowanceAlreadyGranted`).
    GrantAllowance {
        subscription_id: String,
        user_id: String,
        /// The local date, `YYYY-MM-DD`.
        day: String,
        amount: Credits,
        /// The next local midnight: unused allowance never carries over.
        expires_at_ms: i64,
    },
    /// Claims the user's daily gift for local day `day`: the day's claim row and its `gift`
    /// grant commit together, and a second claim of the day is refused (`already_claimed`).
    /// The streak continues from a claim on `yesterday`, else starts again at 1.
    ClaimDailyGift {
        user_id: String,
        /// The local dates, `YYYY-MM-DD`.
        day: String,
        yesterday: String,
        schedule: GiftSchedule,
    },
    /// Claims a reward in the user's inbox, once: the claim and its `gift` grant commit
    /// together. Another user's item is `not_found`; an expired one is refused (`expired`).
    ClaimReward {
        user_id: String,
        item_id: String,
    },
    /// Applies a verified payment provider event to its order, exactly once.
    Fulfil(PaymentEvent),
    /// `Fulfil`, with the job that charged the payment (an off-session charge, whose work ends
    /// with its fulfilment) recorded as done in the same transaction.
    FulfilForJob(PaymentEvent, crate::jobs::JobClaim),
    /// Redeems a marketplace product for a member: its stock is taken and the points move
    /// from the member (through the normal spend rules) to the merchant's account.
    Redeem {
        user_id: String,
        product_id: String,
        quantity: i64,
        actor: String,
    },
    /// Cancels a pending redemption, once: the points go back to the member from the
    /// merchant's account and the stock is restored.
    CancelRedemption {
        redemption_id: String,
        by: Canceller,
    },
    /// Refunds (part of) a paid order and claws back its credits.
    RefundOrder(orders::OrderRefund),
    /// Decides the user's auto top-up and records the decision: its order, or the limit that
    /// stopped it (see `auto_topup::decide_on`). In the batch, where the balance is known and
    /// SQLite's one write lock is already held, rather than in a transaction of its own that
    /// the writer would wait behind. With `completes` (the job running the rule), a decision
    /// that ends the job's work records its completion with it.
    PrepareTopup {
        user_id: String,
        settings: Box<crate::auto_topup::TopupSettings>,
        completes: Option<crate::jobs::JobClaim>,
    },
}

/// Who cancels a redemption: its member, the merchant whose product it is, or an admin. Anyone
/// else finds no such redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canceller {
    Member(String),
    Merchant(String),
    Admin(String),
}

impl Canceller {
    pub fn id(&self) -> &str {
        match self {
            Canceller::Member(id) | Canceller::Merchant(id) | Canceller::Admin(id) => id,
        }
    }
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
    /// Set when an admin confirmed the payment by hand (a bank transfer that arrived): the
    /// confirmation's audit entry commits with the fulfilment.
    pub confirmed_by: Option<ConfirmedBy>,
}

/// Who confirmed a payment by hand, and from where.
#[derive(Debug, Clone)]
pub struct ConfirmedBy {
    pub actor_id: String,
    pub actor_kind: &'static str,
    pub ip: Option<String>,
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
    /// Well signed but not for this account (another app, merchant or seller), or never to be
    /// fulfilled: recorded with the reason, nothing else.
    Refused(String),
}

pub use outcome::{
    AdjustmentReceipt, CaptureReceipt, Executed, Fulfilment, GiftReceipt, GrantReceipt,
    HoldReceipt, Idempotent, Outcome, PaidBy, RedemptionReceipt, RefundReceipt, Render, Rendered,
    RewardReceipt, SpendReceipt, VoidReceipt,
};
