//! Short-lived HS256 access tokens. The secret comes from `BURSAR_JWT_SECRET` or is generated
//! on first start and kept in the database, so tokens survive restarts.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl_s: i64,
}

/// Selects aws-lc-rs as jsonwebtoken's crypto backend explicitly, so a feature mix-up fails at
/// start-up rather than on the first request.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

impl TokenKeys {
    pub fn new(secret: &str, ttl_s: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl_s,
        }
    }

    pub fn issue(&self, user_id: &str, role: &str, now_s: i64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_string(),
            iat: now_s,
            exp: now_s + self.ttl_s,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a token with a valid signature that has not expired.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}
