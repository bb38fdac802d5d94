//! Pipelined durability for the SQLite writer: a committed batch's answers wait here until an
//! fsync of the write-ahead log that began after the commit has finished, while the writer is
//! already applying the next batch. One fsync covers every batch committed before it started,
//! so batches that commit during an fsync share the next one.
//!
//! If an fsync fails, the kernel may have dropped the pages it could not write, and a retry
//! that succeeds proves nothing (PostgreSQL's "fsyncgate"); the process stops instead of
//! acknowledging anything more. On restart SQLite recovers the log as far as it reached disk,
//! and callers that got no answer retry with their idempotency keys.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::Executed;
use crate::StoreError;

pub(crate) type Answer = oneshot::Sender<Result<Executed, StoreError>>;

/// Answers to send once `wal` is durable.
pub(crate) struct Pending {
    pub wal: PathBuf,
    pub answers: Vec<(Answer, Result<Executed, StoreError>)>,
    /// Notified once the answers are sent: the batch enqueued jobs.
    pub wake: Option<std::sync::Arc<tokio::sync::Notify>>,
}

/// Hands committed batches to the syncing thread.
pub(crate) struct Syncer {
    sender: mpsc::Sender<Pending>,
}

impl Syncer {
    pub fn start() -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("bursar-ledger-sync".into())
            .spawn(move || run(receiver))
            .map_err(|e| StoreError::Config(format!("cannot start the ledger syncer: {e}")))?;
        Ok(Self { sender })
    }

    pub fn acknowledge_when_durable(&self, pending: Pending) {
        if let Err(mpsc::SendError(pending)) = self.sender.send(pending) {
            // The syncing thread is gone only if the process is stopping.
            for (answer, _) in pending.answers {
                let _ = answer.send(Err(StoreError::WriterGone));
            }
        }
    }
}

fn run(receiver: mpsc::Receiver<Pending>) {
    while let Ok(first) = receiver.recv() {
        let mut waiting = vec![first];
        waiting.extend(receiver.try_iter());
        let started = std::time::Instant::now();
        if let Err(error) = sync_log(&waiting[0].wal) {
            tracing::error!(%error, wal = %waiting[0].wal.display(), "fsync of the ledger's write-ahead log failed; stopping");
            std::process::abort();
        }
        metrics::histogram!("bursar_ledger_sync_seconds").record(started.elapsed().as_secs_f64());
        for pending in waiting {
            for (answer, result) in pending.answers {
                // The caller may have gone away; the effect is durable either way.
                let _ = answer.send(result);
            }
            if let Some(wake) = pending.wake {
                wake.notify_one();
            }
        }
    }
}

/// fsyncs the log file (any descriptor of a file flushes its data). If the log is gone, the
/// last connection closed and SQLite checkpointed it into the database file, so that is synced.
fn sync_log(wal: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let wal = wal.to_string_lossy();
            let database = wal.strip_suffix("-wal").unwrap_or(&wal);
            std::fs::File::open(database)?.sync_all()
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bursar-sync-{name}-{}-{}",
            std::process::id(),
            crate::ids::new_id("t")
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn the_log_is_synced_or_else_the_database_it_was_checkpointed_into() {
        let dir = scratch("log");
        let database = dir.join("bursar.db");
        let wal = dir.join("bursar.db-wal");
        assert!(
            sync_log(&wal).is_err(),
            "neither file exists: an error, never silence"
        );
        std::fs::write(&database, b"db").expect("database file");
        sync_log(&wal).expect("no log: the database is synced instead");
        std::fs::write(&wal, b"log").expect("log file");
        sync_log(&wal).expect("the log is synced");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn every_batch_gets_its_own_answers_once_its_log_is_synced() {
        let dir = scratch("answers");
        let wal = dir.join("bursar.db-wal");
        std::fs::write(&wal, b"log").expect("log file");
        let syncer = Syncer::start().expect("syncer starts");
        let mut waiting = Vec::new();
        for batch in 0..3u16 {
            let (answer, answered) = oneshot::channel();
            let reply = Executed::Replayed(crate::ledger::Rendered {
                status: 200 + batch,
                body: String::new(),
            });
            syncer.acknowledge_when_durable(Pending {
                wal: wal.clone(),
                answers: vec![(answer, Ok(reply))],
                wake: None,
            });
            waiting.push(answered);
        }
        for (batch, answered) in waiting.into_iter().enumerate() {
            let reply = answered.await.expect("answered").expect("a reply");
            let Executed::Replayed(rendered) = reply else {
                panic!("the batch's own answer")
            };
            assert_eq!(usize::from(rendered.status), 200 + batch);
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
