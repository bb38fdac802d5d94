//! Alipay amounts are yuan as decimal strings with two decimals (`"45.00"`); Bursar's are fen
//! (minor units). Both ways with integers only, never through a float.

/// `4500` → `"45.00"`; `None` for a negative amount (Alipay takes none).
pub fn format(fen: i64) -> Option<String> {
    (fen >= 0).then(|| format!("{}.{:02}", fen / 100, fen % 100))
}

/// `"45.00"`, `"45.0"` or `"45"` → `4500`; `None` for anything else (a sign, a third decimal,
/// an exponent, an overflow).
pub fn parse(yuan: &str) -> Option<i64> {
    let (whole, fraction) = yuan.split_once('.').unwrap_or((yuan, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
        return None;
    }
    if yuan.ends_with('.') {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_and_yuan_convert_exactly() {
        assert_eq!(format(4500).as_deref(), Some("45.00"));
        assert_eq!(format(1).as_deref(), Some("0.01"));
        assert_eq!(format(8888).as_deref(), Some("88.88"));
        assert_eq!(format(-1), None);
        assert_eq!(parse("45.00"), Some(4500));
        assert_eq!(parse("0.10"), Some(10));
        assert_eq!(parse("88.8"), Some(8880));
        assert_eq!(parse("7"), Some(700));
        for bad in [
            "",
            ".5",
            "5.",
            "-1.00",
            "1.001",
            "1e2",
            " 1.00",
            "1,00",
            "99999999999999999.00",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
