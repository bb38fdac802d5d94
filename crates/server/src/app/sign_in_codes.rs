//! Signing in with a one-time code sent by email or SMS: six digits from a cryptographically
//! secure generator (rand's `ThreadRng`, seeded from the operating system), kept only as a keyed hash (HMAC-SHA256, bound to the destination)
//! and compared in constant time; valid ten minutes, once, for five wrong tries at most.
//! Asking for a code answers the same whether or not the destination has an account, so the
//! answer tells nobody who is registered.

use bursar_core::{CodeChannel, IdentityProvider};
use bursar_store::identities::Claimed;
use bursar_store::sign_in_codes::{ATTEMPTS_MAX, CodeLimits, Issued, NewCode};
use bursar_store::users::User;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::AppState;
use crate::app::accounts;
use crate::error::{ApiError, ApiResult};

pub const CODE_TTL_MINUTES: i64 = 10;
const CODE_TTL_MS: i64 = CODE_TTL_MINUTES * 60_000;

/// The key codes are hashed with (generated on first start, kept in the database).
pub struct CodeKey(Vec<u8>);

impl CodeKey {
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, destination: &str, code: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(destination.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        mac
    }

    fn hash(&self, destination: &str, code: &str) -> String {
        hex::encode(self.mac(destination, code).finalize().into_bytes())
    }

    /// Constant-time: how much of the code was right takes no longer or shorter to find out.
    fn matches(&self, destination: &str, code: &str, stored_hash: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hash) else {
            return false;
        };
        self.mac(destination, code).verify_slice(&stored).is_ok()
    }
}

/// The destination as codes are keyed: an email trimmed and lower-cased, or an E.164 phone.
pub fn destination(channel: CodeChannel, raw: &str) -> ApiResult<String> {
    match channel {
        CodeChannel::Email => accounts::normalize_email(raw),
        CodeChannel::Sms => accounts::check_phone(Some(raw.trim().to_string()))?
            .ok_or_else(|| ApiError::invalid("destination must be a phone number in E.164")),
    }
}

/// The channels codes can be asked for here: those whose transport is configured, or both
/// (to the log) on a server that has neither, as in development.
pub fn channels(state: &AppState) -> Vec<CodeChannel> {
    let configured: Vec<CodeChannel> = CodeChannel::ALL
        .iter()
        .copied()
        .filter(|c| state.senders.delivers(*c))
        .collect();
    if configured.is_empty() {
        CodeChannel::ALL.to_vec()
    } else {
        configured
    }
}

fn require_channel(state: &AppState, channel: CodeChannel) -> ApiResult<()> {
    if channels(state).contains(&channel) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "codes by {channel} are not configured on this server"
        )))
    }
}

/// Issues a code for `destination` and queues its sending.
pub async fn request(
    state: &AppState,
    channel: CodeChannel,
    destination: &str,
    client_address: &str,
) -> ApiResult<()> {
    require_channel(state, channel)?;
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000));
    let hash = state.code_key.hash(destination, &code);
    let limits = CodeLimits {
        per_destination: state.config.codes_per_destination_per_hour,
        per_address: state.config.codes_per_address_per_hour,
    };
    let new = NewCode {
        channel,
        destination,
        code: &code,
        code_hash: &hash,
        client_address,
        ttl_ms: CODE_TTL_MS,
    };
    match state.store.issue_sign_in_code(&new, limits).await? {
        Issued::Queued { .. } => Ok(()),
        Issued::Limited => Err(ApiError::rate_limited(3600)),
    }
}

/// Checks a code and signs its owner in: the account with that email (an email code proves
/// the address), the account this phone signed in to before, or a new member.
pub async fn verify(
    state: &AppState,
    channel: CodeChannel,
    destination: &str,
    code: &str,
) -> ApiResult<(User, bool)> {
    require_channel(state, channel)?;
    let invalid = || {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_code",
            "the code is wrong",
        )
    };
    let expired = || {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "code_expired",
            "the code has expired or was used already: ask for a new one",
        )
    };
    let Some(issued) = state
        .store
        .latest_sign_in_code(channel, destination)
        .await?
    else {
        return Err(invalid());
    };
    let dead = || {
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many wrong codes: ask for a new one",
        )
    };
    if issued.used || issued.expires_at_ms <= state.store.clock.now_ms() {
        return Err(expired());
    }
    if issued.attempts >= ATTEMPTS_MAX {
        return Err(dead());
    }
    // The try is counted before the code is compared (a right code is used up anyway), so
    // tries made at the same moment cannot together get past the limit.
    if !state.store.take_code_attempt(&issued.id).await? {
        return Err(dead());
    }
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    if !well_formed || !state.code_key.matches(destination, code, &issued.code_hash) {
        return Err(invalid());
    }
    if !state.store.use_sign_in_code(&issued.id).await? {
        return Err(expired());
    }
    let (provider, email) = match channel {
        CodeChannel::Email => (IdentityProvider::EmailCode, Some(destination)),
        CodeChannel::Sms => (IdentityProvider::SmsCode, None),
    };
    let claimed = Claimed {
        provider,
        subject: destination,
        email,
        email_verified: email.is_some(),
        display_name: None,
    };
    crate::app::identity_sign_in::sign_in_claimed(state, &claimed).await
}
