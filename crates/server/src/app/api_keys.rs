//! Service API keys: the rule for a key's name and its creation, the same for the API and the
//! command line.

use bursar_store::Store;
use bursar_store::api_keys::NewApiKey;
use bursar_store::audit::AuditRecord;

use crate::error::{ApiError, ApiResult};

pub const KEY_NAME_CHARS_MAX: usize = 100;

/// Creates a key named `name` (trimmed, 1 to `KEY_NAME_CHARS_MAX` characters); `audit` commits
/// with it.
pub async fn create(
    store: &Store,
    name: &str,
    created_by: Option<&str>,
    audit: AuditRecord<'_>,
) -> ApiResult<NewApiKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > KEY_NAME_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {KEY_NAME_CHARS_MAX} characters"
        )));
    }
    Ok(store.create_api_key(name, created_by, audit).await?)
}
