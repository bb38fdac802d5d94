//! Two Bursar instances on one PostgreSQL database, both running jobs: a top-up, a day's
//! allowance, a reminder and a webhook delivery each happen once.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::orders::{package, pay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_top_up_grant_remind_and_deliver_once() {
    let first = TestApp::spawn(Backend::Postgres, "two_instances_once").await;
    let second = first.another_instance().await;
    let admin = first.admin().await;

    // A receiver that counts what it is sent.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = Arc::clone(&received);
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().expect("lock").push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let hook = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let endpoint = first
        .post(
            "/api/v1/admin/webhook-endpoints",
            &admin.token,
            json!({"url": hook, "events": ["auto_topup.succeeded"]}),
        )
        .await;
    assert_eq!(endpoint.status, 201, "{}", endpoint.text);

    // A top-up triggered through one instance while both run jobs.
    let member = first.register("two-instances@example.com").await;
    first.top_up_once(&member).await;
    second.settle_jobs().await;
    first.settle_jobs().await;
    let orders = second.get("/api/v1/orders", &member.token).await;
    let topups: Vec<_> = orders.json["data"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["kind"] == "auto_topup")
        .collect();
    assert_eq!(topups.len(), 1, "{topups:?}");

    // A subscription's days and reminders, with both instances running the day's job.
    let plan = package(
        &first,
        &admin,
        json!({"name": "Short plan", "kind": "subscription", "credits": 0, "daily_credits": 5,
               "duration_days": 2, "price": {"amount": 100, "currency": "CNY"}}),
    )
    .await;
    let subscriber = first.register("two-instance-plan@example.com").await;
    let order = first
        .post(
            "/api/v1/orders",
            &subscriber.token,
            json!({"package_id": plan, "provider": "sandbox"}),
        )
        .await;
    pay(&first, &order.json).await;
    for _ in 0..8 {
        for app in [&first, &second] {
            let now = app.state.store.clock.now_ms();
            let job = bursar_server::jobs::subscription_day_job(&app.state.config, now);
            app.state.store.jobs.enqueue(&job).await.expect("enqueues");
        }
        let (a, b) = tokio::join!(first.settle_jobs(), second.settle_jobs());
        let _ = (a, b);
        first.state.store.clock.advance_ms(6 * 3_600_000);
    }
    let history = first
        .get("/api/v1/me/transactions?limit=200", &subscriber.token)
        .await;
    let days: Vec<String> = history.json["data"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|t| t["kind"] == "allowance")
        .map(|t| t["description"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut distinct = days.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(days.len(), distinct.len(), "a day granted twice: {days:?}");
    // The runs over two days' term fall on two or three local days.
    assert!((2..=3).contains(&days.len()), "{days:?}");
    let told = first
        .get("/api/v1/me/notifications?limit=200", &subscriber.token)
        .await;
    let reminders = told.json["data"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["kind"] == "subscription_ending")
        .count();
    assert_eq!(
        reminders, 2,
        "3-day and 1-day reminders once each: {}",
        told.text
    );

    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "the event was delivered once: {bodies:?}");
    first.assert_ledger_ok().await;
}
