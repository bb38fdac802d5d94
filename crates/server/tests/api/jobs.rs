//! The job queue through the server: admins see failed jobs and retry them, metrics count them,
//! and scheduled expiry runs from the queue.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_failed_job_shows_in_the_admin_api_and_metrics_and_can_be_retried,
    overdue_holds_are_released_by_the_scheduled_expiry_job,
);

async fn a_failed_job_shows_in_the_admin_api_and_metrics_and_can_be_retried(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("jobs@example.com").await;
    // A refund job whose payload no version of Bursar wrote: it cannot succeed, so it fails at
    // its first run rather than retrying.
    let broken = bursar_store::jobs::NewJob::new(
        bursar_store::orders::PROVIDER_REFUND_JOB,
        &json!({"not": "a refund"}),
        5,
    )
    .unique("broken-refund");
    assert!(
        app.state
            .store
            .jobs
            .enqueue(&broken)
            .await
            .expect("enqueues")
    );
    app.settle_jobs().await;

    let overview = app.get("/api/v1/admin/jobs", &admin.token).await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    let kinds = overview.json["kinds"].as_array().expect("kinds");
    let refunds = kinds
        .iter()
        .find(|k| k["kind"] == "provider_refund")
        .expect("the refund kind is listed");
    assert_eq!(refunds["failed"], 1, "{refunds}");
    assert_eq!(refunds["queued"], 0);
    let failed = &overview.json["failed"]["data"][0];
    assert_eq!(failed["kind"], "provider_refund");
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["attempts"], 1);
    assert!(
        failed["last_error"]
            .as_str()
            .expect("an error")
            .contains("refund_id"),
        "{failed}"
    );
    let id = failed["id"].as_str().expect("id").to_string();
    let by_kind = app
        .get("/api/v1/admin/jobs?kind=expire_orders", &admin.token)
        .await;
    assert_eq!(by_kind.json["failed"]["data"], json!([]));

    let metrics = app.send("GET", "/metrics", None, None, &[]).await;
    assert!(
        metrics
            .text
            .contains("bursar_jobs_failed_total{kind=\"provider_refund\"}"),
        "{}",
        metrics.text
    );

    // Only admins see or retry jobs, and only failed jobs are retried.
    assert_eq!(
        app.get("/api/v1/admin/jobs", &member.token).await.status,
        403
    );
    let path = format!("/api/v1/admin/jobs/{id}/retry");
    assert_eq!(app.post(&path, &member.token, json!({})).await.status, 403);
    let retried = app.post(&path, &admin.token, json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.json["state"], "queued");
    assert_eq!(retried.json["attempts"], 0);
    app.settle_jobs().await;
    let again = app
        .state
        .store
        .jobs
        .job(&id)
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(again.state, bursar_store::jobs::JobState::Failed);
    assert_eq!(again.attempts, 1, "it ran once more");
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    assert!(log.text.contains("job.retry"), "{}", log.text);

    let queued = bursar_store::jobs::NewJob::new("expire_orders", &json!({}), 3)
        .unique("later")
        .at(app.state.store.clock.now_ms() + 3_600_000);
    app.state
        .store
        .jobs
        .enqueue(&queued)
        .await
        .expect("enqueues");
    let later = app
        .state
        .store
        .jobs
        .job_by_key("later")
        .await
        .expect("reads")
        .expect("exists");
    let not_failed = app
        .post(
            &format!("/api/v1/admin/jobs/{}/retry", later.id),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!((not_failed.status, not_failed.code()), (409, "conflict"));
    let missing = app
        .post(
            "/api/v1/admin/jobs/job_missing/retry",
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let bad = app.get("/api/v1/admin/jobs?limit=0", &admin.token).await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_request"));
    let unknown = app.get("/api/v1/admin/jobs?state=x", &admin.token).await;
    assert_eq!(unknown.status, 422);
}

async fn overdue_holds_are_released_by_the_scheduled_expiry_job(app: TestApp) {
    let member = app.register("expiry-job@example.com").await;
    app.grant(&member.id, 10).await;
    let hold = app
        .post(
            "/api/v1/credits/holds",
            &member.token,
            json!({"amount": 4, "expires_in_seconds": 60}),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    assert_eq!(app.balance(&member).await, (10, 6));
    // Past the hold's expiry and into the next sweep period (an hour in the tests' settings):
    // the worker enqueues that period's sweep and runs it.
    app.state.store.clock.advance_ms(3_600_000);
    for _ in 0..500 {
        if app.balance(&member).await == (10, 10) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.balance(&member).await, (10, 10));
    let hold_id = hold.json["id"].as_str().expect("id");
    let capture = app
        .post(
            &format!("/api/v1/credits/holds/{hold_id}/capture"),
            &member.token,
            json!({}),
        )
        .await;
    assert_eq!(capture.status, 409, "{}", capture.text);
}
