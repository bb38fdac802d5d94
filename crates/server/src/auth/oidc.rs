//! Sign in with Google or Apple: an OpenID Connect ID token, verified against the provider's
//! published keys (JWKS) before anything in it is believed.
//!
//! The algorithm comes from the key, never from the token: a token whose header names another
//! algorithm than its key's (`none`, an HMAC "signed" with the public key) is refused. Keys are
//! cached for as long as the provider's `Cache-Control: max-age` says (an hour when it says
//! nothing), and fetched again when a token names a key not in the cache, at most once a
//! minute, so a flood of tokens with invented key ids cannot make Bursar hammer the provider.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::OidcSettings;

/// Clock skew allowed on `exp` and `iat`.
pub const LEEWAY_S: i64 = 60;
/// How long keys are kept when the provider's answer does not say.
const KEYS_TTL_DEFAULT: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token was refused; each is a 401 to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    #[error("the ID token names no key the provider publishes")]
    UnknownKey,
    #[error("the ID token's algorithm {0} is not its key's")]
    WrongAlgorithm(String),
    #[error("the ID token is not valid: {0}")]
    Invalid(String),
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token was issued in the future")]
    IssuedInTheFuture,
    #[error("the ID token's nonce does not match")]
    Nonce,
    #[error("the provider's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// What a verified ID token says about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPerson {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    email: Option<String>,
    /// Google sends a boolean; Apple sends a boolean or the string "true".
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
    nonce: Option<String>,
}

struct Keys {
    set: JwkSet,
    fresh_until: Instant,
    fetched_at: Option<Instant>,
}

pub struct OidcProvider {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

impl OidcProvider {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self {
            settings,
            http,
            keys: Mutex::new(Keys {
                set: JwkSet { keys: Vec::new() },
                fresh_until: Instant::now(),
                fetched_at: None,
            }),
        })
    }

    /// The settings, for the web pages' redirect to the provider.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Verifies `token` at `now_s` (Unix seconds): signature with the provider's key, issuer,
    /// audience (one of the client ids), expiry and issue time with `LEEWAY_S`, and the nonce
    /// when the client sent one.
    pub async fn verify(
        &self,
        token: &str,
        nonce: Option<&str>,
        now_s: i64,
    ) -> Result<VerifiedPerson, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let kid = header.kid.clone().ok_or(TokenError::UnknownKey)?;
        let jwk = self.key(&kid).await?;
        let algorithm = algorithm_of(&jwk).ok_or(TokenError::UnknownKey)?;
        if header.alg != algorithm {
            return Err(TokenError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::UnknownKey)?;
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&self.settings.client_ids);
        validation.set_issuer(&self.settings.issuers);
        // Times are checked below against Bursar's clock, not the library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        if claims.exp + LEEWAY_S < now_s {
            return Err(TokenError::Expired);
        }
        if claims.iat - LEEWAY_S > now_s {
            return Err(TokenError::IssuedInTheFuture);
        }
        if let Some(expected) = nonce
            && claims.nonce.as_deref() != Some(expected)
        {
            return Err(TokenError::Nonce);
        }
        let email_verified = matches!(&claims.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&claims.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        Ok(VerifiedPerson {
            subject: claims.sub,
            email: claims.email,
            email_verified,
            name: claims.name.filter(|n| !n.trim().is_empty()),
        })
    }

    /// The key named `kid`: from the cache while it is fresh; else fetched again (for an
    /// unknown kid, at most once a minute).
    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        let mut keys = self.keys.lock().await;
        let now = Instant::now();
        let cached = keys.set.find(kid).cloned();
        let stale = now >= keys.fresh_until;
        let may_refetch = keys
            .fetched_at
            .is_none_or(|at| now.duration_since(at) >= self.settings.min_refetch);
        if let Some(jwk) = &cached
            && !stale
        {
            return Ok(jwk.clone());
        }
        if !(stale || may_refetch) {
            return Err(TokenError::UnknownKey);
        }
        match self.fetch().await {
            Ok((set, ttl)) => {
                keys.set = set;
                keys.fresh_until = now + ttl;
                keys.fetched_at = Some(now);
            }
            // Keys still in the cache keep working through a provider's outage, and are not
            // fetched again for a while (each sign-in would otherwise wait on the provider).
            Err(error) => {
                keys.fetched_at = Some(now);
                keys.fresh_until = now + self.settings.min_refetch;
                return cached.ok_or(error);
            }
        }
        keys.set.find(kid).cloned().ok_or(TokenError::UnknownKey)
    }

    async fn fetch(&self) -> Result<(JwkSet, Duration), TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::KeysUnavailable(e.to_string());
        let response = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?;
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(KEYS_TTL_DEFAULT);
        let set = response.json::<JwkSet>().await.map_err(unavailable)?;
        Ok((set, ttl))
    }
}

/// The one algorithm a key verifies: the one it declares, else the one its type implies.
/// Only asymmetric signatures are taken (an HMAC "key" from a JWKS would be public).
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        Some(alg) => alg.to_string().parse().ok()?,
        None => implied,
    };
    const ASYMMETRIC: [Algorithm; 8] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ];
    ASYMMETRIC.contains(&declared).then_some(declared)
}

/// `max-age=N` of a `Cache-Control` header.
fn max_age(header: &str) -> Option<Duration> {
    header.split(',').find_map(|part| {
        let seconds = part.trim().strip_prefix("max-age=")?;
        seconds.trim().parse().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=21600, must-revalidate"),
            Some(Duration::from_secs(21600))
        );
        assert_eq!(max_age("no-cache"), None);
    }
}
