//! Money, credits and dates as a person in each language reads them: `¥45.00`, `US$650.00`,
//! `NT$300`, `12,345` credits, dates in the user's time zone.

use std::borrow::Borrow;

use bursar_core::Language;
use bursar_worker::Tz;
use chrono::{DateTime, TimeZone, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Formatter {
    pub language: Language,
    pub zone: Tz,
}

/// Groups digits in threes: `1234567` → `1,234,567`.
pub fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The sign a currency is written with where Bursar's users live; others show their code.
fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "CNY" => "¥",
        "USD" => "US$",
        "TWD" => "NT$",
        "HKD" => "HK$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "JP¥",
        _ => return None,
    })
}

/// An amount in minor units of `currency`, with its sign: `¥45.00`, `NT$300`, `-US$1.50`.
pub fn money(amount: i64, currency: &str) -> String {
    let zero_decimal = bursar_core::money::ZERO_DECIMAL.contains(&currency);
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    let number = if zero_decimal {
        grouped(units as i64)
    } else if currency == "TWD" && units.is_multiple_of(100) {
        // New Taiwan dollars are priced in whole dollars.
        grouped((units / 100) as i64)
    } else {
        format!("{}.{:02}", grouped((units / 100) as i64), units % 100)
    };
    match symbol(currency) {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {currency}"),
    }
}

impl Formatter {
    pub fn new(language: Language, zone: Tz) -> Self {
        Self { language, zone }
    }

    pub fn money(&self, amount: impl Borrow<i64>, currency: &str) -> String {
        money(*amount.borrow(), currency)
    }

    pub fn credits(&self, value: impl Borrow<i64>) -> String {
        grouped(*value.borrow())
    }

    /// A signed change of credits: `+1,000`, `-250`.
    pub fn signed(&self, value: impl Borrow<i64>) -> String {
        let value = *value.borrow();
        if value > 0 {
            format!("+{}", grouped(value))
        } else {
            grouped(value)
        }
    }

    /// Milliseconds since the epoch as a date and time in the user's zone.
    pub fn time_ms(&self, ms: impl Borrow<i64>) -> String {
        match self.zone.timestamp_millis_opt(*ms.borrow()).single() {
            Some(local) => match self.language {
                Language::En => local.format("%-d %b %Y, %H:%M").to_string(),
                Language::ZhHans | Language::ZhHant => {
                    local.format("%Y年%-m月%-d日 %H:%M").to_string()
                }
            },
            None => String::new(),
        }
    }

    pub fn opt_time_ms(&self, ms: &Option<i64>) -> String {
        ms.map(|ms| self.time_ms(ms)).unwrap_or_default()
    }

    /// An RFC 3339 instant (as the API's views carry them) in the user's zone.
    pub fn time(&self, rfc3339: &str) -> String {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| self.time_ms(t.with_timezone(&Utc).timestamp_millis()))
            .unwrap_or_else(|_| rfc3339.to_string())
    }

    pub fn opt_time(&self, rfc3339: &Option<String>) -> String {
        rfc3339.as_deref().map(|t| self.time(t)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_as_people_read_it() {
        assert_eq!(money(4500, "CNY"), "¥45.00");
        assert_eq!(money(65000, "USD"), "US$650.00");
        assert_eq!(money(30000, "TWD"), "NT$300");
        assert_eq!(money(30050, "TWD"), "NT$300.50");
        assert_eq!(money(123456789, "USD"), "US$1,234,567.89");
        assert_eq!(money(-150, "USD"), "-US$1.50");
        assert_eq!(money(1200, "CHF"), "12.00 CHF");
    }

    #[test]
    fn credits_are_grouped_in_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(-1234567), "-1,234,567");
    }

    #[test]
    fn dates_are_in_the_users_zone() {
        let taipei = Formatter::new(Language::ZhHant, "Asia/Taipei".parse().expect("zone"));
        // 2026-01-01T20:00:00Z is the next morning in Taipei.
        assert_eq!(taipei.time("2026-01-01T20:00:00Z"), "2026年1月2日 04:00");
        let utc = Formatter::new(Language::En, Tz::UTC);
        assert_eq!(utc.time("2026-01-01T20:00:00Z"), "1 Jan 2026, 20:00");
    }
}
