//! Money: an integer amount of a currency's minor unit (¥45.00 is 4500 CNY).

use serde::{Deserialize, Serialize};

use crate::MAX_CREDITS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be an integer number of minor units between 0 and 2^53 - 1")]
    Amount,
    #[error("currency must be a three-letter ISO 4217 code such as CNY or USD")]
    Currency,
}

impl Money {
    /// A non-negative amount of a three-letter, upper-case currency code.
    pub fn new(amount: i64, currency: &str) -> Result<Self, MoneyError> {
        if !(0..=MAX_CREDITS).contains(&amount) {
            return Err(MoneyError::Amount);
        }
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::Currency);
        }
        Ok(Self {
            amount,
            currency: currency.to_string(),
        })
    }
}

/// Currencies whose minor unit is the major unit (no decimals).
pub const ZERO_DECIMAL: &[&str] = &["JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"];

/// An amount of minor units written in major units: 4500 CNY → "45.00", 500 JPY → "500".
pub fn format_amount(amount: i64, currency: &str) -> String {
    if ZERO_DECIMAL.contains(&currency) {
        return amount.to_string();
    }
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    format!("{sign}{}.{:02}", units / 100, units % 100)
}

/// An amount written in major units, as a bank statement shows it ("45.00", "45", "1,234.5"),
/// in minor units of `currency`; `None` for anything else (more decimals than the currency has,
/// a sign, letters).
pub fn parse_amount(text: &str, currency: &str) -> Option<i64> {
    let text: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let decimals = if ZERO_DECIMAL.contains(&currency) {
        0
    } else {
        2
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() > decimals || (!fraction.is_empty() && !digits(fraction)) {
        return None;
    }
    let scale = 10_i64.pow(decimals as u32);
    let fraction = format!("{fraction:0<decimals$}");
    let minor = whole.parse::<i64>().ok()?.checked_mul(scale)?;
    let extra = if decimals == 0 {
        0
    } else {
        fraction.parse::<i64>().ok()?
    };
    minor
        .checked_add(extra)
        .filter(|m| *m <= crate::MAX_CREDITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_amounts_are_read_in_major_units() {
        assert_eq!(parse_amount("45.00", "CNY"), Some(4500));
        assert_eq!(parse_amount(" 45 ", "CNY"), Some(4500));
        assert_eq!(parse_amount("1,234.5", "USD"), Some(123_450));
        assert_eq!(parse_amount("500", "JPY"), Some(500));
        assert_eq!(parse_amount("500.5", "JPY"), None);
        assert_eq!(parse_amount("4.505", "CNY"), None);
        assert_eq!(parse_amount("-45.00", "CNY"), None);
        assert_eq!(parse_amount("45.0a", "CNY"), None);
        assert_eq!(parse_amount("", "CNY"), None);
        assert_eq!(parse_amount(".5", "CNY"), None);
    }

    #[test]
    fn money_needs_a_non_negative_amount_and_an_iso_code() {
        assert!(Money::new(4500, "CNY").is_ok());
        assert!(Money::new(0, "USD").is_ok());
        assert_eq!(Money::new(-1, "CNY"), Err(MoneyError::Amount));
        assert_eq!(Money::new(1, "cny"), Err(MoneyError::Currency));
        assert_eq!(Money::new(1, "YUAN"), Err(MoneyError::Currency));
    }
}
