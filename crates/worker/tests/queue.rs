//! The job queue and its runner on both backends: jobs commit or vanish with their
//! transaction, failures back off and stop at their limit, panics stay inside their job,
//! leases are taken over, shutdown gives leases back, and two instances on one database run
//! every job, and every scheduled period, exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bursar_store::jobs::{Claim, JobState, NewJob};
use bursar_store::testing::{Backend, fresh_database_url};
use bursar_store::{Clock, SqliteSync, Store};
use bursar_worker::{
    ClaimedJob, Job, JobError, JobFuture, Policy, Ran, Registry, Runner, RunnerConfig, Schedule,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    a_job_exists_only_if_its_transaction_commits,
    failing_jobs_back_off_stop_at_their_limit_and_can_be_retried,
    a_panicking_job_fails_alone_and_the_worker_keeps_running,
    a_job_whose_lease_ran_out_is_taken_over,
    shutdown_gives_back_the_lease_of_a_job_still_running,
    two_instances_run_each_of_a_thousand_jobs_exactly_once,
    a_scheduled_job_runs_once_per_period_across_two_instances,
    a_job_that_records_its_own_success_leaves_nothing_to_record,
);

/// What the test jobs saw: runs per label.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, u32>>>);

impl Seen {
    fn record(&self, label: &str) {
        *self
            .0
            .lock()
            .expect("lock")
            .entry(label.into())
            .or_default() += 1;
    }

    fn runs(&self) -> HashMap<String, u32> {
        self.0.lock().expect("lock").clone()
    }
}

/// Records its payload's `label` (or its scheduled `period`).
struct Count;
impl Job<Seen> for Count {
    fn kind(&self) -> &'static str {
        "count"
    }
    fn run<'a>(&'a self, seen: &'a Seen, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: serde_json::Value =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let label = payload["label"]
                .as_str()
                .or(payload["period"].as_str())
                .unwrap_or("?");
            seen.record(label);
            Ok(())
        })
    }
}

struct AlwaysUnavailable;
impl Job<Seen> for AlwaysUnavailable {
    fn kind(&self) -> &'static str {
        "unavailable"
    }
    fn policy(&self) -> Policy {
        Policy {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3600),
            ..Policy::default()
        }
    }
    fn run<'a>(&'a self, seen: &'a Seen, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            seen.record("attempt");
            Err(JobError::retry("the provider could not be reached"))
        })
    }
}

struct Panics;
impl Job<Seen> for Panics {
    fn kind(&self) -> &'static str {
        "panics"
    }
    fn run<'a>(&'a self, _seen: &'a Seen, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move { panic!("a bug in one job") })
    }
}

struct Sleeps;
impl Job<Seen> for Sleeps {
    fn kind(&self) -> &'static str {
        "sleeps"
    }
    fn run<'a>(&'a self, seen: &'a Seen, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            seen.record("started");
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
    }
}

/// Does its work in one transaction (a `settings` row named by its label) and records its
/// success in it. `then_fails` returns an error after that; `taken_over` finds its lease taken
/// by another worker first.
struct RecordsItself(Store);
impl Job<Seen> for RecordsItself {
    fn kind(&self) -> &'static str {
        "records_itself"
    }
    fn run<'a>(&'a self, seen: &'a Seen, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let payload: serde_json::Value =
                serde_json::from_str(&job.payload).map_err(JobError::fatal)?;
            let label = payload["label"].as_str().unwrap_or("?").to_string();
            seen.record(&label);
            let store = &self.0;
            if label == "taken_over" {
                sqlx::query("UPDATE jobs SET locked_by = 'another worker' WHERE id = $1")
                    .bind(&job.id)
                    .execute(&store.db.pool)
                    .await
                    .map_err(JobError::retry)?;
            }
            let now = store.clock.now_ms();
            let mut tx = store.db.begin_write().await?;
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'done')")
                .bind(format!("work:{label}"))
                .execute(&mut *tx)
                .await
                .map_err(JobError::retry)?;
            let kept = bursar_store::jobs::complete_in(&mut tx, &job.claim(), now).await?;
            tx.commit().await.map_err(JobError::retry)?;
            job.completed(kept);
            if label == "then_fails" {
                return Err(JobError::retry("failed after recording its success"));
            }
            Ok(())
        })
    }
}

fn registry() -> Arc<Registry<Seen>> {
    Arc::new(
        Registry::default()
            .with(Count)
            .with(AlwaysUnavailable)
            .with(Panics)
            .with(Sleeps),
    )
}

async fn open_at(url: &str, clock: Clock) -> Store {
    Store::open(url, SqliteSync::Full, clock)
        .await
        .expect("store opens")
}

async fn open(backend: Backend, name: &str) -> Store {
    open_at(&fresh_database_url(backend, name).await, Clock::default()).await
}

fn counted(label: &str) -> NewJob {
    NewJob::new("count", &serde_json::json!({ "label": label }), 3)
}

fn quick_runner(
    store: &Store,
    seen: &Seen,
    registry: Arc<Registry<Seen>>,
    id: &str,
) -> Runner<Seen> {
    let config = RunnerConfig {
        worker_id: id.into(),
        jobs_in_flight_max: 8,
        poll_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_millis(200),
    };
    Runner::new(registry, store.jobs.clone(), seen.clone(), config)
}

/// Runners started together, stopped together (and waited for).
struct Workers {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Workers {
    fn start(runners: Vec<Runner<Seen>>) -> Self {
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        for runner in runners {
            runner.spawn(shutdown.clone(), &tracker);
        }
        Self { shutdown, tracker }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The job with `key`, which the test enqueued.
async fn job_with_key(store: &Store, key: &str) -> bursar_store::jobs::JobRecord {
    store
        .jobs
        .job_by_key(key)
        .await
        .expect("reads")
        .expect("exists")
}

/// Polls `done` for up to 20 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn a_job_exists_only_if_its_transaction_commits(backend: Backend) {
    let store = open(backend, "jobs_tx").await;
    let seen = Seen::default();
    let now = store.clock.now_ms();
    let mut tx = store.db.begin_write().await.expect("begins");
    assert!(
        bursar_store::jobs::enqueue_in(&mut tx, &counted("rolled back"), now)
            .await
            .expect("inserts")
    );
    tx.rollback().await.expect("rolls back");
    let mut tx = store.db.begin_write().await.expect("begins");
    assert!(
        bursar_store::jobs::enqueue_in(&mut tx, &counted("committed"), now)
            .await
            .expect("inserts")
    );
    tx.commit().await.expect("commits");

    let ran = registry()
        .run_due(&store.jobs, &seen, "w", 10)
        .await
        .expect("runs");
    assert_eq!(ran, [Ran::Done]);
    assert_eq!(seen.runs(), HashMap::from([("committed".to_string(), 1)]));
    // Enqueueing under a key that exists already changes nothing.
    let keyed = counted("keyed").unique("once");
    assert!(store.jobs.enqueue(&keyed).await.expect("enqueues"));
    assert!(!store.jobs.enqueue(&keyed).await.expect("enqueues"));
    registry()
        .run_due(&store.jobs, &seen, "w", 10)
        .await
        .expect("runs");
    assert_eq!(seen.runs()["keyed"], 1);
}

async fn failing_jobs_back_off_stop_at_their_limit_and_can_be_retried(backend: Backend) {
    let store = open(backend, "jobs_backoff").await;
    let seen = Seen::default();
    let registry = registry();
    let job = NewJob::new("unavailable", &serde_json::json!({}), 4).unique("flaky");
    store.jobs.enqueue(&job).await.expect("enqueues");
    // Simulated time: 20 rounds per simulated second over ten simulated hours. A tight loop
    // would run the job every round; back-off runs it four times in all.
    let mut waits = Vec::new();
    let mut last = None;
    for _round in 0..(10 * 3600) {
        let ran = registry
            .run_due(&store.jobs, &seen, "w", 10)
            .await
            .expect("runs");
        if !ran.is_empty() {
            let now = store.clock.now_ms();
            if let Some(previous) = last {
                waits.push(now - previous);
            }
            last = Some(now);
        }
        let record = job_with_key(&store, "flaky").await;
        if record.state == JobState::Failed {
            break;
        }
        store.clock.advance_ms(1000);
    }
    assert_eq!(seen.runs()["attempt"], 4, "attempts stop at the limit");
    // 10 s, 20 s, 40 s, each within a fifth either way (and rounded up to the 1 s step).
    for (wait, base) in waits.iter().zip([10_000, 20_000, 40_000]) {
        assert!(
            (base * 8 / 10..=base * 12 / 10 + 1000).contains(wait),
            "waited {wait} ms where {base} was due: {waits:?}"
        );
    }
    let record = job_with_key(&store, "flaky").await;
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.attempts, 4);
    assert_eq!(
        record.last_error.as_deref(),
        Some("the provider could not be reached")
    );
    let stats = store.jobs.stats().await.expect("stats");
    assert_eq!(stats[0].kind, "unavailable");
    assert_eq!(
        (stats[0].queued, stats[0].running, stats[0].failed),
        (0, 0, 1)
    );
    let failed = store
        .jobs
        .jobs_in(
            JobState::Failed,
            Some("unavailable"),
            &bursar_store::page::PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .expect("lists");
    assert_eq!(failed.data.len(), 1);

    // Retried by an admin: queued again with its attempts reset, and it runs.
    let audit = || bursar_store::audit::AuditRecord {
        actor_id: Some("usr_admin"),
        actor_kind: "user",
        action: "job.retry",
        target: Some(&record.id),
        details: serde_json::Value::Null,
        ip: None,
    };
    let (retried, again) = store
        .jobs
        .retry_failed(&record.id, audit())
        .await
        .expect("retries")
        .expect("exists");
    assert!(retried);
    assert_eq!((again.state, again.attempts), (JobState::Queued, 0));
    let (retried, _) = store
        .jobs
        .retry_failed(&record.id, audit())
        .await
        .expect("answers")
        .expect("exists");
    assert!(!retried, "only a failed job can be retried");
    registry
        .run_due(&store.jobs, &seen, "w", 10)
        .await
        .expect("runs");
    assert_eq!(seen.runs()["attempt"], 5);
    assert!(
        store
            .jobs
            .retry_failed("job_missing", audit())
            .await
            .expect("answers")
            .is_none()
    );
}

async fn a_panicking_job_fails_alone_and_the_worker_keeps_running(backend: Backend) {
    let store = open(backend, "jobs_panic").await;
    let seen = Seen::default();
    let workers = Workers::start(vec![quick_runner(&store, &seen, registry(), "w1")]);
    store
        .jobs
        .enqueue(&NewJob::new("panics", &serde_json::json!({}), 5).unique("bug"))
        .await
        .expect("enqueues");
    store
        .jobs
        .enqueue(&counted("after the panic"))
        .await
        .expect("enqueues");
    eventually("the job after the panic", || {
        seen.runs().contains_key("after the panic")
    })
    .await;
    let mut record = job_with_key(&store, "bug").await;
    for _ in 0..500 {
        if record.state != JobState::Queued && record.state != JobState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        record = job_with_key(&store, "bug").await;
    }
    assert_eq!(
        record.state,
        JobState::Failed,
        "a panic fails its job at once"
    );
    assert_eq!(record.attempts, 1);
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("a bug in one job"),
        "{record:?}"
    );
    // Still running: a job enqueued now runs too.
    store
        .jobs
        .enqueue(&counted("later"))
        .await
        .expect("enqueues");
    eventually("a later job", || seen.runs().contains_key("later")).await;
    workers.stop().await;
}

async fn a_job_whose_lease_ran_out_is_taken_over(backend: Backend) {
    let store = open(backend, "jobs_lease").await;
    store
        .jobs
        .enqueue(&counted("leased").unique("leased"))
        .await
        .expect("enqueues");
    let due = Claim::Due {
        kinds: &["count"],
        limit: 10,
    };
    let first = store
        .jobs
        .claim("crashed", due, 60_000)
        .await
        .expect("claims");
    assert_eq!(first.len(), 1);
    let again = Claim::Due {
        kinds: &["count"],
        limit: 10,
    };
    assert!(
        store
            .jobs
            .claim("other", again, 60_000)
            .await
            .expect("claims")
            .is_empty(),
        "leased"
    );
    // The first worker died; once its lease is over another worker takes the job.
    store.clock.advance_ms(61_000);
    let later = Claim::Due {
        kinds: &["count"],
        limit: 10,
    };
    let taken = store
        .jobs
        .claim("other", later, 60_000)
        .await
        .expect("claims");
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].id.as_str(), taken[0].attempt),
        (first[0].id.as_str(), 2)
    );
    assert!(
        !store.jobs.complete(&first[0]).await.expect("answers"),
        "the old lease is void"
    );
    assert!(store.jobs.complete(&taken[0]).await.expect("completes"));
    let record = job_with_key(&store, "leased").await;
    assert_eq!(record.state, JobState::Done);

    // A job whose worker died on its last attempt is failed, not run again.
    store
        .jobs
        .enqueue(&NewJob::new("count", &serde_json::json!({}), 1).unique("last"))
        .await
        .expect("enqueues");
    let crashed = store
        .jobs
        .claim("crashed", Claim::Key("last"), 1000)
        .await
        .expect("claims");
    assert_eq!(crashed.len(), 1);
    store.clock.advance_ms(2000);
    assert!(
        store
            .jobs
            .claim("other", Claim::Key("last"), 1000)
            .await
            .expect("claims")
            .is_empty()
    );
    let record = job_with_key(&store, "last").await;
    assert_eq!(record.state, JobState::Failed);

    // An admin retries it and a new worker claims it: its attempt number is 1 again, as the
    // dead worker's was, yet only the new lease's holder records the outcome.
    let audit = bursar_store::audit::AuditRecord {
        actor_id: None,
        actor_kind: "system",
        action: "job.retry",
        target: Some(&record.id),
        details: serde_json::Value::Null,
        ip: None,
    };
    store
        .jobs
        .retry_failed(&record.id, audit)
        .await
        .expect("retries");
    let current = store
        .jobs
        .claim("new", Claim::Key("last"), 60_000)
        .await
        .expect("claims");
    assert_eq!((current[0].attempt, crashed[0].attempt), (1, 1));
    assert!(
        !store.jobs.complete(&crashed[0]).await.expect("answers"),
        "a stale lease"
    );
    assert!(
        !store.jobs.release(&crashed[0]).await.expect("answers"),
        "a stale lease"
    );
    assert!(store.jobs.complete(&current[0]).await.expect("completes"));
}

async fn shutdown_gives_back_the_lease_of_a_job_still_running(backend: Backend) {
    let store = open(backend, "jobs_shutdown").await;
    let seen = Seen::default();
    let workers = Workers::start(vec![quick_runner(&store, &seen, registry(), "w1")]);
    store
        .jobs
        .enqueue(&NewJob::new("sleeps", &serde_json::json!({}), 3).unique("long"))
        .await
        .expect("enqueues");
    eventually("the long job to start", || {
        seen.runs().contains_key("started")
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), workers.stop())
        .await
        .expect("the worker and its jobs stop within the grace period");
    let record = job_with_key(&store, "long").await;
    assert_eq!(record.state, JobState::Queued, "{record:?}");
    assert_eq!(record.attempts, 0, "the interrupted attempt is not counted");
}

async fn two_instances_run_each_of_a_thousand_jobs_exactly_once(backend: Backend) {
    let url = fresh_database_url(backend, "jobs_two").await;
    let clock = Clock::default();
    let (one, two) = (
        open_at(&url, clock.clone()).await,
        open_at(&url, clock).await,
    );
    let seen = Seen::default();
    let workers = Workers::start(vec![
        quick_runner(&one, &seen, registry(), "one"),
        quick_runner(&two, &seen, registry(), "two"),
    ]);
    let jobs = 1000;
    let enqueue = |store: Store, from: usize| async move {
        for n in (from..jobs).step_by(2) {
            store
                .jobs
                .enqueue(&counted(&format!("job {n}")))
                .await
                .expect("enqueues");
        }
    };
    tokio::join!(enqueue(one.clone(), 0), enqueue(two.clone(), 1));
    eventually("every job to run", || seen.runs().len() == jobs).await;
    // Give a duplicate run the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = seen.runs();
    assert_eq!(runs.len(), jobs);
    assert!(runs.values().all(|&n| n == 1), "a job ran twice");
    // A run is seen before its completion is written: under a loaded machine the last
    // completions may land after the pause above.
    let mut stats = Vec::new();
    for _ in 0..500 {
        stats = one.jobs.stats().await.expect("stats");
        if stats
            .iter()
            .all(|s| s.queued == 0 && s.running == 0 && s.failed == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stats
            .iter()
            .all(|s| s.queued == 0 && s.running == 0 && s.failed == 0),
        "{stats:?}"
    );
    workers.stop().await;
}

async fn a_scheduled_job_runs_once_per_period_across_two_instances(backend: Backend) {
    let url = fresh_database_url(backend, "jobs_schedule").await;
    let clock = Clock::default();
    let (one, two) = (
        open_at(&url, clock.clone()).await,
        open_at(&url, clock.clone()).await,
    );
    let seen = Seen::default();
    let scheduled = || {
        Arc::new(
            Registry::default()
                .with(Count)
                .scheduled(Schedule::every("count", Duration::from_secs(3600))),
        )
    };
    let workers = Workers::start(vec![
        quick_runner(&one, &seen, scheduled(), "one"),
        quick_runner(&two, &seen, scheduled(), "two"),
    ]);
    let periods = 5;
    for period in 1..=periods {
        eventually("this period's run", || seen.runs().len() == period).await;
        // Both instances have looked at the schedule many times within this period.
        tokio::time::sleep(Duration::from_millis(200)).await;
        clock.advance_ms(3_600_000);
    }
    eventually("the last period's run", || seen.runs().len() == periods + 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let runs = seen.runs();
    assert_eq!(runs.len(), periods + 1);
    assert!(
        runs.values().all(|&n| n == 1),
        "a period ran twice: {runs:?}"
    );
    workers.stop().await;
}

async fn a_job_that_records_its_own_success_leaves_nothing_to_record(backend: Backend) {
    let store = open(backend, "jobs_record_themselves").await;
    let seen = Seen::default();
    let registry = Arc::new(Registry::default().with(RecordsItself(store.clone())));
    for label in ["plain", "then_fails", "taken_over"] {
        let job =
            NewJob::new("records_itself", &serde_json::json!({ "label": label }), 3).unique(label);
        store.jobs.enqueue(&job).await.expect("enqueues");
    }
    let commits = match backend {
        Backend::Sqlite => Some(
            bursar_store::testing::SqliteCommits::start(&store.db)
                .await
                .expect("counting starts"),
        ),
        Backend::Postgres => None,
    };
    let mut ran = registry
        .run_due(&store.jobs, &seen, "w", 10)
        .await
        .expect("runs");
    ran.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(ran, [Ran::Done, Ran::Done, Ran::LeaseLost]);
    for label in ["plain", "then_fails"] {
        let record = job_with_key(&store, label).await;
        assert_eq!(
            (record.state, record.attempts, record.last_error),
            (JobState::Done, 1, None),
            "{label}"
        );
    }
    // Its work is done, and its record left to the worker that took it over.
    let taken = job_with_key(&store, "taken_over").await;
    assert_eq!(taken.state, JobState::Running);
    let work: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM settings WHERE key LIKE 'work:%'")
            .fetch_one(&store.db.pool)
            .await
            .expect("reads");
    assert_eq!(work, 3);
    if let Some(commits) = commits {
        // The claim, the three jobs' work and the takeover: nothing more for the records.
        assert_eq!(commits.count().expect("counted"), 5);
        commits.finish().await.expect("counting ends");
    }
}
