//! AEAD_AES_256_GCM, as WeChat Pay encrypts callback resources and platform certificates: the
//! key is the APIv3 key's 32 ASCII bytes, the nonce the `nonce` string's 12 bytes, the
//! associated data the `associated_data` string, and `ciphertext` Base64 of the encrypted
//! bytes followed by the 16-byte tag.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub const API_V3_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    #[error("the APIv3 key must be exactly 32 bytes")]
    KeyLength,
    #[error("the nonce must be 12 bytes")]
    NonceLength,
    #[error("the ciphertext is not Base64")]
    Base64,
    #[error("decryption failed (wrong APIv3 key, or a tampered resource)")]
    Open,
}

/// The merchant's APIv3 key: exactly 32 bytes, as WeChat Pay issues it.
#[derive(Clone)]
pub struct ApiV3Key([u8; API_V3_KEY_BYTES]);

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key([redacted])")
    }
}

impl ApiV3Key {
    pub fn new(key: &str) -> Result<Self, AeadError> {
        key.as_bytes()
            .try_into()
            .map(Self)
            .map_err(|_| AeadError::KeyLength)
    }

    pub fn decrypt(
        &self,
        nonce: &str,
        associated_data: &str,
        ciphertext_base64: &str,
    ) -> Result<Vec<u8>, AeadError> {
        open(&self.0, nonce, associated_data, ciphertext_base64)
    }

    /// The inverse of [`Self::decrypt`], Base64 out: what WeChat Pay does, for local stubs.
    pub fn encrypt(
        &self,
        nonce: &str,
        associated_data: &str,
        plaintext: &[u8],
    ) -> Result<String, AeadError> {
        let nonce = nonce_of(nonce)?;
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| AeadError::KeyLength)?;
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: associated_data.as_bytes(),
                },
            )
            .map_err(|_| AeadError::Open)?;
        Ok(STANDARD.encode(sealed))
    }
}

fn nonce_of(nonce: &str) -> Result<[u8; NONCE_BYTES], AeadError> {
    nonce
        .as_bytes()
        .try_into()
        .map_err(|_| AeadError::NonceLength)
}

/// Decrypts with AES-GCM of the key's size. Production keys are 32 bytes (AES-256); the
/// 16-byte keys of WeChat Pay's own SDK tests give AES-128, which only those tests use.
pub fn open(
    key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_base64: &str,
) -> Result<Vec<u8>, AeadError> {
    let nonce = nonce_of(nonce)?.into();
    let sealed = STANDARD
        .decode(ciphertext_base64)
        .map_err(|_| AeadError::Base64)?;
    let payload = Payload {
        msg: &sealed,
        aad: associated_data.as_bytes(),
    };
    match key.len() {
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| AeadError::KeyLength)?
            .decrypt(&nonce, payload),
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| AeadError::KeyLength)?
            .decrypt(&nonce, payload),
        _ => return Err(AeadError::KeyLength),
    }
    .map_err(|_| AeadError::Open)
}
