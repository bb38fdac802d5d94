//! `MerchantTradeNo`: ECPay allows at most 20 letters and digits, so Bursar's payment id
//! (`pay_` + 32 hex digits) cannot be sent as is. The number is derived from the payment id
//! alone, so it can always be computed again (reconciliation), and is also kept as the order's
//! provider reference, so a callback can be matched to its order by it.

use sha2::{Digest, Sha256};

/// Marks numbers Bursar made, for anyone reading ECPay's dashboard.
const PREFIX: &str = "BU";
const DIGITS: usize = 18;
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `BU` + 18 base-36 digits of a SHA-256 of the payment id: 93 bits, so two payments never
/// share a number in practice, and always 20 characters.
pub fn merchant_trade_no(payment_id: &str) -> String {
    let digest = Sha256::digest(payment_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    let mut n = u128::from_be_bytes(first);
    let mut digits = [b'0'; DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    let mut out = String::with_capacity(PREFIX.len() + DIGITS);
    out.push_str(PREFIX);
    out.extend(digits.iter().map(|d| char::from(*d)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trade_number_is_twenty_alphanumerics_and_stable() {
        let no = merchant_trade_no("pay_0190f3e4a1b27c3d8e9f00112233aabb");
        assert_eq!(no.len(), 20);
        assert!(no.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            no,
            merchant_trade_no("pay_0190f3e4a1b27c3d8e9f00112233aabb")
        );
        assert_ne!(
            no,
            merchant_trade_no("pay_0190f3e4a1b27c3d8e9f00112233aabc")
        );
    }
}
