//! WeChat Pay's platform certificates, for merchants without a WeChat Pay public key:
//! `GET /v3/certificates` lists them, each encrypted with the APIv3 key (associated data
//! `certificate`). They are kept by serial, replaced as WeChat Pay rotates them, and stored as
//! PEM so every instance can load what one of them downloaded.

use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Deserialize;

use super::aead::ApiV3Key;
use super::keys::PlatformKey;

pub const PATH: &str = "/v3/certificates";

#[derive(Deserialize)]
struct Listing {
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    serial_no: String,
    encrypt_certificate: Encrypted,
}

#[derive(Deserialize)]
struct Encrypted {
    algorithm: String,
    associated_data: Option<String>,
    ciphertext: String,
    nonce: String,
}

/// A certificate as downloaded: its PEM (what is stored) and its key.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub pem: String,
    pub key: PlatformKey,
}

/// Decrypts every certificate of a `GET /v3/certificates` response. Decryption with the APIv3
/// key is what vouches for them (only WeChat Pay and the merchant know it); a certificate
/// whose serial differs from the one listed is refused.
pub fn decrypt_listing(body: &[u8], apiv3_key: &ApiV3Key) -> Result<Vec<Downloaded>, String> {
    let listing: Listing = serde_json::from_slice(body)
        .map_err(|e| format!("the certificate listing does not parse: {e}"))?;
    listing
        .data
        .into_iter()
        .map(|entry| {
            let sealed = entry.encrypt_certificate;
            if sealed.algorithm != "AEAD_AES_256_GCM" {
                return Err(format!(
                    "unknown certificate encryption {}",
                    sealed.algorithm
                ));
            }
            let plaintext = apiv3_key
                .decrypt(
                    &sealed.nonce,
                    sealed.associated_data.as_deref().unwrap_or_default(),
                    &sealed.ciphertext,
                )
                .map_err(|e| format!("certificate {}: {e}", entry.serial_no))?;
            let pem = String::from_utf8(plaintext)
                .map_err(|_| format!("certificate {} is not PEM text", entry.serial_no))?;
            let key = PlatformKey::from_certificate_pem(&pem)
                .map_err(|e| format!("certificate {}: {e}", entry.serial_no))?;
            if !key.id.eq_ignore_ascii_case(&entry.serial_no) {
                return Err(format!(
                    "certificate listed as {} has serial {}",
                    entry.serial_no, key.id
                ));
            }
            Ok(Downloaded { pem, key })
        })
        .collect()
}

/// The WeChat Pay keys a merchant trusts now: a configured public key, and the platform
/// certificates last downloaded.
#[derive(Debug, Default)]
pub struct PlatformKeys {
    public_key: Option<PlatformKey>,
    certificates: RwLock<Vec<PlatformKey>>,
    /// When certificates were last reloaded because a callback named an unknown serial.
    reloaded_at_s: AtomicI64,
}

/// Callbacks naming unknown serials reload the stored certificates at most this often, so a
/// flood of forged serials cannot turn into a flood of reloads.
pub const RELOAD_GAP_S_MIN: i64 = 60;

impl PlatformKeys {
    pub fn with_public_key(key: PlatformKey) -> Self {
        Self {
            public_key: Some(key),
            ..Self::default()
        }
    }

    /// Whether certificates must be downloaded (no public key is configured).
    pub fn uses_certificates(&self) -> bool {
        self.public_key.is_none()
    }

    /// The key `Wechatpay-Serial` names, if it is one of ours and not expired. Certificate
    /// serials are compared without regard to case.
    pub fn get(&self, serial: &str, now_s: i64) -> Option<PlatformKey> {
        if let Some(key) = self.public_key.as_ref().filter(|k| k.id == serial) {
            return Some(key.clone());
        }
        self.certificates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|k| k.id.eq_ignore_ascii_case(serial))
            .filter(|k| k.expires_at_s.is_none_or(|at| at > now_s))
            .cloned()
    }

    /// Replaces the certificates with a newer download (or what another instance stored).
    pub fn install(&self, keys: Vec<PlatformKey>) {
        *self
            .certificates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
    }

    /// Whether `serial` is unknown and a reload for it is allowed now (and, if so, counts it).
    pub fn reload_due(&self, serial: &str, now_s: i64) -> bool {
        if !self.uses_certificates() || self.get(serial, now_s).is_some() {
            return false;
        }
        let last = self.reloaded_at_s.load(Ordering::Relaxed);
        now_s - last >= RELOAD_GAP_S_MIN
            && self
                .reloaded_at_s
                .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Serials of the certificates held now.
    pub fn serials(&self) -> Vec<String> {
        self.certificates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|k| k.id.clone())
            .collect()
    }
}

/// Parses stored PEMs back into keys (what another instance downloaded).
pub fn from_pems(pems: &[String]) -> Result<Vec<PlatformKey>, String> {
    pems.iter()
        .map(|pem| PlatformKey::from_certificate_pem(pem).map_err(|e| e.to_string()))
        .collect()
}
