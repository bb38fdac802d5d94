use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_replay_returns_the_first_response_byte_for_byte_and_moves_nothing,
    the_same_key_with_a_different_body_is_refused,
    concurrent_requests_with_one_key_apply_once,
    keys_are_per_caller_and_bounded_in_length,
    every_keyed_route_replays_byte_for_byte,
);

/// Capture, void, a spend's refund and an adjustment: the
/// same key and body a second time answer the first response's bytes and move nothing more.
async fn every_keyed_route_replays_byte_for_byte(app: TestApp) {
    let admin = app.admin().await;
    let key = app.api_key().await;
    let member = app.register("replays@example.com").await;
    app.grant(&member.id, 100).await;
    let twice = |path: String, token: String, body: serde_json::Value, k: &'static str| {
        let first = app.send(
            "POST",
            &path,
            Some(&token),
            Some(&body),
            &[("idempotency-key", k)],
        );
        let second = app.send(
            "POST",
            &path,
            Some(&token),
            Some(&body),
            &[("idempotency-key", k)],
        );
        async move {
            let first = first.await;
            let second = second.await;
            assert!(first.status < 300, "{path}: {}", first.text);
            assert_eq!(
                (second.status, &second.text),
                (first.status, &first.text),
                "{path}"
            );
            first.json
        }
    };
    let held = app
        .post(
            "/api/v1/credits/holds",
            &key,
            json!({"user_id": member.id, "amount": 10}),
        )
        .await;
    let hold = held.json["id"].as_str().expect("hold").to_string();
    twice(
        format!("/api/v1/credits/holds/{hold}/capture"),
        key.clone(),
        json!({"amount": 4}),
        "capture-1",
    )
    .await;
    let held = app
        .post(
            "/api/v1/credits/holds",
            &key,
            json!({"user_id": member.id, "amount": 10}),
        )
        .await;
    let hold = held.json["id"].as_str().expect("hold").to_string();
    twice(
        format!("/api/v1/credits/holds/{hold}/void"),
        key.clone(),
        json!({}),
        "void-1",
    )
    .await;
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &key,
            json!({"user_id": member.id, "amount": 20}),
        )
        .await;
    let spend = spent.json["transaction_id"].clone();
    twice(
        "/api/v1/credits/refund".into(),
        key.clone(),
        json!({"transaction_id": spend, "amount": 5}),
        "refund-1",
    )
    .await;
    twice(
        format!("/api/v1/admin/users/{}/adjustments", member.id),
        admin.token.clone(),
        json!({"amount": 7, "reason": "replayed correction"}),
        "adjust-1",
    )
    .await;
    // 100 − 4 captured − 20 spent + 5 refunded + 7 adjusted, each once.
    assert_eq!(app.balance(&member).await.0, 88);
    app.assert_ledger_ok().await;
}

async fn a_replay_returns_the_first_response_byte_for_byte_and_moves_nothing(app: TestApp) {
    let member = app.register("replay@example.com").await;
    app.grant(&member.id, 100).await;
    let body = json!({"amount": 10});
    let headers = [("idempotency-key", "spend-1")];
    let first = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&member.token),
            Some(&body),
            &headers,
        )
        .await;
    let second = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&member.token),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(first.status, 200);
    assert_eq!((second.status, &second.text), (first.status, &first.text));
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(app.balance(&member).await, (90, 90));
    let hold_headers = [("idempotency-key", "hold-1")];
    let hold = app
        .send(
            "POST",
            "/api/v1/credits/holds",
            Some(&member.token),
            Some(&json!({"amount": 5})),
            &hold_headers,
        )
        .await;
    let hold_again = app
        .send(
            "POST",
            "/api/v1/credits/holds",
            Some(&member.token),
            Some(&json!({"amount": 5})),
            &hold_headers,
        )
        .await;
    assert_eq!(
        (hold.status, &hold.text),
        (hold_again.status, &hold_again.text)
    );
    assert_eq!(hold.status, 201);
    assert_eq!(app.balance(&member).await, (90, 85));
    app.assert_ledger_ok().await;
}

async fn the_same_key_with_a_different_body_is_refused(app: TestApp) {
    let member = app.register("mismatch@example.com").await;
    app.grant(&member.id, 100).await;
    let headers = [("idempotency-key", "k")];
    app.send(
        "POST",
        "/api/v1/credits/spend",
        Some(&member.token),
        Some(&json!({"amount": 10})),
        &headers,
    )
    .await;
    let changed = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&member.token),
            Some(&json!({"amount": 11})),
            &headers,
        )
        .await;
    assert_eq!(
        (changed.status, changed.code()),
        (422, "idempotency_mismatch")
    );
    let other_route = app
        .send(
            "POST",
            "/api/v1/credits/holds",
            Some(&member.token),
            Some(&json!({"amount": 10})),
            &headers,
        )
        .await;
    assert_eq!(other_route.code(), "idempotency_mismatch");
    assert_eq!(app.balance(&member).await, (90, 90));
}

async fn concurrent_requests_with_one_key_apply_once(app: TestApp) {
    let member = app.register("race@example.com").await;
    app.grant(&member.id, 100).await;
    let requests = (0..40).map(|_| {
        app.send(
            "POST",
            "/api/v1/credits/spend",
            Some(&member.token),
            Some(&json!({"amount": 3})),
            &[("idempotency-key", "once")],
        )
    });
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status == 200));
    assert!(responses.iter().all(|r| r.text == responses[0].text));
    assert_eq!(app.balance(&member).await, (97, 97));
    app.assert_ledger_ok().await;
}

async fn keys_are_per_caller_and_bounded_in_length(app: TestApp) {
    let alice = app.register("ka@example.com").await;
    let bob = app.register("kb@example.com").await;
    app.grant(&alice.id, 10).await;
    app.grant(&bob.id, 10).await;
    let headers = [("idempotency-key", "shared")];
    let a = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&alice.token),
            Some(&json!({"amount": 1})),
            &headers,
        )
        .await;
    let b = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&bob.token),
            Some(&json!({"amount": 1})),
            &headers,
        )
        .await;
    assert_ne!(a.json["transaction_id"], b.json["transaction_id"]);
    assert_eq!(app.balance(&bob).await, (9, 9));
    let long = "k".repeat(256);
    let too_long = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&alice.token),
            Some(&json!({"amount": 1})),
            &[("idempotency-key", &long)],
        )
        .await;
    assert_eq!(too_long.status, 400);
    // Printable ASCII only, as the OpenAPI document says: a tab inside is refused too.
    let tabbed = app
        .send(
            "POST",
            "/api/v1/credits/spend",
            Some(&alice.token),
            Some(&json!({"amount": 1})),
            &[("idempotency-key", "a\tb")],
        )
        .await;
    assert_eq!(
        (tabbed.status, tabbed.is_problem()),
        (400, true),
        "{}",
        tabbed.text
    );
    assert_eq!(app.balance(&alice).await, (9, 9));
}
