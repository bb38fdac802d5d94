use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    two_hundred_concurrent_spends_against_one_hundred_credits_succeed_exactly_one_hundred_times,
    concurrent_holds_and_captures_never_overdraw,
);

async fn two_hundred_concurrent_spends_against_one_hundred_credits_succeed_exactly_one_hundred_times(
    app: TestApp,
) {
    let key = app.api_key().await;
    let member = app.register("hot@example.com").await;
    app.grant(&member.id, 100).await;
    let body = json!({"user_id": member.id, "amount": 1});
    let responses = futures::future::join_all(
        (0..200).map(|_| app.post("/api/v1/credits/spend", &key, body.clone())),
    )
    .await;
    let ok = responses.iter().filter(|r| r.status == 200).count();
    let refused = responses
        .iter()
        .filter(|r| r.status == 409 && r.code() == "insufficient_credits")
        .count();
    assert_eq!((ok, refused), (100, 100));
    assert_eq!(app.balance(&member).await, (0, 0));
    app.assert_ledger_ok().await;
}

async fn concurrent_holds_and_captures_never_overdraw(app: TestApp) {
    let key = app.api_key().await;
    let member = app.register("holds@example.com").await;
    app.grant(&member.id, 100).await;
    let body = json!({"user_id": member.id, "amount": 1});
    let holds = futures::future::join_all(
        (0..200).map(|_| app.post("/api/v1/credits/holds", &key, body.clone())),
    )
    .await;
    let held: Vec<String> = holds
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.json["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(held.len(), 100);
    assert_eq!(
        holds
            .iter()
            .filter(|r| r.code() == "insufficient_credits")
            .count(),
        100
    );
    assert_eq!(app.balance(&member).await, (100, 0));
    // Every hold captured twice at once: exactly one capture of each wins.
    let captures = futures::future::join_all(held.iter().chain(held.iter()).map(|id| {
        app.send(
            "POST",
            &format!("/api/v1/credits/holds/{id}/capture"),
            Some(&key),
            None,
            &[],
        )
    }))
    .await;
    assert_eq!(captures.iter().filter(|r| r.status == 200).count(), 100);
    assert_eq!(captures.iter().filter(|r| r.status == 409).count(), 100);
    assert_eq!(app.balance(&member).await, (0, 0));
    app.assert_ledger_ok().await;
}
