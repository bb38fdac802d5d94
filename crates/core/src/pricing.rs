//! Order arithmetic: subtotals, coupon discounts and the first-purchase bonus, in integers.

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// 1–100 percent of the subtotal, rounded down to the minor unit.
    Percent(i64),
    /// A fixed amount in minor units, never more than the subtotal.
    Amount(i64),
}

impl Discount {
    pub fn off(self, subtotal: i64) -> i64 {
        match self {
            Discount::Percent(percent) => share(subtotal, percent.clamp(0, 100), 100),
            Discount::Amount(amount) => amount.clamp(0, subtotal.max(0)),
        }
    }
}

/// `value × numerator / denominator`, rounded down, without overflow for any i64 inputs whose
/// result fits. `denominator` must be positive.
pub fn share(value: i64, numerator: i64, denominator: i64) -> i64 {
    (i128::from(value) * i128::from(numerator) / i128::from(denominator)) as i64
}

/// The first-purchase bonus: `percent` of the credits bought, rounded down.
pub fn first_purchase_bonus(credits: i64, percent: i64) -> i64 {
    share(credits, percent.clamp(0, 100), 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts_round_down_and_never_exceed_the_subtotal() {
        assert_eq!(Discount::Percent(10).off(4500), 450);
        assert_eq!(Discount::Percent(33).off(1001), 330);
        assert_eq!(Discount::Percent(100).off(4500), 4500);
        assert_eq!(Discount::Amount(500).off(4500), 500);
        assert_eq!(Discount::Amount(9000).off(4500), 4500);
        assert_eq!(first_purchase_bonus(1000, 15), 150);
        assert_eq!(first_purchase_bonus(99, 50), 49);
        assert_eq!(
            share(4_000_000_000_000_000_000, 3, 4),
            3_000_000_000_000_000_000
        );
    }
}
