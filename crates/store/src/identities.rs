//! Identities: the ways a user signs in (a password, a Google, Apple or Facebook account, codes
//! to an email or a phone). Each identity belongs to one user; a user keeps at least one.
//!
//! A sign-in with an identity Bursar has not seen links it to the account whose email the
//! provider vouches for, or creates a member; an unverified email never links, so nobody takes
//! over an account by claiming its address at a provider that did not check it.

use bursar_core::{LedgerError, Role, UserStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

pub use bursar_core::IdentityProvider as Provider;

use crate::clock::rfc3339;
use crate::ids::new_id;
use crate::users::{NewUser, User, create_user_on};
use crate::{Store, StoreError, sessions};

/// The stored "hash" of a user without a password: no password verifies against it.
pub const NO_PASSWORD: &str = "!";

/// Addresses made for accounts whose provider vouched for no email (RFC 2606's reserved TLD),
/// so the unique email column never takes an address someone could claim later.
const PLACEHOLDER_DOMAIN: &str = "identity.invalid";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub user_id: String,
    pub provider: Provider,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: String,
}

/// What a provider said about the person signing in, once verified.
#[derive(Debug, Clone)]
pub struct Claimed<'a> {
    pub provider: Provider,
    /// The provider's stable id for the person.
    pub subject: &'a str,
    pub email: Option<&'a str>,
    /// The provider checked that the person owns `email`.
    pub email_verified: bool,
    pub display_name: Option<&'a str>,
}

impl Claimed<'_> {
    fn verified_email(&self) -> Option<String> {
        self.email
            .filter(|_| self.email_verified)
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
    }
}

/// Which user a sign-in came to.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// A new account was made for this identity.
    pub created: bool,
}

/// What became of linking an identity to a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    Linked(Identity),
    /// It signs in to another user already.
    TakenByAnother,
}

/// What became of removing an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinking {
    Removed,
    /// The user's only way to sign in.
    Last,
    NotFound,
}

const COLUMNS: &str = "id, user_id, provider, subject, email, created_at";

fn from_row(row: &AnyRow) -> Result<Identity, StoreError> {
    let provider: String = row.try_get("provider")?;
    Ok(Identity {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        provider: Provider::parse(&provider)
            .ok_or_else(|| StoreError::Config(format!("unknown identity provider {provider}")))?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Links an identity to `user_id` inside the caller's transaction (nothing if it is there).
pub(crate) async fn link_on(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    provider: Provider,
    subject: &str,
    email: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider, subject, email, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(new_id("idn"))
    .bind(user_id)
    .bind(provider.as_str())
    .bind(subject)
    .bind(email)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

async fn was_unlinked_on(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    subject: &str,
) -> Result<bool, StoreError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM unlinked_identities WHERE provider = $1 AND subject = $2",
    )
    .bind(provider.as_str())
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

async fn owner_on(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM identities WHERE provider = $1 AND subject = $2")
            .bind(provider.as_str())
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

impl Store {
    /// Signs in with a verified identity: its user, else the user whose email the provider
    /// vouches for (linking it), else a new member. Refused for a suspended user.
    pub async fn sign_in_with(&self, claimed: &Claimed<'_>) -> Result<SignedIn, StoreError> {
        // A first sign-in racing another for the same identity or email loses on a unique
        // key and is simply run again, when it finds what the winner made.
        match self.sign_in_once(claimed).await {
            Err(error) if error.is_unique_violation() => self.sign_in_once(claimed).await,
            other => other,
        }
    }

    async fn sign_in_once(&self, claimed: &Claimed<'_>) -> Result<SignedIn, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let known = owner_on(&mut tx, claimed.provider, claimed.subject).await?;
        let is_new = known.is_none();
        let (user_id, created) = match known {
            Some(user_id) => (user_id, false),
            None if was_unlinked_on(&mut tx, claimed.provider, claimed.subject).await? => {
                return Err(LedgerError::Conflict(format!(
                    "this {} account was removed from its Bursar account's ways to sign in: \
                     sign in another way and link it again",
                    claimed.provider
                ))
                .into());
            }
            None => {
                let email = claimed.verified_email();
                let existing: Option<String> = match &email {
                    Some(email) => {
                        sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                            .bind(email)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    None => None,
                };
                match existing {
                    Some(user_id) => (user_id, false),
                    None => {
                        let address = email.clone().unwrap_or_else(|| {
                            format!(
                                "{}-{}@{PLACEHOLDER_DOMAIN}",
                                claimed.provider,
                                new_id("u").trim_start_matches("u_")
                            )
                        });
                        let new = NewUser {
                            email: &address,
                            password_hash: NO_PASSWORD,
                            display_name: claimed.display_name,
                            role: Role::Member,
                        };
                        (
                            create_user_on(&mut tx, &self.asset, &new, now).await?.id,
                            true,
                        )
                    }
                }
            }
        };
        let user = crate::users::user_on(&mut tx, &user_id)
            .await?
            .ok_or_else(|| StoreError::Config("an identity's user vanished".into()))?;
        if user.status == UserStatus::Suspended {
            return Err(LedgerError::AccountSuspended.into());
        }
        if is_new {
            // Not `ON CONFLICT DO NOTHING`: a first sign-in racing this one for the same identity
            // makes this insert fail, so this transaction (and any account it made) is undone and
            // the sign-in runs again, finding the winner's account.
            sqlx::query(
                "INSERT INTO identities (id, user_id, provider, subject, email, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id("idn"))
            .bind(&user_id)
            .bind(claimed.provider.as_str())
            .bind(claimed.subject)
            .bind(claimed.email)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(SignedIn { user, created })
    }

    /// Links a verified identity to the signed-in `user_id`.
    pub async fn link_identity(
        &self,
        user_id: &str,
        claimed: &Claimed<'_>,
    ) -> Result<Linking, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        if let Some(owner) = owner_on(&mut tx, claimed.provider, claimed.subject).await?
            && owner != user_id
        {
            return Ok(Linking::TakenByAnother);
        }
        sqlx::query("DELETE FROM unlinked_identities WHERE provider = $1 AND subject = $2")
            .bind(claimed.provider.as_str())
            .bind(claimed.subject)
            .execute(&mut *tx)
            .await?;
        link_on(
            &mut tx,
            user_id,
            claimed.provider,
            claimed.subject,
            claimed.email,
            now,
        )
        .await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM identities WHERE provider = $1 AND subject = $2"
        ));
        let row = sqlx::query(sql)
            .bind(claimed.provider.as_str())
            .bind(claimed.subject)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Linking::Linked(from_row(&row)?))
    }

    /// The user's identities, oldest first.
    pub async fn identities_of(&self, user_id: &str) -> Result<Vec<Identity>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at, id"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Removes one of the user's identities, unless it is the last. Removing the password
    /// forgets its hash and ends every session, in the same transaction.
    pub async fn unlink_identity(&self, user_id: &str, id: &str) -> Result<Unlinking, StoreError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        // Removals by one user take turns, so two at once cannot remove the last two.
        let lock = self.db.dialect.row_lock();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM users WHERE id = $1{lock}"
        )))
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        let providers: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, provider, subject FROM identities WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
        let Some((_, provider, subject)) = providers.iter().find(|(found, _, _)| found == id)
        else {
            return Ok(Unlinking::NotFound);
        };
        if providers.len() == 1 {
            return Ok(Unlinking::Last);
        }
        sqlx::query("DELETE FROM identities WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if provider != Provider::Password.as_str() {
            sqlx::query(
                "INSERT INTO unlinked_identities (provider, subject, user_id, unlinked_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (provider, subject) DO UPDATE SET user_id = $3, unlinked_at = $4",
            )
            .bind(provider)
            .bind(subject)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if provider == Provider::Password.as_str() {
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(NO_PASSWORD)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sessions::revoke_all_on(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(Unlinking::Removed)
    }
}
