//! Persistence for Bursar: one `Store` over SQLite or PostgreSQL. The ledger's writes all go
//! through `ledger::Ledger`, the one place where credit-moving transactions are executed.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod auto_topup;
pub mod clock;
pub mod coupons;
pub mod daily_gift;
pub mod db;
pub mod idempotency;
pub mod identities;
pub mod ids;
pub mod jobs;
pub mod ledger;
pub mod marketplace;
pub mod notifications;
pub mod orders;
pub mod packages;
pub mod page;
pub mod payment_methods;
pub mod rewards;
pub mod sessions;
pub mod settings;
pub mod sign_in_codes;
pub mod subscriptions;
pub mod testing;
pub mod users;
pub mod verify;
pub mod web_sessions;
pub mod web_sign_in_tickets;
pub mod webhooks;

pub use clock::Clock;
pub use db::{Db, Dialect, SqliteSync};
pub use ledger::{BalanceReads, Ledger};

use bursar_core::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] LedgerError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the ledger writer has stopped")]
    WriterGone,
    #[error("the balance reader has stopped")]
    ReaderGone,
    /// The connection was lost while the commit was sent: it may or may not have committed.
    #[error(
        "the database connection was lost while this change was being committed, so whether it \
         was applied is unknown: repeat it with the same Idempotency-Key, or check first"
    )]
    CommitOutcomeUnknown,
}

impl From<sqlx::Error> for StoreError {
    /// Every database error passes here, so this is where a lost connection is noticed: the
    /// pool then checks its older connections before handing them out (`db::lost`).
    fn from(error: sqlx::Error) -> Self {
        let error = StoreError::Database(error);
        if error.is_connection_lost() {
            db::lost::noticed();
        }
        error
    }
}

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// Whether the database connection itself failed (closed, reset, or its backend terminated
    /// by an administrator, a restart or a failover), rather than a statement on it.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Io(_)) => true,
            // SQLSTATE class 08 is "connection exception"; 57P01-57P03 are the server's
            // "terminating connection due to administrator command", crash and "cannot connect
            // now" (a starting or stopping server).
            StoreError::Database(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
            _ => false,
        }
    }
}

/// The asset every account holds unless told otherwise.
pub const DEFAULT_ASSET: &str = "credits";

/// Everything the server needs from storage.
#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub ledger: Ledger,
    pub balances: BalanceReads,
    pub clock: Clock,
    pub asset: String,
    pub jobs: jobs::JobQueue,
    /// The store's own background tasks (balance readers, checkpoints) and their stop signal.
    tasks: tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
}

impl Store {
    /// Connects, migrates and starts the ledger writer and the balance reader.
    pub async fn open(url: &str, sync: SqliteSync, clock: Clock) -> Result<Self, StoreError> {
        let db = Db::connect(url, sync).await?;
        db.migrate().await?;
        let asset = DEFAULT_ASSET.to_string();
        accounts::ensure_system_accounts(&db, &asset, clock.now_ms()).await?;
        let jobs_wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let ledger = Ledger::start(db.clone(), clock.clone(), asset.clone(), jobs_wake.clone())?;
        let jobs = jobs::JobQueue::new(db.clone(), clock.clone(), jobs_wake);
        let tasks = tokio_util::task::TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        let balances = BalanceReads::start(&db, clock.clone(), asset.clone(), &tasks, stop.clone());
        db.checkpoint_in_background(&tasks, stop.clone());
        Ok(Self {
            db,
            ledger,
            balances,
            clock,
            asset,
            jobs,
            tasks,
            stop,
        })
    }

    /// Stops the store's background tasks and the ledger writer and waits for them: the writer
    /// first applies and answers what is queued. Call it once nothing sends work any more.
    pub async fn close(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.ledger.stop();
        self.ledger.stopped().await;
    }
}
