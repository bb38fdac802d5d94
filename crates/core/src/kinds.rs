//! The ledger's closed vocabularies, with their stored spellings.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a transfer was for; `kind` in a user's transaction history.
    TransferKind {
        Purchase => "purchase",
        Bonus => "bonus",
        Spend => "spend",
        Refund => "refund",
        Redemption => "redemption",
        RedemptionRefund => "redemption_refund",
        Allowance => "allowance",
        Expiry => "expiry",
        Gift => "gift",
        Adjustment => "adjustment",
        AutoTopup => "auto_topup",
        Clawback => "clawback", // credits taken back when their order is refunded
    }
);

string_enum!(
    /// Where an order is in its life: `pending` until paid, failed, cancelled or expired;
    /// `paid` until fully refunded.
    OrderStatus {
        Pending => "pending",
        Paid => "paid",
        Failed => "failed",
        Cancelled => "cancelled",
        Expired => "expired",
        Refunded => "refunded",
    }
);

string_enum!(
    /// Where a grant's credits came from.
    GrantSource {
        Purchase => "purchase",
        Bonus => "bonus",
        Allowance => "allowance",
        Gift => "gift",
        Refund => "refund",
        Adjustment => "adjustment",
    }
);

string_enum!(
    /// The accounts that balance user accounts. `Issuance` is where credits come into
    /// existence, so it runs negative by exactly the credits outstanding elsewhere.
    SystemAccount {
        Issuance => "issuance",
        Revenue => "revenue",
        Promotions => "promotions",
        Expired => "expired",
    }
);

string_enum!(
    HoldStatus {
        Held => "held",
        Captured => "captured",
        Voided => "voided",
        Expired => "expired",
    }
);

string_enum!(
    Role {
        Member => "member",
        Merchant => "merchant",
        Admin => "admin",
    }
);

string_enum!(
    /// What a package sells: a one-off pack of credits, or a subscription with a daily allowance.
    PackageKind {
        CreditPack => "credit_pack",
        Subscription => "subscription",
    }
);

string_enum!(
    UserStatus {
        Active => "active",
        Suspended => "suspended",
    }
);

impl GrantSource {
    /// The system account a grant of this source is funded from: promotional credits come
    /// from `promotions`, everything paid for or restored comes from `issuance`.
    pub fn funding_account(self) -> SystemAccount {
        match self {
            GrantSource::Bonus | GrantSource::Gift | GrantSource::Allowance => {
                SystemAccount::Promotions
            }
            GrantSource::Purchase | GrantSource::Refund | GrantSource::Adjustment => {
                SystemAccount::Issuance
            }
        }
    }

    pub fn transfer_kind(self) -> TransferKind {
        match self {
            GrantSource::Purchase => TransferKind::Purchase,
            GrantSource::Bonus => TransferKind::Bonus,
            GrantSource::Allowance => TransferKind::Allowance,
            GrantSource::Gift => TransferKind::Gift,
            GrantSource::Refund => TransferKind::Refund,
            GrantSource::Adjustment => TransferKind::Adjustment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_spelling_parses_back() {
        for kind in TransferKind::ALL {
            assert_eq!(TransferKind::parse(kind.as_str()), Some(*kind));
        }
        for source in GrantSource::ALL {
            assert_eq!(GrantSource::parse(source.as_str()), Some(*source));
        }
        assert_eq!(Role::parse("root"), None);
    }
}

string_enum!(
    /// Where a job is: `queued` until claimed, `running` while leased, then `done`, or
    /// `failed` once its attempts are used up (an admin may queue it again).
    JobState {
        Queued => "queued",
        Running => "running",
        Done => "done",
        Failed => "failed",
    }
);

string_enum!(
    /// What applying a payment provider's event did to its order.
    FulfilmentOutcome {
        /// The order is now paid and its credits granted.
        Fulfilled => "fulfilled",
        /// This event was handled before: nothing to do.
        Duplicate => "duplicate",
        /// Another event already paid this order.
        AlreadyPaid => "already_paid",
        Failed => "failed",
        /// The provider collected a different amount or currency: recorded, not fulfilled.
        AmountMismatch => "amount_mismatch",
        /// Money arrived for an order that was cancelled, expired or failed: it must go back.
        RefundRequired => "refund_required",
        /// Another event for the same late payment already asked for its refund.
        RefundAlreadyRequired => "refund_already_required",
        /// One attempt failed; the order stays payable.
        AttemptFailed => "attempt_failed",
        /// The event refers to a payment not applied yet (events arrive in any order): it is
        /// not recorded, and the provider is asked to deliver it again later.
        RetryLater => "retry_later",
        /// The provider refunded (part of) the payment on its side; recorded and clawed back.
        ProviderRefund => "provider_refund",
        UnknownPayment => "unknown_payment",
        Ignored => "ignored",
        /// Well signed but not for this account (another app id, merchant or seller): recorded,
        /// never fulfilled.
        Refused => "refused",
    }
);

string_enum!(
    /// Where a user's auto top-up rule is: `active` (it tops up), `paused` (a limit stopped it
    /// until the limit resets), or `off` (turned off by the user, or by itself after repeated
    /// declines).
    AutoTopupStatus {
        Active => "active",
        Paused => "paused",
        Off => "off",
    }
);

string_enum!(
    /// What an order buys: a catalog package, or an automatic top-up of credits.
    OrderKind {
        Package => "package",
        AutoTopup => "auto_topup",
    }
);

string_enum!(
    /// How a notification reaches its user; `log` when no mail or SMS gateway is configured.
    NotificationChannel {
        Email => "email",
        Sms => "sms",
        Log => "log",
    }
);

string_enum!(
    NotificationStatus {
        Queued => "queued",
        Sent => "sent",
        Failed => "failed",
    }
);

string_enum!(
    /// What a notification tells its user.
    NotificationKind {
        OrderPaid => "order_paid",
        PaymentFailed => "payment_failed",
        AutoTopupSucceeded => "auto_topup_succeeded",
        AutoTopupFailed => "auto_topup_failed",
        AutoTopupDisabled => "auto_topup_disabled",
        BalanceLow => "balance_low",
        SubscriptionEnding => "subscription_ending",
        SubscriptionEnded => "subscription_ended",
        SignInCode => "sign_in_code",
    }
);

string_enum!(
    /// Where money going back to a buyer stands with its provider.
    RefundStatus {
        /// Recorded; the provider has not confirmed it yet (the queue asks it).
        Pending => "pending",
        Succeeded => "succeeded",
        /// Final: the provider refused; an admin settles it by hand.
        Failed => "failed",
    }
);

string_enum!(
    /// Why money goes back: a refund of a paid order, or a payment that arrived for an order
    /// that could no longer take it.
    RefundKind {
        Refund => "refund",
        LatePayment => "late_payment",
    }
);

string_enum!(
    /// What became of an order's money, apart from the order's own status.
    PaymentStatus {
        Pending => "pending",
        Succeeded => "succeeded",
        /// An attempt failed; the order may still be paid.
        Failed => "failed",
        /// The provider collected another amount or currency: recorded, never fulfilled.
        Mismatch => "mismatch",
        /// Money arrived for an order that could no longer take it and must go back.
        RefundRequired => "refund_required",
        Refunded => "refunded",
        RefundFailed => "refund_failed",
    }
);

string_enum!(
    /// The language a user reads Bursar's messages in.
    Language {
        En => "en",
        ZhHans => "zh-Hans",
        ZhHant => "zh-Hant",
    }
);

string_enum!(
    /// Where a marketplace redemption is: `pending` until its merchant fulfils it (or it is
    /// cancelled, its points refunded and its stock restored).
    RedemptionStatus {
        Pending => "pending",
        Fulfilled => "fulfilled",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// A way to sign in: a password, an account at Google, Apple or Facebook, or one-time
    /// codes sent to an email address or a phone.
    IdentityProvider {
        Password => "password",
        Google => "google",
        Apple => "apple",
        Facebook => "facebook",
        EmailCode => "email_code",
        SmsCode => "sms_code",
    }
);

string_enum!(
    /// Where a one-time sign-in code is sent.
    CodeChannel {
        Email => "email",
        Sms => "sms",
    }
);

string_enum!(
    /// What an outgoing webhook reports.
    EventType {
        OrderPaid => "order.paid",
        OrderFailed => "order.failed",
        OrderRefunded => "order.refunded",
        BalanceLow => "balance.low",
        AutoTopupSucceeded => "auto_topup.succeeded",
        AutoTopupFailed => "auto_topup.failed",
        SubscriptionRenewed => "subscription.renewed",
        SubscriptionExpired => "subscription.expired",
        RedemptionCreated => "redemption.created",
        RedemptionCancelled => "redemption.cancelled",
    }
);

string_enum!(
    /// Where one event's delivery to one endpoint stands.
    DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
);

string_enum!(
    /// Where a subscription is: `active` until its end, then `expired`.
    SubscriptionStatus {
        Active => "active",
        Expired => "expired",
        Cancelled => "cancelled",
    }
);
