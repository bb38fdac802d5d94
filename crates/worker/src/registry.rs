//! The kinds of job an instance runs and the schedules it keeps, and running one claimed job:
//! its outcome recorded, a failure retried with back-off or given up, a panic contained.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bursar_store::StoreError;
use bursar_store::jobs::{Claim, ClaimedJob, JobQueue, JobState};
use tokio_util::sync::CancellationToken;

use crate::backoff::{backoff_ms, jitter_permille};
use crate::job::{Job, JobError, Policy};
use crate::schedule::Schedule;

/// How one run ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Done,
    /// Failed this time; queued again after a back-off.
    Retried,
    /// Failed for good (attempts used up, a fatal error, or a panic).
    Failed,
    /// Stopped by shutdown; its lease given back without using up the attempt.
    Released,
    /// Its lease had run out and another worker had taken it over, so nothing was recorded.
    LeaseLost,
}

impl Ran {
    fn as_str(self) -> &'static str {
        match self {
            Ran::Done => "done",
            Ran::Retried => "retried",
            Ran::Failed => "failed",
            Ran::Released => "released",
            Ran::LeaseLost => "lease_lost",
        }
    }
}

/// How often `run_now` looks whether a job another worker runs has finished.
const RUNNING_ELSEWHERE_POLL: Duration = Duration::from_millis(20);

/// A lease lasts this much longer than its kind's timeout, so a job running on a healthy
/// instance is never taken over.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

pub struct Registry<C> {
    kinds: HashMap<&'static str, Arc<dyn Job<C>>>,
    pub(crate) schedules: Vec<Schedule>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Self {
            kinds: HashMap::new(),
            schedules: Vec::new(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Registry<C> {
    pub fn with(mut self, job: impl Job<C>) -> Self {
        self.kinds.insert(job.kind(), Arc::new(job));
        self
    }

    /// Enqueues `schedule.kind` once per period; the kind must be registered too.
    pub fn scheduled(mut self, schedule: Schedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.kinds.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// How long a claim leases its jobs for: the longest timeout of any kind, and a margin.
    pub(crate) fn lease_ms(&self) -> i64 {
        let longest = self
            .kinds
            .values()
            .map(|kind| kind.policy().timeout)
            .max()
            .unwrap_or_default();
        (longest + LEASE_MARGIN).as_millis() as i64
    }

    /// Runs the job with unique key `key` now, in the caller's task (a request that wants its
    /// effect before answering). If a worker took it first, waits up to `wait` for that run to
    /// end. `None`: this caller did not run it (done already, run by another worker, or waiting
    /// for its back-off); the queue has it either way.
    pub async fn run_now(
        self: &Arc<Self>,
        queue: &JobQueue,
        context: &C,
        worker: &str,
        key: &str,
        wait: Duration,
    ) -> Result<Option<Ran>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let claimed = queue
                .claim(worker, Claim::Key(key), self.lease_ms())
                .await?;
            if let Some(job) = claimed.into_iter().next() {
                // Run and recorded in a task of its own: a caller that goes away (a client that
                // disconnects) must not leave the job running with no one to record it.
                let (registry, queue, context) = (self.clone(), queue.clone(), context.clone());
                let run = tokio::spawn(async move {
                    registry.run(&queue, &context, job, &Stop::never()).await
                });
                return Ok(run.await.ok());
            }
            // Not claimable: another worker runs it (or is claiming it right now, which on
            // PostgreSQL still shows it queued), or it is finished or waiting for a back-off.
            let now = queue.clock().now_ms();
            let busy = match queue.job_by_key(key).await? {
                Some(job) => {
                    job.state == JobState::Running
                        || (job.state == JobState::Queued && job.run_at_ms <= now)
                }
                None => false,
            };
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(RUNNING_ELSEWHERE_POLL).await;
        }
        Ok(None)
    }

    /// Claims up to `limit` due jobs and runs them one after another: one round of the worker
    /// without its loop, for tests and tools that want the queue drained on their own clock.
    pub async fn run_due(
        &self,
        queue: &JobQueue,
        context: &C,
        worker: &str,
        limit: i64,
    ) -> Result<Vec<Ran>, StoreError> {
        let kinds = self.kinds();
        let claimed = queue
            .claim(
                worker,
                Claim::Due {
                    kinds: &kinds,
                    limit,
                },
                self.lease_ms(),
            )
            .await?;
        let mut ran = Vec::with_capacity(claimed.len());
        for job in claimed {
            ran.push(self.run(queue, context, job, &Stop::never()).await);
        }
        Ok(ran)
    }

    /// Runs one claimed job and records how it went. The job runs as a task of its own, so a
    /// panic ends that task only. After `shutdown`, a job still running past the grace period
    /// is stopped and its lease given back.
    pub(crate) async fn run(
        &self,
        queue: &JobQueue,
        context: &C,
        job: ClaimedJob,
        stop: &Stop,
    ) -> Ran {
        let started = std::time::Instant::now();
        let kind_name = job.kind.clone();
        let ran = match self.kinds.get(job.kind.as_str()) {
            None => {
                let error =
                    JobError::fatal(format!("no worker here runs jobs of kind {:?}", job.kind));
                self.record_failure(queue, &job, error, &Policy::default())
                    .await
            }
            Some(kind) => {
                let kind = kind.clone();
                let policy = kind.policy();
                let task_context = context.clone();
                let task_job = job.clone();
                let mut task = tokio::spawn(async move {
                    tokio::time::timeout(policy.timeout, kind.run(&task_context, &task_job)).await
                });
                let grace_over = async {
                    stop.shutdown.cancelled().await;
                    tokio::time::sleep(stop.grace).await;
                };
                let outcome = tokio::select! {
                    outcome = &mut task => Some(outcome),
                    () = grace_over => {
                        task.abort();
                        None
                    }
                };
                match outcome {
                    // The job's work recorded its success in its own transaction: that record
                    // stands, whatever happened after it.
                    _ if job.recorded().is_some() => {
                        lease_kept(Ok(job.recorded() == Some(true)), Ran::Done, &job)
                    }
                    None => self.released(queue, &job).await,
                    Some(Ok(Ok(Ok(())))) => lease_kept(queue.complete(&job).await, Ran::Done, &job),
                    Some(Ok(Ok(Err(error)))) => {
                        self.record_failure(queue, &job, error, &policy).await
                    }
                    Some(Ok(Err(_elapsed))) => {
                        let error = JobError::retry(format!(
                            "timed out after {} s",
                            policy.timeout.as_secs()
                        ));
                        self.record_failure(queue, &job, error, &policy).await
                    }
                    Some(Err(join)) if join.is_panic() => {
                        let error = JobError::fatal(format!("panicked: {}", panic_message(join)));
                        self.record_failure(queue, &job, error, &policy).await
                    }
                    Some(Err(_cancelled)) => self.released(queue, &job).await,
                }
            }
        };
        metrics::counter!("bursar_jobs_run_total", "kind" => kind_name.clone(), "outcome" => ran.as_str())
            .increment(1);
        if ran == Ran::Retried {
            metrics::counter!("bursar_jobs_retried_total", "kind" => kind_name.clone())
                .increment(1);
        }
        if ran == Ran::Failed {
            metrics::counter!("bursar_jobs_failed_total", "kind" => kind_name.clone()).increment(1);
        }
        metrics::histogram!("bursar_job_seconds", "kind" => kind_name)
            .record(started.elapsed().as_secs_f64());
        ran
    }

    /// A retryable error is retried after a back-off unless this was the last attempt; any
    /// other failure fails the job.
    async fn record_failure(
        &self,
        queue: &JobQueue,
        job: &ClaimedJob,
        error: JobError,
        policy: &Policy,
    ) -> Ran {
        let retry = matches!(error, JobError::Retry(_)) && !job.is_last_attempt();
        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempt,
            max_attempts = job.max_attempts, retry, error = %error, "job did not succeed");
        if retry {
            let wait = backoff_ms(
                job.attempt,
                policy.backoff_base.as_millis() as i64,
                policy.backoff_max.as_millis() as i64,
                jitter_permille(),
            );
            let run_at = queue.clock().now_ms() + wait;
            lease_kept(
                queue.retry_at(job, &error.to_string(), run_at).await,
                Ran::Retried,
                job,
            )
        } else {
            lease_kept(queue.fail(job, &error.to_string()).await, Ran::Failed, job)
        }
    }

    async fn released(&self, queue: &JobQueue, job: &ClaimedJob) -> Ran {
        tracing::info!(job = %job.id, kind = %job.kind, "job stopped by shutdown; lease given back");
        lease_kept(queue.release(job).await, Ran::Released, job)
    }
}

/// When a running job must stop: `grace` after `shutdown`.
pub(crate) struct Stop {
    pub shutdown: CancellationToken,
    pub grace: Duration,
}

impl Stop {
    fn never() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            grace: Duration::ZERO,
        }
    }
}

/// `ran` if the record was written under this worker's lease. A storage error leaves the job
/// running until its lease runs out; it then runs again, which jobs are built to allow.
fn lease_kept(recorded: Result<bool, StoreError>, ran: Ran, job: &ClaimedJob) -> Ran {
    match recorded {
        Ok(true) => ran,
        Ok(false) => Ran::LeaseLost,
        Err(error) => {
            tracing::warn!(job = %job.id, %error, "recording a job's outcome failed; it will run again when its lease runs out");
            Ran::LeaseLost
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let panic = join.into_panic();
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
