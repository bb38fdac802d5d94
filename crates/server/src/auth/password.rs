//! Argon2id password hashes in PHC string form. Hashing is deliberately slow, so it runs on the
//! blocking pool rather than on a request-serving thread.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 256;

/// Argon2id needs 19 MiB per hash. Hashes beyond this many at once wait their turn, so a burst
/// of logins costs time, not gigabytes of memory.
const HASHES_AT_ONCE_MAX: usize = 2;
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHES_AT_ONCE_MAX);

pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
    })
    .await?
}

pub async fn verify(password: String, stored: String) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password nobody knows, checked when the email is unknown so that a login
/// takes as long for a missing account as for a wrong password.
pub async fn decoy_hash() -> anyhow::Result<String> {
    hash(bursar_store::ids::new_secret("decoy")).await
}
