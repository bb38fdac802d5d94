//! The job queue as admins see it: per kind, what is queued, running and failed, the failed
//! jobs with their last error, and a retry for a failed one.

use crate::reads::Page;
use axum::Json;
use axum::extract::{Path, State};
use bursar_store::audit::AuditRecord;
use bursar_store::clock::rfc3339;
use bursar_store::jobs::{JobRecord, JobState, KindStats};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::{NoBody, Query};
use crate::views::PageQuery;

#[derive(Debug, Serialize, ToSchema)]
pub struct JobKindView {
    pub kind: String,
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    /// When the longest-waiting due job became due; null when none is waiting.
    pub oldest_queued_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(example = "failed")]
    pub state: String,
    /// Present for jobs that are once per key (a scheduled period, a refund).
    pub unique_key: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When it next runs (queued), when its lease ends (running), or when it finished.
    pub run_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobsOverview {
    /// Every kind with queued, running or failed jobs.
    pub kinds: Vec<JobKindView>,
    /// Failed jobs, newest first.
    pub failed: Page<JobView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only failed jobs of this kind.
    pub kind: Option<String>,
    /// 1–200, default 50 (failed jobs per page).
    pub limit: Option<i64>,
    /// `failed.next_cursor` from the previous page.
    pub cursor: Option<String>,
}

const KIND_CHARS_MAX: usize = 100;

/// The background job queue: per kind, how many jobs are queued, running and failed and how
/// long the oldest due one has waited; and the failed jobs with their last error.
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", operation_id = "admin_list_jobs",
    params(JobsQuery),
    responses((status = 200, body = JobsOverview), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<JobsQuery>,
) -> ApiResult<Json<JobsOverview>> {
    caller.require_admin()?;
    let kind = query.kind.as_deref().filter(|k| !k.is_empty());
    if kind.is_some_and(|k| k.chars().count() > KIND_CHARS_MAX) {
        return Err(ApiError::invalid(format!(
            "kind must be at most {KIND_CHARS_MAX} characters"
        )));
    }
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .parse()?;
    let jobs = &state.store.jobs;
    let kinds = jobs.stats().await?.into_iter().map(kind_view).collect();
    let failed = jobs.jobs_in(JobState::Failed, kind, &page).await?;
    Ok(Json(JobsOverview {
        kinds,
        failed: Page {
            data: failed.data.into_iter().map(job_view).collect(),
            next_cursor: failed.next_cursor,
        },
    }))
}

/// Run a failed job again: it is queued with its attempts reset. Audit-logged.
#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/retry", tag = "admin", operation_id = "admin_retry_job",
    params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "the job is not failed", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Json<JobView>> {
    caller.require_admin()?;
    let audit = AuditRecord {
        actor_id: Some(caller.id()),
        actor_kind: caller.kind(),
        action: "job.retry",
        target: Some(&id),
        details: serde_json::Value::Null,
        ip: Some(&ip),
    };
    match state.store.jobs.retry_failed(&id, audit).await? {
        None => Err(ApiError::not_found("job")),
        Some((false, job)) => Err(ApiError::conflict(format!(
            "only a failed job can be retried; this one is {}",
            job.state
        ))),
        Some((true, job)) => Ok(Json(job_view(job))),
    }
}

fn kind_view(stats: KindStats) -> JobKindView {
    JobKindView {
        kind: stats.kind,
        queued: stats.queued,
        running: stats.running,
        failed: stats.failed,
        oldest_queued_at: stats.oldest_queued_at_ms.map(rfc3339),
    }
}

fn job_view(job: JobRecord) -> JobView {
    JobView {
        id: job.id,
        kind: job.kind,
        state: job.state.as_str().to_string(),
        unique_key: job.unique_key,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        run_at: rfc3339(job.run_at_ms),
        last_error: job.last_error,
        created_at: rfc3339(job.created_at_ms),
        updated_at: rfc3339(job.updated_at_ms),
    }
}
