//! Accounts: the rules for an email, a password and a display name, registration, and making
//! an admin; the same rules for the API, the command line and the web UI.

use bursar_core::Role;
use bursar_store::Store;
use bursar_store::audit::AuditRecord;
use bursar_store::users::{User, UserChanges};

use crate::auth::password::{self, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use crate::error::{ApiError, ApiResult};

pub(crate) const EMAIL_CHARS_MAX: usize = 254;
pub(crate) const DISPLAY_NAME_CHARS_MAX: usize = 100;

/// Someone signing up.
#[derive(Debug)]
pub struct Registration {
    /// As typed; normalised here.
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    /// `member` (none) or `merchant`; never `admin`.
    pub role: Option<String>,
}

/// Signs in with an email and a password, under the login rate limit: the same answer, after
/// the same work, for an unknown email as for a wrong password.
pub async fn password_sign_in(
    state: &crate::AppState,
    address: &str,
    email: &str,
    password: String,
) -> ApiResult<User> {
    let email = email.trim().to_lowercase();
    state.limiter.check(address, &email)?;
    let user = state.store.user_by_email(&email).await?;
    let stored = user
        .as_ref()
        .map_or_else(|| state.decoy_hash.to_string(), |u| u.password_hash.clone());
    let matches = password::verify(password, stored).await;
    let user = user
        .filter(|_| matches)
        .ok_or_else(|| ApiError::unauthorized("wrong email or password"))?;
    if user.status == bursar_core::UserStatus::Suspended {
        return Err(ApiError::unauthorized("this account is suspended"));
    }
    Ok(user)
}

/// Checks a registration and creates the user, with a hash of the password (Argon2id).
pub async fn register(store: &Store, registration: Registration) -> ApiResult<User> {
    let email = normalize_email(&registration.email)?;
    check_password(&registration.password)?;
    let display_name = check_display_name(registration.display_name)?;
    let role = registration_role(registration.role.as_deref())?;
    let hash = password::hash(registration.password).await?;
    Ok(store
        .create_user(&email, &hash, display_name.as_deref(), role)
        .await?)
}

/// The role someone may sign up with.
fn registration_role(role: Option<&str>) -> ApiResult<Role> {
    match role {
        None | Some("member") => Ok(Role::Member),
        Some("merchant") => Ok(Role::Merchant),
        Some("admin") => Err(ApiError::invalid("registration cannot create an admin")),
        Some(other) => Err(ApiError::invalid(format!(
            "unknown role {other:?}: use member or merchant"
        ))),
    }
}

/// Makes `email` an admin with this password, creating the user if there is none; from the
/// command line, so it is audit-logged as `cli`.
pub async fn make_admin(store: &Store, email: &str, plain_password: String) -> ApiResult<User> {
    let email = normalize_email(email)?;
    check_password(&plain_password)?;
    let hash = password::hash(plain_password).await?;
    let user = match store.user_by_email(&email).await? {
        Some(existing) => {
            let changes = UserChanges {
                role: Some(Role::Admin),
                password_hash: Some(hash),
                ..Default::default()
            };
            let audit = AuditRecord {
                details: serde_json::json!({ "email": email }),
                ..AuditRecord::by_cli("user.make_admin")
            };
            store
                .administer_user(
                    &existing.id,
                    &changes,
                    None,
                    AuditRecord {
                        target: Some(&existing.id),
                        ..audit
                    },
                )
                .await?
                .ok_or_else(|| ApiError::not_found("user"))?
        }
        None => {
            let user = store.create_user(&email, &hash, None, Role::Admin).await?;
            store
                .audit(AuditRecord {
                    target: Some(&user.id),
                    details: serde_json::json!({ "email": email }),
                    ..AuditRecord::by_cli("user.make_admin")
                })
                .await?;
            user
        }
    };
    Ok(user)
}

/// Lower-cases and checks an email address: one `@`, something on each side, no spaces.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= EMAIL_CHARS_MAX
        && !email.contains(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(ApiError::invalid("email is not a valid address"))
    }
}

pub fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(ApiError::invalid(format!(
            "password must be at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "password must be at most {PASSWORD_MAX_CHARS} characters"
        )));
    }
    Ok(())
}

/// A phone number in E.164 (`+8613800000000`); an empty one removes the number.
pub fn check_phone(phone: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(phone) = phone else {
        return Ok(None);
    };
    let digits = phone.strip_prefix('+').unwrap_or_default();
    let valid = phone.is_empty()
        || ((7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'));
    if !valid {
        return Err(ApiError::invalid(
            "phone must be in E.164 form, such as +8613800000000 (or empty to remove it)",
        ));
    }
    Ok(Some(phone))
}

/// A message language: `en`, `zh-Hans` or `zh-Hant`.
pub fn check_language(language: Option<String>) -> Result<Option<bursar_core::Language>, ApiError> {
    language
        .map(|text| {
            bursar_core::Language::parse(&text)
                .ok_or_else(|| ApiError::invalid("language must be en, zh-Hans or zh-Hant"))
        })
        .transpose()
}

pub fn check_display_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > DISPLAY_NAME_CHARS_MAX)
    {
        return Err(ApiError::invalid(format!(
            "display_name must be at most {DISPLAY_NAME_CHARS_MAX} characters"
        )));
    }
    Ok(name)
}

/// An IANA time zone name, or `""` to go back to the server's.
pub fn check_time_zone(zone: Option<String>) -> Result<Option<String>, ApiError> {
    match zone {
        Some(zone) if !zone.is_empty() && zone.parse::<bursar_worker::Tz>().is_err() => Err(
            ApiError::invalid("time_zone must be an IANA time zone such as Asia/Taipei"),
        ),
        other => Ok(other),
    }
}
