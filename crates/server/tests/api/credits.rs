use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_spend_lowers_the_balance_and_appears_in_the_history,
    a_spend_beyond_the_balance_is_refused_and_changes_nothing,
    a_service_spends_for_any_user_but_a_member_only_for_themselves,
    a_hold_reserves_credits_and_capture_releases_the_rest,
    a_voided_hold_releases_everything_and_cannot_be_captured,
    only_the_holds_creator_can_settle_it,
    refunds_are_for_services_and_admins_and_never_exceed_the_spend,
    history_pages_with_a_cursor,
);

async fn a_spend_lowers_the_balance_and_appears_in_the_history(app: TestApp) {
    let member = app.register("spender@example.com").await;
    app.grant(&member.id, 100).await;
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 30, "description": "image generation", "metadata": {"model": "x"}}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    assert_eq!(spent.json["amount"], 30);
    assert_eq!(spent.json["balance_after"], 70);
    assert!(
        spent.json["transaction_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("txn_"))
    );
    assert_eq!(spent.json["paid_by"][0]["source"], "purchase");
    assert_eq!(app.balance(&member).await, (70, 70));
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    let entries = history.json["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["kind"], "spend");
    assert_eq!(entries[0]["amount"], -30);
    assert_eq!(entries[0]["balance_after"], 70);
    assert_eq!(entries[0]["description"], "image generation");
    assert_eq!(entries[0]["metadata"]["model"], "x");
    assert_eq!(
        entries[0]["paid_by"][0]["source"], "purchase",
        "history says which credits paid"
    );
    assert_eq!(entries[0]["paid_by"][0]["amount"], 30);
    assert_eq!(entries[1]["kind"], "purchase");
    assert_eq!(entries[1]["amount"], 100);
    assert!(history.json["next_cursor"].is_null());
    app.assert_ledger_ok().await;
}

async fn a_spend_beyond_the_balance_is_refused_and_changes_nothing(app: TestApp) {
    let member = app.register("poor@example.com").await;
    app.grant(&member.id, 10).await;
    let refused = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 11}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "insufficient_credits")
    );
    assert!(refused.is_problem());
    assert_eq!(app.balance(&member).await, (10, 10));
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    assert_eq!(history.json["data"].as_array().map(Vec::len), Some(1));
    app.assert_ledger_ok().await;
}

async fn a_service_spends_for_any_user_but_a_member_only_for_themselves(app: TestApp) {
    let key = app.api_key().await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    app.grant(&alice.id, 50).await;
    app.grant(&bob.id, 50).await;
    let by_service = app
        .post(
            "/api/v1/credits/spend",
            &key,
            json!({"user_id": bob.id, "amount": 5}),
        )
        .await;
    assert_eq!(by_service.status, 200, "{}", by_service.text);
    let no_user = app
        .post("/api/v1/credits/spend", &key, json!({"amount": 5}))
        .await;
    assert_eq!(no_user.status, 422);
    let unknown = app
        .post(
            "/api/v1/credits/spend",
            &key,
            json!({"user_id": "usr_nobody", "amount": 5}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    let theft = app
        .post(
            "/api/v1/credits/spend",
            &alice.token,
            json!({"user_id": bob.id, "amount": 5}),
        )
        .await;
    assert_eq!((theft.status, theft.code()), (403, "forbidden"));
    let own = app
        .post(
            "/api/v1/credits/spend",
            &alice.token,
            json!({"user_id": alice.id, "amount": 5}),
        )
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(app.balance(&bob).await, (45, 45));
    assert_eq!(app.balance(&alice).await, (45, 45));
    // A service has no "me".
    assert_eq!(app.get("/api/v1/me/balance", &key).await.status, 403);
}

async fn a_hold_reserves_credits_and_capture_releases_the_rest(app: TestApp) {
    let key = app.api_key().await;
    let member = app.register("holder@example.com").await;
    app.grant(&member.id, 100).await;
    let hold = app
        .post(
            "/api/v1/credits/holds",
            &key,
            json!({"user_id": member.id, "amount": 60}),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    assert_eq!(hold.json["status"], "held");
    assert_eq!(hold.json["available_after"], 40);
    assert!(hold.json["expires_at"].is_string());
    assert_eq!(app.balance(&member).await, (100, 40));
    let too_much = app
        .post(
            "/api/v1/credits/spend",
            &key,
            json!({"user_id": member.id, "amount": 41}),
        )
        .await;
    assert_eq!(too_much.code(), "insufficient_credits");
    let id = hold.json["id"].as_str().unwrap_or_default();
    let over = app
        .post(
            &format!("/api/v1/credits/holds/{id}/capture"),
            &key,
            json!({"amount": 61}),
        )
        .await;
    assert_eq!(over.status, 422);
    let captured = app
        .post(
            &format!("/api/v1/credits/holds/{id}/capture"),
            &key,
            json!({"amount": 25}),
        )
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    assert_eq!(
        (
            captured.json["captured"].as_i64(),
            captured.json["released"].as_i64()
        ),
        (Some(25), Some(35))
    );
    assert_eq!(captured.json["balance_after"], 75);
    assert!(captured.json["transaction_id"].is_string());
    assert_eq!(app.balance(&member).await, (75, 75));
    let again = app
        .post(
            &format!("/api/v1/credits/holds/{id}/capture"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "conflict"));
    app.assert_ledger_ok().await;
}

async fn a_voided_hold_releases_everything_and_cannot_be_captured(app: TestApp) {
    let member = app.register("voider@example.com").await;
    app.grant(&member.id, 20).await;
    let hold = app
        .post(
            "/api/v1/credits/holds",
            &member.token,
            json!({"amount": 20, "expires_in_seconds": 60}),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    let id = hold.json["id"].as_str().unwrap_or_default();
    let void = app
        .send(
            "POST",
            &format!("/api/v1/credits/holds/{id}/void"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(void.status, 200, "{}", void.text);
    assert_eq!(void.json["status"], "voided");
    assert_eq!(app.balance(&member).await, (20, 20));
    let capture = app
        .send(
            "POST",
            &format!("/api/v1/credits/holds/{id}/capture"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!((capture.status, capture.code()), (409, "conflict"));
    let void_again = app
        .send(
            "POST",
            &format!("/api/v1/credits/holds/{id}/void"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(void_again.status, 409);
}

async fn only_the_holds_creator_can_settle_it(app: TestApp) {
    let key = app.api_key().await;
    let other_key = app.api_key().await;
    let member = app.register("owner@example.com").await;
    app.grant(&member.id, 20).await;
    let hold = app
        .post(
            "/api/v1/credits/holds",
            &key,
            json!({"user_id": member.id, "amount": 5}),
        )
        .await;
    let id = hold.json["id"].as_str().unwrap_or_default();
    for token in [&other_key, &member.token] {
        let capture = app
            .send(
                "POST",
                &format!("/api/v1/credits/holds/{id}/capture"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(capture.status, 404);
    }
    assert_eq!(app.balance(&member).await, (20, 15));
}

async fn refunds_are_for_services_and_admins_and_never_exceed_the_spend(app: TestApp) {
    let key = app.api_key().await;
    let admin = app.admin().await;
    let member = app.register("refundee@example.com").await;
    app.grant(&member.id, 100).await;
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 40}),
        )
        .await;
    let txn = spent.json["transaction_id"].as_str().unwrap_or_default();
    let by_member = app
        .post(
            "/api/v1/credits/refund",
            &member.token,
            json!({"transaction_id": txn}),
        )
        .await;
    assert_eq!((by_member.status, by_member.code()), (403, "forbidden"));
    let partial = app
        .post(
            "/api/v1/credits/refund",
            &key,
            json!({"transaction_id": txn, "amount": 15}),
        )
        .await;
    assert_eq!(partial.status, 200, "{}", partial.text);
    assert_eq!(partial.json["total_refunded"], 15);
    let too_much = app
        .post(
            "/api/v1/credits/refund",
            &admin.token,
            json!({"transaction_id": txn, "amount": 26}),
        )
        .await;
    assert_eq!(too_much.status, 409);
    let rest = app
        .post(
            "/api/v1/credits/refund",
            &admin.token,
            json!({"transaction_id": txn}),
        )
        .await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.json["amount"], 25);
    let none_left = app
        .post(
            "/api/v1/credits/refund",
            &key,
            json!({"transaction_id": txn}),
        )
        .await;
    assert_eq!(none_left.status, 409);
    let not_a_spend = app
        .post(
            "/api/v1/credits/refund",
            &key,
            json!({"transaction_id": "txn_nope"}),
        )
        .await;
    assert_eq!(not_a_spend.status, 404);
    assert_eq!(app.balance(&member).await, (100, 100));
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    assert_eq!(history.json["data"][0]["kind"], "refund");
    assert_eq!(history.json["data"][0]["amount"], 25);
    app.assert_ledger_ok().await;
}

async fn history_pages_with_a_cursor(app: TestApp) {
    let member = app.register("pages@example.com").await;
    app.grant(&member.id, 100).await;
    for _ in 0..4 {
        app.post("/api/v1/credits/spend", &member.token, json!({"amount": 1}))
            .await;
    }
    let first = app
        .get("/api/v1/me/transactions?limit=2", &member.token)
        .await;
    assert_eq!(first.json["data"].as_array().map(Vec::len), Some(2));
    let cursor = first.json["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!cursor.is_empty());
    let second = app
        .get(
            &format!("/api/v1/me/transactions?limit=2&cursor={cursor}"),
            &member.token,
        )
        .await;
    let third = app
        .get(
            &format!(
                "/api/v1/me/transactions?limit=2&cursor={}",
                second.json["next_cursor"].as_str().unwrap_or_default()
            ),
            &member.token,
        )
        .await;
    let ids: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page.json["data"].as_array().cloned().unwrap_or_default())
        .map(|t| t["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first, no repeats");
    assert!(third.json["next_cursor"].is_null());
    assert_eq!(
        app.get("/api/v1/me/transactions?limit=500", &member.token)
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/v1/me/transactions?limit=abc", &member.token)
            .await
            .status,
        422
    );
}
