//! What a writer keeps between batches, and what a committed batch leaves in it.

use super::*;

/// What a writer keeps between batches: the accounts it has loaded, with their live grants and
/// open holds, exactly as its last commit left them. A stamp read when a batch opens tells
/// whether anything else has changed the ledger since: the asset's epoch, which every batch
/// and every other change to what is cached here advances (see `epoch.rs`; SQLite's
/// `data_version`, used before migration 024, also changed with every job claimed or order
/// placed). If anything has, the cache is dropped, so it is only ever used while nothing but
/// this writer has changed the ledger.
pub(crate) struct Cached {
    /// The stamp the next batch must read for this cache to be fresh.
    pub(super) next_stamp: i64,
    pub(super) system_ids: HashMap<SystemAccount, String>,
    pub(super) system: HashMap<SystemAccount, SystemState>,
    pub(super) accounts: HashMap<String, Account>,
    pub(super) holds: HashMap<String, Hold>,
    pub(super) holds_by_account: HashMap<String, Vec<String>>,
    /// Live grants across `accounts`, kept as they change so the bound costs nothing to check.
    pub(super) grant_count: usize,
}

/// Beyond this many accounts, grants and holds together the cache is dropped and starts again,
/// to bound its memory.
const CACHED_ITEMS_MAX: usize = 200_000;

impl UnitOfWork {
    /// After the batch committed: what to keep for the next one. Burned-out grants and settled
    /// holds are left behind; everything kept is marked as written. Only what this batch
    /// touched is visited.
    pub fn into_cache(self) -> Option<Cached> {
        // The next batch's advance of the epoch is the next value.
        let next_stamp = self.stamp + 1;
        let mut accounts = self.accounts;
        let mut grant_count = self.grant_count;
        for user in &self.touched_accounts {
            let Some(account) = accounts.get_mut(user) else {
                continue;
            };
            account.dirty = false;
            let before = account.grants.len();
            account.grants.retain(|g| g.remaining > 0);
            grant_count = grant_count.saturating_sub(before - account.grants.len());
            for grant in &mut account.grants {
                grant.dirty = false;
                grant.is_new = false;
            }
        }
        let mut holds = self.holds;
        let mut holds_by_account = self.holds_by_account;
        for id in &self.touched_holds {
            let Some(hold) = holds.get_mut(id) else {
                continue;
            };
            if hold.status == HoldStatus::Held {
                hold.dirty = false;
                hold.is_new = false;
                continue;
            }
            let account_id = hold.account_id.clone();
            holds.remove(id);
            if let Some(ids) = holds_by_account.get_mut(&account_id) {
                ids.retain(|held| held != id);
                if ids.is_empty() {
                    holds_by_account.remove(&account_id);
                }
            }
        }
        if accounts.len() + grant_count + holds.len() > CACHED_ITEMS_MAX {
            return None;
        }
        let mut system = self.system;
        for state in system.values_mut() {
            state.changed = false;
        }
        Some(Cached {
            next_stamp,
            system_ids: self.system_ids,
            system,
            accounts,
            holds,
            holds_by_account,
            grant_count,
        })
    }
}
