//! ECPay's `CheckMacValue`: every field but `CheckMacValue` itself, empty values included,
//! sorted by key case-insensitively (PHP's `strcasecmp`, as the official SDK sorts), joined as
//! `key=value` between `HashKey=…&` and `&HashIV=…`, URL-encoded the .NET
//! `HttpUtility.UrlEncode` way, lowercased, hashed (SHA-256, or MD5 for older APIs) and
//! written in upper-case hex. A callback is verified by recomputing over what arrived.

use md5::Md5;
use sha2::{Digest, Sha256};

pub const FIELD: &str = "CheckMacValue";

/// Which hash an API uses: AioCheckOut's `EncryptType=1` is SHA-256; e-invoice and logistics
/// APIs still use MD5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacHash {
    Sha256,
    Md5,
}

/// The merchant's HashKey and HashIV.
#[derive(Clone)]
pub struct HashKeys {
    pub key: String,
    pub iv: String,
}

// Written by hand so that the keys never reach a log through `{:?}`.
impl std::fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKeys([redacted])")
    }
}

/// Steps 1–2: every field but `CheckMacValue`, sorted by key folded to ASCII lowercase, joined
/// with raw values.
pub fn sorted<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut fields: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(key, _)| *key != FIELD)
        .collect();
    fields.sort_by(|(a, _), (b, _)| {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    });
    let mut out = String::new();
    for (key, value) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Steps 3–4: the sorted fields between the merchant's HashKey and HashIV.
pub fn raw<'a>(keys: &HashKeys, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    format!("HashKey={}&{}&HashIV={}", keys.key, sorted(fields), keys.iv)
}

/// .NET `HttpUtility.UrlEncode`: UTF-8 bytes; `A–Z a–z 0–9 - _ . ! * ( )` kept; space as `+`;
/// every other byte as `%xx` in lower-case hex (`~` included, unlike RFC 3986 encoders).
pub fn dotnet_url_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
    out
}

/// Steps 5–6: the string that is hashed. Lowercased after encoding, on the ASCII result.
pub fn lowercased<'a>(
    keys: &HashKeys,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    dotnet_url_encode(&raw(keys, fields)).to_ascii_lowercase()
}

fn digest_upper_hex(hash: MacHash, text: &str) -> String {
    match hash {
        MacHash::Sha256 => hex::encode_upper(Sha256::digest(text.as_bytes())),
        MacHash::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
    }
}

/// The `CheckMacValue` of a form (its own `CheckMacValue`, if present, is left out).
pub fn check_mac_value<'a>(
    keys: &HashKeys,
    hash: MacHash,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    digest_upper_hex(hash, &lowercased(keys, fields))
}

/// Whether a received form carries the `CheckMacValue` its other fields give, compared in
/// constant time (case-insensitively: the hex is what matters).
pub fn verify<'a>(
    keys: &HashKeys,
    hash: MacHash,
    fields: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    let Some(given) = fields
        .clone()
        .into_iter()
        .find(|(key, _)| *key == FIELD)
        .map(|(_, value)| value.to_ascii_uppercase())
    else {
        return false;
    };
    let expected = check_mac_value(keys, hash, fields);
    constant_time_eq(given.as_bytes(), expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// RFC 3986 `Uri.EscapeDataString`: only `A–Z a–z 0–9 - _ . ~` kept, every other byte `%XX`.
fn escape_data_string(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
    out
}

/// The other scheme, of ECPay's newer JSON APIs (not AioCheckOut): SHA-256 over the lowercased
/// RFC 3986 escape of HashKey + JSON text + HashIV, upper-case hex.
pub fn json_check_mac_value(keys: &HashKeys, json: &str) -> String {
    let raw = format!("{}{json}{}", keys.key, keys.iv);
    digest_upper_hex(
        MacHash::Sha256,
        &escape_data_string(&raw).to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dotnet_encoder_keeps_exactly_its_unreserved_set() {
        assert_eq!(dotnet_url_encode("a-_.!*()~ @/"), "a-_.!*()%7e+%40%2f");
    }

    #[test]
    fn the_sort_ignores_case_and_puts_underscore_before_letters() {
        let fields = [
            ("b", "1"),
            ("A_b", "2"),
            ("Ab", "3"),
            ("CheckMacValue", "x"),
        ];
        assert_eq!(sorted(fields), "A_b=2&Ab=3&b=1");
    }
}
