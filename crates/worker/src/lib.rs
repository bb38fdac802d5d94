//! Bursar's job runner, over the queue in `bursar_store::jobs`: a `Job` trait that each kind of
//! work implements (one file per kind, in the crate that owns the work), a `Registry` of the
//! kinds an instance runs and the schedules it keeps, and a `Runner` that claims due jobs with
//! a lease, runs a bounded number at once, retries failures with exponential back-off and
//! jitter, isolates panics, and on shutdown lets running jobs finish or gives their lease back.

mod backoff;
mod job;
mod registry;
mod runner;
mod schedule;

pub use backoff::backoff_ms;
pub use job::{Job, JobError, JobFuture, Policy};
pub use registry::{Ran, Registry};
pub use runner::{Runner, RunnerConfig};
pub use schedule::{Cadence, LocalCalendar, Schedule};

pub use bursar_store::jobs::{ClaimedJob, JobQueue, NewJob};
pub use chrono_tz::Tz;
