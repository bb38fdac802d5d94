//! The burn-down order: which grants pay for a debit. Soonest-expiring first (grants that never
//! expire last), then lower `priority` first, then oldest first.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLot {
    pub id: String,
    pub remaining: i64,
    pub priority: i64,
    /// Unix milliseconds; `None` never expires.
    pub expires_at_ms: Option<i64>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

fn burn_order(a: &GrantLot, b: &GrantLot) -> Ordering {
    let expiry = match (a.expires_at_ms, b.expires_at_ms) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    expiry
        .then(a.priority.cmp(&b.priority))
        .then(a.created_at_ms.cmp(&b.created_at_ms))
        .then(a.id.cmp(&b.id))
}

/// Splits `amount` over `lots` in burn-down order. Returns `(grant id, amount taken)` pairs and
/// the part no grant covered (which an overdraft must absorb). Lots with nothing left are skipped.
pub fn plan_burn(lots: &[GrantLot], amount: i64) -> (Vec<(String, i64)>, i64) {
    let mut ordered: Vec<&GrantLot> = lots.iter().filter(|lot| lot.remaining > 0).collect();
    ordered.sort_by(|a, b| burn_order(a, b));
    let mut left = amount;
    let mut taken = Vec::new();
    for lot in ordered {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        taken.push((lot.id.clone(), take));
        left -= take;
    }
    (taken, left)
}

/// Which overdue grants expire, and by how much, at `now_ms`: soonest-expired first, each
/// giving up what is left of it, but never more in all than `available` (credits reserved by
/// active holds stay, so a hold taken before the expiry can still be captured). Returns
/// `(grant id, amount expired)` pairs.
pub fn plan_expiry(lots: &[GrantLot], available: i64, now_ms: i64) -> Vec<(String, i64)> {
    let mut overdue: Vec<&GrantLot> = lots
        .iter()
        .filter(|lot| lot.remaining > 0 && lot.expires_at_ms.is_some_and(|at| at <= now_ms))
        .collect();
    overdue.sort_by(|a, b| (a.expires_at_ms, &a.id).cmp(&(b.expires_at_ms, &b.id)));
    let mut left = available.max(0);
    let mut expired = Vec::new();
    for lot in overdue {
        let take = lot.remaining.min(left);
        if take == 0 {
            break;
        }
        expired.push((lot.id.clone(), take));
        left -= take;
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lot(
        id: &str,
        remaining: i64,
        priority: i64,
        expires: Option<i64>,
        created: i64,
    ) -> GrantLot {
        GrantLot {
            id: id.into(),
            remaining,
            priority,
            expires_at_ms: expires,
            created_at_ms: created,
        }
    }

    #[test]
    fn overdue_grants_expire_soonest_first_within_what_is_available() {
        let lots = vec![
            lot("later", 30, 0, Some(2_000), 1),
            lot("sooner", 20, 0, Some(1_000), 1),
            lot("not_yet", 50, 0, Some(9_000), 1),
            lot("forever", 50, 0, None, 1),
            lot("spent", 0, 0, Some(500), 1),
        ];
        assert_eq!(
            plan_expiry(&lots, 100, 5_000),
            vec![("sooner".to_string(), 20), ("later".to_string(), 30)]
        );
        assert_eq!(
            plan_expiry(&lots, 35, 5_000),
            vec![("sooner".to_string(), 20), ("later".to_string(), 15)],
            "held credits stay: only what is available expires"
        );
        assert!(plan_expiry(&lots, 0, 5_000).is_empty());
        assert!(
            plan_expiry(&lots, -10, 5_000).is_empty(),
            "an overdrawn account"
        );
        assert!(
            plan_expiry(&lots, 100, 999).is_empty(),
            "nothing is due yet"
        );
    }

    #[test]
    fn soonest_expiring_burns_first_then_priority_then_oldest() {
        let lots = vec![
            lot("forever", 100, 0, None, 1),
            lot("late", 100, 0, Some(2_000), 1),
            lot("soon_low_priority", 10, 5, Some(1_000), 1),
            lot("soon_high_priority", 10, 1, Some(1_000), 2),
            lot("old_forever", 5, 0, None, 0),
        ];
        let (taken, uncovered) = plan_burn(&lots, 130);
        assert_eq!(
            taken,
            vec![
                ("soon_high_priority".to_string(), 10),
                ("soon_low_priority".to_string(), 10),
                ("late".to_string(), 100),
                ("old_forever".to_string(), 5),
                ("forever".to_string(), 5),
            ]
        );
        assert_eq!(uncovered, 0);
    }

    #[test]
    fn what_no_grant_covers_is_reported_as_uncovered() {
        let (taken, uncovered) = plan_burn(&[lot("a", 30, 0, None, 0)], 50);
        assert_eq!(taken, vec![("a".to_string(), 30)]);
        assert_eq!(uncovered, 20);
    }

    proptest! {
        #[test]
        fn a_burn_takes_exactly_the_amount_and_never_more_than_a_lot_holds(
            remainders in proptest::collection::vec(0i64..1_000, 0..12),
            amount in 1i64..20_000,
        ) {
            let lots: Vec<GrantLot> = remainders.iter().enumerate()
                .map(|(i, r)| lot(&format!("g{i}"), *r, (i % 3) as i64, (i % 2 == 0).then_some(i as i64), i as i64))
                .collect();
            let (taken, uncovered) = plan_burn(&lots, amount);
            let total: i64 = taken.iter().map(|(_, t)| t).sum();
            prop_assert_eq!(total + uncovered, amount);
            prop_assert!(uncovered >= 0);
            for (id, t) in &taken {
                let lot = lots.iter().find(|l| &l.id == id).expect("taken from a known lot");
                prop_assert!(*t > 0 && *t <= lot.remaining);
            }
            let available: i64 = remainders.iter().sum();
            prop_assert_eq!(uncovered, (amount - available).max(0));
        }
    }
}
