//! The primitives every command is built from, applied inside one open transaction.
//!
//! System accounts (issuance, revenue, promotions, expired) are locked once when the batch
//! opens, always in id order, and their balances are kept here in memory and written once at
//! the end. That removes the hottest rows from every command and gives every batch the same
//! lock order: system accounts first, then user accounts, so batches from several Bursar
//! instances on one PostgreSQL database serialise instead of deadlocking.

use std::collections::HashMap;

use bursar_core::{GrantLot, GrantSource, LedgerError, SystemAccount, TransferKind, plan_burn};
use sqlx::{AnyConnection, Row};

use crate::db::Dialect;
use crate::ids::new_id;
use crate::{StoreError, accounts};

/// Chooses the query text for the backend: PostgreSQL locks the rows it reads for update;
/// SQLite needs no row locks because its one write transaction excludes all others.
macro_rules! locking {
    ($dialect:expr, $sql:literal) => {
        match $dialect {
            Dialect::Sqlite => $sql,
            Dialect::Postgres => concat!($sql, " FOR UPDATE"),
        }
    };
}

#[derive(Debug, Clone)]
pub(crate) struct UserAccount {
    pub id: String,
    pub balance: i64,
    pub held: i64,
    pub overdraft_limit: i64,
}

impl UserAccount {
    /// What a spend or a new hold may still use, counting the overdraft.
    pub fn spendable(&self) -> i64 {
        self.balance - self.held + self.overdraft_limit
    }

    /// The API's `available`: balance less active holds.
    pub fn available(&self) -> i64 {
        self.balance - self.held
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemBalance {
    pub balance: i64,
    pub changed: bool,
}

pub(crate) struct Batch {
    pub dialect: Dialect,
    pub asset: String,
    pub now_ms: i64,
    system_ids: HashMap<SystemAccount, String>,
    system: HashMap<SystemAccount, SystemBalance>,
}

pub(crate) type Snapshot = HashMap<SystemAccount, SystemBalance>;

/// One leg of a transfer as posted: the user's account and its balance afterwards.
pub(crate) struct Posted {
    pub transfer_id: String,
    pub balance_after: i64,
}

impl Batch {
    pub async fn open(
        conn: &mut AnyConnection,
        dialect: Dialect,
        asset: &str,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        let sql = locking!(
            dialect,
            "SELECT id, owner_id, balance FROM accounts
             WHERE owner_kind = 'system' AND asset = $1 ORDER BY id"
        );
        let rows = sqlx::query(sql).bind(asset).fetch_all(&mut *conn).await?;
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
                SystemBalance {
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
        Ok(Self {
            dialect,
            asset: asset.to_string(),
            now_ms,
            system_ids,
            system,
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        self.system.clone()
    }

    pub fn restore(&mut self, snapshot: Snapshot) {
        self.system = snapshot;
    }

    /// Writes the system accounts' balances changed during the batch.
    pub async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let mut changed: Vec<(&String, i64)> = self
            .system
            .iter()
            .filter(|(_, state)| state.changed)
            .map(|(which, state)| (&self.system_ids[which], state.balance))
            .collect();
        changed.sort();
        for (id, balance) in changed {
            sqlx::query("UPDATE accounts SET balance = $1 WHERE id = $2")
                .bind(balance)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    fn move_system(&mut self, which: SystemAccount, delta: i64) -> (String, i64) {
        let state = self
            .system
            .get_mut(&which)
            .expect("all system accounts are loaded");
        state.balance += delta;
        state.changed = true;
        (self.system_ids[&which].clone(), state.balance)
    }

    /// Locks and reads a user's account, creating it if the user exists without one.
    pub async fn lock_user(
        &self,
        conn: &mut AnyConnection,
        user_id: &str,
    ) -> Result<UserAccount, StoreError> {
        let sql = locking!(
            self.dialect,
            "SELECT id, balance, held, overdraft_limit FROM accounts
             WHERE owner_kind = 'user' AND owner_id = $1 AND asset = $2"
        );
        for _ in 0..2 {
            if let Some(row) = sqlx::query(sql)
                .bind(user_id)
                .bind(&self.asset)
                .fetch_optional(&mut *conn)
                .await?
            {
                return Ok(UserAccount {
                    id: row.try_get("id")?,
                    balance: row.try_get("balance")?,
                    held: row.try_get("held")?,
                    overdraft_limit: row
                        .try_get::<Option<i64>, _>("overdraft_limit")?
                        .unwrap_or(0),
                });
            }
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_none() {
                break;
            }
            accounts::create_user_account(conn, user_id, &self.asset, self.now_ms).await?;
        }
        Err(LedgerError::NotFound("user").into())
    }

    /// Marks this account's overdue holds expired and returns their credits to `available`.
    pub async fn release_overdue_holds(
        &self,
        conn: &mut AnyConnection,
        account: &mut UserAccount,
    ) -> Result<(), StoreError> {
        let released: Vec<i64> = sqlx::query_scalar(
            "UPDATE holds SET status = 'expired', settled_at = $1
             WHERE account_id = $2 AND status = 'held' AND expires_at <= $1
             RETURNING amount",
        )
        .bind(self.now_ms)
        .bind(&account.id)
        .fetch_all(&mut *conn)
        .await?;
        let total: i64 = released.iter().sum();
        if total > 0 {
            sqlx::query("UPDATE accounts SET held = held - $1 WHERE id = $2")
                .bind(total)
                .bind(&account.id)
                .execute(&mut *conn)
                .await?;
            account.held -= total;
        }
        Ok(())
    }

    async fn live_grants(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
    ) -> Result<Vec<(GrantLot, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, remaining, priority, expires_at, created_at, source FROM grants
             WHERE account_id = $1 AND remaining > 0",
        )
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    GrantLot {
                        id: row.try_get("id")?,
                        remaining: row.try_get("remaining")?,
                        priority: row.try_get("priority")?,
                        expires_at_ms: row.try_get("expires_at")?,
                        created_at_ms: row.try_get("created_at")?,
                    },
                    row.try_get("source")?,
                ))
            })
            .collect()
    }

    /// Moves what is left of this account's overdue grants to the `expired` account, one transfer
    /// per grant. Credits reserved by active holds are left in place, so a hold taken before the
    /// expiry can still be captured; the rest of such a grant expires once the hold settles.
    pub async fn expire_overdue_grants(
        &mut self,
        conn: &mut AnyConnection,
        account: &mut UserAccount,
    ) -> Result<(), StoreError> {
        let overdue: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, remaining FROM grants
             WHERE account_id = $1 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $2
             ORDER BY expires_at, id",
        )
        .bind(&account.id)
        .bind(self.now_ms)
        .fetch_all(&mut *conn)
        .await?;
        for (grant_id, remaining) in overdue {
            let take = remaining.min(account.available().max(0));
            if take == 0 {
                break;
            }
            sqlx::query("UPDATE grants SET remaining = remaining - $1 WHERE id = $2")
                .bind(take)
                .bind(&grant_id)
                .execute(&mut *conn)
                .await?;
            let posted = self
                .post_to_system(
                    conn,
                    account,
                    take,
                    SystemAccount::Expired,
                    TransferMeta::kind(TransferKind::Expiry),
                )
                .await?;
            link_grant(conn, &posted.transfer_id, &grant_id, take).await?;
        }
        Ok(())
    }

    /// Debits a user's account to a system account, burning grants in order, and records which
    /// grants paid. The caller has already checked that the account may go this low.
    pub async fn debit(
        &mut self,
        conn: &mut AnyConnection,
        account: &mut UserAccount,
        amount: i64,
        to: SystemAccount,
        meta: TransferMeta<'_>,
    ) -> Result<(Posted, Vec<super::PaidBy>), StoreError> {
        let lots = self.live_grants(conn, &account.id).await?;
        let plain: Vec<GrantLot> = lots.iter().map(|(lot, _)| lot.clone()).collect();
        let (taken, _uncovered) = plan_burn(&plain, amount);
        let posted = self.post_to_system(conn, account, amount, to, meta).await?;
        let mut paid_by = Vec::with_capacity(taken.len());
        for (grant_id, take) in taken {
            sqlx::query("UPDATE grants SET remaining = remaining - $1 WHERE id = $2")
                .bind(take)
                .bind(&grant_id)
                .execute(&mut *conn)
                .await?;
            link_grant(conn, &posted.transfer_id, &grant_id, take).await?;
            let source = lots
                .iter()
                .find(|(lot, _)| lot.id == grant_id)
                .map(|(_, source)| source.clone())
                .unwrap_or_default();
            paid_by.push(super::PaidBy {
                grant_id,
                source,
                amount: take,
            });
        }
        Ok((posted, paid_by))
    }

    /// Moves `amount` from the user to a system account and writes the transfer.
    async fn post_to_system(
        &mut self,
        conn: &mut AnyConnection,
        account: &mut UserAccount,
        amount: i64,
        to: SystemAccount,
        meta: TransferMeta<'_>,
    ) -> Result<Posted, StoreError> {
        account.balance -= amount;
        set_balance(conn, account).await?;
        let (system_id, system_after) = self.move_system(to, amount);
        let transfer_id = self
            .insert_transfer(
                conn,
                (&account.id, account.balance),
                (&system_id, system_after),
                amount,
                &meta,
            )
            .await?;
        Ok(Posted {
            transfer_id,
            balance_after: account.balance,
        })
    }

    /// Credits a user from the system account that funds `source`, as a new grant. When the
    /// account was in overdraft the debt is paid first, so the grant keeps only what is left
    /// above zero.
    #[expect(
        clippy::too_many_arguments,
        reason = "a grant is described by this many independent facts"
    )]
    pub async fn grant(
        &mut self,
        conn: &mut AnyConnection,
        account: &mut UserAccount,
        amount: i64,
        source: GrantSource,
        from: SystemAccount,
        priority: i64,
        expires_at_ms: Option<i64>,
        meta: TransferMeta<'_>,
    ) -> Result<(Posted, String), StoreError> {
        let before = account.balance;
        account.balance += amount;
        set_balance(conn, account).await?;
        let (system_id, system_after) = self.move_system(from, -amount);
        let transfer_id = self
            .insert_transfer(
                conn,
                (&system_id, system_after),
                (&account.id, account.balance),
                amount,
                &meta,
            )
            .await?;
        let remaining = account.balance.max(0) - before.max(0);
        let grant_id = new_id("grt");
        sqlx::query(
            "INSERT INTO grants (id, account_id, source, priority, amount, remaining, expires_at, transfer_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&grant_id)
        .bind(&account.id)
        .bind(source.as_str())
        .bind(priority)
        .bind(amount)
        .bind(remaining)
        .bind(expires_at_ms)
        .bind(&transfer_id)
        .bind(self.now_ms)
        .execute(&mut *conn)
        .await?;
        Ok((
            Posted {
                transfer_id,
                balance_after: account.balance,
            },
            grant_id,
        ))
    }

    async fn insert_transfer(
        &self,
        conn: &mut AnyConnection,
        (debit_id, debit_after): (&str, i64),
        (credit_id, credit_after): (&str, i64),
        amount: i64,
        meta: &TransferMeta<'_>,
    ) -> Result<String, StoreError> {
        let id = new_id("txn");
        sqlx::query(
            "INSERT INTO transfers (id, asset, kind, debit_account_id, credit_account_id, amount,
                 debit_balance_after, credit_balance_after, refund_of, hold_id, order_id,
                 description, metadata, actor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&id)
        .bind(&self.asset)
        .bind(meta.kind.as_str())
        .bind(debit_id)
        .bind(credit_id)
        .bind(amount)
        .bind(debit_after)
        .bind(credit_after)
        .bind(meta.refund_of)
        .bind(meta.hold_id)
        .bind(meta.order_id)
        .bind(meta.description)
        .bind(meta.metadata)
        .bind(meta.actor)
        .bind(self.now_ms)
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }
}

/// What a transfer records besides its accounts and amount. Build with `TransferMeta::kind`
/// and struct update syntax for the rest.
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

async fn set_balance(conn: &mut AnyConnection, account: &UserAccount) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET balance = $1 WHERE id = $2")
        .bind(account.balance)
        .bind(&account.id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn link_grant(
    conn: &mut AnyConnection,
    transfer_id: &str,
    grant_id: &str,
    amount: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO transfer_grants (transfer_id, grant_id, amount) VALUES ($1, $2, $3)")
        .bind(transfer_id)
        .bind(grant_id)
        .bind(amount)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
