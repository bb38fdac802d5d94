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
const ZERO_DECIMAL: &[&str] = &["JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"];

/// An amount of minor units written in major units: 4500 CNY → "45.00", 500 JPY → "500".
pub fn format_amount(amount: i64, currency: &str) -> String {
    if ZERO_DECIMAL.contains(&currency) {
        return amount.to_string();
    }
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    format!("{sign}{}.{:02}", units / 100, units % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_needs_a_non_negative_amount_and_an_iso_code() {
        assert!(Money::new(4500, "CNY").is_ok());
        assert!(Money::new(0, "USD").is_ok());
        assert_eq!(Money::new(-1, "CNY"), Err(MoneyError::Amount));
        assert_eq!(Money::new(1, "cny"), Err(MoneyError::Currency));
        assert_eq!(Money::new(1, "YUAN"), Err(MoneyError::Currency));
    }
}
