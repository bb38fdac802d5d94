//! Alipay's RSA keys as the console hands them out: the app's private key as PKCS#1 or PKCS#8,
//! PEM or bare Base64 of the DER; Alipay's public key as PEM or bare Base64 SPKI. PEM is read
//! by hand (armour stripped, Base64 decoded) because keys are often pasted on one long line.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a configured key could not be used. Never holds the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not PEM and not Base64 of a DER key")]
    NotBase64,
    #[error("not an RSA private key in PKCS#1 or PKCS#8 form")]
    NotPrivateKey,
    #[error("not an RSA public key (SubjectPublicKeyInfo) of 2048 to 8192 bits")]
    NotPublicKey,
}

/// The app's private key, which signs every request.
pub struct AppPrivateKey {
    key: RsaKeyPair,
}

impl AppPrivateKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = der_of(text)?;
        let key = RsaKeyPair::from_der(&der)
            .or_else(|_| RsaKeyPair::from_pkcs8(&der))
            .map_err(|_| KeyError::NotPrivateKey)?;
        Ok(Self { key })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (Alipay's `RSA2`), Base64.
    pub fn sign(&self, content: &[u8]) -> String {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                content,
                &mut signature,
            )
            .expect("a key that parsed signs a buffer of its modulus length");
        STANDARD.encode(signature)
    }
}

// By hand, so that no `{:?}` can print the key.
impl fmt::Debug for AppPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppPrivateKey(..)")
    }
}

/// Alipay's public key, which checks its responses and notifications.
pub struct AlipayPublicKey {
    key: ParsedPublicKey,
}

impl AlipayPublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = der_of(text)?;
        let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|_| KeyError::NotPublicKey)?;
        Ok(Self { key })
    }

    /// Whether `signature` (Base64, as Alipay sends it) signs `content`.
    pub fn verifies(&self, content: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        self.key.verify_sig(content, &signature).is_ok()
    }
}

impl fmt::Debug for AlipayPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlipayPublicKey(..)")
    }
}

/// The DER bytes of a key given as PEM (any line length) or as bare Base64.
fn der_of(text: &str) -> Result<Vec<u8>, KeyError> {
    // Settings files sometimes keep PEM line breaks escaped as `\n`.
    let text = text.replace("\\n", "\n");
    let base64: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    if base64.is_empty() {
        return Err(KeyError::NotBase64);
    }
    STANDARD.decode(base64).map_err(|_| KeyError::NotBase64)
}
