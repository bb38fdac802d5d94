//! Connecting to either backend, per-connection pragmas, migrations and write transactions.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::StoreError;

/// A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// What a `SELECT` inside a write transaction ends with to lock the rows it reads until the
    /// transaction ends: `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write
    /// transaction already excludes every other writer.
    pub fn row_lock(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// How the ledger writer waits for SQLite's write lock while another connection holds it. Its
/// connection answers "busy" at once (`busy_timeout = 0`), and it asks again every
/// `LockPoll::EVERY` for as long as the other connections' busy timeout. SQLite's own busy
/// handler sleeps 1, 2, 5, 10 ms… between its tries, so a writer that found the lock held for
/// 1.7 ms (a job's transaction on a loaded machine) waited 3 ms, while everything it serves
/// waited with it.
struct LockPoll {
    deadline: std::time::Instant,
}

impl LockPoll {
    const EVERY: Duration = Duration::from_micros(250);

    fn start() -> Self {
        Self {
            deadline: std::time::Instant::now() + BUSY_TIMEOUT,
        }
    }

    /// Whether to try again after `error`: the lock is held elsewhere and there is time left.
    /// Then it has waited `EVERY`, blocking the thread: the writer's thread runs nothing else,
    /// and tokio's timers would round the wait up to a millisecond.
    fn again(&self, error: &sqlx::Error) -> bool {
        let busy =
            matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some(SQLITE_BUSY));
        if !busy || std::time::Instant::now() >= self.deadline {
            return false;
        }
        std::thread::sleep(Self::EVERY);
        true
    }
}

/// Sends `script`, which begins with `BEGIN IMMEDIATE`, on the ledger writer's connection until
/// it finds the write lock free (`LockPoll`), and answers the first column of the rows it
/// returns. A `BEGIN` that finds the lock held fails before the rest of the script runs,
/// leaving no transaction open.
async fn begin_immediate_polling(
    conn: &mut sqlx::AnyConnection,
    script: &str,
    binds: &[&str],
) -> Result<Vec<i64>, sqlx::Error> {
    let poll = LockPoll::start();
    loop {
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(script));
        for bind in binds {
            query = query.bind(*bind);
        }
        // `fetch_all`: the Any driver's `fetch_one` reads only the first result, which is
        // `BEGIN`'s, and stops the script there.
        match query.fetch_all(&mut *conn).await {
            Err(error) if poll.again(&error) => continue,
            answered => return answered,
        }
    }
}

/// SQLite's result code for a lock another connection holds ("database is locked").
const SQLITE_BUSY: &str = "5";

/// How long a SQLite connection waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How durable a SQLite commit is. `Full` fsyncs at every commit; `Normal` in WAL mode can lose
/// the last commits on power loss (never on a process crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    Full,
    Normal,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
    options: AnyConnectOptions,
    sync: SqliteSync,
    /// Write transactions begun (by the `begin_*` methods), shared by every clone: on
    /// SQLite each takes the database's one write lock, so this is what tests count to keep
    /// the writes on a path few (`write_transactions_begun`).
    write_begins: Arc<AtomicU64>,
}

/// How long a request waits for a pooled connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of at most `connections` PostgreSQL connections, each pinged before use only after
/// sitting idle (`ping_if_idle`).
fn postgres_pool_options(connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
}

/// Pings a pooled PostgreSQL connection before it is handed out only if it sat idle long
/// enough for the server or the network to have dropped it: a ping before every query would
/// double the round trips of a cheap read.
async fn ping_if_idle(
    conn: &mut sqlx::AnyConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= PING_AFTER_IDLE || lost::since_released(meta.idle_for) {
        sqlx::Connection::ping(conn).await?;
    }
    Ok(true)
}

/// When a connection was last seen lost. A database restart, a failover or an administrator
/// terminating backends kills every pooled connection at once, but each would only be found
/// dead by the query that uses it: once one is, the pool pings every connection opened before
/// that moment (and not used since) before handing it out, so the rest are replaced instead of
/// failing a query each.
pub(crate) mod lost {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    /// Milliseconds after `EPOCH`, plus one (0: never).
    static LAST: AtomicU64 = AtomicU64::new(0);

    fn now_ms() -> u64 {
        u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn noticed() {
        LAST.fetch_max(now_ms() + 1, Ordering::Relaxed);
    }

    /// Whether a loss was noticed since a connection idle this long was last used: it may be
    /// one of the dead. (Once pinged and used again, it is not asked about again.)
    pub fn since_released(idle_for: Duration) -> bool {
        let last = LAST.load(Ordering::Relaxed);
        let released =
            now_ms().saturating_sub(u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX));
        last > 0 && released < last
    }
}

/// Runs a read once more if its connection was lost: nothing was changed, and by the second
/// attempt the pool checks the connections that predate the loss (`lost`), so a database blip
/// fails no read on the hot paths that use this.
pub async fn again_if_lost<T, F, Fut>(mut read: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    match read().await {
        Err(error) if error.is_connection_lost() => read().await,
        result => result,
    }
}

/// Per-connection settings for SQLite: WAL (kept under 128 MiB once reset), the chosen
/// durability, a busy timeout, and foreign keys (off by default in SQLite).
async fn apply_pragmas(
    conn: &mut sqlx::AnyConnection,
    sync: SqliteSync,
) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute(match sync {
        SqliteSync::Full => "PRAGMA synchronous = FULL",
        SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
    })
    .await?;
    let busy_timeout = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    conn.execute(sqlx::AssertSqlSafe(busy_timeout)).await?;
    // After a peak (a long reader can keep the log from being reset), the log file shrinks
    // back to this size when it is next reset, instead of keeping its peak size on disk.
    conn.execute("PRAGMA journal_size_limit = 134217728")
        .await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    Ok(())
}

/// One schema change: `sql` on both backends, then the part for the backend in use, if any.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    sqlite_only: Option<&'static str>,
    postgres_only: Option<&'static str>,
}

/// Migrations in order. Each runs once, in its own transaction, recorded in `schema_migrations`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/001_ledger.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 2,
        name: "catalog",
        sql: include_str!("../migrations/002_catalog.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 3,
        name: "orders",
        sql: include_str!("../migrations/003_orders.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 4,
        name: "history",
        sql: include_str!("../migrations/004_history.sql"),
        sqlite_only: Some(include_str!("../migrations/004_history.sqlite.sql")),
        postgres_only: None,
    },
    Migration {
        version: 5,
        name: "ledger epoch",
        sql: "",
        sqlite_only: None,
        postgres_only: Some(include_str!("../migrations/005_ledger_epoch.postgres.sql")),
    },
    Migration {
        version: 6,
        name: "journal checks",
        sql: "",
        sqlite_only: None,
        postgres_only: Some(include_str!(
            "../migrations/006_journal_checks.postgres.sql"
        )),
    },
    Migration {
        version: 7,
        name: "live grants",
        sql: "",
        sqlite_only: Some(include_str!("../migrations/007_live_grants.sqlite.sql")),
        postgres_only: Some(include_str!("../migrations/007_live_grants.postgres.sql")),
    },
    Migration {
        version: 8,
        name: "held by account",
        sql: include_str!("../migrations/008_held_by_account.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 9,
        name: "jobs",
        sql: include_str!("../migrations/009_jobs.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 10,
        name: "payment methods",
        sql: include_str!("../migrations/010_payment_methods.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 11,
        name: "auto top-up",
        sql: include_str!("../migrations/011_auto_topup.sql"),
        sqlite_only: Some(include_str!("../migrations/011_auto_topup.sqlite.sql")),
        postgres_only: Some(include_str!("../migrations/011_auto_topup.postgres.sql")),
    },
    Migration {
        version: 12,
        name: "user language and phone",
        sql: include_str!("../migrations/012_user_language.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 13,
        name: "outgoing webhooks",
        sql: include_str!("../migrations/013_webhooks.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 14,
        name: "subscriptions",
        sql: include_str!("../migrations/014_subscriptions.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 15,
        name: "provider customers",
        sql: include_str!("../migrations/015_provider_customers.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 16,
        name: "engagement",
        sql: include_str!("../migrations/016_engagement.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 17,
        name: "marketplace",
        sql: include_str!("../migrations/017_marketplace.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 18,
        name: "identities",
        sql: include_str!("../migrations/018_identities.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 19,
        name: "sign-in codes",
        sql: include_str!("../migrations/019_sign_in_codes.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 20,
        name: "web sessions",
        sql: include_str!("../migrations/020_web_sessions.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 21,
        name: "history filters",
        sql: "",
        sqlite_only: Some(include_str!("../migrations/021_history_filters.sqlite.sql")),
        postgres_only: None,
    },
    Migration {
        version: 22,
        name: "web sign-in tickets",
        sql: include_str!("../migrations/022_web_sign_in_tickets.sql"),
        sqlite_only: None,
        postgres_only: None,
    },
    Migration {
        version: 23,
        name: "history filters",
        sql: "",
        sqlite_only: None,
        postgres_only: Some(include_str!(
            "../migrations/023_history_filters.postgres.sql"
        )),
    },
    Migration {
        version: 24,
        name: "ledger epoch on sqlite",
        sql: "",
        sqlite_only: Some(include_str!("../migrations/024_ledger_epoch.sqlite.sql")),
        postgres_only: None,
    },
];

impl Db {
    /// Opens `url`: `sqlite://path` (created if missing) or `postgres://…`. Any other scheme is
    /// refused rather than guessed at.
    pub async fn connect(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            let url = if url.contains('?') || url.contains(":memory:") {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::Config(format!(
                "DATABASE_URL must start with sqlite: or postgres://, got {:?}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = match dialect {
            // A SQLite connection is a file handle: there is no network peer to lose, so the
            // pool need not ping it (a round trip to its worker thread) before every query.
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .test_before_acquire(false)
                    .after_connect(move |conn, _meta| Box::pin(apply_pragmas(conn, sync)))
                    .connect_with(options.clone())
                    .await?
            }
            Dialect::Postgres => {
                postgres_pool_options(16)
                    .connect_with(options.clone())
                    .await?
            }
        };
        Ok(Self {
            pool,
            dialect,
            options,
            sync,
            write_begins: Arc::default(),
        })
    }

    /// Applies every migration not yet applied. Safe to run from several processes at once on
    /// PostgreSQL (an advisory lock serialises them).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_through(i64::MAX).await
    }

    /// Applies the migrations up to and including `last`.
    async fn migrate_through(&self, last: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.dialect == Dialect::Postgres {
            conn.execute("SELECT pg_advisory_lock(7364012)").await?;
        }
        let result = async {
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
            for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                        .bind(migration.version)
                        .fetch_optional(&mut *conn)
                        .await?;
                if applied.is_some() {
                    continue;
                }
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applying migration"
                );
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let backend_only = match self.dialect {
                    Dialect::Sqlite => migration.sqlite_only,
                    Dialect::Postgres => migration.postgres_only,
                };
                for sql in [Some(migration.sql), backend_only].into_iter().flatten() {
                    if !sql.is_empty() {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                )
                .bind(migration.version)
                .bind(migration.name)
                .bind(crate::clock::system_now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if self.dialect == Dialect::Postgres {
            conn.execute("SELECT pg_advisory_unlock(7364012)").await?;
        }
        result
    }

    /// Begins a transaction that will write. SQLite must take its write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails as busy
    /// under concurrency, whatever the busy timeout.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        self.write_begins.fetch_add(1, Ordering::Relaxed);
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        })
    }

    /// Begins a transaction whose first statement writes. On SQLite the write lock is then
    /// taken by that statement rather than by `BEGIN`, one round trip later, so it is held one
    /// round trip less. That is safe only for a transaction that reads nothing before it
    /// writes: the upgrade from reading to writing is what fails as busy (see `begin_write`).
    pub async fn begin_with_a_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        self.write_begins.fetch_add(1, Ordering::Relaxed);
        Ok(self.pool.begin().await?)
    }

    /// Counts a write transaction begun by a script of its own (see `write_transactions_begun`).
    pub(crate) fn note_write_begun(&self) {
        self.write_begins.fetch_add(1, Ordering::Relaxed);
    }

    /// How many write transactions this database's handles have begun (with `begin_write`,
    /// `begin_with_a_write`, `begin_write_on` or, for the ledger writer's batches,
    /// `begin_ledger_batch_on`), committed or not. Writes made
    /// outside such a transaction (a single statement on the pool) are not counted here; on
    /// SQLite `testing::SqliteCommits` counts every commit whoever makes it.
    pub fn write_transactions_begun(&self) -> u64 {
        self.write_begins.load(Ordering::Relaxed)
    }

    /// A connection of its own, outside the pool, set up like the pool's.
    pub async fn connect_one(&self) -> Result<sqlx::AnyConnection, StoreError> {
        use sqlx::ConnectOptions;
        let mut conn = self.options.connect().await?;
        if self.dialect == Dialect::Sqlite {
            apply_pragmas(&mut conn, self.sync).await?;
            // The writer leaves checkpoints to `checkpoint_in_background`, which copies the
            // WAL back into the database off the ledger's critical path; this is the backstop
            // should that fall behind (about 80 MiB of WAL).
            conn.execute("PRAGMA wal_autocheckpoint = 20000").await?;
        }
        Ok(conn)
    }

    /// Connections for a statement whose best plan never depends on its parameters' values.
    /// On PostgreSQL a small pool of its own whose connections keep one generic plan per
    /// statement (`plan_cache_mode = force_generic_plan`): by default PostgreSQL plans a
    /// prepared statement afresh on every execution while a plan made for the actual values
    /// looks cheaper, and for the coalesced balance read, run a thousand times a second, that
    /// planning was most of the database's work. Opened on first use. On SQLite, the pool.
    pub fn pool_with_one_plan_per_statement(&self, connections: u32) -> AnyPool {
        match self.dialect {
            Dialect::Sqlite => self.pool.clone(),
            Dialect::Postgres => postgres_pool_options(connections)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("SET plan_cache_mode = force_generic_plan")
                            .await
                            .map(|_| ())
                    })
                })
                .connect_lazy_with(self.options.clone()),
        }
    }

    /// The ledger writer's connection, and the write-ahead log it must make durable itself.
    ///
    /// With `SqliteSync::Full` on a database file, the writer commits with `synchronous =
    /// NORMAL` (the commit only hands the WAL frames to the operating system) and returns the
    /// WAL's path: the writer then fsyncs that file on another thread before it acknowledges
    /// the batch, so the next batch is applied while the last one reaches the disk. Nothing is
    /// acknowledged before it is durable, as with FULL; what changes is that other connections
    /// may read a batch a few milliseconds before its fsync completes. Every other case returns
    /// `None`: the commit itself is as durable as the settings make it.
    pub async fn connect_writer(
        &self,
    ) -> Result<(sqlx::AnyConnection, Option<PathBuf>), StoreError> {
        let mut conn = self.connect_one().await?;
        if self.dialect == Dialect::Postgres {
            // Every statement the writer runs reaches rows by key. A batch's updates join the
            // table with the batch's rows (`unnest`) and are planned once per connection; a
            // table that was small then (holds, after a start) kept a hash join over a
            // sequential scan of the whole table as it grew, every batch, until autovacuum's
            // next ANALYZE. Without hash and merge joins the planner looks each key up in the
            // index (hold + capture on PostgreSQL: 13,500 -> 18,600 requests/s).
            conn.execute("SET enable_hashjoin = off; SET enable_mergejoin = off")
                .await?;
        }
        if self.dialect == Dialect::Sqlite {
            // The writer waits for the write lock in `LockPoll`, not in SQLite's busy handler.
            conn.execute("PRAGMA busy_timeout = 0").await?;
        }
        if self.dialect != Dialect::Sqlite || self.sync != SqliteSync::Full {
            return Ok((conn, None));
        }
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&mut conn)
                .await?;
        if file.is_empty() {
            // In memory: there is no file to make durable.
            return Ok((conn, None));
        }
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        Ok((conn, Some(PathBuf::from(format!("{file}-wal")))))
    }

    /// Like `begin_write`, on the ledger writer's connection (see `connect_writer`).
    pub async fn begin_write_on<'c>(
        &self,
        conn: &'c mut sqlx::AnyConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>, StoreError> {
        use sqlx::Connection;
        self.write_begins.fetch_add(1, Ordering::Relaxed);
        if self.dialect == Dialect::Postgres {
            return Ok(conn.begin().await?);
        }
        begin_immediate_polling(conn, "BEGIN IMMEDIATE", &[]).await?;
        // The transaction is open and holds the lock; a `Transaction` now takes it over, so it
        // is rolled back if dropped. (Begun by the guard itself, the retry above could not
        // borrow the connection again after a failed try.)
        Ok(conn.begin_with("SELECT 1").await?)
    }

    /// Begins the ledger writer's batch on its connection and advances `asset`'s ledger epoch in
    /// it (see `ledger::epoch`), answering the new value. Unlike `begin_write_on` no
    /// `Transaction` guards it: the writer ends it with `COMMIT`, which on SQLite ends the
    /// batch's write script, and after any failure drops the connection, which rolls back
    /// whatever it left open. On SQLite `BEGIN IMMEDIATE` and the advance are one call: each
    /// call is a round trip to the connection's thread, which on a loaded machine waits for a
    /// core while the writer, the ledger's serial part, waits for it.
    pub(crate) async fn begin_ledger_batch_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        asset: &str,
    ) -> Result<i64, StoreError> {
        use sqlx::Executor;
        self.write_begins.fetch_add(1, Ordering::Relaxed);
        match self.dialect {
            Dialect::Sqlite => {
                let sql = format!("BEGIN IMMEDIATE; {}", crate::ledger::epoch::ADVANCE);
                let stamps = begin_immediate_polling(conn, &sql, &[asset]).await?;
                Ok(stamps.first().copied().ok_or(sqlx::Error::RowNotFound)?)
            }
            Dialect::Postgres => {
                conn.execute("BEGIN").await?;
                crate::ledger::epoch::advance(conn, asset).await
            }
        }
    }

    /// SQLite: copies the write-ahead log back into the database once a second from a pool
    /// connection, so the ledger writer's commits do not pay for checkpoints. PASSIVE never
    /// blocks the writer. Stops on `stop`.
    pub fn checkpoint_in_background(
        &self,
        tasks: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) {
        if self.dialect != Dialect::Sqlite {
            return;
        }
        let pool = self.pool.clone();
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
            while !pool.is_closed() {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                if let Err(error) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                    tracing::debug!(%error, "background checkpoint failed; will retry");
                }
            }
        });
    }

    /// True when the database answers a trivial query.
    /// Whether the database answers. A pooled connection whose backend was terminated fails
    /// once; then a fresh connection decides, so a blip the pool has not noticed yet does not
    /// make the server report itself unready.
    pub async fn ping(&self) -> bool {
        let pooled = sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::from);
        match pooled {
            Ok(_) => true,
            // Only a dead connection is worth a second opinion: a busy pool (a timeout) is not
            // a reason to open connections beyond it.
            Err(error) if error.is_connection_lost() => {
                let fresh = async {
                    let mut conn = self.connect_one().await?;
                    sqlx::query("SELECT 1").execute(&mut conn).await?;
                    Ok::<_, StoreError>(())
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), fresh).await,
                    Ok(Ok(()))
                )
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Backend, fresh_database_url};

    /// A database that already holds transfers when migration 4 arrives gets every one of them
    /// into SQLite's history index, and the mark after the last.
    #[tokio::test]
    async fn the_history_migration_indexes_the_transfers_already_there() {
        let url = fresh_database_url(Backend::Sqlite, "history_migration").await;
        let db = Db::connect(&url, SqliteSync::Full).await.expect("opens");
        db.migrate_through(3).await.expect("migrates to 3");
        sqlx::raw_sql(
            "INSERT INTO accounts (id, asset, owner_kind, owner_id, created_at)
             VALUES ('acc_a', 'credits', 'system', 'a', 0), ('acc_b', 'credits', 'system', 'b', 0);
             INSERT INTO transfers (id, asset, kind, debit_account_id, credit_account_id, amount,
                                    debit_balance_after, credit_balance_after, created_at)
             VALUES ('txn_1', 'credits', 'grant', 'acc_a', 'acc_b', 5, -5, 5, 0),
                    ('txn_2', 'credits', 'spend', 'acc_b', 'acc_a', 2, 3, -3, 0);",
        )
        .execute(&db.pool)
        .await
        .expect("writes a journal");
        db.migrate().await.expect("migrates the rest");
        let entries: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.id, t.id FROM account_entries e
             JOIN accounts a ON a.rowid = e.account JOIN transfers t ON t.rowid = e.transfer
             ORDER BY a.id, t.id",
        )
        .fetch_all(&db.pool)
        .await
        .expect("entries read");
        let pair = |a: &str, t: &str| (a.to_string(), t.to_string());
        assert_eq!(
            entries,
            [
                pair("acc_a", "txn_1"),
                pair("acc_a", "txn_2"),
                pair("acc_b", "txn_1"),
                pair("acc_b", "txn_2")
            ]
        );
        let mark: i64 = sqlx::query_scalar("SELECT indexed_through FROM history_index")
            .fetch_one(&db.pool)
            .await
            .expect("mark reads");
        assert_eq!(mark, 2);
    }

    /// Refunds still waiting for their provider when the queue arrives become its jobs, due
    /// when their old retry was; finished refunds get none.
    async fn pending_refunds_become_jobs(backend: Backend) {
        let url = fresh_database_url(backend, "refund_jobs_migration").await;
        let db = Db::connect(&url, SqliteSync::Full).await.expect("opens");
        db.migrate_through(8).await.expect("migrates to 8");
        sqlx::raw_sql(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES ('usr_1', 'a@example.com', 'x', 'member', 0, 0);
             INSERT INTO packages (id, name, kind, credits, price_amount, price_currency,
                                   created_at, updated_at)
             VALUES ('pkg_1', 'p', 'credit_pack', 10, 100, 'CNY', 0, 0);
             INSERT INTO orders (id, user_id, package_id, package_name, quantity, currency,
                                 unit_price, discount, total, credits, bonus_credits, provider,
                                 status, payment_id, created_at, expires_at, updated_at)
             VALUES ('ord_1', 'usr_1', 'pkg_1', 'p', 1, 'CNY', 100, 0, 100, 10, 0, 'stripe',
                     'paid', 'pay_1', 0, 0, 0);
             INSERT INTO order_refunds (id, order_id, kind, amount, credits, allow_negative,
                                        status, attempts, next_attempt_at, created_at, updated_at)
             VALUES ('orf_pending', 'ord_1', 'refund', 50, 5, 0, 'pending', 3, 777, 1, 2),
                    ('orf_late', 'ord_1', 'late_payment', 100, 0, 0, 'pending', 0, 888, 1, 2),
                    ('orf_done', 'ord_1', 'refund', 50, 5, 0, 'succeeded', 1, 999, 1, 2);",
        )
        .execute(&db.pool)
        .await
        .expect("writes refunds");
        db.migrate().await.expect("migrates the rest");
        let jobs: Vec<(String, String, String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT kind, payload, unique_key, state, attempts, max_attempts, run_at FROM jobs
             ORDER BY run_at",
        )
        .fetch_all(&db.pool)
        .await
        .expect("jobs read");
        let job = |id: &str, run_at: i64| {
            (
                "provider_refund".to_string(),
                format!("{{\"refund_id\":\"{id}\"}}"),
                crate::orders::provider_refund_key(id),
                "queued".to_string(),
                0,
                crate::orders::PROVIDER_REFUND_ATTEMPTS_MAX,
                run_at,
            )
        };
        assert_eq!(jobs, [job("orf_pending", 777), job("orf_late", 888)]);
        let payload: crate::orders::ProviderRefundPayload =
            serde_json::from_str(&jobs[0].1).expect("the job reads its payload");
        assert_eq!(payload.refund_id, "orf_pending");
    }

    #[tokio::test]
    async fn pending_refunds_become_jobs_on_sqlite() {
        pending_refunds_become_jobs(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn pending_refunds_become_jobs_on_postgres() {
        pending_refunds_become_jobs(Backend::Postgres).await;
    }

    /// Orders and the refunds that point at them come through migration 11, which on SQLite
    /// rebuilds the orders table: every row and every reference survive, and the old orders
    /// read as package orders with no fee.
    async fn orders_survive_the_auto_topup_migration(backend: Backend) {
        let url = fresh_database_url(backend, "orders_migration_11").await;
        let db = Db::connect(&url, SqliteSync::Full).await.expect("opens");
        db.migrate_through(10).await.expect("migrates to 10");
        sqlx::raw_sql(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES ('usr_1', 'a@example.com', 'x', 'member', 0, 0);
             INSERT INTO packages (id, name, kind, credits, price_amount, price_currency,
                                   created_at, updated_at)
             VALUES ('pkg_1', 'p', 'credit_pack', 10, 100, 'CNY', 0, 0);
             INSERT INTO orders (id, user_id, package_id, package_name, quantity, currency,
                                 unit_price, discount, total, credits, bonus_credits, provider,
                                 status, payment_id, receipt_number, created_at, expires_at,
                                 updated_at)
             VALUES ('ord_1', 'usr_1', 'pkg_1', 'p', 1, 'CNY', 100, 0, 100, 10, 0, 'sandbox',
                     'paid', 'pay_1', 7, 5, 6, 8);
             INSERT INTO order_refunds (id, order_id, kind, amount, credits, allow_negative,
                                        status, attempts, next_attempt_at, created_at, updated_at)
             VALUES ('orf_1', 'ord_1', 'refund', 50, 5, 0, 'succeeded', 1, 0, 1, 2);",
        )
        .execute(&db.pool)
        .await
        .expect("writes an order and its refund");
        db.migrate().await.expect("migrates the rest");
        let row: (String, Option<String>, String, i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT o.id, o.package_id, o.kind, o.fee, o.receipt_number, o.created_at
             FROM orders o JOIN order_refunds r ON r.order_id = o.id",
        )
        .fetch_one(&db.pool)
        .await
        .expect("the order and its refund read");
        assert_eq!(
            row,
            (
                "ord_1".into(),
                Some("pkg_1".into()),
                "package".into(),
                0,
                Some(7),
                5
            )
        );
        // The rebuilt table still refuses what the old one did.
        let orphan = sqlx::query(
            "INSERT INTO order_refunds (id, order_id, kind, amount, credits, allow_negative,
                                        status, attempts, next_attempt_at, created_at, updated_at)
             VALUES ('orf_2', 'ord_missing', 'refund', 1, 0, 0, 'pending', 0, 0, 1, 2)",
        )
        .execute(&db.pool)
        .await;
        assert!(orphan.is_err(), "a refund of no order was accepted");
    }

    #[tokio::test]
    async fn orders_survive_the_auto_topup_migration_on_sqlite() {
        orders_survive_the_auto_topup_migration(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn orders_survive_the_auto_topup_migration_on_postgres() {
        orders_survive_the_auto_topup_migration(Backend::Postgres).await;
    }

    /// The PostgreSQL writer's batch updates look rows up by key, however small the table was
    /// when the statement was planned.
    #[tokio::test]
    async fn the_postgres_writer_updates_a_batch_of_rows_through_the_index() {
        let url = fresh_database_url(Backend::Postgres, "writer_plans").await;
        let db = Db::connect(&url, SqliteSync::Full).await.expect("connects");
        db.migrate().await.expect("migrates");
        let (mut writer, _) = db.connect_writer().await.expect("writer connects");
        // As the writer's own statements are: prepared, then planned for any parameters.
        writer
            .execute(
                "SET plan_cache_mode = force_generic_plan;
                 PREPARE capture (text, text) AS UPDATE holds SET status = v.status
                 FROM unnest($1::text[], $2::text[]) AS v(id, status) WHERE holds.id = v.id",
            )
            .await
            .expect("prepares");
        let plan: Vec<String> =
            sqlx::query_scalar("EXPLAIN EXECUTE capture ('{hld_a}', '{captured}')")
                .fetch_all(&mut writer)
                .await
                .expect("explains");
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan using holds_pkey"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    /// Statements read through `pool_with_one_plan_per_statement` are planned once for all
    /// parameters on PostgreSQL.
    #[tokio::test]
    async fn the_one_plan_pool_keeps_generic_plans_on_postgres() {
        let url = fresh_database_url(Backend::Postgres, "generic_plans").await;
        let db = Db::connect(&url, SqliteSync::Full).await.expect("connects");
        let pool = db.pool_with_one_plan_per_statement(1);
        let mode: String = sqlx::query_scalar("SELECT current_setting('plan_cache_mode')")
            .fetch_one(&pool)
            .await
            .expect("reads the setting");
        assert_eq!(mode, "force_generic_plan");
        let elsewhere: String = sqlx::query_scalar("SELECT current_setting('plan_cache_mode')")
            .fetch_one(&db.pool)
            .await
            .expect("reads the setting");
        assert_eq!(
            elsewhere, "auto",
            "the main pool keeps PostgreSQL's default"
        );
    }
}
