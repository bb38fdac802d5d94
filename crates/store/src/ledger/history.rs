//! SQLite's per-account history index, built in runs (migration 004 says why): the writer's
//! batches only append to `transfers`; between batches the writer moves the transfers after
//! `history_index.indexed_through` into `account_entries`, in key order and in one
//! transaction, so each account's index page is written once per run instead of once per
//! transfer. Each entry carries its transfer's kind and time, so a filtered history reads only
//! the entries (migration 021). Reads take the index plus the short unindexed tail (`read.rs`).
//! PostgreSQL indexes
//! each transfer as it is inserted and never runs this.

use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use crate::db::Dialect;
use crate::{Db, StoreError};

/// A run starts once this many transfers wait…
const RUN_AFTER_TRANSFERS: u64 = 4_096;
/// …or once any have waited this long…
const RUN_INTERVAL: Duration = Duration::from_secs(1);
/// …or once no request has come for this long.
pub(crate) const IDLE: Duration = Duration::from_millis(100);
/// The most transfers one run indexes, so a backlog is worked off in bounded steps.
const RUN_MAX: i64 = 16_384;

/// When the writer should next index: it counts what its batches wrote.
pub(crate) struct Schedule {
    enabled: bool,
    /// Transfers written since the last run.
    unindexed: u64,
    /// Transfers may be waiting that were not counted: left by an earlier process, or beyond
    /// the last run's bound.
    backlog: bool,
    last_run: Instant,
}

impl Schedule {
    pub fn new(dialect: Dialect) -> Self {
        let enabled = dialect == Dialect::Sqlite;
        Self {
            enabled,
            unindexed: 0,
            backlog: enabled,
            last_run: Instant::now(),
        }
    }

    pub fn wrote(&mut self, transfers: usize) {
        if self.enabled {
            self.unindexed += transfers as u64;
        }
    }

    /// Some transfers wait: a run is worth doing as soon as the writer is idle.
    pub fn waiting(&self) -> bool {
        self.enabled && (self.unindexed > 0 || self.backlog)
    }

    /// Enough wait, or they have waited long enough, to run even while requests queue.
    pub fn due(&self) -> bool {
        self.waiting()
            && (self.unindexed >= RUN_AFTER_TRANSFERS || self.last_run.elapsed() >= RUN_INTERVAL)
    }

    /// After a run (or a failed one, which is retried no sooner than a run would be).
    pub fn ran(&mut self, outcome: &Result<Run, StoreError>) {
        self.last_run = Instant::now();
        if let Ok(run) = outcome {
            self.unindexed = 0;
            self.backlog = run.more;
        }
    }
}

/// What one run did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub transfers: u64,
    /// It stopped at `RUN_MAX`; more transfers wait.
    pub more: bool,
}

/// Indexes the transfers committed since the last run, at most `RUN_MAX`, in one write
/// transaction on `conn` (the writer's). Safe beside other writers on the same file: the
/// mark is read and moved under SQLite's write lock.
pub(crate) async fn index_run(db: &Db, conn: &mut AnyConnection) -> Result<Run, StoreError> {
    let started = Instant::now();
    let mut tx = db.begin_write_on(conn).await?;
    let from: i64 = sqlx::query_scalar("SELECT indexed_through FROM history_index")
        .fetch_one(&mut *tx)
        .await?;
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM transfers")
        .fetch_one(&mut *tx)
        .await?;
    let through = last.min(from.saturating_add(RUN_MAX));
    if through <= from {
        tx.rollback().await?;
        return Ok(Run {
            transfers: 0,
            more: false,
        });
    }
    sqlx::query(
        "INSERT INTO account_entries (account, transfer, kind, created_at)
         SELECT account, transfer, kind, created_at FROM (
             SELECT a.rowid AS account, t.rowid AS transfer, t.kind, t.created_at
             FROM transfers t JOIN accounts a ON a.id = t.debit_account_id
             WHERE t.rowid > $1 AND t.rowid <= $2
             UNION ALL
             SELECT a.rowid, t.rowid, t.kind, t.created_at
             FROM transfers t JOIN accounts a ON a.id = t.credit_account_id
             WHERE t.rowid > $1 AND t.rowid <= $2
         ) ORDER BY account, transfer",
    )
    .bind(from)
    .bind(through)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE history_index SET indexed_through = $1")
        .bind(through)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::histogram!("bursar_ledger_index_run_seconds").record(started.elapsed().as_secs_f64());
    Ok(Run {
        transfers: u64::try_from(through - from).unwrap_or_default(),
        more: through < last,
    })
}
