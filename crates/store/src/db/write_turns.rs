//! Turns at SQLite's one write lock for the connections of this process.
//!
//! A SQLite connection that finds the write lock taken waits in SQLite's busy handler, which
//! sleeps 1, 2, 5, 10… ms between tries whenever the lock was actually freed. The ledger writer
//! begins a batch every few milliseconds, so each time a job's or a request's transaction held
//! the lock then, group commit stalled for a whole sleep: with auto top-ups firing (about eight
//! small write transactions each), the writer spent 1.8 ms of every 10 ms batch beginning it,
//! against 0.4 ms without. Here every write of this process first waits its turn, in arrival
//! order, and is woken the moment the previous one ends; the busy handler is left to arbitrate
//! only with other processes. PostgreSQL locks rows, not the database, and takes no turns.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Any, AnyConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// As long as SQLite's busy handler would wait (`PRAGMA busy_timeout`): a write that cannot
/// get its turn fails as it would have failed on the lock.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The queue for the write lock; `None` on PostgreSQL.
#[derive(Clone, Default)]
pub(crate) struct WriteTurns(Option<Arc<Mutex<()>>>);

/// The right to write until it is dropped.
pub(crate) type Turn = Option<OwnedMutexGuard<()>>;

impl WriteTurns {
    pub(crate) fn for_sqlite() -> Self {
        Self(Some(Arc::default()))
    }

    /// Waits for this process's turn to write (at once on PostgreSQL).
    pub(crate) async fn take(&self) -> Result<Turn, StoreError> {
        let Some(lock) = &self.0 else {
            return Ok(None);
        };
        match tokio::time::timeout(TURN_TIMEOUT, Arc::clone(lock).lock_owned()).await {
            Ok(turn) => Ok(Some(turn)),
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        }
    }
}

/// A write transaction holding its turn (see the module's comment) until it commits, rolls
/// back or is dropped. Used like `sqlx::Transaction`: `&mut *tx` is its connection.
pub struct WriteTx<'c> {
    // Declared first, so it ends (a drop queues the rollback) before the turn is handed on.
    tx: sqlx::Transaction<'c, Any>,
    _turn: Turn,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn new(tx: sqlx::Transaction<'c, Any>, turn: Turn) -> Self {
        Self { tx, _turn: turn }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTx<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// `query.execute_in_turn(&db)`: a writing statement run on its own (no transaction), in its
/// turn (`Db::execute_write`).
pub trait ExecuteInTurn {
    fn execute_in_turn(
        self,
        db: &super::Db,
    ) -> impl Future<Output = Result<sqlx::any::AnyQueryResult, StoreError>> + Send;
}

impl<'q> ExecuteInTurn for sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    fn execute_in_turn(
        self,
        db: &super::Db,
    ) -> impl Future<Output = Result<sqlx::any::AnyQueryResult, StoreError>> + Send {
        db.execute_write(self)
    }
}
