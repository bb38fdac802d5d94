//! Auto top-up through the API: saved cards, the rule, the preview, the top-up that follows a
//! crossing of the threshold, declines that back off and then turn the rule off, limits that
//! stop a top-up visibly, and bad input that changes nothing.

use serde_json::{Value, json};

use crate::helpers::{Member, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_worked_example_is_previewed_and_charged_exactly,
    concurrent_spends_crossing_the_threshold_top_up_once,
    a_declining_card_backs_off_and_turns_the_rule_off_after_three,
    a_limit_stops_a_top_up_visibly_until_it_resets,
    bad_input_is_refused_and_changes_nothing,
);

const GOOD_CARD: &str = "4242 4242 4242 4242";
const DECLINED_CARD: &str = "4000 0000 0000 0002";
const MINUTE_MS: i64 = 60_000;

async fn save_card(app: &TestApp, member: &Member, number: &str) -> String {
    let saved = app
        .post(
            "/api/v1/me/payment-methods",
            &member.token,
            json!({"provider": "sandbox", "card_number": number}),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    assert!(
        !saved.text.contains(&number.replace(' ', "")),
        "{}",
        saved.text
    );
    saved.json["id"].as_str().expect("id").to_string()
}

/// A member holding `credits` with a saved card: what most tests start from.
async fn member_with_card(
    app: &TestApp,
    email: &str,
    credits: i64,
    number: &str,
) -> (Member, String) {
    let member = app.register(email).await;
    app.grant(&member.id, credits).await;
    let card = save_card(app, &member, number).await;
    (member, card)
}

async fn put_rule(app: &TestApp, member: &Member, rule: Value) -> Value {
    let resp = app
        .send(
            "PUT",
            "/api/v1/me/auto-topup",
            Some(&member.token),
            Some(&rule),
            &[],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json
}

async fn spend(app: &TestApp, member: &Member, amount: i64) -> u16 {
    app.post(
        "/api/v1/credits/spend",
        &member.token,
        json!({"amount": amount}),
    )
    .await
    .status
}

async fn set_overdraft(app: &TestApp, member: &Member, limit: i64) {
    let admin = app.admin().await;
    let resp = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"overdraft_limit": limit}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

async fn topup_orders(app: &TestApp, member: &Member) -> Vec<Value> {
    let orders = app.get("/api/v1/orders?limit=200", &member.token).await;
    assert_eq!(orders.status, 200, "{}", orders.text);
    orders.json["data"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["kind"] == "auto_topup")
        .cloned()
        .collect()
}

/// Runs the auto top-up sweep of the current period, as the worker would every 5 minutes.
async fn sweep(app: &TestApp) {
    let now = app.state.store.clock.now_ms();
    let job = bursar_server::jobs::topup_sweep_job(&app.state.config, now);
    app.state
        .store
        .jobs
        .enqueue(&job)
        .await
        .expect("sweep enqueues");
    app.settle_jobs().await;
}

async fn notification_kinds(app: &TestApp, member: &Member) -> Vec<String> {
    let list = app
        .get("/api/v1/me/notifications?limit=200", &member.token)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["data"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["kind"].as_str().expect("kind").to_string())
        .collect()
}

async fn the_worked_example_is_previewed_and_charged_exactly(app: TestApp) {
    let member = app.register("worked@example.com").await;
    set_overdraft(&app, &member, 100).await;
    app.grant(&member.id, 200).await;
    let card = save_card(&app, &member, GOOD_CARD).await;
    let rule =
        json!({"enabled": false, "threshold": 150, "target": 600, "payment_method_id": card});
    let saved = put_rule(&app, &member, rule.clone()).await;
    assert_eq!(saved["status"], "off");
    assert_eq!(spend(&app, &member, 250).await, 200);
    assert_eq!(app.balance(&member).await.0, -50);

    let preview = app
        .get("/api/v1/me/auto-topup/preview", &member.token)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(
        preview.json,
        json!({"balance": -50, "topup_credits": 650,
               "price": {"amount": 65000, "currency": "USD"},
               "fee": {"amount": 1885, "currency": "USD"},
               "total": {"amount": 66885, "currency": "USD"}})
    );

    // Enabling the rule while below the threshold tops up at once (through the queue).
    let enabled = put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 150, "target": 600, "payment_method_id": card}),
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert!(
        enabled["consent_at"].is_string() && enabled["consent_ip"].is_string(),
        "{enabled}"
    );
    app.settle_jobs().await;
    assert_eq!(app.balance(&member).await.0, 600);
    let orders = topup_orders(&app, &member).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    let order = &orders[0];
    assert_eq!(order["status"], "paid");
    assert_eq!(order["package_id"], Value::Null);
    assert_eq!(order["credits"], 650);
    assert_eq!(order["price"], json!({"amount": 65000, "currency": "USD"}));
    assert_eq!(order["fee"], json!({"amount": 1885, "currency": "USD"}));
    assert_eq!(order["total"], json!({"amount": 66885, "currency": "USD"}));
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    let topup = &history.json["data"][0];
    assert_eq!(
        (topup["kind"].as_str(), topup["amount"].as_i64()),
        (Some("auto_topup"), Some(650))
    );
    let receipt = app
        .get(
            &format!(
                "/api/v1/orders/{}/receipt",
                order["id"].as_str().expect("id")
            ),
            &member.token,
        )
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    assert_eq!(
        receipt.json["items"][1]["amount"]["amount"], 1885,
        "{}",
        receipt.text
    );
    let rule_now = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert!(
        rule_now.json["last_topup_at"].is_string(),
        "{}",
        rule_now.text
    );
    assert!(
        notification_kinds(&app, &member)
            .await
            .contains(&"auto_topup_succeeded".to_string())
    );
    app.assert_ledger_ok().await;
}

async fn concurrent_spends_crossing_the_threshold_top_up_once(app: TestApp) {
    let (member, card) = member_with_card(&app, "crossing@example.com", 1000, GOOD_CARD).await;
    put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 500, "target": 1000, "payment_method_id": card}),
    )
    .await;
    app.settle_jobs().await;
    let spends: Vec<_> = (0..200)
        .map(|_| app.post("/api/v1/credits/spend", &member.token, json!({"amount": 3})))
        .collect();
    for resp in futures::future::join_all(spends).await {
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    app.settle_jobs().await;
    let orders = topup_orders(&app, &member).await;
    assert_eq!(orders.len(), 1, "exactly one top-up: {orders:?}");
    let told = notification_kinds(&app, &member).await;
    assert_eq!(
        told.iter().filter(|k| *k == "balance_low").count(),
        1,
        "told once per crossing: {told:?}"
    );
    assert_eq!(orders[0]["status"], "paid");
    let (balance, _) = app.balance(&member).await;
    assert_eq!(
        balance,
        1000 - 600 + orders[0]["credits"].as_i64().expect("credits")
    );
    assert!(balance >= 500, "{balance}");
    app.assert_ledger_ok().await;
}

async fn a_declining_card_backs_off_and_turns_the_rule_off_after_three(app: TestApp) {
    let member = app.register("declined@example.com").await;
    set_overdraft(&app, &member, 100_000).await;
    app.grant(&member.id, 1000).await;
    let card = save_card(&app, &member, DECLINED_CARD).await;
    put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 900, "target": 1000, "payment_method_id": card}),
    )
    .await;
    // 500 spends over a simulated day, the sweep running every 5 minutes of it.
    let step_ms = 24 * 60 * MINUTE_MS / 500;
    for _ in 0..500 {
        assert_eq!(spend(&app, &member, 5).await, 200);
        app.state.store.clock.advance_ms(step_ms);
        sweep(&app).await;
    }
    let orders = topup_orders(&app, &member).await;
    assert_eq!(
        orders.len(),
        3,
        "three declined charges, then none: {orders:?}"
    );
    assert!(
        orders
            .iter()
            .all(|o| o["status"] == "failed" && o["failure_reason"] == "card_declined")
    );
    let rule = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert_eq!(rule.json["status"], "off", "{}", rule.text);
    assert_eq!(rule.json["enabled"], false);
    assert_eq!(rule.json["consecutive_failures"], 3);
    assert_eq!(rule.json["last_error"], "card_declined");
    let told = notification_kinds(&app, &member).await;
    assert_eq!(
        told.iter().filter(|k| *k == "auto_topup_failed").count(),
        3,
        "{told:?}"
    );
    assert_eq!(
        told.iter().filter(|k| *k == "auto_topup_disabled").count(),
        1,
        "{told:?}"
    );
    // The declines were spaced out: minutes, then hours.
    let mut created: Vec<String> = orders
        .iter()
        .map(|o| o["created_at"].as_str().expect("created_at").to_string())
        .collect();
    created.sort();
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("time")
            .timestamp_millis()
    };
    assert!(
        at(&created[1]) - at(&created[0]) >= 15 * MINUTE_MS,
        "{created:?}"
    );
    assert!(
        at(&created[2]) - at(&created[1]) >= 4 * 60 * MINUTE_MS,
        "{created:?}"
    );
    // A card no rule charges any more can be removed.
    let removed = app
        .send(
            "DELETE",
            &format!("/api/v1/me/payment-methods/{card}"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    app.assert_ledger_ok().await;
}

async fn a_limit_stops_a_top_up_visibly_until_it_resets(app: TestApp) {
    // Ten in the morning (UTC, the tests' zone) of a later day, so "later that day" below is
    // the same local day whatever time the test runs at.
    let now = app.state.store.clock.now_ms();
    let day = 24 * 60 * MINUTE_MS;
    app.state
        .store
        .clock
        .advance_ms((now / day + 1) * day + 10 * 60 * MINUTE_MS - now);
    let (member, card) = member_with_card(&app, "limited@example.com", 1000, GOOD_CARD).await;
    put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 500, "target": 1000,
        "payment_method_id": card, "max_topups_per_day": 1}),
    )
    .await;
    assert_eq!(spend(&app, &member, 600).await, 200);
    app.settle_jobs().await;
    assert_eq!(app.balance(&member).await.0, 1000);
    assert_eq!(spend(&app, &member, 600).await, 200);
    app.settle_jobs().await;
    assert_eq!(
        app.balance(&member).await.0,
        400,
        "the second top-up of the day is stopped"
    );
    let orders = topup_orders(&app, &member).await;
    let stopped: Vec<_> = orders.iter().filter(|o| o["status"] == "failed").collect();
    assert_eq!(stopped.len(), 1, "{orders:?}");
    assert_eq!(stopped[0]["failure_reason"], "daily_limit_reached");
    let rule = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert_eq!(rule.json["status"], "paused", "{}", rule.text);
    assert_eq!(rule.json["last_error"], "daily_limit_reached");
    assert!(
        notification_kinds(&app, &member)
            .await
            .contains(&"auto_topup_failed".to_string())
    );
    // Sweeps later that day do not charge or tell again.
    app.state.store.clock.advance_ms(30 * MINUTE_MS);
    sweep(&app).await;
    assert_eq!(topup_orders(&app, &member).await.len(), 2);
    // The next local day the sweep tops up and the rule is active again.
    app.state.store.clock.advance_ms(24 * 60 * MINUTE_MS);
    sweep(&app).await;
    assert_eq!(app.balance(&member).await.0, 1000);
    let rule = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert_eq!(rule.json["status"], "active", "{}", rule.text);
    app.assert_ledger_ok().await;
}

async fn bad_input_is_refused_and_changes_nothing(app: TestApp) {
    let member = app.register("bad-topup@example.com").await;
    let other = app.register("other-topup@example.com").await;
    let card = save_card(&app, &member, GOOD_CARD).await;
    let others_card = save_card(&app, &other, GOOD_CARD).await;
    let put = |rule: Value| {
        app.send(
            "PUT",
            "/api/v1/me/auto-topup",
            Some(&member.token),
            Some(&rule),
            &[],
        )
    };
    for (rule, status) in [
        (
            json!({"enabled": true, "threshold": 600, "target": 600, "payment_method_id": card}),
            422,
        ),
        (
            json!({"enabled": true, "threshold": 0, "target": 2_000_000, "payment_method_id": card}),
            422,
        ),
        (
            json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": card, "max_topups_per_day": 11}),
            422,
        ),
        (
            json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": card, "monthly_limit": {"amount": 100, "currency": "EUR"}}),
            422,
        ),
        (
            json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": card, "monthly_limit": {"amount": 1.5, "currency": "USD"}}),
            422,
        ),
        (
            json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": others_card}),
            404,
        ),
        (
            json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": card, "extra": 1}),
            422,
        ),
        (
            json!({"enabled": "yes", "threshold": 1, "target": 5, "payment_method_id": card}),
            422,
        ),
    ] {
        let resp = put(rule.clone()).await;
        assert_eq!(resp.status, status, "{rule}: {}", resp.text);
        assert!(resp.is_problem(), "{}", resp.text);
    }
    let none = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert_eq!(none.status, 404, "nothing was saved: {}", none.text);
    assert_eq!(
        app.get("/api/v1/me/auto-topup/preview", &member.token)
            .await
            .status,
        404
    );

    for body in [
        json!({"provider": "sandbox", "card_number": "5555 5555 5555 4444"}),
        json!({"provider": "sandbox"}),
        json!({"provider": "alipay", "card_number": GOOD_CARD}),
    ] {
        let resp = app
            .post("/api/v1/me/payment-methods", &member.token, body.clone())
            .await;
        assert_eq!(resp.status, 422, "{body}: {}", resp.text);
        assert!(resp.is_problem());
    }
    let methods = app.get("/api/v1/me/payment-methods", &member.token).await;
    assert_eq!(
        methods.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        methods.text
    );
    assert_eq!(methods.json["data"][0]["last4"], "4242");

    // Another member's method can be neither used nor removed; one an enabled rule charges
    // cannot be removed.
    let theirs = app
        .send(
            "DELETE",
            &format!("/api/v1/me/payment-methods/{others_card}"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 1, "target": 5, "payment_method_id": card}),
    )
    .await;
    let in_use = app
        .send(
            "DELETE",
            &format!("/api/v1/me/payment-methods/{card}"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(in_use.status, 409, "{}", in_use.text);
    assert_eq!(
        app.get("/api/v1/me/payment-methods", &other.token)
            .await
            .json["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Admins only see every notification.
    assert_eq!(
        app.get("/api/v1/admin/notifications", &member.token)
            .await
            .status,
        403
    );
    let admin = app.admin().await;
    let bad_kind = app
        .get("/api/v1/admin/notifications?kind=nope", &admin.token)
        .await;
    assert_eq!(bad_kind.status, 422, "{}", bad_kind.text);
    let listed = app
        .get("/api/v1/admin/notifications?status=sent", &admin.token)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
}

/// On SQLite every write transaction takes the database's one write lock, which the ledger
/// writer's group commit needs too, and each commit is an fsync: the work one auto top-up
/// makes outside the writer is counted here, end to end (the spend that crosses the threshold,
/// the top-up, its order, charge and fulfilment, the notifications and events, and each job's
/// claim and completion). The jobs run one claim each, as a worker woken for each would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_takes_few_write_transactions_on_sqlite() {
    use bursar_store::testing::SqliteCommits;
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        "topup_write_transactions",
        |c| c.jobs_enabled = false,
    )
    .await;
    let (member, card) = member_with_card(&app, "writes@example.com", 1000, GOOD_CARD).await;
    put_rule(
        &app,
        &member,
        json!({"enabled": true, "threshold": 500, "target": 1000, "payment_method_id": card}),
    )
    .await;
    app.settle_jobs().await;
    let (state, db) = (&app.state, &app.state.store.db);
    let done_jobs = || async {
        sqlx::query_as::<_, (String, String)>("SELECT id, kind FROM jobs WHERE state = 'done'")
            .fetch_all(&db.pool)
            .await
            .expect("jobs read")
    };
    let mut totals = Vec::new();
    for round in 1..=2 {
        let counter = SqliteCommits::start(db).await.expect("counting starts");
        let begun = db.write_transactions_begun();
        let mut steps = Vec::new();
        assert_eq!(spend(&app, &member, 600).await, 200);
        let (mut commits, mut begins) = (counter.count().expect("counted"), begun);
        let step = |name: String, commits: usize, begins: u64| (name, commits, begins);
        steps.push(step(
            "spend".into(),
            commits,
            db.write_transactions_begun() - begins,
        ));
        begins = db.write_transactions_begun();
        loop {
            let before = done_jobs().await;
            let ran = state
                .jobs
                .run_due(&state.store.jobs, state, &state.worker_id, 1)
                .await
                .expect("jobs run");
            if ran.is_empty() {
                break;
            }
            let kinds: Vec<String> = done_jobs()
                .await
                .into_iter()
                .filter(|job| !before.contains(job))
                .map(|(_, kind)| kind)
                .collect();
            let now = counter.count().expect("counted");
            steps.push(step(
                format!("{kinds:?} {ran:?}"),
                now - commits,
                db.write_transactions_begun() - begins,
            ));
            (commits, begins) = (now, db.write_transactions_begun());
        }
        counter.finish().await.expect("counting ends");
        assert_eq!(app.balance(&member).await.0, 1000, "topped up");
        assert_eq!(topup_orders(&app, &member).await.len(), round);
        let total: usize = steps.iter().map(|s| s.1).sum();
        let begun_total: u64 = steps.iter().map(|s| s.2).sum();
        for (name, commits, begins) in &steps {
            eprintln!(
                "round {round}: {name}: {commits} commits, {begins} write transactions begun"
            );
        }
        eprintln!("round {round}: {total} commits, {begun_total} write transactions begun");
        totals.push((total, begun_total));
    }
    assert_eq!(totals[0], totals[1], "the same each time");
    // Three are the ledger writer's batches (the spend, the top-up's decision with its order,
    // and its fulfilment; under load each shares a group commit); the rest are the three jobs'
    // claims and two notifications each marked sent with its job done, in one call to SQLite's
    // thread. A claim is one statement, not a transaction, so it holds the lock for that
    // statement only. Before the job bookkeeping was folded into the work's transactions and
    // events got their deliveries with them: 17 commits and 12 write transactions begun (three
    // fan-outs that wrote nothing among them).
    let (commits, begun) = totals[0];
    assert!(commits <= 8, "{commits} commits for one top-up");
    assert!(begun <= 5, "{begun} write transactions for one top-up");
    app.assert_ledger_ok().await;
}
