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

/// Counts the commits made to a SQLite database file from `start` on, by every connection (the
/// ledger writer's, the pool's, any process's): each commit appends its pages to the
/// write-ahead log, the last of them marked as a commit, and with durable commits each is one
/// fsync of the log. A test holds a read transaction open meanwhile, so the log cannot be
/// started afresh (by a checkpoint and the next write) and forget what it counts; should it be
/// anyway, `count` says so rather than count short.
pub struct SqliteCommits {
    wal: std::path::PathBuf,
    /// Holds a read transaction on the log, so no writer restarts it.
    pin: sqlx::AnyConnection,
    salts: [u8; 8],
    at_start: usize,
}

impl SqliteCommits {
    pub async fn start(db: &crate::Db) -> Result<Self, crate::StoreError> {
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&db.pool)
                .await?;
        let wal = std::path::PathBuf::from(format!("{file}-wal"));
        // A log read while it is wholly checkpointed is not pinned by its readers: a write
        // first, so the read below reads from it.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('test_commit_count', '0')
             ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)",
        )
        .execute(&db.pool)
        .await?;
        let mut pin = db.connect_one().await?;
        pin.execute("BEGIN").await?;
        sqlx::query("SELECT COUNT(*) FROM settings")
            .fetch_one(&mut pin)
            .await?;
        let (salts, at_start) = wal_commits(&wal)?;
        Ok(Self {
            wal,
            pin,
            salts,
            at_start,
        })
    }

    /// Commits since `start`. `Err` if the log was started afresh meanwhile (the count would
    /// be short).
    pub fn count(&self) -> Result<usize, crate::StoreError> {
        let (salts, commits) = wal_commits(&self.wal)?;
        if salts != self.salts {
            return Err(crate::StoreError::Config(
                "the write-ahead log was restarted during the count".into(),
            ));
        }
        Ok(commits - self.at_start)
    }

    /// Ends the read transaction.
    pub async fn finish(mut self) -> Result<(), crate::StoreError> {
        self.pin.execute("ROLLBACK").await?;
        Ok(())
    }
}

/// The log's salts and its commits: frames from the start that carry the header's salts (the
/// current generation), counting those marked as a commit (a database size after it).
fn wal_commits(wal: &std::path::Path) -> Result<([u8; 8], usize), crate::StoreError> {
    let log = std::fs::read(wal)
        .map_err(|e| crate::StoreError::Config(format!("cannot read {}: {e}", wal.display())))?;
    let word = |at: usize| u32::from_be_bytes([log[at], log[at + 1], log[at + 2], log[at + 3]]);
    if log.len() < 32 || !matches!(word(0), 0x377f_0682 | 0x377f_0683) {
        return Err(crate::StoreError::Config(format!(
            "{} is not a write-ahead log",
            wal.display()
        )));
    }
    let mut salts = [0u8; 8];
    salts.copy_from_slice(&log[16..24]);
    let frame = 24 + word(8) as usize;
    let mut commits = 0;
    let mut at = 32;
    while at + frame <= log.len() && log[at + 8..at + 16] == salts {
        if word(at + 4) != 0 {
            commits += 1;
        }
        at += frame;
    }
    Ok((salts, commits))
}
