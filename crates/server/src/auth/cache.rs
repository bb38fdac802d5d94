//! A short-lived cache of who a credential belongs to, so the hot paths (a service spending
//! with its API key, a user reading a balance) do not pay a database read for authorisation on
//! every request. Changes made through this instance (a revoked key, a suspended or promoted
//! user) are forgotten at once; other instances sharing the database see them within
//! `ACCESS_CACHE_TTL`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bursar_core::{Role, UserStatus};

pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(2);
/// Entries kept at most; past this the cache starts over rather than grow.
const ENTRIES_MAX: usize = 100_000;

type Access = Option<(Role, UserStatus)>;

#[derive(Default)]
pub struct AccessCache {
    /// SHA-256 of an API key → the live key's id (None: no such live key).
    keys: Mutex<HashMap<String, (Option<String>, Instant)>>,
    users: Mutex<HashMap<String, (Access, Instant)>>,
}

fn fresh<V: Clone>(map: &Mutex<HashMap<String, (V, Instant)>>, key: &str) -> Option<V> {
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.get(key)
        .filter(|(_, at)| at.elapsed() < ACCESS_CACHE_TTL)
        .map(|(value, _)| value.clone())
}

fn remember<V>(map: &Mutex<HashMap<String, (V, Instant)>>, key: String, value: V) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() >= ENTRIES_MAX {
        map.clear();
    }
    map.insert(key, (value, Instant::now()));
}

impl AccessCache {
    pub fn api_key(&self, key_hash: &str) -> Option<Option<String>> {
        fresh(&self.keys, key_hash)
    }

    pub fn remember_api_key(&self, key_hash: String, key_id: Option<String>) {
        remember(&self.keys, key_hash, key_id);
    }

    pub fn forget_api_key(&self, key_id: &str) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.retain(|_, (id, _)| id.as_deref() != Some(key_id));
    }

    pub fn user(&self, user_id: &str) -> Option<Access> {
        fresh(&self.users, user_id)
    }

    pub fn remember_user(&self, user_id: String, access: Access) {
        remember(&self.users, user_id, access);
    }

    pub fn forget_user(&self, user_id: &str) {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        users.remove(user_id);
    }
}
