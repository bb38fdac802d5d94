//! The keys WeChat Pay signatures use: the merchant's API private key (`apiclient_key.pem`,
//! PKCS#8, signs requests), and WeChat Pay's public keys (verify responses and callbacks), each
//! known by an id: a platform certificate's serial, or a `PUB_KEY_ID_…` for the newer
//! public-key scheme. RSA is aws-lc-rs's; certificates are read only for serial and key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not PEM: no -----BEGIN {0}----- block")]
    NoPemBlock(&'static str),
    #[error("the PEM body is not Base64")]
    Base64,
    #[error("not an RSA private key (PKCS#8 or PKCS#1): {0}")]
    PrivateKey(String),
    #[error("not an RSA public key: {0}")]
    PublicKey(String),
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
}

/// The DER inside the first PEM block whose label is one of `labels`. Lines are joined
/// whatever their length (RFC 7468's strict 64-column rule would refuse keys pasted on one
/// line).
pub fn pem_der(pem: &str, labels: &[&'static str]) -> Result<Vec<u8>, KeyError> {
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = pem.find(&begin) else {
            continue;
        };
        let body = &pem[start + begin.len()..];
        let Some(stop) = body.find(&end) else {
            continue;
        };
        let text: String = body[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        return STANDARD.decode(text).map_err(|_| KeyError::Base64);
    }
    Err(KeyError::NoPemBlock(labels.first().copied().unwrap_or("")))
}

/// The merchant's API private key (cheap to clone: the key itself is shared).
#[derive(Clone)]
pub struct MerchantKey {
    pair: Arc<RsaKeyPair>,
    random: SystemRandom,
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantKey([redacted])")
    }
}

impl MerchantKey {
    /// From `apiclient_key.pem` (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pair = match pem_der(pem, &["PRIVATE KEY"]) {
            Ok(der) => RsaKeyPair::from_pkcs8(&der),
            Err(_) => RsaKeyPair::from_der(&pem_der(pem, &["RSA PRIVATE KEY"])?),
        }
        .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        Ok(Self {
            pair: Arc::new(pair),
            random: SystemRandom::new(),
        })
    }

    /// SHA256withRSA (RSASSA-PKCS1-v1_5), standard Base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.random, message, &mut signature)
            .expect("signing with a validated RSA key into a modulus-sized buffer succeeds");
        STANDARD.encode(signature)
    }
}

/// One of WeChat Pay's public keys, with the id `Wechatpay-Serial` names it by.
#[derive(Clone)]
pub struct PlatformKey {
    pub id: String,
    key: ParsedPublicKey,
    /// Until when WeChat Pay signs with it (Unix seconds); `None` for a configured public key.
    pub expires_at_s: Option<i64>,
}

impl fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKey")
            .field("id", &self.id)
            .field("expires_at_s", &self.expires_at_s)
            .finish_non_exhaustive()
    }
}

impl PlatformKey {
    fn parse(id: String, spki_der: &[u8], expires_at_s: Option<i64>) -> Result<Self, KeyError> {
        let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki_der)
            .map_err(|e| KeyError::PublicKey(e.to_string()))?;
        Ok(Self {
            id,
            key,
            expires_at_s,
        })
    }

    /// A WeChat Pay public key downloaded from the merchant platform (`pub_key.pem`, SPKI),
    /// with its id (`PUB_KEY_ID_…`).
    pub fn from_public_key_pem(id: &str, pem: &str) -> Result<Self, KeyError> {
        let der = pem_der(pem, &["PUBLIC KEY", "RSA PUBLIC KEY"])?;
        Self::parse(id.to_string(), &der, None)
    }

    /// A platform certificate (PEM): its serial, written the way WeChat Pay writes it, is the
    /// id.
    pub fn from_certificate_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_der(pem, &["CERTIFICATE"])?;
        let certificate =
            Certificate::from_der(&der).map_err(|e| KeyError::Certificate(e.to_string()))?;
        let tbs = certificate.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
        Self::parse(
            serial_hex(tbs.serial_number().as_bytes()),
            &spki,
            i64::try_from(not_after).ok(),
        )
    }

    /// Whether `signature` (Base64) is this key's SHA256withRSA signature of `message`.
    pub fn verifies(&self, message: &[u8], signature_base64: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature_base64) else {
            return false;
        };
        self.key.verify_sig(message, &signature).is_ok()
    }
}

/// A certificate serial as WeChat Pay writes it: upper-case hex without leading zeros
/// (`D7CE59D1F522D701`, though DER stores it with a leading zero byte).
pub fn serial_hex(der_integer: &[u8]) -> String {
    let hex = hex::encode_upper(der_integer);
    match hex.trim_start_matches('0') {
        "" => "0".into(),
        digits => digits.to_string(),
    }
}
