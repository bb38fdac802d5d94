//! Subscriptions through the API: paying for a subscription package starts one, its daily
//! allowance arrives once per local day (America/New_York, across the change to summer time)
//! and expires at the next local midnight, is spent before purchased credits, and stops when
//! the subscription ends; members are reminded before the end and told after; renewal is an
//! order that extends it.

use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};
use crate::orders::{package, pay};

const HOUR_MS: i64 = 3_600_000;

/// The test clock starts now; this moves it to `target` (RFC 3339), which must be later.
fn move_clock_to(app: &TestApp, target: &str) {
    let target = chrono::DateTime::parse_from_rfc3339(target)
        .expect("valid time")
        .timestamp_millis();
    let now = app.state.store.clock.now_ms();
    assert!(target > now, "the clock only moves forward");
    app.state.store.clock.advance_ms(target - now);
}

/// Runs the subscriptions' day job of the current period, as the worker would.
async fn run_day(app: &TestApp) {
    let now = app.state.store.clock.now_ms();
    let job = bursar_server::jobs::subscription_day_job(&app.state.config, now);
    app.state.store.jobs.enqueue(&job).await.expect("enqueues");
    app.settle_jobs().await;
}

async fn allowances(app: &TestApp, member: &Member) -> Vec<Value> {
    let history = app
        .get("/api/v1/me/transactions?limit=200", &member.token)
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    history.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|t| t["kind"] == "allowance")
        .cloned()
        .collect()
}

async fn subscribe(app: &TestApp, member: &Member, package_id: &str) -> Value {
    let created = app
        .post(
            "/api/v1/orders",
            &member.token,
            json!({"package_id": package_id, "provider": "sandbox"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    pay(app, &created.json).await;
    app.settle_jobs().await;
    created.json
}

async fn daily_allowances_arrive_once_a_local_day_and_never_pile_up(backend: Backend) {
    let app = TestApp::spawn_with(backend, "subscription_days", |config| {
        config.timezone = "America/New_York".parse().expect("a zone");
    })
    .await;
    // Ten days that cross the change to summer time (2027-03-14 in New York), starting an hour
    // before a local midnight.
    move_clock_to(&app, "2027-03-10T04:00:00Z"); // 23:00 on the 9th in New York
    let admin = app.admin().await;
    let plan = package(
        &app,
        &admin,
        json!({"name": "Daily 100", "kind": "subscription", "credits": 0, "daily_credits": 100,
               "duration_days": 10, "price": {"amount": 3000, "currency": "CNY"}}),
    )
    .await;
    let member = app.register("subscriber@example.com").await;
    app.grant(&member.id, 1000).await; // purchased credits, which never expire
    subscribe(&app, &member, &plan).await;
    let subs = app.get("/api/v1/me/subscriptions", &member.token).await;
    assert_eq!(subs.status, 200, "{}", subs.text);
    let sub = &subs.json["data"][0];
    assert_eq!(
        (sub["status"].as_str(), sub["daily_credits"].as_i64()),
        (Some("active"), Some(100))
    );
    // The first day's allowance arrives at payment, though the local day ends within the hour.
    assert_eq!(allowances(&app, &member).await.len(), 1);
    assert_eq!(app.balance(&member).await.0, 1100);

    // Spending takes the allowance first: it expires soonest.
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 30}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    let balance = app.get("/api/v1/me/balance", &member.token).await;
    let grants = balance.json["grants"].as_array().expect("grants").clone();
    let allowance = grants
        .iter()
        .find(|g| g["source"] == "allowance")
        .expect("allowance grant");
    assert_eq!(allowance["remaining"], 70, "{grants:?}");
    assert_eq!(
        allowance["expires_at"], "2027-03-10T05:00:00.000Z",
        "the next local midnight"
    );

    // The job runs several times a day, and once a day crosses midnight; each local day is
    // granted once, and what is left of a day's allowance expires at its midnight.
    for _ in 0..(10 * 24 / 6) {
        app.state.store.clock.advance_ms(6 * HOUR_MS);
        run_day(&app).await;
        run_day(&app).await;
    }
    // Past the last local midnight, with overdue grants settled (as the expiry job does).
    app.state.store.clock.advance_ms(60_000);
    bursar_server::jobs::sweep_expired(&app.state)
        .await
        .expect("overdue grants expire");
    let granted = allowances(&app, &member).await;
    // Local days 9 March (at payment) through 19 March, when the subscription ends at 23:00.
    assert_eq!(granted.len(), 11, "{granted:?}");
    let balance = app.get("/api/v1/me/balance", &member.token).await;
    // The spend took allowance, never purchased credits.
    assert_eq!(
        balance.json["balance"], 1000,
        "only the purchased credits remain: {}",
        balance.text
    );
    let expired: i64 = app
        .get("/api/v1/me/transactions?limit=200", &member.token)
        .await
        .json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|t| t["kind"] == "expiry")
        .map(|t| -t["amount"].as_i64().expect("amount"))
        .sum();
    assert_eq!(expired, 11 * 100 - 30, "every unused allowance expired");
    let subs = app.get("/api/v1/me/subscriptions", &member.token).await;
    assert_eq!(subs.json["data"][0]["status"], "expired", "{}", subs.text);
    let told = app
        .get("/api/v1/me/notifications?limit=200", &member.token)
        .await;
    let kinds: Vec<&str> = told.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "subscription_ending")
            .count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "subscription_ended").count(),
        1,
        "{kinds:?}"
    );
    app.assert_ledger_ok().await;
}

async fn renewal_extends_the_subscription_and_bad_input_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend, "subscription_renewal").await;
    let admin = app.admin().await;
    let plan = package(
        &app,
        &admin,
        json!({"name": "Monthly", "kind": "subscription", "credits": 0, "daily_credits": 10,
               "duration_days": 30, "price": {"amount": 3000, "currency": "CNY"}}),
    )
    .await;
    let member = app.register("renewer@example.com").await;
    let other = app.register("someone-else@example.com").await;
    subscribe(&app, &member, &plan).await;
    let first = app
        .get("/api/v1/me/subscriptions", &member.token)
        .await
        .json["data"][0]
        .clone();
    let id = first["id"].as_str().expect("id").to_string();
    let renewal = app
        .post(
            &format!("/api/v1/me/subscriptions/{id}/renew"),
            &member.token,
            json!({"provider": "sandbox"}),
        )
        .await;
    assert_eq!(renewal.status, 201, "{}", renewal.text);
    assert_eq!(renewal.json["package_id"], plan.as_str());
    pay(&app, &renewal.json).await;
    app.settle_jobs().await;
    let now = app
        .get("/api/v1/me/subscriptions", &member.token)
        .await
        .json["data"]
        .clone();
    assert_eq!(
        now.as_array().map(Vec::len),
        Some(1),
        "extended, not a second one: {now}"
    );
    let ends = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["ends_at"].as_str().expect("ends_at"))
            .expect("time")
            .timestamp_millis()
    };
    assert_eq!(
        ends(&now[0]) - ends(&first),
        30 * 24 * HOUR_MS,
        "extended by its term"
    );
    assert_eq!(
        allowances(&app, &member).await.len(),
        1,
        "still one allowance today"
    );

    let on = app
        .patch(
            &format!("/api/v1/me/subscriptions/{id}"),
            &member.token,
            json!({"auto_renew": true}),
        )
        .await;
    assert_eq!(
        (on.status, &on.json["auto_renew"]),
        (200, &json!(true)),
        "{}",
        on.text
    );
    for (path, token, body, status) in [
        (
            format!("/api/v1/me/subscriptions/{id}"),
            &other.token,
            json!({"auto_renew": true}),
            404,
        ),
        (
            format!("/api/v1/me/subscriptions/{id}"),
            &member.token,
            json!({"auto_renew": "yes"}),
            422,
        ),
        (
            format!("/api/v1/me/subscriptions/{id}"),
            &member.token,
            json!({}),
            422,
        ),
    ] {
        let refused = app.patch(&path, token, body.clone()).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text);
        assert!(refused.is_problem());
    }
    let theirs = app
        .post(
            &format!("/api/v1/me/subscriptions/{id}/renew"),
            &other.token,
            json!({"provider": "sandbox"}),
        )
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    let unknown = app
        .post(
            &format!("/api/v1/me/subscriptions/{id}/renew"),
            &member.token,
            json!({"provider": "nope"}),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    let orders = app.get("/api/v1/orders", &member.token).await;
    assert_eq!(
        orders.json["data"].as_array().map(Vec::len),
        Some(2),
        "no order from refusals"
    );
    assert!(app.get("/api/v1/me/subscriptions", &other.token).await.json["data"] == json!([]));
}

async fn automatic_renewal_charges_the_saved_card_and_stops_after_three_declines(backend: Backend) {
    let app = TestApp::spawn(backend, "subscription_auto_renew").await;
    let admin = app.admin().await;
    let plan = package(
        &app,
        &admin,
        json!({"name": "Two days", "kind": "subscription", "credits": 0, "daily_credits": 10,
               "duration_days": 2, "price": {"amount": 500, "currency": "CNY"}}),
    )
    .await;
    let mut subscribers = Vec::new();
    for (email, card) in [
        ("renews@example.com", "4242424242424242"),
        ("declines@example.com", "4000000000000002"),
    ] {
        let member = app.register(email).await;
        let saved = app
            .post(
                "/api/v1/me/payment-methods",
                &member.token,
                json!({"provider": "sandbox", "card_number": card}),
            )
            .await;
        assert_eq!(saved.status, 201, "{}", saved.text);
        subscribe(&app, &member, &plan).await;
        let id = app
            .get("/api/v1/me/subscriptions", &member.token)
            .await
            .json["data"][0]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let on = app
            .patch(
                &format!("/api/v1/me/subscriptions/{id}"),
                &member.token,
                json!({"auto_renew": true}),
            )
            .await;
        assert_eq!(on.status, 200, "{}", on.text);
        subscribers.push(member);
    }
    // A day before the end the card is charged; a decline is tried again after 15 minutes,
    // then 4 hours, and the third turns renewal off.
    app.state.store.clock.advance_ms(25 * HOUR_MS);
    run_day(&app).await;
    // A second run at the same moment (another instance, an overlapping period) charges nothing.
    bursar_server::app::subscriptions::run_day(&app.state)
        .await
        .expect("the day runs again");
    app.settle_jobs().await;
    // (The day job's period in tests is an hour: the next run is in the next one.)
    app.state.store.clock.advance_ms(61 * 60_000);
    run_day(&app).await;
    app.state.store.clock.advance_ms(5 * HOUR_MS);
    run_day(&app).await;
    run_day(&app).await;

    let renewed = app
        .get("/api/v1/me/subscriptions", &subscribers[0].token)
        .await;
    let sub = &renewed.json["data"][0];
    let ends = chrono::DateTime::parse_from_rfc3339(sub["ends_at"].as_str().expect("ends_at"))
        .expect("time")
        .timestamp_millis();
    let starts =
        chrono::DateTime::parse_from_rfc3339(sub["starts_at"].as_str().expect("starts_at"))
            .expect("time")
            .timestamp_millis();
    assert_eq!(
        ends - starts,
        4 * 24 * HOUR_MS,
        "renewed once for its term: {sub}"
    );
    let orders = app.get("/api/v1/orders", &subscribers[0].token).await;
    let paid = orders.json["data"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["status"] == "paid")
        .count();
    assert_eq!(paid, 2, "{}", orders.text);

    let declined = app
        .get("/api/v1/me/subscriptions", &subscribers[1].token)
        .await;
    let sub = &declined.json["data"][0];
    assert_eq!(sub["auto_renew"], false, "{sub}");
    assert_eq!(sub["renew_last_error"], "card_declined");
    let orders = app.get("/api/v1/orders", &subscribers[1].token).await;
    let failed = orders.json["data"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["status"] == "failed")
        .count();
    assert_eq!(failed, 3, "three declines, then none: {}", orders.text);
    let told = app
        .get("/api/v1/me/notifications?limit=200", &subscribers[1].token)
        .await;
    let declines = told.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|n| n["kind"] == "payment_failed")
        .count();
    assert_eq!(declines, 3, "{}", told.text);
    app.assert_ledger_ok().await;
}

async fn a_full_refund_takes_back_the_time_it_bought(backend: Backend) {
    let app = TestApp::spawn(backend, "subscription_refund").await;
    let admin = app.admin().await;
    let plan = package(
        &app,
        &admin,
        json!({"name": "Monthly", "kind": "subscription", "credits": 0, "daily_credits": 10,
               "duration_days": 30, "price": {"amount": 3000, "currency": "CNY"}}),
    )
    .await;
    let member = app.register("refunded@example.com").await;
    let first = subscribe(&app, &member, &plan).await;
    let second = subscribe(&app, &member, &plan).await;
    let subscription = || async {
        app.get("/api/v1/me/subscriptions", &member.token)
            .await
            .json["data"][0]
            .clone()
    };
    let ends = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["ends_at"].as_str().expect("ends_at"))
            .expect("time")
            .timestamp_millis()
    };
    let extended = subscription().await;
    let refund = |order: Value, body: Value| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            let id = order["id"].as_str().expect("id").to_string();
            app.post(&format!("/api/v1/admin/orders/{id}/refund"), &token, body)
                .await
        }
    };

    // A partial refund leaves the term alone.
    let part = refund(second.clone(), json!({"amount": 1000})).await;
    assert_eq!(part.status, 200, "{}", part.text);
    assert_eq!(ends(&subscription().await), ends(&extended));
    // The rest of it: the 30 days it bought are taken back.
    let rest = refund(second, json!({})).await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let shortened = subscription().await;
    assert_eq!(shortened["status"], "active");
    assert_eq!(ends(&extended) - ends(&shortened), 30 * 24 * HOUR_MS);

    // The first order refunded too: nothing is left of the term, so it ends now.
    let all = refund(first, json!({})).await;
    assert_eq!(all.status, 200, "{}", all.text);
    let ended = subscription().await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert_eq!(ended["auto_renew"], false);
    let granted = allowances(&app, &member).await.len();
    app.state.store.clock.advance_ms(25 * HOUR_MS);
    run_day(&app).await;
    assert_eq!(
        allowances(&app, &member).await.len(),
        granted,
        "no allowance after it ended"
    );

    // A refund takes back only from the subscription its order bought: one that ran out is
    // gone, and a newer subscription of the same package is not touched.
    let old = subscribe(&app, &member, &plan).await;
    app.state.store.clock.advance_ms(31 * 24 * HOUR_MS);
    run_day(&app).await;
    assert_eq!(subscription().await["status"], "expired");
    subscribe(&app, &member, &plan).await;
    let newer = subscription().await;
    assert_eq!(newer["status"], "active");
    let late = refund(old, json!({})).await;
    assert_eq!(late.status, 200, "{}", late.text);
    let after = subscription().await;
    assert_eq!(
        (&after["id"], &after["status"]),
        (&newer["id"], &json!("active"))
    );
    assert_eq!(ends(&after), ends(&newer));
    app.assert_ledger_ok().await;
}

crate::for_both_backends!(
    a_full_refund_takes_back_the_time_it_bought,
    automatic_renewal_charges_the_saved_card_and_stops_after_three_declines,
    daily_allowances_arrive_once_a_local_day_and_never_pile_up,
    renewal_extends_the_subscription_and_bad_input_changes_nothing
);
