//! The reward inbox through the API: an admin's reward reaches each recipient once (to all
//! members, in chunks, even when a chunk runs twice), a claim pays once however often and
//! however concurrently it is made, another member's reward cannot be seen or claimed, an
//! expired one is refused, and bad requests create nothing.

use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};

async fn send_reward(app: &TestApp, admin: &Member, body: Value) -> Value {
    let sent = app.post("/api/v1/admin/rewards", &admin.token, body).await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    app.settle_jobs().await;
    sent.json
}

async fn inbox(app: &TestApp, member: &Member) -> Vec<Value> {
    let listed = app.get("/api/v1/me/inbox", &member.token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.json["data"].as_array().expect("data").clone()
}

fn claim_path(item: &Value) -> String {
    format!(
        "/api/v1/me/inbox/{}/claim",
        item["id"].as_str().expect("id")
    )
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&app.state.store.db.pool)
        .await
        .expect("counts")
}

async fn a_reward_to_all_members_reaches_each_once_in_chunks(backend: Backend) {
    let app = TestApp::spawn_with(backend, "inbox_all_members", |config| {
        config.reward_delivery_chunk = 3;
    })
    .await;
    let admin = app.admin().await;
    let mut members = Vec::new();
    for n in 0..10 {
        members.push(app.register(&format!("member{n}@example.com")).await);
    }
    let sent = send_reward(
        &app,
        &admin,
        json!({"title": "Thanks for playing", "credits": 25, "all_members": true}),
    )
    .await;
    assert_eq!(sent["recipients"], 10, "admins are not members");
    // Ten members in chunks of three: four jobs, one transaction each.
    let chunks = count(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE kind = 'reward_delivery'",
    )
    .await;
    assert_eq!(chunks, 4);
    // A chunk that runs again (a retry after a lost answer) delivers nothing twice.
    let first_chunk = bursar_store::rewards::DeliveryPayload {
        reward_id: sent["id"].as_str().expect("id").to_string(),
        user_ids: None,
        after: Some(String::new()),
    };
    let again = app
        .state
        .store
        .deliver_reward_chunk(&first_chunk, 3)
        .await
        .expect("delivers");
    assert_eq!(again, 0);
    app.settle_jobs().await;

    let late = app.register("late@example.com").await;
    assert!(
        inbox(&app, &late).await.is_empty(),
        "sent before they joined"
    );
    assert!(inbox(&app, &admin).await.is_empty());
    for member in &members {
        let items = inbox(&app, member).await;
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(
            (
                &items[0]["title"],
                &items[0]["credits"],
                &items[0]["claimed_at"]
            ),
            (&json!("Thanks for playing"), &json!(25), &Value::Null)
        );
        let claimed = app
            .post(&claim_path(&items[0]), &member.token, json!(null))
            .await;
        assert_eq!(claimed.status, 200, "{}", claimed.text);
        assert_eq!(app.balance(member).await.0, 25);
    }
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    let sends: Vec<&Value> = log.json["data"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "reward.send")
        .collect();
    assert_eq!(sends.len(), 1, "{}", log.text);
    assert_eq!(sends[0]["target"], sent["id"]);
    assert_eq!(sends[0]["actor_id"], json!(admin.id));
    app.assert_ledger_ok().await;
}

async fn a_claim_pays_once_and_only_its_owner_can_make_it(backend: Backend) {
    let app = TestApp::spawn(backend, "inbox_claims").await;
    let admin = app.admin().await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let sent = send_reward(
        &app,
        &admin,
        json!({"title": "Welcome pack", "credits": 40,
               "user_ids": [alice.id, bob.id, alice.id]}),
    )
    .await;
    assert_eq!(sent["recipients"], 2, "listed twice, rewarded once");
    assert!(inbox(&app, &carol).await.is_empty());
    let alices = inbox(&app, &alice).await;
    let bobs = inbox(&app, &bob).await;
    assert_eq!((alices.len(), bobs.len()), (1, 1));

    // Bob cannot claim Alice's reward, nor can an admin or a service claim it for her.
    let key = app.api_key().await;
    let stolen = app
        .post(&claim_path(&alices[0]), &bob.token, json!(null))
        .await;
    assert_eq!(
        (stolen.status, stolen.code()),
        (404, "not_found"),
        "{}",
        stolen.text
    );
    let by_admin = app
        .post(&claim_path(&alices[0]), &admin.token, json!(null))
        .await;
    assert_eq!(by_admin.status, 404, "{}", by_admin.text);
    let by_service = app.post(&claim_path(&alices[0]), &key, json!(null)).await;
    assert_eq!(by_service.status, 403, "{}", by_service.text);
    let unknown = app
        .post(
            "/api/v1/me/inbox/inb_nothing/claim",
            &alice.token,
            json!(null),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(app.balance(&bob).await.0, 0);

    let claimed = app
        .post(&claim_path(&alices[0]), &alice.token, json!(null))
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    assert_eq!(
        claimed.json,
        json!({"id": alices[0]["id"], "credits": 40, "balance_after": 40})
    );
    let twice = app
        .post(&claim_path(&alices[0]), &alice.token, json!(null))
        .await;
    assert_eq!(twice.status, 409, "{}", twice.text);
    assert!(twice.is_problem());
    assert_eq!(twice.code(), "already_claimed");
    assert!(inbox(&app, &alice).await[0]["claimed_at"].is_string());

    // Twenty claims at once pay once.
    let racing: Vec<_> = (0..20)
        .map(|_| app.send("POST", &claim_path(&bobs[0]), Some(&bob.token), None, &[]))
        .collect();
    let answers = futures::future::join_all(racing).await;
    let paid = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "already_claimed")
        .count();
    assert_eq!((paid, refused), (1, 19), "{answers:?}");
    assert_eq!(app.balance(&bob).await.0, 40);
    assert_eq!(app.balance(&alice).await.0, 40);
    app.assert_ledger_ok().await;
}

async fn an_expired_reward_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend, "inbox_expiry").await;
    let admin = app.admin().await;
    let member = app.register("slow@example.com").await;
    let in_an_hour = bursar_store::clock::rfc3339(app.state.store.clock.now_ms() + 3_600_000);
    send_reward(
        &app,
        &admin,
        json!({"title": "Flash sale", "credits": 15, "user_ids": [member.id],
               "expires_at": in_an_hour}),
    )
    .await;
    let items = inbox(&app, &member).await;
    assert_eq!(items[0]["expires_at"], json!(in_an_hour));
    app.state.store.clock.advance_ms(2 * 3_600_000);
    let late = app
        .post(&claim_path(&items[0]), &member.token, json!(null))
        .await;
    assert_eq!(
        (late.status, late.code()),
        (409, "expired"),
        "{}",
        late.text
    );
    assert!(late.is_problem());
    assert_eq!(app.balance(&member).await.0, 0);
    assert!(inbox(&app, &member).await[0]["claimed_at"].is_null());
    app.assert_ledger_ok().await;
}

async fn bad_reward_requests_create_nothing(backend: Backend) {
    let app = TestApp::spawn(backend, "inbox_input").await;
    let admin = app.admin().await;
    let member = app.register("member@example.com").await;
    let past = bursar_store::clock::rfc3339(app.state.store.clock.now_ms() - 1000);
    let too_many: Vec<String> = (0..1001).map(|n| format!("usr_{n}")).collect();
    let bad = [
        json!({"title": "Zero", "credits": 0, "all_members": true}),
        json!({"title": "Negative", "credits": -5, "all_members": true}),
        json!({"title": "", "credits": 5, "all_members": true}),
        json!({"title": "   ", "credits": 5, "all_members": true}),
        json!({"title": "x".repeat(201), "credits": 5, "all_members": true}),
        json!({"title": "Both", "credits": 5, "all_members": true, "user_ids": [member.id]}),
        json!({"title": "Neither", "credits": 5}),
        json!({"title": "Not all", "credits": 5, "all_members": false}),
        json!({"title": "Nobody", "credits": 5, "user_ids": []}),
        json!({"title": "Unknown", "credits": 5, "user_ids": [member.id, "usr_nobody"]}),
        json!({"title": "Too many", "credits": 5, "user_ids": too_many}),
        json!({"title": "Past", "credits": 5, "all_members": true, "expires_at": past}),
        json!({"title": "Garbled", "credits": 5, "all_members": true, "expires_at": "soon"}),
        json!({"title": "Extra", "credits": 5, "all_members": true, "colour": "red"}),
        json!({"title": "Fraction", "credits": 1.5, "all_members": true}),
        json!({"credits": 5, "all_members": true}),
    ];
    for body in &bad {
        let refused = app
            .post("/api/v1/admin/rewards", &admin.token, body.clone())
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert!(refused.is_problem(), "{}", refused.text);
    }
    let good = json!({"title": "Fine", "credits": 5, "all_members": true});
    let by_member = app
        .post("/api/v1/admin/rewards", &member.token, good.clone())
        .await;
    assert_eq!(by_member.status, 403, "{}", by_member.text);
    let anonymous = app
        .send("POST", "/api/v1/admin/rewards", None, Some(&good), &[])
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let not_json = app
        .send(
            "POST",
            "/api/v1/admin/rewards",
            Some(&admin.token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert!((400..500).contains(&not_json.status) && not_json.is_problem());
    let bad_page = app.get("/api/v1/me/inbox?limit=0", &member.token).await;
    assert_eq!(bad_page.status, 422, "{}", bad_page.text);
    app.settle_jobs().await;

    assert_eq!(count(&app, "SELECT COUNT(*) FROM rewards").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM inbox_items").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'reward_delivery'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'reward.send'"
        )
        .await,
        0
    );
    assert!(inbox(&app, &member).await.is_empty());
    app.assert_ledger_ok().await;
}

async fn verify_finds_an_inbox_claim_not_credited_once(backend: Backend) {
    let app = TestApp::spawn(backend, "inbox_verify").await;
    let admin = app.admin().await;
    let member = app.register("checked@example.com").await;
    send_reward(
        &app,
        &admin,
        json!({"title": "Checked", "credits": 7, "user_ids": [member.id]}),
    )
    .await;
    let item = inbox(&app, &member).await.remove(0);
    let claimed = app
        .post(&claim_path(&item), &member.token, json!(null))
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    app.assert_ledger_ok().await;
    let problems =
        crate::daily_gift::problems_after(&app, "UPDATE inbox_items SET transfer_id = NULL").await;
    for finding in [
        "inbox claim not credited exactly once",
        "inbox reward transfer without its claim",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(finding)),
            "{finding}: {problems:?}"
        );
    }
}

async fn a_package_bonus_waits_in_the_inbox_until_claimed_or_refunded(backend: Backend) {
    let app = TestApp::spawn(backend, "inbox_package_bonus").await;
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let pack = crate::orders::package(
        &app,
        &admin,
        json!({"name": "Starter", "kind": "credit_pack", "credits": 100, "bonus_credits": 20,
               "bonus_to_inbox": true, "price": {"amount": 1000, "currency": "CNY"}}),
    )
    .await;
    let catalog = app.get("/api/v1/packages", &buyer.token).await;
    assert_eq!(
        catalog.json["data"][0]["bonus_to_inbox"], true,
        "{}",
        catalog.text
    );
    let buy = || async {
        let placed = app
            .post(
                "/api/v1/orders",
                &buyer.token,
                json!({"package_id": pack, "provider": "sandbox"}),
            )
            .await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        crate::orders::pay(&app, &placed.json).await;
        placed.json
    };
    buy().await;
    // The purchase arrives at once; its bonus waits in the inbox.
    assert_eq!(app.balance(&buyer).await.0, 100);
    let items = inbox(&app, &buyer).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        (&items[0]["title"], &items[0]["credits"]),
        (&json!("Bonus: Starter"), &json!(20))
    );
    let claimed = app
        .post(&claim_path(&items[0]), &buyer.token, json!(null))
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    assert_eq!(app.balance(&buyer).await.0, 120);
    app.assert_ledger_ok().await;

    // Refunded after its bonus was claimed: the bonus goes back with the purchase, as a bonus
    // granted at once would.
    let kept = buy().await;
    let items = inbox(&app, &buyer).await;
    let claimed = app
        .post(&claim_path(&items[0]), &buyer.token, json!(null))
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    assert_eq!(app.balance(&buyer).await.0, 240);
    let refunded = app
        .post(
            &format!(
                "/api/v1/admin/orders/{}/refund",
                kept["id"].as_str().expect("id")
            ),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    assert_eq!(refunded.json["credits_clawed_back"], 120);
    assert_eq!(app.balance(&buyer).await.0, 120);
    app.assert_ledger_ok().await;

    // Refunded before its bonus was claimed: the bonus can no longer be claimed.
    let second = buy().await;
    let refunded = app
        .post(
            &format!(
                "/api/v1/admin/orders/{}/refund",
                second["id"].as_str().expect("id")
            ),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    let items = inbox(&app, &buyer).await;
    assert_eq!(items.len(), 3, "{items:?}");
    let late = app
        .post(&claim_path(&items[0]), &buyer.token, json!(null))
        .await;
    assert_eq!(
        (late.status, late.code()),
        (409, "expired"),
        "{}",
        late.text
    );
    assert_eq!(app.balance(&buyer).await.0, 120);
    app.assert_ledger_ok().await;
}

crate::for_both_backends!(
    a_package_bonus_waits_in_the_inbox_until_claimed_or_refunded,
    verify_finds_an_inbox_claim_not_credited_once,
    a_reward_to_all_members_reaches_each_once_in_chunks,
    a_claim_pays_once_and_only_its_owner_can_make_it,
    an_expired_reward_is_refused,
    bad_reward_requests_create_nothing
);

/// Two instances on one PostgreSQL database, each with its own ledger writer: claims of the
/// same daily gift and of the same reward, spread over both, still pay once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_spread_over_two_instances_pay_once() {
    let first = TestApp::spawn(Backend::Postgres, "engagement_two_instances").await;
    let second = first.another_instance().await;
    let admin = first.admin().await;
    let member = first.register("everywhere@example.com").await;
    send_reward(
        &first,
        &admin,
        json!({"title": "Twice?", "credits": 30, "user_ids": [member.id]}),
    )
    .await;
    let item = inbox(&first, &member).await.remove(0);
    let mut racing = Vec::new();
    for n in 0..20 {
        let app = if n % 2 == 0 { &first } else { &second };
        racing.push(app.send(
            "POST",
            "/api/v1/me/daily-gift",
            Some(&member.token),
            None,
            &[],
        ));
        racing.push(app.send("POST", &claim_path(&item), Some(&member.token), None, &[]));
    }
    let answers = futures::future::join_all(racing).await;
    let paid = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "already_claimed")
        .count();
    assert_eq!((paid, refused), (2, 38), "{answers:?}");
    assert_eq!(first.balance(&member).await.0, 10 + 30);
    first.assert_ledger_ok().await;
}
