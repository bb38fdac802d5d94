//! Prefixed, time-ordered ids (`txn_0193…`): the prefix says what the id names, and the UUIDv7
//! body sorts by creation time, which cursor pagination relies on.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A secret of 32 random bytes, hex-encoded, behind a prefix (`bsk_…` for API keys).
pub fn new_secret(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data.as_ref()))
}
