//! Outgoing webhooks through the API: an endpoint's secret shown once, a signed delivery that
//! a receiver refuses twice and then takes, a receiver that hangs (cut off) or redirects (not
//! followed) without holding up the others, a retry by hand, deletion, and bad input.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    signed_events_are_delivered_and_retried_until_taken,
    bad_endpoints_are_refused_and_change_nothing,
);

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Receivers on one local server: `/flaky` refuses twice then takes, `/hang` answers after 5 s,
/// `/moved` redirects. Each request's signature header and body are kept, by path.
async fn receivers() -> (String, Received) {
    let received: Received = Arc::default();
    let kept = Arc::clone(&received);
    let record = move |path: &'static str, headers: &HeaderMap, body: &[u8]| {
        let signature = headers
            .get("bursar-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut kept = kept.lock().expect("lock");
        kept.push((format!("{path} {signature}"), body.to_vec()));
        kept.iter().filter(|(k, _)| k.starts_with(path)).count()
    };
    let (flaky, hang, moved) = (record.clone(), record.clone(), record);
    let app = axum::Router::new()
        .route(
            "/flaky",
            axum::routing::post(
                move |headers: HeaderMap, body: axum::body::Bytes| async move {
                    if flaky("/flaky", &headers, &body) <= 2 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .route(
            "/hang",
            axum::routing::post(
                move |headers: HeaderMap, body: axum::body::Bytes| async move {
                    hang("/hang", &headers, &body);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    StatusCode::OK
                },
            ),
        )
        .route(
            "/moved",
            axum::routing::post(
                move |headers: HeaderMap, body: axum::body::Bytes| async move {
                    moved("/moved", &headers, &body);
                    (StatusCode::FOUND, [("location", "/flaky")])
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let list = app
        .get(
            &format!("/api/v1/admin/webhook-endpoints/{endpoint}/deliveries"),
            token,
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["data"].as_array().expect("data").clone()
}

async fn signed_events_are_delivered_and_retried_until_taken(app: TestApp) {
    let (base, received) = receivers().await;
    let admin = app.admin().await;
    let mut endpoints = Vec::new();
    for path in ["/flaky", "/hang", "/moved"] {
        let created = app
            .post(
                "/api/v1/admin/webhook-endpoints",
                &admin.token,
                json!({"url": format!("{base}{path}"), "events": ["order.paid"],
                       "description": path}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let secret = created.json["secret"].as_str().expect("secret shown once");
        assert!(secret.starts_with("whsec_"), "{secret}");
        endpoints.push((
            created.json["id"].as_str().expect("id").to_string(),
            secret.to_string(),
        ));
    }
    let listed = app
        .get("/api/v1/admin/webhook-endpoints", &admin.token)
        .await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(3));
    assert!(
        !listed.text.contains("whsec_"),
        "secrets are shown once: {}",
        listed.text
    );

    // A paid top-up is an `order.paid` (and an `auto_topup.succeeded`, which no endpoint wants).
    let member = app.register("hooked@example.com").await;
    app.top_up_once(&member).await;
    let (flaky, flaky_secret) = &endpoints[0];
    let first = deliveries(&app, &admin.token, flaky).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["event_type"], "order.paid");
    assert_eq!(
        (first[0]["status"].as_str(), first[0]["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert_eq!(first[0]["last_status_code"], 500);
    // The back-off passes twice; the third attempt is taken.
    for _ in 0..2 {
        app.state.store.clock.advance_ms(10 * 60_000);
        app.settle_jobs().await;
    }
    let taken = deliveries(&app, &admin.token, flaky).await;
    assert_eq!(taken[0]["status"], "delivered", "{taken:?}");
    assert_eq!(
        (
            taken[0]["attempts"].as_i64(),
            taken[0]["last_status_code"].as_i64()
        ),
        (Some(3), Some(204))
    );

    let kept = received.lock().expect("lock").clone();
    let to_flaky: Vec<_> = kept
        .iter()
        .filter(|(k, _)| k.starts_with("/flaky"))
        .collect();
    assert_eq!(to_flaky.len(), 3, "three attempts, no more");
    let now_s = app.state.store.clock.now_ms() / 1000;
    let mut ids = Vec::new();
    for (key, body) in &to_flaky {
        let header = key.trim_start_matches("/flaky ");
        bursar_payments::signature::verify_v1(header, body, &[flaky_secret.as_str()], 3600, now_s)
            .expect("the signature verifies with the endpoint's secret");
        assert!(
            bursar_payments::signature::verify_v1(header, body, &["whsec_other"], 3600, now_s)
                .is_err()
        );
        let event: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(event["type"], "order.paid");
        assert_eq!(event["data"]["status"], "paid");
        assert_eq!(event["data"]["kind"], "auto_topup");
        assert!(event["created_at"].is_string());
        ids.push(event["id"].as_str().expect("id").to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every attempt carries the same event id");

    // The hanging receiver was cut off, the redirect not followed; neither held up the other.
    let hung = deliveries(&app, &admin.token, &endpoints[1].0).await;
    assert_eq!(hung[0]["status"], "pending", "{hung:?}");
    assert!(
        hung[0]["last_error"]
            .as_str()
            .expect("error")
            .contains("in time"),
        "{hung:?}"
    );
    let moved = deliveries(&app, &admin.token, &endpoints[2].0).await;
    assert_eq!(moved[0]["last_status_code"], 302, "{moved:?}");
    assert_eq!(
        kept.iter().filter(|(k, _)| k.starts_with("/flaky")).count(),
        3,
        "the redirect was not followed to /flaky"
    );

    // An admin sends one again at once; deleting an endpoint stops its deliveries.
    let delivery = moved[0]["id"].as_str().expect("id");
    let retried = app
        .post(
            &format!("/api/v1/admin/webhook-deliveries/{delivery}/retry"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(retried.status, 202, "{}", retried.text);
    let after = deliveries(&app, &admin.token, &endpoints[2].0).await;
    assert!(
        after[0]["attempts"].as_i64().expect("attempts") >= 2,
        "{after:?}"
    );
    let deleted = app
        .send(
            "DELETE",
            &format!("/api/v1/admin/webhook-endpoints/{}", endpoints[1].0),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let stopped = deliveries(&app, &admin.token, &endpoints[1].0).await;
    assert_eq!(stopped[0]["status"], "failed", "{stopped:?}");
    let gone = app
        .post(
            &format!(
                "/api/v1/admin/webhook-deliveries/{}/retry",
                stopped[0]["id"].as_str().expect("id")
            ),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let audit = app.get("/api/v1/admin/audit-log", &admin.token).await;
    for action in [
        "webhook_endpoint.create",
        "webhook_delivery.retry",
        "webhook_endpoint.delete",
    ] {
        assert!(audit.text.contains(action), "{action} is audit-logged");
    }
}

async fn bad_endpoints_are_refused_and_change_nothing(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("not-admin@example.com").await;
    for body in [
        json!({"url": "ftp://example.com/hook", "events": ["order.paid"]}),
        json!({"url": "not a url", "events": ["order.paid"]}),
        json!({"url": "http://127.0.0.1:9/hook", "events": []}),
        json!({"url": "http://127.0.0.1:9/hook", "events": ["order.nope"]}),
        json!({"url": "http://127.0.0.1:9/hook", "events": ["order.paid"], "secret": "mine"}),
    ] {
        let refused = app
            .post(
                "/api/v1/admin/webhook-endpoints",
                &admin.token,
                body.clone(),
            )
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert!(refused.is_problem());
    }
    let member_try = app
        .post(
            "/api/v1/admin/webhook-endpoints",
            &member.token,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["order.paid"]}),
        )
        .await;
    assert_eq!(member_try.status, 403);
    let listed = app
        .get("/api/v1/admin/webhook-endpoints", &admin.token)
        .await;
    assert_eq!(listed.json["data"], json!([]), "nothing was created");
    let missing = app
        .patch(
            "/api/v1/admin/webhook-endpoints/whe_missing",
            &admin.token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    let created = app
        .post(
            "/api/v1/admin/webhook-endpoints",
            &admin.token,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["balance.low"]}),
        )
        .await;
    let id = created.json["id"].as_str().expect("id");
    let bad_change = app
        .patch(
            &format!("/api/v1/admin/webhook-endpoints/{id}"),
            &admin.token,
            json!({"url": "gopher://x"}),
        )
        .await;
    assert_eq!(bad_change.status, 422, "{}", bad_change.text);
    let off = app
        .patch(
            &format!("/api/v1/admin/webhook-endpoints/{id}"),
            &admin.token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        (off.status, &off.json["enabled"]),
        (200, &json!(false)),
        "{}",
        off.text
    );
    assert_eq!(off.json["url"], "http://127.0.0.1:9/hook");
}
