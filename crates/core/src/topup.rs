//! Auto top-up arithmetic: how many credits a top-up buys, what they cost, the processing fee
//! the user bears, and how long a declined top-up waits before it is tried again. Integers
//! only: a fee rate is kept in millionths, so `2.9` percent is exact.

use crate::kinds::AutoTopupStatus;

/// A percentage held exactly, in millionths of the amount (2.9 % = 29,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate {
    pub parts_per_million: i64,
}

impl FeeRate {
    /// Reads a percentage written as a decimal (`2.9`, `0`, `3.25`, at most four decimals),
    /// between 0 and 100. Floats are never involved.
    pub fn parse_percent(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) || fraction.len() > 4 {
            return Err(format!(
                "{text:?} is not a percentage such as 2.9 (at most four decimals)"
            ));
        }
        let whole: i64 = whole
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?;
        let fraction: i64 = format!("{fraction:0<4}").parse().unwrap_or(0);
        let parts_per_million = whole
            .checked_mul(10_000)
            .and_then(|w| w.checked_add(fraction))
            .filter(|ppm| *ppm <= 1_000_000)
            .ok_or_else(|| format!("{text:?} is over 100 percent"))?;
        Ok(Self { parts_per_million })
    }
}

/// What a top-up of some credits costs: the price of the credits, the fee on top, the total
/// the saved method is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopupQuote {
    pub credits: i64,
    pub price: i64,
    pub fee: i64,
    pub total: i64,
}

/// Prices `credits` at `credit_price` minor units each; the fee is `rate` of the price plus
/// `fee_fixed`. `None` when the total does not fit.
pub fn quote(credits: i64, credit_price: i64, rate: FeeRate, fee_fixed: i64) -> Option<TopupQuote> {
    let price = credits.checked_mul(credit_price)?;
    let fee =
        round_half_up_share(price, rate.parts_per_million, 1_000_000).checked_add(fee_fixed)?;
    let total = price.checked_add(fee)?;
    Some(TopupQuote {
        credits,
        price,
        fee,
        total,
    })
}

/// `value × numerator / denominator` rounded half up, for non-negative values.
fn round_half_up_share(value: i64, numerator: i64, denominator: i64) -> i64 {
    let exact = i128::from(value) * i128::from(numerator);
    let denominator = i128::from(denominator);
    ((exact + denominator / 2) / denominator) as i64
}

/// How many credits a top-up buys now: enough to bring the balance to `target`, less credits
/// already on the way (top-ups charged or being charged), so two triggers never both buy the
/// same shortfall. `None` when the balance is not below `threshold` or nothing is missing.
pub fn topup_credits(balance: i64, threshold: i64, target: i64, on_the_way: i64) -> Option<i64> {
    if balance >= threshold {
        return None;
    }
    let missing = target.saturating_sub(balance).saturating_sub(on_the_way);
    (missing > 0).then_some(missing)
}

/// Declines in a row after which a rule turns itself off.
pub const DECLINES_BEFORE_OFF: i64 = 3;

/// What a rule does after its `failures`-th decline in a row: wait this long before the next
/// try (minutes, then hours), or turn off.
pub fn after_decline(failures: i64) -> (AutoTopupStatus, Option<i64>) {
    const MINUTE_MS: i64 = 60_000;
    match failures {
        ..=1 => (AutoTopupStatus::Active, Some(15 * MINUTE_MS)),
        2 => (AutoTopupStatus::Active, Some(4 * 60 * MINUTE_MS)),
        _ => (AutoTopupStatus::Off, None),
    }
}

/// Whether a debit from `before` to `after` took the balance below `threshold` (it was at or
/// above it): the moment a top-up is due. Later debits while below it are not crossings.
pub fn crossed_below(before: i64, after: i64, threshold: i64) -> bool {
    before >= threshold && after < threshold
}

/// Why a top-up that was due did not run: a limit stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopupStop {
    /// The credits needed exceed the operator's largest single top-up.
    MaxCredits,
    /// The user's (or the operator's) top-ups per day are used up.
    DailyLimit,
    /// This top-up would take the month's charges past the user's monthly limit.
    MonthlyLimit,
}

impl TopupStop {
    pub fn as_str(self) -> &'static str {
        match self {
            TopupStop::MaxCredits => "max_credits_exceeded",
            TopupStop::DailyLimit => "daily_limit_reached",
            TopupStop::MonthlyLimit => "monthly_limit_reached",
        }
    }
}

/// Everything a top-up decision looks at, read in the transaction that acts on it.
#[derive(Debug, Clone, Copy)]
pub struct TopupSituation {
    pub balance: i64,
    pub threshold: i64,
    pub target: i64,
    /// Credits of top-ups charged or being charged that have not arrived yet.
    pub on_the_way: i64,
    /// Top-ups charged or being charged since the local day began.
    pub topups_today: i64,
    /// What top-ups charged this calendar month came to, in the limit's currency.
    pub charged_this_month: i64,
    pub max_topups_per_day: i64,
    pub monthly_limit: Option<i64>,
    pub max_credits: i64,
}

/// What to do about a rule now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopupPlan {
    /// The balance is not below the threshold, or top-ups on the way already cover it.
    Nothing,
    Stopped(TopupStop, TopupQuote),
    Charge(TopupQuote),
}

/// Decides a top-up: sized as `target − balance − on the way`, priced with its fee, then
/// checked against every limit. A stop is a decision too, so it can be recorded and told.
pub fn plan_topup(
    situation: &TopupSituation,
    credit_price: i64,
    rate: FeeRate,
    fee_fixed: i64,
) -> TopupPlan {
    let s = situation;
    let Some(credits) = topup_credits(s.balance, s.threshold, s.target, s.on_the_way) else {
        return TopupPlan::Nothing;
    };
    let quote = quote(credits, credit_price, rate, fee_fixed).unwrap_or(TopupQuote {
        credits,
        price: i64::MAX,
        fee: 0,
        total: i64::MAX,
    });
    // A total no amount field can hold is stopped, never charged short.
    if credits > s.max_credits || quote.total > crate::MAX_CREDITS {
        return TopupPlan::Stopped(TopupStop::MaxCredits, quote);
    }
    if s.topups_today >= s.max_topups_per_day {
        return TopupPlan::Stopped(TopupStop::DailyLimit, quote);
    }
    if let Some(limit) = s.monthly_limit
        && s.charged_this_month.saturating_add(quote.total) > limit
    {
        return TopupPlan::Stopped(TopupStop::MonthlyLimit, quote);
    }
    TopupPlan::Charge(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_is_exact_to_the_cent() {
        let rate = FeeRate::parse_percent("2.9").expect("parses");
        assert_eq!(rate.parts_per_million, 29_000);
        let credits = topup_credits(-50, 150, 600, 0).expect("below the threshold");
        assert_eq!(credits, 650);
        let quote = quote(credits, 100, rate, 0).expect("fits");
        assert_eq!(
            quote,
            TopupQuote {
                credits: 650,
                price: 65_000,
                fee: 1_885,
                total: 66_885
            }
        );
    }

    #[test]
    fn fees_round_half_up_and_add_the_fixed_part() {
        let rate = FeeRate::parse_percent("2.9").expect("parses");
        // 2.9 % of 50 = 1.45 → 1; of 150 = 4.35 → 4; of 250 = 7.25 → 7; of 1,550 = 44.95 → 45.
        assert_eq!(quote(1, 50, rate, 0).map(|q| q.fee), Some(1));
        assert_eq!(quote(1, 1_550, rate, 0).map(|q| q.fee), Some(45));
        let half = FeeRate::parse_percent("5").expect("parses");
        assert_eq!(quote(1, 10, half, 0).map(|q| q.fee), Some(1)); // 0.5 → 1
        assert_eq!(quote(1, 10, half, 30).map(|q| q.total), Some(41));
        assert_eq!(quote(i64::MAX, 2, rate, 0), None);
    }

    #[test]
    fn percentages_parse_exactly_or_not_at_all() {
        assert_eq!(
            FeeRate::parse_percent("0").map(|r| r.parts_per_million),
            Ok(0)
        );
        assert_eq!(
            FeeRate::parse_percent("3.25").map(|r| r.parts_per_million),
            Ok(32_500)
        );
        assert_eq!(
            FeeRate::parse_percent("100").map(|r| r.parts_per_million),
            Ok(1_000_000)
        );
        for bad in ["", "-1", "2.", ".5", "2.90001", "101", "abc", "1e2"] {
            assert!(FeeRate::parse_percent(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn credits_on_the_way_are_not_bought_twice() {
        assert_eq!(topup_credits(100, 150, 600, 0), Some(500));
        assert_eq!(topup_credits(100, 150, 600, 500), None);
        assert_eq!(topup_credits(100, 150, 600, 200), Some(300));
        assert_eq!(topup_credits(150, 150, 600, 0), None);
    }

    #[test]
    fn declines_back_off_then_turn_the_rule_off() {
        assert_eq!(after_decline(1), (AutoTopupStatus::Active, Some(900_000)));
        assert_eq!(
            after_decline(2),
            (AutoTopupStatus::Active, Some(14_400_000))
        );
        assert_eq!(after_decline(3), (AutoTopupStatus::Off, None));
    }

    fn situation() -> TopupSituation {
        TopupSituation {
            balance: -50,
            threshold: 150,
            target: 600,
            on_the_way: 0,
            topups_today: 0,
            charged_this_month: 0,
            max_topups_per_day: 10,
            monthly_limit: None,
            max_credits: 1_000_000,
        }
    }

    #[test]
    fn every_limit_stops_a_top_up_with_its_reason() {
        let rate = FeeRate::parse_percent("2.9").expect("parses");
        let plan = |s: TopupSituation| plan_topup(&s, 100, rate, 0);
        let expected = quote(650, 100, rate, 0).expect("fits");
        assert_eq!(plan(situation()), TopupPlan::Charge(expected));
        let over = TopupSituation {
            max_credits: 649,
            ..situation()
        };
        assert_eq!(
            plan(over),
            TopupPlan::Stopped(TopupStop::MaxCredits, expected)
        );
        let busy = TopupSituation {
            topups_today: 10,
            ..situation()
        };
        assert_eq!(
            plan(busy),
            TopupPlan::Stopped(TopupStop::DailyLimit, expected)
        );
        let month = TopupSituation {
            monthly_limit: Some(100_000),
            charged_this_month: 33_116,
            ..situation()
        };
        assert_eq!(
            plan(month),
            TopupPlan::Stopped(TopupStop::MonthlyLimit, expected)
        );
        let just = TopupSituation {
            charged_this_month: 33_115,
            ..month
        };
        assert_eq!(plan(just), TopupPlan::Charge(expected));
        let covered = TopupSituation {
            on_the_way: 650,
            ..situation()
        };
        assert_eq!(plan(covered), TopupPlan::Nothing);
    }

    #[test]
    fn only_the_debit_that_goes_below_is_a_crossing() {
        assert!(crossed_below(150, 149, 150));
        assert!(crossed_below(500, -50, 150));
        assert!(!crossed_below(149, 100, 150));
        assert!(!crossed_below(500, 150, 150));
    }
}
