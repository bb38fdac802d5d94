//! The Bursar domain: credits, grants and their burn-down order, ledger vocabulary and
//! invariants. Pure types and functions with no I/O, so every rule here is unit-testable.

pub mod booking;
pub mod burn;
pub mod credits;
pub mod error;
pub mod gift;
pub mod kinds;
pub mod messages;
pub mod money;
pub mod pricing;
pub mod topup;

pub use booking::{
    CaptureSplit, ClawbackRoom, OrderCredits, ensure_spendable, plan_clawback, split_capture,
};
pub use burn::{GrantLot, plan_burn, plan_expiry};
pub use credits::{Credits, MAX_CREDITS};
pub use error::LedgerError;
pub use gift::GiftSchedule;
pub use kinds::{
    AutoTopupStatus, CodeChannel, DeliveryStatus, EventType, FulfilmentOutcome, GrantSource,
    HoldStatus, IdentityProvider, JobState, Language, NotificationChannel, NotificationKind,
    NotificationStatus, OrderKind, OrderStatus, PackageKind, PaymentStatus, RedemptionStatus,
    RefundKind, RefundStatus, Role, SubscriptionStatus, SystemAccount, TransferKind, UserStatus,
};
pub use money::{Money, MoneyError};
pub use pricing::Discount;
