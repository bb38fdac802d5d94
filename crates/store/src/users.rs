//! Users: members, merchants and admins.

use bursar_core::{Language, LedgerError, Role, UserStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditRecord};
use crate::db::again_if_lost;
use crate::identities::Provider;
use crate::page::{Page, PageRequest};
use crate::{Store, StoreError, accounts, ids::new_id, sessions};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub level_hundredths: i64,
    pub language: Language,
    /// E.164, where SMS messages go.
    pub phone: Option<String>,
    /// An IANA time zone for dates on pages; `None`: the instance's.
    pub time_zone: Option<String>,
    pub created_at_ms: i64,
}

const USER_COLUMNS: &str = "id, email, password_hash, display_name, role, status, level_hundredths,
    language, phone, time_zone, created_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        display_name: row.try_get("display_name")?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        status: UserStatus::parse(&status).unwrap_or(UserStatus::Suspended),
        level_hundredths: row.try_get("level_hundredths")?,
        language: Language::parse(&row.try_get::<String, _>("language")?).unwrap_or(Language::En),
        phone: row.try_get("phone")?,
        time_zone: row.try_get("time_zone")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Changes an admin may make to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub level_hundredths: Option<i64>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub language: Option<Language>,
    /// `Some("")` removes the phone number.
    pub phone: Option<String>,
    /// `Some("")` goes back to the instance's time zone.
    pub time_zone: Option<String>,
}

impl Store {
    /// Creates a user and their account in one transaction. A taken email is a 409.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        display_name: Option<&str>,
        role: Role,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let new = NewUser {
            email,
            password_hash,
            display_name,
            role,
        };
        let user = match create_user_on(&mut tx, &self.asset, &new, self.clock.now_ms()).await {
            Err(error) if error.is_unique_violation() => {
                return Err(
                    LedgerError::Conflict("this email is already registered".into()).into(),
                );
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = again_if_lost(|| {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"));
            async move {
                Ok(sqlx::query(sql)
                    .bind(id)
                    .fetch_optional(&self.db.pool)
                    .await?)
            }
        })
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"));
        sqlx::query(sql)
            .bind(email)
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// The status and role that authorise a request, read fresh so a suspension or a role
    /// change takes effect on the very next request.
    pub async fn user_access(&self, id: &str) -> Result<Option<(Role, UserStatus)>, StoreError> {
        let row: Option<(String, String)> = again_if_lost(|| async {
            Ok(
                sqlx::query_as("SELECT role, status FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.db.pool)
                    .await?,
            )
        })
        .await?;
        Ok(row.and_then(|(role, status)| Some((Role::parse(&role)?, UserStatus::parse(&status)?))))
    }

    /// Applies `changes` (ending every session when the password changes, in the same
    /// transaction); returns the updated user, or `None` if there is no such user.
    pub async fn update_user(
        &self,
        id: &str,
        changes: &UserChanges,
    ) -> Result<Option<User>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        if !update_user_on(&mut tx, id, changes, now).await? {
            return Ok(None);
        }
        // A new password ends every session in the same transaction, so no refresh token
        // outlives the password it was issued under.
        if changes.password_hash.is_some() {
            sessions::revoke_all_on(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    /// An admin's change to a user: `changes`, a new overdraft limit, the end of every session
    /// when the user is suspended, and `audit`, all in one transaction. `None`: no such user.
    pub async fn administer_user(
        &self,
        id: &str,
        changes: &UserChanges,
        overdraft_limit: Option<i64>,
        audit: AuditRecord<'_>,
    ) -> Result<Option<User>, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        // Locked in id order, so two admins demoting each other concurrently take turns and
        // the second sees the first's change (SQLite's write transaction is exclusive anyway).
        let lock = match self.db.dialect {
            crate::db::Dialect::Postgres => " ORDER BY id FOR UPDATE",
            crate::db::Dialect::Sqlite => "",
        };
        let admins: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM users WHERE role = 'admin' AND status = 'active'{lock}"
        )))
        .fetch_all(&mut *tx)
        .await?;
        let removes_admin = changes.role.is_some_and(|r| r != Role::Admin)
            || changes.status == Some(UserStatus::Suspended);
        if removes_admin && admins.len() == 1 && admins[0] == id {
            return Err(LedgerError::Conflict(
                "this is the last active admin: make another admin first".into(),
            )
            .into());
        }
        if !update_user_on(&mut tx, id, changes, now).await? {
            return Ok(None);
        }
        if let Some(limit) = overdraft_limit {
            accounts::set_overdraft_limit_on(&mut tx, id, &self.asset, limit).await?;
        }
        if changes.status == Some(UserStatus::Suspended) {
            sessions::revoke_all_on(&mut tx, id, now).await?;
        }
        // The ledger writer refuses a suspended user's spends from the account it caches; the
        // epoch tells every writer to read the account (and its user) again.
        if changes.status.is_some() {
            crate::ledger::epoch::advance(&mut tx, &self.asset).await?;
        }
        audit::record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.user(id).await
    }

    /// Users whose email or display name contains `query` (case-insensitive), newest first.
    pub async fn search_users(
        &self,
        query: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let pattern = format!(
            "%{}%",
            query
                .unwrap_or_default()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE (email LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(display_name, '')) LIKE $1 ESCAPE '\\')
               AND id < $2
             ORDER BY id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(&pattern)
            .bind(page.before_or_max())
            .bind(page.fetch_limit())
            .fetch_all(&self.db.pool)
            .await?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.finish(users, |u| u.id.clone()))
    }
}

/// One user, read inside the caller's transaction.
pub(crate) async fn user_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"));
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

/// A user to create.
pub(crate) struct NewUser<'a> {
    pub email: &'a str,
    /// An Argon2 hash, or `identities::NO_PASSWORD` for a user who signs in another way.
    pub password_hash: &'a str,
    pub display_name: Option<&'a str>,
    pub role: Role,
}

/// Creates a user with their account (and a merchant's points account, and the password
/// identity when there is a password) inside the caller's transaction. A taken email is the
/// database's unique violation, for the caller to answer (a 409) or to run again after.
pub(crate) async fn create_user_on(
    conn: &mut sqlx::AnyConnection,
    asset: &str,
    new: &NewUser<'_>,
    now: i64,
) -> Result<User, StoreError> {
    let id = new_id("usr");
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, display_name, role, status, level_hundredths, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'active', 0, $6, $6)",
    )
    .bind(&id)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.display_name)
    .bind(new.role.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    accounts::create_user_account(&mut *conn, &id, asset, now).await?;
    if new.password_hash != crate::identities::NO_PASSWORD {
        crate::identities::link_on(conn, &id, Provider::Password, &id, Some(new.email), now)
            .await?;
    }
    if new.role == Role::Merchant {
        accounts::create_merchant_account(&mut *conn, &id, asset, now).await?;
    }
    Ok(User {
        id,
        email: new.email.to_string(),
        password_hash: new.password_hash.to_string(),
        display_name: new.display_name.map(str::to_string),
        role: new.role,
        status: UserStatus::Active,
        level_hundredths: 0,
        language: Language::En,
        phone: None,
        time_zone: None,
        created_at_ms: now,
    })
}

/// Applies `changes` to user `id` on `conn`; false when there is no such user.
async fn update_user_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    changes: &UserChanges,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE users SET
                 role = COALESCE($1, role),
                 status = COALESCE($2, status),
                 level_hundredths = COALESCE($3, level_hundredths),
                 display_name = COALESCE($4, display_name),
                 password_hash = COALESCE($5, password_hash),
                 language = COALESCE($8, language),
                 phone = CASE WHEN $9 IS NULL THEN phone WHEN $9 = '' THEN NULL ELSE $9 END,
                 time_zone = CASE WHEN $10 IS NULL THEN time_zone WHEN $10 = '' THEN NULL ELSE $10 END,
                 updated_at = $6
             WHERE id = $7",
    )
    .bind(changes.role.map(Role::as_str))
    .bind(changes.status.map(UserStatus::as_str))
    .bind(changes.level_hundredths)
    .bind(changes.display_name.as_deref())
    .bind(changes.password_hash.as_deref())
    .bind(now)
    .bind(id)
    .bind(changes.language.map(Language::as_str))
    .bind(changes.phone.as_deref())
    .bind(changes.time_zone.as_deref())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // A password set is a way to sign in (a user who came through Google may add one).
    if changed > 0 && changes.password_hash.is_some() {
        let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        crate::identities::link_on(conn, id, Provider::Password, id, Some(&email), now).await?;
    }
    Ok(changed > 0)
}
