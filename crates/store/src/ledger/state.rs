//! The batch's unit of work. A batch loads every account, grant, hold and idempotency record it
//! needs in a few bulk reads, applies its commands to them in memory, and writes everything
//! back in a few multi-row statements at the end. The cost of a batch is then a handful of
//! round trips whatever its size, which is what makes group commit pay.
//!
//! System accounts (issuance, revenue, promotions, expired) are locked first, always in id
//! order, then user accounts in id order; so batches from several Bursar instances on one
//! PostgreSQL database serialise instead of deadlocking.

use std::collections::{HashMap, HashSet};

use bursar_core::{GrantLot, HoldStatus, SystemAccount, TransferKind, plan_burn};
use sqlx::{AnyConnection, Row};

use super::PaidBy;
use super::epoch;
use super::sql::ColumnType::{Int, Text};
use super::sql::{BatchWrites, Column, Params, Value};
use crate::audit::AuditRecord;
use crate::db::Dialect;
use crate::ids::new_id;
use crate::{StoreError, accounts};

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: String,
    pub balance: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub grants: Vec<Grant>,
    dirty: bool,
}

impl Account {
    /// What a spend or a new hold may still use, counting the overdraft.
    pub fn spendable(&self) -> i64 {
        self.balance - self.held + self.overdraft_limit
    }

    /// The API's `available`: balance less active holds.
    pub fn available(&self) -> i64 {
        self.balance - self.held
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub id: String,
    pub source: String,
    pub priority: i64,
    pub amount: i64,
    pub remaining: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub transfer_id: String,
    is_new: bool,
    dirty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub creator: String,
    pub amount: i64,
    pub status: HoldStatus,
    pub description: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub settled_at: Option<i64>,
    pub captured: Option<i64>,
    pub transfer_id: Option<String>,
    is_new: bool,
    dirty: bool,
}

/// Either side of a transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side<'a> {
    User(&'a str),
    System(SystemAccount),
}

/// What a transfer records besides its accounts and amount. Build with `TransferMeta::kind`
/// and struct update syntax for the rest.
#[derive(Debug, Clone)]
pub(crate) struct TransferMeta<'a> {
    pub kind: TransferKind,
    pub refund_of: Option<&'a str>,
    pub hold_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub description: Option<&'a str>,
    pub metadata: Option<&'a str>,
    pub actor: Option<&'a str>,
}

impl TransferMeta<'_> {
    pub fn kind(kind: TransferKind) -> Self {
        Self {
            kind,
            refund_of: None,
            hold_id: None,
            order_id: None,
            description: None,
            metadata: None,
            actor: None,
        }
    }
}

struct TransferRow {
    id: String,
    kind: TransferKind,
    debit: String,
    credit: String,
    amount: i64,
    debit_after: i64,
    credit_after: i64,
    refund_of: Option<String>,
    hold_id: Option<String>,
    order_id: Option<String>,
    description: Option<String>,
    metadata: Option<String>,
    actor: Option<String>,
}

struct AuditRow {
    id: String,
    actor_id: Option<String>,
    actor_kind: String,
    action: String,
    target: Option<String>,
    details: String,
    ip: Option<String>,
}

/// A stored idempotency record: request hash, status and body.
pub(crate) type StoredReply = (String, i64, String);

#[derive(Clone, Copy)]
struct SystemState {
    balance: i64,
    changed: bool,
}

/// What a writer keeps between batches: the accounts it has loaded, with their live grants and
/// open holds, exactly as its last commit left them. A stamp read when a batch opens tells
/// whether anything else has written since: SQLite's `data_version` (which another
/// connection's commit changes), or PostgreSQL's ledger epoch (which every batch and every
/// other change to accounts advances, see `epoch.rs`). If anything has, the cache is dropped,
/// so it is only ever used while nothing but this writer has changed the ledger.
pub(crate) struct Cached {
    /// The stamp the next batch must read for this cache to be fresh.
    next_stamp: i64,
    system_ids: HashMap<SystemAccount, String>,
    system: HashMap<SystemAccount, SystemState>,
    accounts: HashMap<String, Account>,
    holds: HashMap<String, Hold>,
    holds_by_account: HashMap<String, Vec<String>>,
    /// Live grants across `accounts`, kept as they change so the bound costs nothing to check.
    grant_count: usize,
}

/// Beyond this many accounts, grants and holds together the cache is dropped and starts again,
/// to bound its memory.
const CACHED_ITEMS_MAX: usize = 200_000;

pub(crate) struct UnitOfWork {
    pub dialect: Dialect,
    /// The cache stamp read when the batch began (see `Cached`).
    stamp: i64,
    pub asset: String,
    pub now_ms: i64,
    system_ids: HashMap<SystemAccount, String>,
    system: HashMap<SystemAccount, SystemState>,
    /// Loaded user accounts by user id.
    accounts: HashMap<String, Account>,
    /// Users known to have no account and no user row.
    missing_users: HashSet<String>,
    pub holds: HashMap<String, Hold>,
    /// Hold ids per account id, so settling one account never scans every hold.
    holds_by_account: HashMap<String, Vec<String>>,
    missing_holds: HashSet<String>,
    /// Users whose account this batch changed (each once), and holds it loaded or changed (a
    /// hold loaded and then changed twice, until `flush` sorts and dedups them): what `flush`
    /// writes and `into_cache` tidies, so a batch costs what it touches, not what the cache
    /// holds.
    touched_accounts: Vec<String>,
    touched_holds: Vec<String>,
    /// Live grants across `accounts`.
    grant_count: usize,
    idempotency: HashMap<(String, String), StoredReply>,
    new_idempotency: Vec<(String, String, String, i64, String)>,
    transfers: Vec<TransferRow>,
    links: Vec<(String, String, i64)>,
    audits: Vec<AuditRow>,
    /// Credits refunded per spend in this batch, not yet written.
    pub refunded_in_batch: HashMap<String, i64>,
    /// Coupons whose reservation paid orders turned into redemptions. Written last, in id
    /// order, so the writer takes coupon locks after every order lock (as cancels do).
    coupon_redemptions: Vec<String>,
    /// Jobs this batch enqueued: after the commit, the worker is woken for them.
    jobs_enqueued: usize,
    /// The sum of every balance change so far: each transfer moves one amount out of one
    /// account and into another, so this is zero after every command.
    net_change: i64,
}

// Commands check everything before they change anything, so a refused command leaves the unit
// of work as it found it, except for `settle_overdue`, whose expiries are due whatever the
// command's fate.

impl UnitOfWork {
    /// Begins a batch's unit of work, from `cache` when nothing else has written since it was
    /// taken. On PostgreSQL this takes the asset's epoch lock, which the batch holds until it
    /// commits.
    pub async fn open(
        conn: &mut AnyConnection,
        dialect: Dialect,
        asset: &str,
        now_ms: i64,
        cache: Option<Cached>,
    ) -> Result<Self, StoreError> {
        let stamp = match dialect {
            Dialect::Sqlite => {
                sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                    .fetch_one(&mut *conn)
                    .await?
            }
            Dialect::Postgres => epoch::advance(conn, asset).await?,
        };
        if let Some(cached) = cache {
            let fresh = cached.next_stamp == stamp;
            let outcome = if fresh { "hit" } else { "stale" };
            metrics::counter!("bursar_ledger_cache_total", "outcome" => outcome).increment(1);
            if fresh {
                let mut uow = Self::empty(dialect, asset, now_ms, cached.system_ids, cached.system);
                uow.stamp = stamp;
                uow.accounts = cached.accounts;
                uow.holds = cached.holds;
                uow.holds_by_account = cached.holds_by_account;
                uow.grant_count = cached.grant_count;
                return Ok(uow);
            }
        }
        let rows = sqlx::query(
            "SELECT id, owner_id, balance FROM accounts
             WHERE owner_kind = 'system' AND asset = $1 ORDER BY id",
        )
        .bind(asset)
        .fetch_all(&mut *conn)
        .await?;
        let mut system_ids = HashMap::new();
        let mut system = HashMap::new();
        for row in rows {
            let owner: String = row.try_get("owner_id")?;
            let Some(which) = SystemAccount::parse(&owner) else {
                continue;
            };
            system_ids.insert(which, row.try_get::<String, _>("id")?);
            let balance = row.try_get("balance")?;
            system.insert(
                which,
                SystemState {
                    balance,
                    changed: false,
                },
            );
        }
        if system.len() != SystemAccount::ALL.len() {
            return Err(StoreError::Config(format!(
                "system accounts for asset {asset} are missing"
            )));
        }
        let mut uow = Self::empty(dialect, asset, now_ms, system_ids, system);
        uow.stamp = stamp;
        Ok(uow)
    }

    fn empty(
        dialect: Dialect,
        asset: &str,
        now_ms: i64,
        system_ids: HashMap<SystemAccount, String>,
        system: HashMap<SystemAccount, SystemState>,
    ) -> Self {
        Self {
            dialect,
            stamp: 0,
            asset: asset.to_string(),
            now_ms,
            system_ids,
            system,
            accounts: HashMap::new(),
            missing_users: HashSet::new(),
            holds: HashMap::new(),
            holds_by_account: HashMap::new(),
            missing_holds: HashSet::new(),
            touched_accounts: Vec::new(),
            touched_holds: Vec::new(),
            grant_count: 0,
            idempotency: HashMap::new(),
            new_idempotency: Vec::new(),
            transfers: Vec::new(),
            links: Vec::new(),
            audits: Vec::new(),
            refunded_in_batch: HashMap::new(),
            coupon_redemptions: Vec::new(),
            jobs_enqueued: 0,
            net_change: 0,
        }
    }

    /// Transfers this batch writes.
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Enqueues `job` in the batch's transaction: it exists exactly if the batch commits. Call
    /// it only once the command can no longer be refused (a refusal keeps the transaction).
    pub async fn enqueue(
        &mut self,
        conn: &mut AnyConnection,
        job: &crate::jobs::NewJob,
    ) -> Result<bool, StoreError> {
        let inserted = crate::jobs::enqueue_in(conn, job, self.now_ms).await?;
        self.jobs_enqueued += usize::from(inserted);
        Ok(inserted)
    }

    pub fn jobs_enqueued(&self) -> usize {
        self.jobs_enqueued
    }

    /// The ledger's invariants over what this batch changed, checked after every command in
    /// debug builds (tests), so a rule that breaks one fails at the command that broke it:
    /// balances change by transfers only (Σ of changes = 0), held credits and grant remainders
    /// stay within range, and no account goes below minus its overdraft limit (the database's
    /// `CHECK` would refuse the whole batch at its write).
    pub fn debug_assert_invariants(&self) {
        debug_assert_eq!(
            self.net_change, 0,
            "a command changed balances by more than transfers"
        );
        for user in &self.touched_accounts {
            let Some(account) = self.accounts.get(user) else {
                continue;
            };
            debug_assert!(account.held >= 0, "held < 0 on {user}: {account:?}");
            debug_assert!(
                account.balance - account.held >= -account.overdraft_limit,
                "{user} is below minus its overdraft limit: {account:?}"
            );
            for grant in &account.grants {
                debug_assert!(
                    (0..=grant.amount).contains(&grant.remaining),
                    "grant {} of {user} has {} left of {}",
                    grant.id,
                    grant.remaining,
                    grant.amount
                );
            }
        }
    }

    /// After the batch committed: what to keep for the next one. Burned-out grants and settled
    /// holds are left behind; everything kept is marked as written. Only what this batch
    /// touched is visited.
    pub fn into_cache(self) -> Option<Cached> {
        // This connection's own commits leave SQLite's `data_version` alone; on PostgreSQL
        // the next batch's advance of the epoch is the next value.
        let next_stamp = match self.dialect {
            Dialect::Sqlite => self.stamp,
            Dialect::Postgres => self.stamp + 1,
        };
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

    // ---- loading ----

    /// Loads the accounts of these users with their live grants and open holds; users already
    /// loaded are skipped. No row is locked: every writer holds the epoch (PostgreSQL) or the
    /// database's write lock (SQLite). A user without an account gets one; an unknown user is
    /// remembered as missing.
    pub async fn load_users(
        &mut self,
        conn: &mut AnyConnection,
        user_ids: &[&str],
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<&str> = user_ids
            .iter()
            .copied()
            .filter(|u| !self.accounts.contains_key(*u) && !self.missing_users.contains(*u))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(500) {
            self.load_user_chunk(conn, chunk).await?;
        }
        Ok(())
    }

    async fn load_user_chunk(
        &mut self,
        conn: &mut AnyConnection,
        users: &[&str],
    ) -> Result<(), StoreError> {
        let mut params = Params::new(self.dialect);
        let sql = format!(
            "SELECT id, owner_id, balance, held, overdraft_limit FROM accounts
             WHERE owner_kind = 'user' AND asset = {} AND owner_id IN ({})",
            params.next(),
            params.list(users.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(&self.asset);
        for user in users {
            query = query.bind(*user);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let mut by_account: HashMap<String, String> = HashMap::new();
        for row in rows {
            let user: String = row.try_get("owner_id")?;
            let id: String = row.try_get("id")?;
            by_account.insert(id.clone(), user.clone());
            self.accounts.insert(
                user,
                Account {
                    id,
                    balance: row.try_get("balance")?,
                    held: row.try_get("held")?,
                    overdraft_limit: row
                        .try_get::<Option<i64>, _>("overdraft_limit")?
                        .unwrap_or(0),
                    grants: Vec::new(),
                    dirty: false,
                },
            );
        }
        if !by_account.is_empty() {
            let account_ids: Vec<&String> = by_account.keys().collect();
            let sql = format!(
                "SELECT id, account_id, source, priority, amount, remaining, expires_at, created_at, transfer_id
                 FROM grants WHERE live AND account_id IN ({})",
                Params::new(self.dialect).list(account_ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in &account_ids {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&mut *conn).await? {
                let account_id: String = row.try_get("account_id")?;
                let user = &by_account[&account_id];
                let grant = Grant {
                    id: row.try_get("id")?,
                    source: row.try_get("source")?,
                    priority: row.try_get("priority")?,
                    amount: row.try_get("amount")?,
                    remaining: row.try_get("remaining")?,
                    expires_at: row.try_get("expires_at")?,
                    created_at: row.try_get("created_at")?,
                    transfer_id: row.try_get("transfer_id")?,
                    is_new: false,
                    dirty: false,
                };
                if let Some(account) = self.accounts.get_mut(user) {
                    account.grants.push(grant);
                    self.grant_count += 1;
                }
            }
            // A cached account must know every open hold it has, not only the overdue ones.
            let sql = format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE status = 'held' AND account_id IN ({})",
                Params::new(self.dialect).list(account_ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in &account_ids {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&mut *conn).await? {
                let hold = hold_from_row(&row)?;
                self.insert_hold(hold);
            }
        }
        for user in users {
            if self.accounts.contains_key(*user) {
                continue;
            }
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(*user)
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_none() {
                self.missing_users.insert(user.to_string());
                continue;
            }
            accounts::create_user_account(conn, user, &self.asset, self.now_ms).await?;
            // Read it back (and lock it) through the ordinary path.
            Box::pin(self.load_user_chunk(conn, &[user])).await?;
        }
        Ok(())
    }

    /// Loads these holds (and their users' accounts).
    pub async fn load_holds(
        &mut self,
        conn: &mut AnyConnection,
        hold_ids: &[&str],
    ) -> Result<(), StoreError> {
        let wanted: Vec<&str> = hold_ids
            .iter()
            .copied()
            .filter(|h| !self.holds.contains_key(*h) && !self.missing_holds.contains(*h))
            .collect();
        let mut users = Vec::new();
        for chunk in wanted.chunks(500) {
            let sql = format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE id IN ({})",
                Params::new(self.dialect).list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let hold = hold_from_row(&row)?;
                users.push(hold.user_id.clone());
                self.insert_hold(hold);
            }
        }
        for id in wanted {
            if !self.holds.contains_key(id) {
                self.missing_holds.insert(id.to_string());
            }
        }
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        self.load_users(conn, &users).await
    }

    /// Loads the stored replies for these idempotency keys.
    pub async fn load_idempotency(
        &mut self,
        conn: &mut AnyConnection,
        keys: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        for chunk in keys.chunks(500) {
            let mut params = Params::new(self.dialect);
            let conditions: Vec<String> = (0..chunk.len())
                .map(|_| format!("(scope = {} AND key = {})", params.next(), params.next()))
                .collect();
            let sql = format!(
                "SELECT scope, key, request_hash, status, body FROM idempotency_keys WHERE {}",
                conditions.join(" OR ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for (scope, key) in chunk {
                query = query.bind(*scope).bind(*key);
            }
            for row in query.fetch_all(&mut *conn).await? {
                self.idempotency.insert(
                    (row.try_get("scope")?, row.try_get("key")?),
                    (
                        row.try_get("request_hash")?,
                        row.try_get("status")?,
                        row.try_get("body")?,
                    ),
                );
            }
        }
        Ok(())
    }

    pub fn stored_reply(&self, scope: &str, key: &str) -> Option<&StoredReply> {
        self.idempotency.get(&(scope.to_string(), key.to_string()))
    }

    pub fn remember_reply(&mut self, scope: &str, key: &str, hash: &str, status: i64, body: &str) {
        self.idempotency.insert(
            (scope.to_string(), key.to_string()),
            (hash.to_string(), status, body.to_string()),
        );
        self.new_idempotency.push((
            scope.to_string(),
            key.to_string(),
            hash.to_string(),
            status,
            body.to_string(),
        ));
    }

    // ---- reading loaded state ----

    /// Adds a loaded hold (one already known is kept as it is) and indexes it by account.
    fn insert_hold(&mut self, hold: Hold) {
        if self.holds.contains_key(&hold.id) {
            return;
        }
        self.holds_by_account
            .entry(hold.account_id.clone())
            .or_default()
            .push(hold.id.clone());
        self.touched_holds.push(hold.id.clone());
        self.holds.insert(hold.id.clone(), hold);
    }

    pub fn account(&self, user_id: &str) -> Option<&Account> {
        self.accounts.get(user_id)
    }

    pub fn account_mut(&mut self, user_id: &str) -> Option<&mut Account> {
        let account = self.accounts.get_mut(user_id)?;
        if !account.dirty {
            account.dirty = true;
            self.touched_accounts.push(user_id.to_string());
        }
        Some(account)
    }

    pub fn hold_mut(&mut self, hold_id: &str) -> Option<&mut Hold> {
        let hold = self.holds.get_mut(hold_id)?;
        if !hold.dirty {
            hold.dirty = true;
            self.touched_holds.push(hold_id.to_string());
        }
        Some(hold)
    }

    // ---- changes ----

    /// Releases this user's overdue holds and moves what is left of overdue grants to the
    /// `expired` account. Credits reserved by active holds stay, so a hold taken before the
    /// expiry can still be captured; the rest of such a grant expires once the hold settles.
    pub fn settle_overdue(&mut self, user_id: &str) {
        let now = self.now_ms;
        let Some(account_id) = self.accounts.get(user_id).map(|a| a.id.clone()) else {
            return;
        };
        let mut released = 0;
        for hold_id in self.holds_by_account.get(&account_id).into_iter().flatten() {
            let Some(hold) = self.holds.get_mut(hold_id) else {
                continue;
            };
            if hold.status == HoldStatus::Held && hold.expires_at <= now {
                hold.status = HoldStatus::Expired;
                hold.settled_at = Some(now);
                if !hold.dirty {
                    hold.dirty = true;
                    self.touched_holds.push(hold_id.clone());
                }
                released += hold.amount;
            }
        }
        if released > 0
            && let Some(account) = self.account_mut(user_id)
        {
            account.held -= released;
        }
        loop {
            let Some(account) = self.accounts.get(user_id) else {
                return;
            };
            let overdue = account
                .grants
                .iter()
                .enumerate()
                .filter(|(_, g)| g.remaining > 0 && g.expires_at.is_some_and(|e| e <= now))
                .min_by_key(|(_, g)| (g.expires_at, g.id.clone()))
                .map(|(i, g)| (i, g.id.clone(), g.remaining));
            let Some((index, grant_id, remaining)) = overdue else {
                return;
            };
            let take = remaining.min(account.available().max(0));
            if take == 0 {
                return;
            }
            if let Some(account) = self.account_mut(user_id) {
                let grant = &mut account.grants[index];
                grant.remaining -= take;
                grant.dirty = true;
            }
            let transfer_id = self.post(
                Side::User(user_id),
                Side::System(SystemAccount::Expired),
                take,
                &TransferMeta::kind(TransferKind::Expiry),
            );
            self.links.push((transfer_id, grant_id, take));
        }
    }

    /// Moves `amount` between two accounts and records the transfer; returns its id. The caller
    /// has checked every limit.
    pub fn post(
        &mut self,
        debit: Side<'_>,
        credit: Side<'_>,
        amount: i64,
        meta: &TransferMeta<'_>,
    ) -> String {
        let (debit_id, debit_after) = self.move_side(debit, -amount);
        let (credit_id, credit_after) = self.move_side(credit, amount);
        let id = new_id("txn");
        self.transfers.push(TransferRow {
            id: id.clone(),
            kind: meta.kind,
            debit: debit_id,
            credit: credit_id,
            amount,
            debit_after,
            credit_after,
            refund_of: meta.refund_of.map(str::to_string),
            hold_id: meta.hold_id.map(str::to_string),
            order_id: meta.order_id.map(str::to_string),
            description: meta.description.map(str::to_string),
            metadata: meta.metadata.map(str::to_string),
            actor: meta.actor.map(str::to_string),
        });
        id
    }

    fn move_side(&mut self, side: Side<'_>, delta: i64) -> (String, i64) {
        self.net_change += delta;
        match side {
            Side::System(which) => {
                let state = self
                    .system
                    .get_mut(&which)
                    .expect("every system account is loaded");
                state.balance += delta;
                state.changed = true;
                (self.system_ids[&which].clone(), state.balance)
            }
            Side::User(user) => {
                let account = self
                    .account_mut(user)
                    .expect("the caller loaded this account");
                account.balance += delta;
                (account.id.clone(), account.balance)
            }
        }
    }

    /// Debits a user to a system account, burning grants in order; returns the transfer id and
    /// which grants paid.
    pub fn debit(
        &mut self,
        user_id: &str,
        amount: i64,
        to: SystemAccount,
        meta: &TransferMeta<'_>,
    ) -> (String, Vec<PaidBy>) {
        self.debit_preferring(user_id, amount, to, meta, |_| false)
    }

    /// Like `debit`, but burns the grants `first` picks before any other (a refunded order's
    /// own grants), each group in the usual burn-down order.
    pub fn debit_preferring(
        &mut self,
        user_id: &str,
        amount: i64,
        to: SystemAccount,
        meta: &TransferMeta<'_>,
        first: impl Fn(&Grant) -> bool,
    ) -> (String, Vec<PaidBy>) {
        let (preferred, others): (Vec<GrantLot>, Vec<GrantLot>) = self
            .accounts
            .get(user_id)
            .map(|a| {
                a.grants
                    .iter()
                    .map(|g| {
                        let lot = GrantLot {
                            id: g.id.clone(),
                            remaining: g.remaining,
                            priority: g.priority,
                            expires_at_ms: g.expires_at,
                            created_at_ms: g.created_at,
                        };
                        (first(g), lot)
                    })
                    .partition::<Vec<_>, _>(|(preferred, _)| *preferred)
            })
            .map(|(p, o)| {
                (
                    p.into_iter().map(|(_, lot)| lot).collect(),
                    o.into_iter().map(|(_, lot)| lot).collect(),
                )
            })
            .unwrap_or_default();
        let (mut taken, rest) = plan_burn(&preferred, amount);
        taken.extend(plan_burn(&others, rest).0);
        let transfer_id = self.post(Side::User(user_id), Side::System(to), amount, meta);
        let mut paid_by = Vec::with_capacity(taken.len());
        if let Some(account) = self.accounts.get_mut(user_id) {
            for (grant_id, take) in taken {
                if let Some(grant) = account.grants.iter_mut().find(|g| g.id == grant_id) {
                    grant.remaining -= take;
                    grant.dirty = true;
                    paid_by.push(PaidBy {
                        grant_id: grant_id.clone(),
                        source: grant.source.clone(),
                        amount: take,
                    });
                }
                self.links.push((transfer_id.clone(), grant_id, take));
            }
        }
        (transfer_id, paid_by)
    }

    /// Credits a user from a system account as a new grant. When the account was overdrawn the
    /// debt is paid first, so the grant keeps only what ends up above zero.
    pub fn grant(
        &mut self,
        user_id: &str,
        spec: GrantSpec<'_>,
        meta: &TransferMeta<'_>,
    ) -> (String, String) {
        let GrantSpec {
            amount,
            source,
            from,
            priority,
            expires_at,
        } = spec;
        let before = self.accounts.get(user_id).map_or(0, |a| a.balance);
        let transfer_id = self.post(Side::System(from), Side::User(user_id), amount, meta);
        let grant_id = new_id("grt");
        let now = self.now_ms;
        if let Some(account) = self.account_mut(user_id) {
            let remaining = account.balance.max(0) - before.max(0);
            account.grants.push(Grant {
                id: grant_id.clone(),
                source: source.to_string(),
                priority,
                amount,
                remaining,
                expires_at,
                created_at: now,
                transfer_id: transfer_id.clone(),
                is_new: true,
                dirty: true,
            });
            self.grant_count += 1;
        }
        (transfer_id, grant_id)
    }

    pub fn add_hold(&mut self, hold: NewHold) -> &Hold {
        let id = hold.id.clone();
        self.insert_hold(Hold {
            id: hold.id,
            account_id: hold.account_id,
            user_id: hold.user_id,
            creator: hold.creator,
            amount: hold.amount,
            status: HoldStatus::Held,
            description: hold.description,
            expires_at: hold.expires_at,
            created_at: self.now_ms,
            settled_at: None,
            captured: None,
            transfer_id: None,
            is_new: true,
            dirty: true,
        });
        &self.holds[&id]
    }

    pub fn redeem_coupon(&mut self, coupon_id: &str) {
        self.coupon_redemptions.push(coupon_id.to_string());
    }

    /// Ids of this batch's transfers, not yet written, for an order and of these kinds.
    pub fn unwritten_transfers(&self, order_id: &str, kinds: &[TransferKind]) -> Vec<String> {
        self.transfers
            .iter()
            .filter(|t| t.order_id.as_deref() == Some(order_id) && kinds.contains(&t.kind))
            .map(|t| t.id.clone())
            .collect()
    }

    pub fn audit(&mut self, record: AuditRecord<'_>) {
        self.audits.push(AuditRow {
            id: new_id("aud"),
            actor_id: record.actor_id.map(str::to_string),
            actor_kind: record.actor_kind.to_string(),
            action: record.action.to_string(),
            target: record.target.map(str::to_string),
            details: record.details.to_string(),
            ip: record.ip.map(str::to_string),
        });
    }

    // ---- writing ----

    /// Writes every change, in an order that satisfies the foreign keys.
    pub async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        // A hold loaded and then changed is listed twice; sorted, writes also go in id order.
        self.touched_holds.sort_unstable();
        self.touched_holds.dedup();
        let now = self.now_ms;
        let asset = self.asset.clone();
        let mut writes = BatchWrites::new(self.dialect);
        let transfers: Vec<Vec<Value>> = self
            .transfers
            .iter()
            .map(|t| {
                vec![
                    Value::Text(&t.id),
                    Value::Text(&asset),
                    Value::Text(t.kind.as_str()),
                    Value::Text(&t.debit),
                    Value::Text(&t.credit),
                    Value::Int(t.amount),
                    Value::Int(t.debit_after),
                    Value::Int(t.credit_after),
                    Value::OptText(t.refund_of.as_deref()),
                    Value::OptText(t.hold_id.as_deref()),
                    Value::OptText(t.order_id.as_deref()),
                    Value::OptText(t.description.as_deref()),
                    Value::OptText(t.metadata.as_deref()),
                    Value::OptText(t.actor.as_deref()),
                    Value::Int(now),
                ]
            })
            .collect();
        writes
            .insert(conn, "transfers", TRANSFER_COLUMNS, &transfers)
            .await?;

        let accounts: Vec<&Account> = {
            let mut dirty: Vec<&Account> = self
                .touched_accounts
                .iter()
                .filter_map(|user| self.accounts.get(user))
                .collect();
            dirty.sort_by(|a, b| a.id.cmp(&b.id));
            dirty
        };
        let mut new_grants = Vec::new();
        let mut changed_grants = Vec::new();
        for account in &accounts {
            for g in account.grants.iter().filter(|g| g.dirty) {
                if g.is_new {
                    new_grants.push(vec![
                        Value::Text(&g.id),
                        Value::Text(&account.id),
                        Value::Text(&g.source),
                        Value::Int(g.priority),
                        Value::Int(g.amount),
                        Value::Int(g.remaining),
                        Value::OptInt(g.expires_at),
                        Value::Text(&g.transfer_id),
                        Value::Int(g.created_at),
                    ]);
                } else {
                    changed_grants.push(vec![Value::Text(&g.id), Value::Int(g.remaining)]);
                }
            }
        }
        writes
            .insert(conn, "grants", GRANT_COLUMNS, &new_grants)
            .await?;
        let columns = &[("id", Text), ("remaining", Int)];
        writes
            .update(conn, "grants", columns, &changed_grants)
            .await?;

        let links: Vec<Vec<Value>> = self
            .links
            .iter()
            .map(|(transfer, grant, amount)| {
                vec![
                    Value::Text(transfer),
                    Value::Text(grant),
                    Value::Int(*amount),
                ]
            })
            .collect();
        let columns = &[("transfer_id", Text), ("grant_id", Text), ("amount", Int)];
        writes
            .insert(conn, "transfer_grants", columns, &links)
            .await?;

        let mut new_holds = Vec::new();
        let mut changed_holds = Vec::new();
        for h in self
            .touched_holds
            .iter()
            .filter_map(|id| self.holds.get(id))
            .filter(|h| h.dirty)
        {
            if h.is_new {
                new_holds.push(vec![
                    Value::Text(&h.id),
                    Value::Text(&h.account_id),
                    Value::Text(&h.user_id),
                    Value::Text(&h.creator),
                    Value::Int(h.amount),
                    Value::Text(h.status.as_str()),
                    Value::OptText(h.description.as_deref()),
                    Value::Int(h.expires_at),
                    Value::Int(h.created_at),
                    Value::OptInt(h.settled_at),
                    Value::OptInt(h.captured),
                    Value::OptText(h.transfer_id.as_deref()),
                ]);
            } else {
                changed_holds.push(vec![
                    Value::Text(&h.id),
                    Value::Text(h.status.as_str()),
                    Value::OptInt(h.settled_at),
                    Value::OptInt(h.captured),
                    Value::OptText(h.transfer_id.as_deref()),
                ]);
            }
        }
        writes
            .insert(conn, "holds", HOLD_INSERT_COLUMNS, &new_holds)
            .await?;
        let columns = &[
            ("id", Text),
            ("status", Text),
            ("settled_at", Int),
            ("captured", Int),
            ("transfer_id", Text),
        ];
        writes
            .update(conn, "holds", columns, &changed_holds)
            .await?;

        let mut balances: Vec<Vec<Value>> = accounts
            .iter()
            .map(|a| {
                vec![
                    Value::Text(&a.id),
                    Value::Int(a.balance),
                    Value::Int(a.held),
                ]
            })
            .collect();
        let mut system: Vec<(&String, i64)> = self
            .system
            .iter()
            .filter(|(_, s)| s.changed)
            .map(|(which, s)| (&self.system_ids[which], s.balance))
            .collect();
        system.sort();
        balances.extend(
            system
                .into_iter()
                .map(|(id, balance)| vec![Value::Text(id), Value::Int(balance), Value::Int(0)]),
        );
        let columns = &[("id", Text), ("balance", Int), ("held", Int)];
        writes.update(conn, "accounts", columns, &balances).await?;

        let keys: Vec<Vec<Value>> = self
            .new_idempotency
            .iter()
            .map(|(scope, key, hash, status, body)| {
                vec![
                    Value::Text(scope),
                    Value::Text(key),
                    Value::Text(hash),
                    Value::Int(*status),
                    Value::Text(body),
                    Value::Int(now),
                ]
            })
            .collect();
        let columns = &[
            ("scope", Text),
            ("key", Text),
            ("request_hash", Text),
            ("status", Int),
            ("body", Text),
            ("created_at", Int),
        ];
        writes
            .insert(conn, "idempotency_keys", columns, &keys)
            .await?;

        let audits: Vec<Vec<Value>> = self
            .audits
            .iter()
            .map(|a| {
                vec![
                    Value::Text(&a.id),
                    Value::OptText(a.actor_id.as_deref()),
                    Value::Text(&a.actor_kind),
                    Value::Text(&a.action),
                    Value::OptText(a.target.as_deref()),
                    Value::Text(&a.details),
                    Value::OptText(a.ip.as_deref()),
                    Value::Int(now),
                ]
            })
            .collect();
        let columns = &[
            ("id", Text),
            ("actor_id", Text),
            ("actor_kind", Text),
            ("action", Text),
            ("target", Text),
            ("details", Text),
            ("ip", Text),
            ("created_at", Int),
        ];
        writes.insert(conn, "audit_log", columns, &audits).await?;

        writes.finish(conn).await?;

        self.coupon_redemptions.sort();
        for coupon in &self.coupon_redemptions {
            crate::coupons::redeem(conn, coupon).await?;
        }
        Ok(())
    }
}

/// A grant to make: how much, of what source, funded from which system account, and how it
/// burns.
pub(crate) struct GrantSpec<'a> {
    pub amount: i64,
    pub source: &'a str,
    pub from: SystemAccount,
    pub priority: i64,
    pub expires_at: Option<i64>,
}

/// A hold to create.
pub(crate) struct NewHold {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub creator: String,
    pub amount: i64,
    pub description: Option<String>,
    pub expires_at: i64,
}

const TRANSFER_COLUMNS: &[Column] = &[
    ("id", Text),
    ("asset", Text),
    ("kind", Text),
    ("debit_account_id", Text),
    ("credit_account_id", Text),
    ("amount", Int),
    ("debit_balance_after", Int),
    ("credit_balance_after", Int),
    ("refund_of", Text),
    ("hold_id", Text),
    ("order_id", Text),
    ("description", Text),
    ("metadata", Text),
    ("actor", Text),
    ("created_at", Int),
];

const GRANT_COLUMNS: &[Column] = &[
    ("id", Text),
    ("account_id", Text),
    ("source", Text),
    ("priority", Int),
    ("amount", Int),
    ("remaining", Int),
    ("expires_at", Int),
    ("transfer_id", Text),
    ("created_at", Int),
];

const HOLD_INSERT_COLUMNS: &[Column] = &[
    ("id", Text),
    ("account_id", Text),
    ("user_id", Text),
    ("creator", Text),
    ("amount", Int),
    ("status", Text),
    ("description", Text),
    ("expires_at", Int),
    ("created_at", Int),
    ("settled_at", Int),
    ("captured", Int),
    ("transfer_id", Text),
];

const HOLD_COLUMNS: &str = "id, account_id, user_id, creator, amount, status, description, expires_at, created_at, settled_at, captured, transfer_id";

fn hold_from_row(row: &sqlx::any::AnyRow) -> Result<Hold, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Hold {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        user_id: row.try_get("user_id")?,
        creator: row.try_get("creator")?,
        amount: row.try_get("amount")?,
        status: HoldStatus::parse(&status).unwrap_or(HoldStatus::Expired),
        description: row.try_get("description")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        settled_at: row.try_get("settled_at")?,
        captured: row.try_get("captured")?,
        transfer_id: row.try_get("transfer_id")?,
        is_new: false,
        dirty: false,
    })
}
