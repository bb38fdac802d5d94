//! The amounts the ledger's booking rules decide, as pure functions: whether a debit fits, how
//! a capture splits a hold, and how much of an order's credits a refund claws back. The writer
//! loads the figures, asks these, and applies the answer (`store/src/ledger/state/booking.rs`).
//! Which grants pay, and which expire, are `burn::plan_burn` and `burn::plan_expiry`.

use crate::LedgerError;
use crate::pricing;

/// A debit of `amount` fits when it leaves the account no lower than minus its overdraft
/// limit, counting the credits holds reserve (`spendable` = balance − held + limit).
pub fn ensure_spendable(available: i64, spendable: i64, amount: i64) -> Result<(), LedgerError> {
    if spendable < amount {
        return Err(LedgerError::InsufficientCredits {
            available,
            requested: amount,
        });
    }
    Ok(())
}

/// How a capture splits an open hold of `held` credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureSplit {
    /// Spent.
    pub captured: i64,
    /// Given back to the account.
    pub released: i64,
}

/// A capture spends what is asked (all of the hold by default), never more than is held; the
/// rest is released.
pub fn split_capture(held: i64, requested: Option<i64>) -> Result<CaptureSplit, LedgerError> {
    let captured = requested.unwrap_or(held);
    if captured > held {
        return Err(LedgerError::Invalid(format!(
            "amount {captured} exceeds the held amount {held}"
        )));
    }
    Ok(CaptureSplit {
        captured,
        released: held - captured,
    })
}

/// What an order has granted and taken back so far, in credits and in money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCredits {
    pub credits_granted: i64,
    pub credits_clawed_back: i64,
    /// The order's price, in minor units.
    pub total: i64,
}

/// What the user's account can give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClawbackRoom {
    /// What is left of the order's own grants.
    pub left_of_order: i64,
    /// Balance less held credits.
    pub available: i64,
    /// Available plus the overdraft limit.
    pub spendable: i64,
}

/// How many credits a refund of `amount` (minor units, the rest of the order when `fully`)
/// takes back, and how many it should have: the order's credits in proportion to the money
/// refunded (the last refund takes whatever is still owed). Capped by default at what is left
/// of the order's own grants and not reserved by holds; with `allow_negative`, down to minus
/// the account's overdraft limit. Returns `(clawback, target)`.
pub fn plan_clawback(
    order: OrderCredits,
    amount: i64,
    fully: bool,
    room: ClawbackRoom,
    allow_negative: bool,
) -> (i64, i64) {
    let owed = order.credits_granted - order.credits_clawed_back;
    let target = if fully || order.total == 0 {
        owed
    } else {
        pricing::share(order.credits_granted, amount, order.total).min(owed)
    };
    let limit = if allow_negative {
        room.spendable
    } else {
        room.left_of_order.min(room.available)
    };
    (target.min(limit.max(0)), target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debit_fits_down_to_minus_the_limit() {
        assert!(ensure_spendable(10, 15, 15).is_ok());
        assert_eq!(
            ensure_spendable(10, 15, 16),
            Err(LedgerError::InsufficientCredits {
                available: 10,
                requested: 16
            })
        );
    }

    #[test]
    fn a_capture_takes_at_most_the_hold_and_releases_the_rest() {
        assert_eq!(
            split_capture(100, Some(30)),
            Ok(CaptureSplit {
                captured: 30,
                released: 70
            })
        );
        assert_eq!(split_capture(100, None).map(|s| s.captured), Ok(100));
        assert!(split_capture(100, Some(101)).is_err());
    }

    const ORDER: OrderCredits = OrderCredits {
        credits_granted: 1000,
        credits_clawed_back: 0,
        total: 4500,
    };
    const ROOMY: ClawbackRoom = ClawbackRoom {
        left_of_order: 1000,
        available: 1000,
        spendable: 1000,
    };

    #[test]
    fn a_partial_refund_claws_back_in_proportion_and_the_last_takes_the_rest() {
        // A third of the money: a third of the credits, rounded down.
        assert_eq!(plan_clawback(ORDER, 1500, false, ROOMY, false), (333, 333));
        let after = OrderCredits {
            credits_clawed_back: 333,
            ..ORDER
        };
        assert_eq!(plan_clawback(after, 3000, true, ROOMY, false), (667, 667));
    }

    #[test]
    fn a_clawback_is_capped_unless_negative_balances_are_allowed() {
        let spent = ClawbackRoom {
            left_of_order: 200,
            available: 500,
            spendable: 800,
        };
        assert_eq!(plan_clawback(ORDER, 4500, true, spent, false), (200, 1000));
        assert_eq!(plan_clawback(ORDER, 4500, true, spent, true), (800, 1000));
        let overdrawn = ClawbackRoom {
            available: -5,
            spendable: -5,
            ..spent
        };
        assert_eq!(plan_clawback(ORDER, 4500, true, overdrawn, true), (0, 1000));
    }
}
