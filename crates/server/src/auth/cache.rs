//! A short-lived cache of who a credential belongs to, so the hot paths (a service spending
//! with its API key, a user reading a balance) do not pay a database read for authorisation on
//! every request. Changes made through this instance (a revoked key, a suspended or promoted
//! user) are forgotten at once; other instances sharing the database see them within
//! `ACCESS_CACHE_TTL`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bursar_core::{Role, UserStatus};

pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(2);
/// Past this age the first request to find an entry reloads it, while every other request goes
/// on using it until `ACCESS_CACHE_TTL`. So a busy credential never expires under all of its
/// requests at once, which would send every one of them to the database together (hundreds of
/// lookups queued for the pool: the slowest requests of a load test).
const REFRESH_AFTER: Duration = Duration::from_secs(1);
/// Entries kept at most; past this the cache starts over rather than grow.
const ENTRIES_MAX: usize = 100_000;

type Access = Option<(Role, UserStatus)>;

struct Entry<V> {
    value: V,
    loaded: Instant,
    /// A request is reloading it.
    refreshing: bool,
}

type Entries<V> = Mutex<HashMap<String, Entry<V>>>;

#[derive(Default)]
pub struct AccessCache {
    /// SHA-256 of an API key → the live key's id (None: no such live key).
    keys: Entries<Option<String>>,
    users: Entries<Access>,
    /// API key id → when this instance last saw it used (Unix ms), not yet written: recording
    /// every use would be a database write per service request, so uses are written in bulk
    /// once a minute (`take_key_uses`).
    key_uses: Mutex<HashMap<String, i64>>,
}

fn locked<V>(map: &Entries<V>) -> MutexGuard<'_, HashMap<String, Entry<V>>> {
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The cached value, or `None` when the caller must load it (and then `remember` it): it is
/// missing, too old, or due for a reload that no other request has taken on.
fn fresh<V: Clone>(map: &Entries<V>, key: &str, now: Instant) -> Option<V> {
    let mut map = locked(map);
    let entry = map.get_mut(key)?;
    let age = now.saturating_duration_since(entry.loaded);
    if age >= ACCESS_CACHE_TTL {
        return None;
    }
    if age >= REFRESH_AFTER && !entry.refreshing {
        entry.refreshing = true;
        return None;
    }
    Some(entry.value.clone())
}

fn remember<V>(map: &Entries<V>, key: String, value: V, now: Instant) {
    let mut map = locked(map);
    if map.len() >= ENTRIES_MAX {
        map.clear();
    }
    let entry = Entry {
        value,
        loaded: now,
        refreshing: false,
    };
    map.insert(key, entry);
}

impl AccessCache {
    pub fn api_key(&self, key_hash: &str) -> Option<Option<String>> {
        fresh(&self.keys, key_hash, Instant::now())
    }

    pub fn remember_api_key(&self, key_hash: String, key_id: Option<String>) {
        remember(&self.keys, key_hash, key_id, Instant::now());
    }

    pub fn note_key_use(&self, key_id: &str, at_ms: i64) {
        let mut uses = self
            .key_uses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(last) = uses.get_mut(key_id) {
            *last = (*last).max(at_ms);
        } else if uses.len() < ENTRIES_MAX {
            uses.insert(key_id.to_string(), at_ms);
        }
    }

    /// The uses noted since the last call, to be written.
    pub fn take_key_uses(&self) -> Vec<(String, i64)> {
        let mut uses = self
            .key_uses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *uses).into_iter().collect()
    }

    pub fn forget_api_key(&self, key_id: &str) {
        locked(&self.keys).retain(|_, entry| entry.value.as_deref() != Some(key_id));
    }

    pub fn user(&self, user_id: &str) -> Option<Access> {
        fresh(&self.users, user_id, Instant::now())
    }

    pub fn remember_user(&self, user_id: String, access: Access) {
        remember(&self.users, user_id, access, Instant::now());
    }

    pub fn forget_user(&self, user_id: &str) {
        locked(&self.users).remove(user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn cached(loaded: Instant) -> Entries<u32> {
        let map = Entries::default();
        remember(&map, "k".into(), 7, loaded);
        map
    }

    #[test]
    fn a_young_entry_is_served_to_everyone() {
        let loaded = Instant::now();
        let map = cached(loaded);
        for _ in 0..3 {
            assert_eq!(fresh(&map, "k", loaded + SECOND / 2), Some(7));
        }
    }

    #[test]
    fn one_request_reloads_an_ageing_entry_while_the_others_use_it() {
        let loaded = Instant::now();
        let map = cached(loaded);
        let later = loaded + REFRESH_AFTER + SECOND / 10;
        assert_eq!(fresh(&map, "k", later), None, "the first reloads");
        assert_eq!(fresh(&map, "k", later), Some(7));
        assert_eq!(fresh(&map, "k", later), Some(7));
        remember(&map, "k".into(), 8, later);
        assert_eq!(fresh(&map, "k", later), Some(8), "the reload is served");
    }

    #[test]
    fn nobody_is_served_an_entry_past_its_lifetime() {
        let loaded = Instant::now();
        let map = cached(loaded);
        let _reloading = fresh(&map, "k", loaded + REFRESH_AFTER);
        let expired = loaded + ACCESS_CACHE_TTL;
        assert_eq!(fresh(&map, "k", expired), None);
        assert_eq!(fresh(&map, "k", expired), None);
        assert_eq!(fresh(&map, "missing", loaded), None);
    }
}
