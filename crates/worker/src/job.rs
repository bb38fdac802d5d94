//! What a kind of job is: how to run one, and the limits it runs within.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bursar_store::StoreError;
use bursar_store::jobs::ClaimedJob;

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'a>>;

/// One kind of background work. `C` is what jobs need to do it (the server's shared state).
/// A job must be idempotent: it may run again after a crash, a lost lease or a retry, so each
/// effect carries a key derived from the job (a provider call's idempotency key, a grant's
/// reference).
///
/// A job whose work ends in one write transaction may record its own success in it
/// (`bursar_store::jobs::complete_in`, then `ClaimedJob::completed`): the work and the record
/// commit together, and the worker, seeing it recorded, writes nothing more for this run.
pub trait Job<C>: Send + Sync + 'static {
    /// The `kind` stored with its jobs.
    fn kind(&self) -> &'static str;

    fn policy(&self) -> Policy {
        Policy::default()
    }

    fn run<'a>(&'a self, context: &'a C, job: &'a ClaimedJob) -> JobFuture<'a>;
}

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth trying again later (a provider or database that could not be reached); retried
    /// with back-off until the job's attempts are used up.
    Retry(String),
    /// Trying again cannot help (a malformed payload); the job is failed at once.
    Fatal(String),
}

impl JobError {
    pub fn retry(error: impl std::fmt::Display) -> Self {
        JobError::Retry(error.to_string())
    }

    pub fn fatal(error: impl std::fmt::Display) -> Self {
        JobError::Fatal(error.to_string())
    }
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> Self {
        JobError::Retry(error.to_string())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retry(error) | JobError::Fatal(error) => f.write_str(error),
        }
    }
}

/// A kind's limits. Its attempt limit is stored with each job when it is enqueued.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A run taking longer is stopped and counts as a failed attempt.
    pub timeout: Duration,
    /// The wait before the second attempt; it doubles with each further one.
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(6 * 3600),
        }
    }
}
