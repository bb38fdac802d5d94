//! Loading a batch's unit of work: accounts with their live grants and open holds, and
//! idempotency records, in a few bulk reads.

use super::*;

impl UnitOfWork {
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

    /// Loads a merchant's points account, creating it for a merchant made before it existed
    /// (the account is made with the merchant, or here). Only `role = merchant` users have one.
    pub async fn load_merchant(
        &mut self,
        conn: &mut AnyConnection,
        merchant_id: &str,
    ) -> Result<(), StoreError> {
        if self.merchants.contains_key(merchant_id) {
            return Ok(());
        }
        let select = || {
            sqlx::query(
                "SELECT id, balance FROM accounts
                 WHERE owner_kind = 'merchant' AND owner_id = $1 AND asset = $2",
            )
            .bind(merchant_id)
            .bind(&self.asset)
        };
        // The account is made with the merchant; only one made a merchant later lacks it, so
        // the write happens once, not in every batch that redeems.
        let row = match select().fetch_optional(&mut *conn).await? {
            Some(row) => row,
            None => {
                accounts::create_merchant_account(
                    &mut *conn,
                    merchant_id,
                    &self.asset,
                    self.now_ms,
                )
                .await?;
                select().fetch_one(&mut *conn).await?
            }
        };
        self.merchants.insert(
            merchant_id.to_string(),
            MerchantState {
                id: row.try_get("id")?,
                balance: row.try_get("balance")?,
                changed: false,
            },
        );
        Ok(())
    }

    async fn load_user_chunk(
        &mut self,
        conn: &mut AnyConnection,
        users: &[&str],
    ) -> Result<(), StoreError> {
        let mut params = Params::new(self.dialect);
        let sql = format!(
            "SELECT a.id, a.owner_id, a.balance, a.held, a.overdraft_limit, a.topup_threshold,
                    u.status AS user_status
             FROM accounts a JOIN users u ON u.id = a.owner_id
             WHERE a.owner_kind = 'user' AND a.asset = {} AND a.owner_id IN ({})",
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
                    topup_threshold: row.try_get("topup_threshold")?,
                    suspended: row.try_get::<String, _>("user_status")? == "suspended",
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
        let records = crate::idempotency::read_many(conn, self.dialect, keys).await?;
        self.idempotency.extend(records);
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
}

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
