//! The batch's unit of work. A batch loads every account, grant, hold and idempotency record it
//! needs in a few bulk reads, applies its commands to them in memory, and writes everything
//! back in a few multi-row statements at the end. The cost of a batch is then a handful of
//! round trips whatever its size, which is what makes group commit pay.
//!
//! This module holds the unit of work and what it is made of; `load.rs` reads it in,
//! `booking.rs` applies the booking rules to it, `flush.rs` writes it back, and `cache.rs` keeps
//! it between batches.
//!
//! System accounts (issuance, revenue, promotions, expired) are locked first, always in id
//! order, then user accounts in id order; so batches from several Bursar instances on one
//! PostgreSQL database serialise instead of deadlocking.

mod booking;
mod cache;
mod flush;
mod load;

// The writer's maps are keyed by ids the server made and by a batch's idempotency keys (at most
// a batch's worth), and hashed on its one thread for every command: SipHash was a tenth of its
// time. foldhash is seeded per map, which is enough for keys a client cannot grow past a batch.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use bursar_core::{GrantLot, HoldStatus, SystemAccount, TransferKind, plan_burn, plan_expiry};
use sqlx::{AnyConnection, Row};

use super::PaidBy;
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
    /// The balance below which the user's active auto top-up rule tops up, if there is one.
    pub topup_threshold: Option<i64>,
    /// The user is suspended: the account may not spend or hold.
    pub suspended: bool,
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

impl Grant {
    /// The grant as the pure burn and expiry rules see it.
    fn lot(&self) -> GrantLot {
        GrantLot {
            id: self.id.clone(),
            remaining: self.remaining,
            priority: self.priority,
            expires_at_ms: self.expires_at,
            created_at_ms: self.created_at,
        }
    }
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
    /// A merchant's points account, by the merchant's user id (loaded with `load_merchant`).
    Merchant(&'a str),
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

pub(crate) use crate::idempotency::StoredReply;

#[derive(Clone, Copy)]
struct SystemState {
    balance: i64,
    changed: bool,
}

/// A merchant's points account. Read afresh by every batch that moves points to or from it
/// (it is never cached between batches): only redemptions and their cancellations touch it.
#[derive(Clone)]
struct MerchantState {
    id: String,
    balance: i64,
    changed: bool,
}

pub(crate) use cache::Cached;

pub(crate) struct UnitOfWork {
    pub dialect: Dialect,
    /// The cache stamp read when the batch began (see `Cached`).
    stamp: i64,
    pub asset: String,
    pub now_ms: i64,
    system_ids: HashMap<SystemAccount, String>,
    system: HashMap<SystemAccount, SystemState>,
    /// Loaded merchant accounts by the merchant's user id.
    merchants: HashMap<String, MerchantState>,
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
    /// Coupons whose reservation paid orders turned into redemptions. Written at the flush,
    /// after the batch's commands have updated their orders, in id order, so the writer takes
    /// coupon locks after every order lock (as cancels do).
    coupon_redemptions: Vec<String>,
    /// Jobs this batch enqueued: after the commit, the worker is woken for them.
    jobs_enqueued: usize,
    /// The sum of every balance change so far: each transfer moves one amount out of one
    /// account and into another, so this is zero after every command.
    net_change: i64,
    /// The first account a transfer of this batch took beyond ±`MAX_CREDITS`. Found only by
    /// posting, unlike every other refusal, so the writer abandons the batch when it is set
    /// (see `commit_batch`) instead of undoing the command.
    out_of_range: Option<String>,
}

// Commands check everything before they change anything, so a refused command leaves the unit
// of work as it found it, except for `settle_overdue`, whose expiries are due whatever the
// command's fate, and for a balance taken out of range (`out_of_range`), which abandons the
// whole batch.

impl UnitOfWork {
    /// Begins a batch's unit of work, from `cache` when nothing else has written since it was
    /// taken. `stamp` is the asset's epoch as the batch's transaction advanced it (see
    /// `epoch.rs`); on PostgreSQL the advance took its lock, which the batch holds until it
    /// commits (on SQLite the batch already holds the write lock).
    pub async fn open(
        conn: &mut AnyConnection,
        dialect: Dialect,
        asset: &str,
        now_ms: i64,
        cache: Option<Cached>,
        stamp: i64,
    ) -> Result<Self, StoreError> {
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
            merchants: HashMap::new(),
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
            out_of_range: None,
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

    /// Records an event in the batch's transaction, with its webhook deliveries, and enqueues
    /// their jobs (see `webhooks::emit_on`). Like `enqueue`, only once the command can no longer
    /// be refused.
    pub async fn emit(
        &mut self,
        conn: &mut AnyConnection,
        event_type: bursar_core::EventType,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        for job in crate::webhooks::emit_on(conn, event_type, data, self.now_ms).await? {
            self.enqueue(conn, &job).await?;
        }
        Ok(())
    }

    /// Notes that a command enqueued jobs itself (`jobs::enqueue_in`), so that the worker is
    /// woken for them once the batch is durable, as for `enqueue`'s.
    pub fn note_jobs_enqueued(&mut self) {
        self.jobs_enqueued += 1;
    }

    pub fn jobs_enqueued(&self) -> usize {
        self.jobs_enqueued
    }

    /// The ledger's invariants over what this batch changed, checked after every command in
    /// debug builds (tests), so a rule that breaks one fails at the command that broke it:
    /// balances change by transfers only (Σ of changes = 0), held credits and grant remainders
    /// stay within range, and no account goes below minus its overdraft limit (the database's
    /// `CHECK` would refuse the whole batch at its write).
    /// The account a transfer took beyond ±`MAX_CREDITS`, if one did: the batch must not be
    /// committed.
    pub fn out_of_range(&self) -> Option<&str> {
        self.out_of_range.as_deref()
    }

    pub fn debug_assert_invariants(&self) {
        // The asserts compile away in release builds, but the loops around them did not: they
        // cost the writer a few percent of its time there, growing with each account's grants.
        if !cfg!(debug_assertions) {
            return;
        }
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
}

/// A grant to make: how much, of what source, funded from which system account, and how it
/// burns.
pub(crate) struct GrantSpec<'a> {
    pub amount: i64,
    pub source: &'a str,
    pub from: Side<'a>,
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
