//! Webhook signatures in Stripe's `v1` scheme, used by Stripe (`Stripe-Signature`) and by
//! Bursar's own sandbox provider (`Bursar-Signature`): a header `t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256, keyed with the endpoint secret's UTF-8 bytes, over
//! `"<t>.<raw body>"`. Verification follows the providers' SDKs: parse, find `v1`, compare in
//! constant time against every active secret (so secrets can be rotated), then check age.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The SDKs' default: a signature older than this is refused as a possible replay.
pub const TOLERANCE_S_DEFAULT: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unable to extract timestamp and signatures from header")]
    MalformedHeader,
    #[error("no signatures found with expected scheme v1")]
    NoV1Signature,
    #[error("no signatures found matching the expected signature for payload")]
    NoMatchingSignature,
    #[error("timestamp outside the tolerance zone")]
    TimestampOutsideTolerance,
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The `v1` signature of `payload` at `timestamp`, lower-case hex.
pub fn sign_v1(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

/// A complete signature header value, as a provider would send it.
pub fn header_v1(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign_v1(secret, timestamp, payload))
}

/// The timestamp and the `v1` signatures of a header. Every item must be `key=value`; `t` must
/// be an integer; schemes other than `v1` (such as test-mode `v0`) are ignored.
fn parse(header: &str) -> Result<(i64, Vec<&str>), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader)?;
        match key {
            "" => return Err(SignatureError::MalformedHeader),
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::MalformedHeader)?,
                )
            }
            "v1" if !value.is_empty() => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok((timestamp, signatures))
}

/// Checks `header` against the raw `payload` and each of the endpoint's active `secrets`.
/// Returns the signed timestamp.
pub fn verify_v1(
    header: &str,
    payload: &[u8],
    secrets: &[&str],
    tolerance_s: i64,
    now_s: i64,
) -> Result<i64, SignatureError> {
    let (timestamp, signatures) = parse(header)?;
    let matched = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|given| {
            secrets
                .iter()
                .any(|secret| mac(secret, timestamp, payload).verify_slice(&given).is_ok())
        });
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }
    if timestamp < now_s - tolerance_s {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_made_by_sign_verifies_and_any_change_breaks_it() {
        let header = header_v1("secret", 1_700_000_000, b"{\"id\":1}");
        assert_eq!(
            verify_v1(&header, b"{\"id\":1}", &["secret"], 300, 1_700_000_010),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify_v1(&header, b"{\"id\":2}", &["secret"], 300, 1_700_000_010),
            Err(SignatureError::NoMatchingSignature)
        );
        assert_eq!(
            verify_v1(&header, b"{\"id\":1}", &["other"], 300, 1_700_000_010),
            Err(SignatureError::NoMatchingSignature)
        );
        assert_eq!(
            verify_v1(&header, b"{\"id\":1}", &["secret"], 300, 1_700_000_301),
            Err(SignatureError::TimestampOutsideTolerance)
        );
    }
}
