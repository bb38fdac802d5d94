//! `Credits`: a positive amount of an asset's smallest unit. Parsing is the only way in, so a
//! value of this type is always in range.

use serde::{Deserialize, Serialize};

/// The largest amount accepted anywhere: 2^53 − 1, so every amount survives a round trip through
/// a JSON number in any client language.
pub const MAX_CREDITS: i64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Credits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("amount must be a positive integer")]
    NotPositive,
    #[error("amount must be at most 9007199254740991 (2^53 - 1)")]
    TooLarge,
}

impl Credits {
    pub fn new(amount: i64) -> Result<Self, CreditsError> {
        if amount <= 0 {
            Err(CreditsError::NotPositive)
        } else if amount > MAX_CREDITS {
            Err(CreditsError::TooLarge)
        } else {
            Ok(Self(amount))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Credits {
    type Error = CreditsError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Credits> for i64 {
    fn from(value: Credits) -> Self {
        value.0
    }
}

impl std::fmt::Display for Credits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_and_oversized_amounts_are_refused() {
        assert_eq!(Credits::new(0), Err(CreditsError::NotPositive));
        assert_eq!(Credits::new(-5), Err(CreditsError::NotPositive));
        assert_eq!(Credits::new(MAX_CREDITS + 1), Err(CreditsError::TooLarge));
        assert_eq!(Credits::new(MAX_CREDITS).map(Credits::get), Ok(MAX_CREDITS));
        assert_eq!(Credits::new(1).map(Credits::get), Ok(1));
    }

    #[test]
    fn deserializing_checks_the_range() {
        assert!(serde_json_like("0").is_err());
        assert!(serde_json_like("-1").is_err());
        assert!(serde_json_like("9007199254740992").is_err());
        assert_eq!(serde_json_like("250").map(Credits::get), Ok(250));
    }

    fn serde_json_like(text: &str) -> Result<Credits, CreditsError> {
        Credits::try_from(text.parse::<i64>().expect("test input is an integer"))
    }
}
