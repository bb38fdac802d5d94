//! The worker loop: claims due jobs while it has room for them (a bounded number in flight),
//! woken at once when a job is committed on this instance and by polling otherwise (jobs
//! enqueued by other instances, back-offs running out); keeps the schedules; publishes the
//! queue's depth and age; and on shutdown stops claiming and waits for what it started.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bursar_store::jobs::{Claim, JobQueue};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::{Registry, Stop};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this instance in `locked_by`.
    pub worker_id: String,
    pub jobs_in_flight_max: usize,
    /// How often the queue is looked at when nothing woke the worker.
    pub poll_interval: Duration,
    /// How long running jobs may go on after shutdown began; then they are stopped and their
    /// leases given back.
    pub shutdown_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", std::process::id()),
            jobs_in_flight_max: 8,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How often the queue's depth and age are published to the metrics.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

pub struct Runner<C> {
    registry: Arc<Registry<C>>,
    queue: JobQueue,
    context: C,
    config: RunnerConfig,
}

impl<C: Clone + Send + Sync + 'static> Runner<C> {
    pub fn new(
        registry: Arc<Registry<C>>,
        queue: JobQueue,
        context: C,
        config: RunnerConfig,
    ) -> Self {
        Self {
            registry,
            queue,
            context,
            config,
        }
    }

    /// Runs the loop on `tracker` until `shutdown`; the tracker then waits for it and for every
    /// job it started.
    pub fn spawn(self, shutdown: CancellationToken, tracker: &TaskTracker) {
        let jobs = tracker.clone();
        tracker.spawn(self.run(shutdown, jobs));
    }

    async fn run(self, shutdown: CancellationToken, jobs: TaskTracker) {
        let room = Arc::new(Semaphore::new(self.config.jobs_in_flight_max.max(1)));
        let finished = Arc::new(Notify::new());
        let kinds = self.registry.kinds();
        let lease_ms = self.registry.lease_ms();
        let mut periods: HashMap<&'static str, String> = HashMap::new();
        let mut stats_due = tokio::time::Instant::now();
        let wake = self.queue.wake().clone();
        while !shutdown.is_cancelled() {
            self.enqueue_scheduled(&mut periods).await;
            if tokio::time::Instant::now() >= stats_due {
                self.publish_stats(&kinds).await;
                stats_due = tokio::time::Instant::now() + STATS_INTERVAL;
            }
            let free = room.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                let which = Claim::Due {
                    kinds: &kinds,
                    limit: free as i64,
                };
                match self
                    .queue
                    .claim(&self.config.worker_id, which, lease_ms)
                    .await
                {
                    Ok(claimed) => {
                        claimed_all = claimed.len() == free;
                        for job in claimed {
                            let Ok(permit) = room.clone().try_acquire_owned() else {
                                break;
                            };
                            let registry = self.registry.clone();
                            let queue = self.queue.clone();
                            let context = self.context.clone();
                            let stop = Stop {
                                shutdown: shutdown.clone(),
                                grace: self.config.shutdown_grace,
                            };
                            let finished = finished.clone();
                            jobs.spawn(async move {
                                registry.run(&queue, &context, job, &stop).await;
                                drop(permit);
                                finished.notify_one();
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming jobs failed; will retry"),
                }
            }
            if claimed_all {
                // There may be more due: look again as soon as one of them finishes.
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = finished.notified() => continue,
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.notified() => {}
                () = finished.notified(), if room.available_permits() == 0 => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!("job worker stopping; waiting for running jobs");
    }

    /// Enqueues each schedule's job for the current period, once per period per instance (the
    /// unique key makes it once in all).
    async fn enqueue_scheduled(&self, periods: &mut HashMap<&'static str, String>) {
        let now = self.queue.clock().now_ms();
        for schedule in &self.registry.schedules {
            let job = schedule.job_for(now);
            let key = job.unique_key.clone().unwrap_or_default();
            if periods.get(schedule.kind) == Some(&key) {
                continue;
            }
            match self.queue.enqueue(&job).await {
                Ok(_) => {
                    periods.insert(schedule.kind, key);
                }
                Err(error) => {
                    tracing::warn!(kind = schedule.kind, %error, "enqueueing scheduled work failed; will retry")
                }
            }
        }
    }

    async fn publish_stats(&self, kinds: &[&'static str]) {
        let stats = match self.queue.stats().await {
            Ok(stats) => stats,
            Err(error) => {
                tracing::warn!(%error, "reading the queue's state failed");
                return;
            }
        };
        let now = self.queue.clock().now_ms();
        for kind in kinds {
            let of_kind = stats.iter().find(|s| s.kind == *kind);
            let queued = of_kind.map_or(0, |s| s.queued);
            let running = of_kind.map_or(0, |s| s.running);
            let failed = of_kind.map_or(0, |s| s.failed);
            let age_s = of_kind
                .and_then(|s| s.oldest_queued_at_ms)
                .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
            metrics::gauge!("bursar_jobs_queued", "kind" => *kind).set(queued as f64);
            metrics::gauge!("bursar_jobs_running", "kind" => *kind).set(running as f64);
            metrics::gauge!("bursar_jobs_failed", "kind" => *kind).set(failed as f64);
            metrics::gauge!("bursar_jobs_oldest_queued_age_seconds", "kind" => *kind).set(age_s);
        }
    }
}
