use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_replay_returns_the_first_response_byte_for_byte_and_moves_nothing,
    the_same_key_with_a_different_body_is_refused,
    concurrent_requests_with_one_key_apply_once,
    keys_are_per_caller_and_bounded_in_length,
);

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
