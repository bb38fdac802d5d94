//! Fresh databases for tests: a temporary SQLite file, or a new PostgreSQL schema on the server
//! named by `BURSAR_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), so
//! tests run in parallel without seeing each other.

use sqlx::Executor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of every schema the tests create; `.ci/run` drops leftovers by it.
pub const SCHEMA_PREFIX: &str = "bursar_t_";

fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A `DATABASE_URL` for a database nobody else uses.
pub async fn fresh_database_url(backend: Backend, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("bursar-tests");
            std::fs::create_dir_all(&dir).expect("temp dir is writable");
            let path = dir.join(format!("{name}-{}.db", unique_suffix()));
            format!("sqlite://{}", path.display())
        }
        Backend::Postgres => {
            let base = std::env::var("BURSAR_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| POSTGRES_URL_DEFAULT.to_string());
            let schema = format!("{SCHEMA_PREFIX}{name}_{}", unique_suffix());
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("PostgreSQL answers at BURSAR_TEST_POSTGRES_URL");
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await
                .expect("can create a schema");
            let separator = if base.contains('?') { '&' } else { '?' };
            // The schema also names the connections (`application_name`), so a test can find
            // and terminate its own backends without touching other tests'.
            format!(
                "{base}{separator}options=-c%20search_path%3D{schema}%20-c%20application_name%3D{schema}"
            )
        }
    }
}

/// Removes a database made by `fresh_database_url`: its SQLite files, or its PostgreSQL schema.
/// Best effort: what it cannot remove, `.ci/run` clears by `SCHEMA_PREFIX` (or the temp dir).
pub async fn remove_database(url: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    } else if let Some((base, options)) = url.split_once("options=-c%20search_path%3D")
        && let Some(schema) = options.split("%20").next()
        && schema.starts_with(SCHEMA_PREFIX)
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        let base = base.trim_end_matches(['?', '&']);
        if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(base).await {
            // Checked above: a name of ours, ASCII letters, digits and underscores only.
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = conn.execute(sqlx::AssertSqlSafe(drop)).await;
        }
    }
}
