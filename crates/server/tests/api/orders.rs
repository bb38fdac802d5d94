//! Orders and payments through HTTP: the sandbox's hosted page, signed webhooks applied exactly
//! once, races between paying and cancelling or expiring, coupons, the first-purchase bonus,
//! refunds and receipts.

use bursar_payments::sandbox::{EVENT_FAILED, EVENT_SUCCEEDED, SandboxEvent};
use bursar_payments::signature::header_v1;
use serde_json::{Value, json};

use crate::helpers::{Member, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    checkout_payment_and_refund_run_without_http,
    the_sandbox_flow_pays_through_the_hosted_page_and_issues_a_receipt,
    a_webhook_is_applied_once_however_often_and_however_concurrently_it_arrives,
    forged_stale_foreign_and_malformed_webhooks_change_nothing,
    a_payment_for_the_wrong_amount_is_recorded_and_not_fulfilled,
    cancel_and_pay_race_to_exactly_one_outcome,
    expire_and_pay_race_to_exactly_one_outcome,
    coupon_limits_hold_under_concurrent_orders,
    the_first_purchase_bonus_is_paid_once_under_concurrent_first_orders,
    hidden_packages_are_neither_listed_nor_sold,
    refunds_claw_back_the_orders_credits_partially_and_fully,
    bank_transfers_are_confirmed_by_an_admin,
    a_bank_statement_confirms_the_orders_it_matches_once,
    bad_orders_are_refused_and_change_nothing,
    admins_manage_coupons_and_search_orders,
    order_creation_is_idempotent,
    a_payment_and_its_refund_in_one_batch_claw_back_the_credits,
);

const SECRET: &str = "whsec_test_sandbox";

pub(crate) async fn package(app: &TestApp, admin: &Member, body: Value) -> String {
    let created = app.post("/api/v1/admin/packages", &admin.token, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().expect("id").to_string()
}

async fn pack(app: &TestApp, admin: &Member, credits: i64, price: i64) -> String {
    package(
        app,
        admin,
        json!({"name": format!("{credits} credits"), "kind": "credit_pack", "credits": credits,
               "price": {"amount": price, "currency": "CNY"}}),
    )
    .await
}

async fn order(app: &TestApp, member: &Member, package_id: &str) -> Value {
    let created = app
        .post(
            "/api/v1/orders",
            &member.token,
            json!({"package_id": package_id, "provider": "sandbox"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json
}

fn now_s(app: &TestApp) -> i64 {
    app.state.store.clock.now_ms() / 1000
}

fn event(order: &Value, kind: &str, event_id: &str, amount: i64) -> SandboxEvent {
    SandboxEvent {
        id: event_id.to_string(),
        kind: kind.to_string(),
        payment_id: order["payment"]["id"]
            .as_str()
            .expect("payment id")
            .to_string(),
        order_id: order["id"].as_str().expect("order id").to_string(),
        amount: bursar_payments::Amount {
            amount,
            currency: "CNY".into(),
        },
        failure_reason: (kind == EVENT_FAILED).then(|| "card_declined".to_string()),
    }
}

/// Delivers a webhook body with the given signature header value.
fn deliver(
    app: &TestApp,
    body: Vec<u8>,
    signature: Option<String>,
) -> impl Future<Output = Resp> + use<> {
    let mut request = app
        .http
        .post(format!("{}/api/v1/webhooks/sandbox", app.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("Bursar-Signature", signature);
    }
    async move { TestApp::read(request.send().await.expect("answered")).await }
}

fn signed(app: &TestApp, event: &SandboxEvent) -> impl Future<Output = Resp> + use<> {
    let body = serde_json::to_vec(event).expect("serialises");
    let signature = header_v1(SECRET, now_s(app), &body);
    deliver(app, body, Some(signature))
}

pub(crate) async fn pay(app: &TestApp, order: &Value) -> Resp {
    let total = order["total"]["amount"].as_i64().expect("total");
    let resp = signed(app, &event(order, EVENT_SUCCEEDED, &new_event_id(), total)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp
}

fn new_event_id() -> String {
    bursar_store::ids::new_id("evt")
}

async fn order_status(app: &TestApp, member: &Member, order: &Value) -> Value {
    let id = order["id"].as_str().expect("id");
    let resp = app
        .get(&format!("/api/v1/orders/{id}"), &member.token)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json
}

/// Posts the hosted page's form as a browser would, following the redirect.
async fn submit_card(app: &TestApp, payment_id: &str, card: &str) -> Resp {
    let response = app
        .http
        .post(format!("{}/pay/sandbox/{payment_id}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("card_number", card)]).expect("encodes"))
        .send()
        .await
        .expect("answered");
    TestApp::read(response).await
}

async fn the_sandbox_flow_pays_through_the_hosted_page_and_issues_a_receipt(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let other = app.register("other@example.com").await;
    let package_id = package(
        &app,
        &admin,
        json!({"name": "1000 credits", "kind": "credit_pack", "credits": 1000, "bonus_credits": 50,
               "first_purchase_bonus_percent": 10, "price": {"amount": 8000, "currency": "CNY"}}),
    )
    .await;
    let listed = app.get("/api/v1/packages", &buyer.token).await;
    assert_eq!(listed.json["data"][0]["id"], package_id.as_str());

    let first = order(&app, &buyer, &package_id).await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["total"], json!({"amount": 8000, "currency": "CNY"}));
    assert_eq!(first["discount"], json!({"amount": 0, "currency": "CNY"}));
    assert_eq!(first["credits"], 1000);
    assert!(first["expires_at"].as_str().is_some());
    let payment_id = first["payment"]["id"]
        .as_str()
        .expect("payment id")
        .to_string();
    let redirect = first["payment"]["redirect_url"].as_str().expect("redirect");
    assert!(
        redirect.ends_with(&format!("/pay/sandbox/{payment_id}")),
        "{redirect}"
    );

    // The hosted page is a real form.
    let page = app
        .http
        .get(format!("{}/pay/sandbox/{payment_id}", app.base))
        .send()
        .await
        .expect("answered");
    let page = TestApp::read(page).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    assert!(page.text.contains("80.00 CNY"));
    // Not a test card: the form again, nothing changes.
    let unknown = submit_card(&app, &payment_id, "1234 5678").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.text.contains("4242 4242 4242 4242"));
    assert_eq!(
        order_status(&app, &buyer, &first).await["status"],
        "pending"
    );

    // A declined card fails the order, with the reason, and grants nothing.
    let declined = order(&app, &buyer, &package_id).await;
    let result = submit_card(
        &app,
        declined["payment"]["id"].as_str().expect("id"),
        "4000 0000 0000 0002",
    )
    .await;
    assert_eq!(result.status, 200);
    assert!(
        result.text.contains("data-status=\"failed\""),
        "{}",
        result.text
    );
    let failed = order_status(&app, &buyer, &declined).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_reason"], "card_declined");
    assert_eq!(app.balance(&buyer).await.0, 0);

    // The good card pays: credits, bonus, and the first-purchase bonus (10% of 1000).
    let result = submit_card(&app, &payment_id, "4242 4242 4242 4242").await;
    assert_eq!(result.status, 200);
    assert!(
        result.text.contains("data-status=\"paid\""),
        "{}",
        result.text
    );
    assert!(result.text.contains("1,150 credits"), "{}", result.text);
    let paid = order_status(&app, &buyer, &first).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["first_purchase_bonus"], 100);
    assert_eq!(app.balance(&buyer).await.0, 1150);

    // A second order gets no first-purchase bonus.
    let second = order(&app, &buyer, &package_id).await;
    submit_card(
        &app,
        second["payment"]["id"].as_str().expect("id"),
        "4242424242424242",
    )
    .await;
    assert_eq!(app.balance(&buyer).await.0, 1150 + 1050);

    // History: own orders only, newest first; someone else's reads as not found.
    let history = app.get("/api/v1/orders", &buyer.token).await;
    let statuses: Vec<&str> = history.json["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["paid", "failed", "paid"]);
    let first_id = first["id"].as_str().expect("id");
    assert_eq!(
        app.get(&format!("/api/v1/orders/{first_id}"), &other.token)
            .await
            .status,
        404
    );
    assert!(
        app.get("/api/v1/orders", &other.token).await.json["data"]
            .as_array()
            .expect("list")
            .is_empty()
    );
    let transactions = app.get("/api/v1/me/transactions", &buyer.token).await;
    assert!(transactions.text.contains("purchase") && transactions.text.contains("bonus"));

    // Receipts: sequential numbers, seller details, JSON and printable HTML.
    let receipt = app
        .get(&format!("/api/v1/orders/{first_id}/receipt"), &buyer.token)
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    assert_eq!(receipt.json["number"], "R-00000001");
    assert_eq!(receipt.json["seller"]["name"], "Bursar Test Shop");
    assert_eq!(receipt.json["seller"]["tax_id"], "TAX-1");
    assert_eq!(
        receipt.json["total"],
        json!({"amount": 8000, "currency": "CNY"})
    );
    assert_eq!(receipt.json["items"][0]["quantity"], 1);
    assert_eq!(receipt.json["payment_method"], "sandbox");
    let second_id = second["id"].as_str().expect("id");
    let second_receipt = app
        .get(&format!("/api/v1/orders/{second_id}/receipt"), &buyer.token)
        .await;
    assert_eq!(second_receipt.json["number"], "R-00000002");
    let html = app
        .get(
            &format!("/api/v1/orders/{first_id}/receipt?format=html"),
            &buyer.token,
        )
        .await;
    assert_eq!(html.status, 200);
    assert!(html.text.contains("Receipt R-00000001") && html.text.contains("80.00 CNY"));
    let declined_id = declined["id"].as_str().expect("id");
    let none = app
        .get(
            &format!("/api/v1/orders/{declined_id}/receipt"),
            &buyer.token,
        )
        .await;
    assert_eq!(none.status, 409);
    assert!(none.is_problem());
    assert_eq!(
        app.get(&format!("/api/v1/orders/{first_id}/receipt"), &other.token)
            .await
            .status,
        404
    );
    app.assert_ledger_ok().await;
}

async fn a_webhook_is_applied_once_however_often_and_however_concurrently_it_arrives(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let placed = order(&app, &buyer, &package_id).await;
    let same = event(&placed, EVENT_SUCCEEDED, "evt_same", 4500);
    let deliveries: Vec<_> = (0..50).map(|_| signed(&app, &same)).collect();
    for resp in futures::future::join_all(deliveries).await {
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    let different: Vec<_> = (0..50)
        .map(|_| {
            signed(
                &app,
                &event(&placed, EVENT_SUCCEEDED, &new_event_id(), 4500),
            )
        })
        .collect();
    for resp in futures::future::join_all(different).await {
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    assert_eq!(app.balance(&buyer).await.0, 500);
    let purchases = app.get("/api/v1/me/transactions", &buyer.token).await;
    assert_eq!(purchases.json["data"].as_array().expect("list").len(), 1);
    assert_eq!(order_status(&app, &buyer, &placed).await["status"], "paid");
    // A late failure for the paid order changes nothing.
    let late = signed(&app, &event(&placed, EVENT_FAILED, &new_event_id(), 4500)).await;
    assert_eq!(late.status, 200);
    assert_eq!(order_status(&app, &buyer, &placed).await["status"], "paid");
    app.assert_ledger_ok().await;
}

async fn forged_stale_foreign_and_malformed_webhooks_change_nothing(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let placed = order(&app, &buyer, &package_id).await;
    let body = serde_json::to_vec(&event(&placed, EVENT_SUCCEEDED, "evt_x", 4500)).expect("json");
    let now = now_s(&app);
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] = b'9';
    let cases = [
        ("no signature", body.clone(), None),
        (
            "forged",
            body.clone(),
            Some(format!("t={now},v1={}", "ab".repeat(32))),
        ),
        (
            "stale",
            body.clone(),
            Some(header_v1(SECRET, now - 400, &body)),
        ),
        (
            "another secret",
            body.clone(),
            Some(header_v1("whsec_other", now, &body)),
        ),
        ("malformed header", body.clone(), Some("v1=abc".to_string())),
        (
            "tampered body",
            tampered,
            Some(header_v1(SECRET, now, &body)),
        ),
    ];
    for (what, body, signature) in cases {
        let resp = deliver(&app, body, signature).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text);
        assert_eq!(resp.code(), "invalid_signature", "{what}");
        assert!(resp.is_problem(), "{what}");
    }
    // Signed, but not a sandbox event: refused as malformed.
    let junk = br#"{"hello": "world"}"#.to_vec();
    let resp = deliver(&app, junk.clone(), Some(header_v1(SECRET, now, &junk))).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "invalid_request");
    let unknown = app
        .http
        .post(format!("{}/api/v1/webhooks/nonsense", app.base))
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        order_status(&app, &buyer, &placed).await["status"],
        "pending"
    );
    assert_eq!(app.balance(&buyer).await.0, 0);
    // The genuine event still applies afterwards: the refused ones were not recorded.
    let genuine = signed(&app, &event(&placed, EVENT_SUCCEEDED, "evt_x", 4500)).await;
    assert_eq!(genuine.status, 200);
    assert_eq!(app.balance(&buyer).await.0, 500);
    app.assert_ledger_ok().await;
}

async fn a_payment_for_the_wrong_amount_is_recorded_and_not_fulfilled(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let placed = order(&app, &buyer, &package_id).await;
    let short = signed(&app, &event(&placed, EVENT_SUCCEEDED, "evt_short", 100)).await;
    assert_eq!(short.status, 200, "{}", short.text);
    let mut other_currency = event(&placed, EVENT_SUCCEEDED, "evt_usd", 4500);
    other_currency.amount.currency = "USD".into();
    assert_eq!(signed(&app, &other_currency).await.status, 200);
    let now = order_status(&app, &buyer, &placed).await;
    assert_eq!(now["status"], "pending");
    assert_eq!(now["payment_status"], "mismatch");
    assert_eq!(app.balance(&buyer).await.0, 0);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM provider_events WHERE outcome = 'amount_mismatch'",
    )
    .fetch_one(&app.state.store.db.pool)
    .await
    .expect("query");
    assert_eq!(recorded, 2);
    app.assert_ledger_ok().await;
}

async fn cancel_and_pay_race_to_exactly_one_outcome(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 100, 1000).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(order(&app, &buyer, &package_id).await);
    }
    let mut cancels = Vec::new();
    let mut payments = Vec::new();
    for placed in &orders {
        let id = placed["id"].as_str().expect("id");
        cancels.push(app.post(
            &format!("/api/v1/orders/{id}/cancel"),
            &buyer.token,
            json!({}),
        ));
        payments.push(signed(
            &app,
            &event(placed, EVENT_SUCCEEDED, &new_event_id(), 1000),
        ));
    }
    let (cancels, payments) = tokio::join!(
        futures::future::join_all(cancels),
        futures::future::join_all(payments)
    );
    assert!(payments.iter().all(|p| p.status == 200));
    // Late money goes back through the refund jobs the payments queued.
    app.settle_jobs().await;
    let mut paid = 0;
    for (placed, cancel) in orders.iter().zip(&cancels) {
        let now = order_status(&app, &buyer, placed).await;
        match now["status"].as_str() {
            Some("paid") => {
                paid += 1;
                assert_eq!(cancel.status, 409, "{}", cancel.text);
                assert_eq!(now["payment_status"], "succeeded");
            }
            Some("cancelled") => {
                assert_eq!(cancel.status, 200, "{}", cancel.text);
                // The money that arrived anyway went back through the provider.
                assert_eq!(now["payment_status"], "refunded", "{now}");
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!(app.balance(&buyer).await.0, paid * 100);
    app.assert_ledger_ok().await;
}

async fn expire_and_pay_race_to_exactly_one_outcome(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 100, 1000).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(order(&app, &buyer, &package_id).await);
    }
    // Past the 30-minute payment window.
    app.state.store.clock.advance_ms(31 * 60 * 1000);
    let payments: Vec<_> = orders
        .iter()
        .map(|placed| signed(&app, &event(placed, EVENT_SUCCEEDED, &new_event_id(), 1000)))
        .collect();
    let expiry = bursar_server::jobs::expire_orders(&app.state);
    let (payments, expired) = tokio::join!(futures::future::join_all(payments), expiry);
    assert!(payments.iter().all(|p| p.status == 200));
    let expired = expired.expect("expiry runs");
    app.settle_jobs().await;
    let (mut paid, mut expired_seen) = (0, 0);
    for placed in &orders {
        let now = order_status(&app, &buyer, placed).await;
        match now["status"].as_str() {
            Some("paid") => paid += 1,
            Some("expired") => {
                expired_seen += 1;
                assert_eq!(now["payment_status"], "refunded", "{now}");
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!(paid + expired_seen, 20);
    // The scheduled sweep may have expired some of them too (the clock crossed into a new
    // sweep period), so this call expired at most the rest.
    assert!(expired as i64 <= expired_seen, "{expired} > {expired_seen}");
    assert_eq!(app.balance(&buyer).await.0, paid * 100);
    // Nothing pending is left to expire.
    assert_eq!(
        bursar_server::jobs::expire_orders(&app.state)
            .await
            .expect("runs"),
        0
    );
    app.assert_ledger_ok().await;
}

async fn coupon_limits_hold_under_concurrent_orders(app: TestApp) {
    let admin = app.admin().await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let coupon = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "launch10", "percent_off": 10, "max_redemptions": 5}),
        )
        .await;
    assert_eq!(coupon.status, 201, "{}", coupon.text);
    let mut buyers = Vec::new();
    for i in 0..12 {
        buyers.push(app.register(&format!("buyer{i}@example.com")).await);
    }
    let attempts: Vec<_> = buyers
        .iter()
        .map(|b| {
            app.post(
                "/api/v1/orders",
                &b.token,
                json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "LAUNCH10"}),
            )
        })
        .collect();
    let results = futures::future::join_all(attempts).await;
    let won: Vec<(&Member, &Resp)> = buyers
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.status == 201)
        .collect();
    assert_eq!(
        won.len(),
        5,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.status == 409 && r.is_problem())
    );
    let (_, first) = won[0];
    assert_eq!(
        first.json["discount"],
        json!({"amount": 450, "currency": "CNY"})
    );
    assert_eq!(
        first.json["total"],
        json!({"amount": 4050, "currency": "CNY"})
    );
    assert_eq!(first.json["coupon_code"], "LAUNCH10");

    // Paying counts a redemption; cancelling gives the use back, so someone else may use it.
    pay(&app, &first.json).await;
    let (owner, second) = won[1];
    let id = second.json["id"].as_str().expect("id");
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            &owner.token,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let listed = app.get("/api/v1/admin/coupons", &admin.token).await;
    assert_eq!(listed.json["data"][0]["times_redeemed"], 1);
    assert_eq!(listed.json["data"][0]["reserved"], 3);
    let late = app.register("late@example.com").await;
    let retry = app
        .post(
            "/api/v1/orders",
            &late.token,
            json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "launch10"}),
        )
        .await;
    assert_eq!(retry.status, 201, "{}", retry.text);

    // Per user: one use each, however many orders race for it.
    let per_user = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "ONCE", "amount_off": 500, "currency": "CNY", "max_per_user": 1}),
        )
        .await;
    assert_eq!(per_user.status, 201, "{}", per_user.text);
    let buyer = app.register("eager@example.com").await;
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            app.post(
                "/api/v1/orders",
                &buyer.token,
                json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "once"}),
            )
        })
        .collect();
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1);
    let winner = results.iter().find(|r| r.status == 201).expect("one");
    assert_eq!(
        winner.json["total"],
        json!({"amount": 4000, "currency": "CNY"})
    );
    app.assert_ledger_ok().await;
    // Verification notices a coupon count that disagrees with its orders, and an order whose
    // recorded grants disagree with its transfers.
    let pool = &app.state.store.db.pool;
    sqlx::query("UPDATE coupons SET redeemed = redeemed + 1 WHERE code = 'ONCE'")
        .execute(pool)
        .await
        .expect("corrupts");
    sqlx::query("UPDATE orders SET credits_granted = credits_granted + 1 WHERE status = 'paid'")
        .execute(pool)
        .await
        .expect("corrupts");
    let report = bursar_store::verify::verify(&app.state.store.db)
        .await
        .expect("verify runs");
    assert!(!report.ok);
    let problems = report.problems.join("\n");
    assert!(problems.contains("coupon's counts differ"), "{problems}");
    assert!(problems.contains("order's grants differ"), "{problems}");
}

async fn the_first_purchase_bonus_is_paid_once_under_concurrent_first_orders(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = package(
        &app,
        &admin,
        json!({"name": "Starter", "kind": "credit_pack", "credits": 1000,
               "first_purchase_bonus_percent": 20, "price": {"amount": 8000, "currency": "CNY"}}),
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(order(&app, &buyer, &package_id).await);
    }
    let payments: Vec<_> = orders
        .iter()
        .map(|placed| signed(&app, &event(placed, EVENT_SUCCEEDED, &new_event_id(), 8000)))
        .collect();
    for resp in futures::future::join_all(payments).await {
        assert_eq!(resp.status, 200);
    }
    assert_eq!(app.balance(&buyer).await.0, 8 * 1000 + 200);
    let mut bonuses = 0;
    for placed in &orders {
        bonuses += order_status(&app, &buyer, placed).await["first_purchase_bonus"]
            .as_i64()
            .expect("bonus");
    }
    assert_eq!(bonuses, 200);
    app.assert_ledger_ok().await;
}

async fn hidden_packages_are_neither_listed_nor_sold(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let vip = package(
        &app,
        &admin,
        json!({"name": "VIP", "kind": "credit_pack", "credits": 10, "min_balance": 10000,
               "min_level": 99.99, "price": {"amount": 100, "currency": "CNY"}}),
    )
    .await;
    let try_buy = || {
        app.post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": vip, "provider": "sandbox"}),
        )
    };
    let refused = try_buy().await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert!(refused.is_problem());
    app.grant(&buyer.id, 10_000).await;
    assert_eq!(try_buy().await.status, 404, "balance alone is not enough");
    let patched = app
        .patch(
            &format!("/api/v1/admin/users/{}", buyer.id),
            &admin.token,
            json!({"level": 99.99}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let listed = app.get("/api/v1/packages", &buyer.token).await;
    assert_eq!(listed.json["data"][0]["id"], vip.as_str());
    assert_eq!(try_buy().await.status, 201);
    // Inactive packages are not sold either.
    let mut off = json!({"name": "VIP", "kind": "credit_pack", "credits": 10,
                         "price": {"amount": 100, "currency": "CNY"}, "active": false});
    off["min_balance"] = json!(0);
    let updated = app
        .send(
            "PUT",
            &format!("/api/v1/admin/packages/{vip}"),
            Some(&admin.token),
            Some(&off),
            &[],
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(try_buy().await.status, 404);
}

async fn refund(app: &TestApp, admin: &Member, order: &Value, body: Value) -> Resp {
    let id = order["id"].as_str().expect("id");
    app.post(
        &format!("/api/v1/admin/orders/{id}/refund"),
        &admin.token,
        body,
    )
    .await
}

async fn refunds_claw_back_the_orders_credits_partially_and_fully(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 1000, 8000).await;
    let placed = order(&app, &buyer, &package_id).await;
    // Not paid yet: nothing to refund.
    assert_eq!(refund(&app, &admin, &placed, json!({})).await.status, 409);
    pay(&app, &placed).await;
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &buyer.token,
            json!({"amount": 300}),
        )
        .await;
    assert_eq!(spent.status, 200);

    // Half the money back: half the credits (500) back, from the 700 left of the order.
    let half = refund(
        &app,
        &admin,
        &placed,
        json!({"amount": 4000, "reason": "partial"}),
    )
    .await;
    assert_eq!(half.status, 200, "{}", half.text);
    assert_eq!(half.json["credits_clawed_back"], 500);
    assert_eq!(half.json["credits_not_recovered"], 0);
    assert_eq!(half.json["order_status"], "paid");
    assert_eq!(half.json["status"], "succeeded");
    assert_eq!(app.balance(&buyer).await.0, 200);
    // More than is left is refused and changes nothing.
    let too_much = refund(&app, &admin, &placed, json!({"amount": 4001})).await;
    assert_eq!(too_much.status, 409);
    assert_eq!(app.balance(&buyer).await.0, 200);

    // The rest: the last 500 are owed, but capped at what is left of the order (200).
    let rest = refund(&app, &admin, &placed, json!({})).await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(rest.json["amount"], 4000);
    assert_eq!(rest.json["credits_clawed_back"], 200);
    assert_eq!(rest.json["credits_not_recovered"], 300);
    assert_eq!(rest.json["order_status"], "refunded");
    assert_eq!(app.balance(&buyer).await.0, 0);
    let now = order_status(&app, &buyer, &placed).await;
    assert_eq!(now["status"], "refunded");
    assert_eq!(
        now["amount_refunded"],
        json!({"amount": 8000, "currency": "CNY"})
    );
    assert_eq!(refund(&app, &admin, &placed, json!({})).await.status, 409);

    // With allow_negative the clawback may also take other credits and the overdraft: with a
    // limit of 100, the balance goes to -100 and the rest is reported as not recovered.
    let second = order(&app, &buyer, &package_id).await;
    pay(&app, &second).await;
    app.grant(&buyer.id, 50).await;
    app.post(
        "/api/v1/credits/spend",
        &buyer.token,
        json!({"amount": 1000}),
    )
    .await;
    assert_eq!(app.balance(&buyer).await.0, 50);
    let patched = app
        .patch(
            &format!("/api/v1/admin/users/{}", buyer.id),
            &admin.token,
            json!({"overdraft_limit": 100}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let all = refund(&app, &admin, &second, json!({"allow_negative": true})).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.json["credits_clawed_back"], 150);
    assert_eq!(all.json["credits_not_recovered"], 850);
    assert_eq!(app.balance(&buyer).await.0, -100);

    // Members cannot refund; every refund is in the audit log.
    assert_eq!(refund(&app, &buyer, &second, json!({})).await.status, 403);
    let audit = app.get("/api/v1/admin/audit-log", &admin.token).await;
    assert_eq!(
        audit.text.matches("order.refund").count(),
        3,
        "{}",
        audit.text
    );
    app.assert_ledger_ok().await;
}

async fn bank_transfers_are_confirmed_by_an_admin(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let placed = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "bank_transfer"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let reference = placed.json["payment"]["reference"]
        .as_str()
        .expect("reference");
    assert!(reference.starts_with("BT-"));
    let id = placed.json["id"].as_str().expect("id");
    let confirm = |token: &str| {
        app.post(
            &format!("/api/v1/admin/orders/{id}/confirm"),
            token,
            json!({"reference": "bank-123"}),
        )
    };
    assert_eq!(confirm(&buyer.token).await.status, 403);
    // A bank transfer takes days: the 30-minute window of card payments does not apply.
    app.state.store.clock.advance_ms(2 * 3600 * 1000);
    bursar_server::jobs::expire_orders(&app.state)
        .await
        .expect("runs");
    let confirmed = confirm(&admin.token).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.json["status"], "paid");
    assert_eq!(app.balance(&buyer).await.0, 500);
    assert_eq!(confirm(&admin.token).await.status, 409);
    // One entry, written with the fulfilment; the refused second confirmation adds none.
    let audit = app.get("/api/v1/admin/audit-log", &admin.token).await;
    assert_eq!(
        audit.text.matches("order.confirm").count(),
        1,
        "{}",
        audit.text
    );
    assert_eq!(app.balance(&buyer).await.0, 500);
    // Refunding a bank transfer claws back credits; the money goes back by hand.
    let refunded = refund(&app, &admin, &placed.json, json!({})).await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    assert_eq!(refunded.json["status"], "failed");
    assert!(
        refunded.json["failure_reason"]
            .as_str()
            .expect("reason")
            .contains("by hand")
    );
    // Sandbox orders are not confirmed by hand.
    let sandbox = order(&app, &buyer, &package_id).await;
    let sandbox_id = sandbox["id"].as_str().expect("id");
    let resp = app
        .post(
            &format!("/api/v1/admin/orders/{sandbox_id}/confirm"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(resp.status, 409);
    app.assert_ledger_ok().await;
}

async fn a_bank_statement_confirms_the_orders_it_matches_once(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let mut references = Vec::new();
    for _ in 0..3 {
        let placed = app
            .post(
                "/api/v1/orders",
                &buyer.token,
                json!({"package_id": package_id, "provider": "bank_transfer"}),
            )
            .await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        let reference = placed.json["payment"]["reference"]
            .as_str()
            .expect("reference")
            .to_string();
        references.push((
            placed.json["id"].as_str().expect("id").to_string(),
            reference,
        ));
    }
    let (paid_id, paid_ref) = &references[0];
    // As a bank prints it: lower case, spaced.
    let typed = format!("bt {}", paid_ref[3..].to_lowercase());
    let mut typo = references[2].1.clone().into_bytes();
    // A digit for another digit, or a letter for another letter: a substitution that keeps the
    // reference's length, which MOD 97-10 always detects (a digit typed as a letter changes
    // the length of the number it spells, and one time in 97 still checks out).
    typo[4] = match typo[4] {
        b'0'..=b'8' | b'A'..=b'Y' => typo[4] + 1,
        b'9' => b'0',
        _ => b'A',
    };
    let typo = String::from_utf8(typo).expect("ascii");
    let stranger = bursar_payments::bank_transfer::reference("pay_nobody0000000000");
    let statement = format!(
        "date,reference,amount,currency,description\n\
         2026-12-05,{typed},45.00,CNY,\"Transfer, from a buyer\"\n\
         2026-12-05,{},44.00,CNY,short by one\n\
         2026-12-05,{typo},45.00,CNY,mistyped\n\
         2026-12-05,{stranger},45.00,CNY,nobody's\n",
        references[1].1
    );
    let import = |token: &str, body: String| {
        let request = app
            .http
            .post(format!("{}/api/v1/admin/bank-statements", app.base))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(body);
        async move { TestApp::read(request.send().await.expect("answered")).await }
    };
    let first = import(&admin.token, statement.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        (&first.json["confirmed"], &first.json["unmatched"]),
        (&json!(1), &json!(3)),
        "{}",
        first.text
    );
    let lines = first.json["lines"].as_array().expect("lines");
    assert_eq!(lines[0]["outcome"], "confirmed");
    assert_eq!(lines[0]["order_id"], paid_id.as_str());
    assert!(
        lines[1]["reason"]
            .as_str()
            .expect("reason")
            .contains("amount")
    );
    assert!(
        lines[2]["reason"]
            .as_str()
            .expect("reason")
            .contains("check digits")
    );
    assert!(
        lines[3]["reason"]
            .as_str()
            .expect("reason")
            .contains("no order")
    );
    assert_eq!(app.balance(&buyer).await.0, 500);

    // The same statement again: confirmed once.
    let again = import(&admin.token, statement.clone()).await;
    assert_eq!(again.json["confirmed"], 0, "{}", again.text);
    assert_eq!(again.json["already_paid"], 1);
    assert_eq!(app.balance(&buyer).await.0, 500);
    // Only admins import, and a file without the columns is refused.
    assert_eq!(import(&buyer.token, statement).await.status, 403);
    for bad in ["", "just some words", "when,what\n1,2\n"] {
        let resp = import(&admin.token, bad.to_string()).await;
        assert_eq!(resp.status, 422, "{bad:?}: {}", resp.text);
        assert!(resp.is_problem());
    }
    assert_eq!(app.balance(&buyer).await.0, 500);
    app.assert_ledger_ok().await;
}

async fn bad_orders_are_refused_and_change_nothing(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let cases = [
        (
            json!({"package_id": package_id, "provider": "stripe"}),
            422,
            "not configured",
        ),
        (
            json!({"package_id": package_id, "provider": "paypal"}),
            422,
            "unknown provider",
        ),
        (
            json!({"package_id": package_id, "provider": "sandbox", "quantity": 0}),
            422,
            "quantity",
        ),
        (
            json!({"package_id": package_id, "provider": "sandbox", "quantity": 1.5}),
            422,
            "",
        ),
        (
            json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "NOPE"}),
            422,
            "coupon",
        ),
        (
            json!({"package_id": package_id, "provider": "sandbox", "extra": 1}),
            422,
            "",
        ),
        (
            json!({"package_id": "pkg_missing", "provider": "sandbox"}),
            404,
            "",
        ),
        (json!({"provider": "sandbox"}), 422, ""),
        (
            json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "A\u{0}B"}),
            422,
            "NUL",
        ),
    ];
    for (body, status, detail) in cases {
        let resp = app.post("/api/v1/orders", &buyer.token, body.clone()).await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text);
        assert!(resp.is_problem(), "{body}");
        assert!(
            resp.json["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(detail),
            "{body}: {}",
            resp.text
        );
    }
    let expired_coupon = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "OLD", "percent_off": 5, "valid_until": "2020-01-01"}),
        )
        .await;
    assert_eq!(expired_coupon.status, 201);
    let resp = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "old"}),
        )
        .await;
    assert_eq!(resp.status, 422);
    assert!(resp.text.contains("expired"));
    // A service key cannot buy for itself; nobody can buy without signing in.
    let key = app.api_key().await;
    let resp = app
        .post(
            "/api/v1/orders",
            &key,
            json!({"package_id": package_id, "provider": "sandbox"}),
        )
        .await;
    assert_eq!(resp.status, 403);
    let resp = app
        .send(
            "POST",
            "/api/v1/orders",
            None,
            Some(&json!({"package_id": package_id, "provider": "sandbox"})),
            &[],
        )
        .await;
    assert_eq!(resp.status, 401);
    let mine = app.get("/api/v1/orders", &buyer.token).await;
    assert!(mine.json["data"].as_array().expect("list").is_empty());
    // NUL never reaches the database, from a path or a query either.
    for path in ["/api/v1/orders/ord_%00x", "/api/v1/orders?cursor=%00"] {
        let resp = app.get(path, &buyer.token).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text);
        assert!(resp.is_problem());
    }
    let capture = app
        .post(
            "/api/v1/credits/holds/hld_%00x/capture",
            &buyer.token,
            json!({}),
        )
        .await;
    assert_eq!(capture.status, 400);
    // Cancelling someone else's order reads as not found; a paid one is a conflict.
    let placed = order(&app, &buyer, &package_id).await;
    let other = app.register("other@example.com").await;
    let id = placed["id"].as_str().expect("id");
    assert_eq!(
        app.post(
            &format!("/api/v1/orders/{id}/cancel"),
            &other.token,
            json!({})
        )
        .await
        .status,
        404
    );
    pay(&app, &placed).await;
    let resp = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            &buyer.token,
            json!({}),
        )
        .await;
    assert_eq!(resp.status, 409);
    assert!(resp.is_problem());
}

async fn admins_manage_coupons_and_search_orders(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let invalid = [
        json!({"code": "X"}),
        json!({"code": "X", "percent_off": 10, "amount_off": 100, "currency": "CNY"}),
        json!({"code": "X", "percent_off": 0}),
        json!({"code": "X", "percent_off": 101}),
        json!({"code": "X", "amount_off": 100}),
        json!({"code": "bad code!", "percent_off": 10}),
        json!({"code": "X", "percent_off": 10, "valid_from": "2027-01-01", "valid_until": "2026-01-01"}),
        json!({"code": "X", "percent_off": 10, "valid_until": "soon"}),
        json!({"code": "X", "percent_off": 10, "max_redemptions": 0}),
        json!({"code": "X", "percent_off": 10, "package_ids": []}),
    ];
    for body in invalid {
        let resp = app
            .post("/api/v1/admin/coupons", &admin.token, body.clone())
            .await;
        assert_eq!(resp.status, 422, "{body}: {}", resp.text);
        assert!(resp.is_problem());
    }
    assert!(
        app.get("/api/v1/admin/coupons", &admin.token).await.json["data"]
            .as_array()
            .expect("list")
            .is_empty()
    );
    let created = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "Only-This", "amount_off": 1000, "currency": "CNY", "package_ids": [package_id]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["code"], "ONLY-THIS");
    let coupon_id = created.json["id"].as_str().expect("id").to_string();
    let duplicate = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "only-this", "percent_off": 5}),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    let other_package = pack(&app, &admin, 100, 1000).await;
    let resp = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": other_package, "provider": "sandbox", "coupon_code": "only-this"}),
        )
        .await;
    assert_eq!(resp.status, 422, "restricted to another package");
    let updated = app
        .send(
            "PUT",
            &format!("/api/v1/admin/coupons/{coupon_id}"),
            Some(&admin.token),
            Some(&json!({"code": "ONLY-THIS", "amount_off": 1000, "currency": "CNY", "active": false})),
            &[],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["active"], false);
    let resp = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "sandbox", "coupon_code": "only-this"}),
        )
        .await;
    assert_eq!(resp.status, 422, "inactive");
    let deleted = app
        .send(
            "DELETE",
            &format!("/api/v1/admin/coupons/{coupon_id}"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&format!("/api/v1/admin/coupons/{coupon_id}"), &admin.token)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/v1/admin/coupons", &buyer.token).await.status,
        403
    );

    // Order search.
    let first = order(&app, &buyer, &package_id).await;
    pay(&app, &first).await;
    order(&app, &buyer, &package_id).await;
    let all = app.get("/api/v1/admin/orders", &admin.token).await;
    assert_eq!(all.json["data"].as_array().expect("list").len(), 2);
    let paid = app
        .get(
            "/api/v1/admin/orders?status=paid&provider=sandbox",
            &admin.token,
        )
        .await;
    assert_eq!(paid.json["data"].as_array().expect("list").len(), 1);
    assert_eq!(paid.json["data"][0]["id"], first["id"]);
    let future = app
        .get("/api/v1/admin/orders?from=2100-01-01", &admin.token)
        .await;
    assert!(future.json["data"].as_array().expect("list").is_empty());
    let paged = app.get("/api/v1/admin/orders?limit=1", &admin.token).await;
    assert!(paged.json["next_cursor"].as_str().is_some());
    assert_eq!(
        app.get("/api/v1/admin/orders?status=lost", &admin.token)
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/v1/admin/orders?from=yesterday", &admin.token)
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/v1/admin/orders", &buyer.token).await.status,
        403
    );
    let one = first["id"].as_str().expect("id");
    assert_eq!(
        app.get(&format!("/api/v1/admin/orders/{one}"), &admin.token)
            .await
            .json["status"],
        "paid"
    );
}

async fn order_creation_is_idempotent(app: TestApp) {
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let body = json!({"package_id": package_id, "provider": "sandbox"});
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            app.send(
                "POST",
                "/api/v1/orders",
                Some(&buyer.token),
                Some(&body),
                &[("Idempotency-Key", "order-1")],
            )
        })
        .collect();
    let results = futures::future::join_all(attempts).await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    assert!(
        results.iter().all(|r| r.status == 201 || r.status == 409),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        created
            .iter()
            .all(|r| r.json["id"] == created[0].json["id"])
    );
    let again = app
        .send(
            "POST",
            "/api/v1/orders",
            Some(&buyer.token),
            Some(&body),
            &[("Idempotency-Key", "order-1")],
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.text, created[0].text);
    let mine = app.get("/api/v1/orders", &buyer.token).await;
    assert_eq!(mine.json["data"].as_array().expect("list").len(), 1);
    let other_body = json!({"package_id": package_id, "provider": "sandbox", "quantity": 2});
    let mismatch = app
        .send(
            "POST",
            "/api/v1/orders",
            Some(&buyer.token),
            Some(&other_body),
            &[("Idempotency-Key", "order-1")],
        )
        .await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.code(), "idempotency_mismatch");

    // The package leaves the catalog: a retry still gets the first answer.
    let off = json!({"name": "500 credits", "kind": "credit_pack", "credits": 500,
                     "price": {"amount": 4500, "currency": "CNY"}, "active": false});
    let updated = app
        .send(
            "PUT",
            &format!("/api/v1/admin/packages/{package_id}"),
            Some(&admin.token),
            Some(&off),
            &[],
        )
        .await;
    assert_eq!(updated.status, 200);
    let replay = app
        .send(
            "POST",
            "/api/v1/orders",
            Some(&buyer.token),
            Some(&body),
            &[("Idempotency-Key", "order-1")],
        )
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.text, created[0].text);

    // A key whose request stopped before answering is taken over after a minute.
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at)
         VALUES ($1, 'abandoned', 'some hash', 0, '', 0)",
    )
    .bind(&buyer.id)
    .execute(&app.state.store.db.pool)
    .await
    .expect("inserts");
    let on = json!({"name": "500 credits", "kind": "credit_pack", "credits": 500,
                    "price": {"amount": 4500, "currency": "CNY"}});
    app.send(
        "PUT",
        &format!("/api/v1/admin/packages/{package_id}"),
        Some(&admin.token),
        Some(&on),
        &[],
    )
    .await;
    sqlx::query("UPDATE idempotency_keys SET request_hash = (SELECT request_hash FROM idempotency_keys WHERE key = 'order-1') WHERE key = 'abandoned'")
        .execute(&app.state.store.db.pool)
        .await
        .expect("updates");
    let taken = app
        .send(
            "POST",
            "/api/v1/orders",
            Some(&buyer.token),
            Some(&body),
            &[("Idempotency-Key", "abandoned")],
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.text);
    assert_ne!(taken.json["id"], created[0].json["id"]);
}

async fn a_payment_and_its_refund_in_one_batch_claw_back_the_credits(app: TestApp) {
    use bursar_core::FulfilmentOutcome;
    use bursar_store::ledger::{PaymentEvent, PaymentOutcome};
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package_id = pack(&app, &admin, 500, 4500).await;
    let placed = order(&app, &buyer, &package_id).await;
    let event = |id: &str, outcome: PaymentOutcome| PaymentEvent {
        provider: "sandbox".into(),
        event_id: id.into(),
        event_type: "test".into(),
        outcome,
        payment_id: placed["payment"]["id"].as_str().map(str::to_string),
        provider_ref: None,
        amount: Some(bursar_core::Money {
            amount: 4500,
            currency: "CNY".into(),
        }),
        confirmed_by: None,
    };
    let ledger = &app.state.store.ledger;
    // Sent together, so the writer usually takes both in one batch.
    let (paid, refunded) = tokio::join!(
        ledger.fulfil(event("evt_pay", PaymentOutcome::Succeeded)),
        ledger.fulfil(event(
            "evt_refund",
            PaymentOutcome::Refunded {
                total_refunded: 4500
            }
        ))
    );
    assert_eq!(paid.expect("applies").outcome, FulfilmentOutcome::Fulfilled);
    let mut refunded = refunded.expect("applies");
    if refunded.outcome == FulfilmentOutcome::RetryLater {
        let again = ledger
            .fulfil(event(
                "evt_refund",
                PaymentOutcome::Refunded {
                    total_refunded: 4500,
                },
            ))
            .await
            .expect("applies");
        refunded = again;
    }
    assert_eq!(
        refunded.outcome,
        FulfilmentOutcome::ProviderRefund,
        "{refunded:?}"
    );
    let now = order_status(&app, &buyer, &placed).await;
    assert_eq!(now["status"], "refunded");
    assert_eq!(now["credits_clawed_back"], 500);
    assert_eq!(app.balance(&buyer).await.0, 0);
    app.assert_ledger_ok().await;
}

/// The use cases are plain calls: a job, the web UI or this test runs checkout, fulfilment and
/// a refund with no request and no response.
async fn checkout_payment_and_refund_run_without_http(app: TestApp) {
    use bursar_core::FulfilmentOutcome;
    use bursar_server::app::{checkout, refunds};
    use bursar_store::ledger::orders::OrderRefund;
    use bursar_store::ledger::{PaymentEvent, PaymentOutcome, Rendered};

    let admin = app.admin().await;
    let buyer = app.register("plain@example.com").await;
    let package_id = pack(&app, &admin, 300, 2000).await;
    let basket = checkout::Basket {
        package_id,
        quantity: 2,
        coupon_code: None,
        provider: "sandbox".into(),
        mode: None,
    };
    let render = |placed: &Result<_, bursar_server::error::ApiError>| Rendered {
        status: if placed.is_ok() { 201 } else { 500 },
        body: placed
            .as_ref()
            .map(|order: &bursar_store::orders::Order| order.id.clone())
            .unwrap_or_default(),
    };
    let state = &app.state;
    let placed = checkout::place_order(state, &buyer.id, &basket, None, render)
        .await
        .expect("placed");
    assert_eq!(placed.response.status, 201);
    let order = state
        .store
        .order(&placed.response.body)
        .await
        .expect("reads")
        .expect("the order");
    assert_eq!((order.total, order.credits), (4000, 600));

    let paid = state
        .store
        .ledger
        .fulfil(PaymentEvent {
            provider: "sandbox".into(),
            event_id: "evt_plain".into(),
            event_type: "test".into(),
            outcome: PaymentOutcome::Succeeded,
            payment_id: Some(order.payment_id.clone()),
            provider_ref: None,
            amount: Some(bursar_core::Money {
                amount: 4000,
                currency: "CNY".into(),
            }),
            confirmed_by: None,
        })
        .await
        .expect("applies");
    assert_eq!(paid.outcome, FulfilmentOutcome::Fulfilled);
    assert_eq!(app.balance(&buyer).await.0, 600);

    let refund = OrderRefund {
        refund_id: bursar_store::ids::new_id("orf"),
        order_id: order.id.clone(),
        amount: Some(2000),
        allow_negative: false,
        reason: None,
        actor: admin.id.clone(),
        actor_kind: "user",
        ip: None,
    };
    let refunded = refunds::refund_order(state, refund, None)
        .await
        .expect("refunded");
    assert!(!refunded.replayed);
    assert_eq!(refunded.receipt.credits_clawed_back, 300);
    assert_eq!(
        refunded.record.status,
        bursar_core::RefundStatus::Succeeded,
        "the sandbox refunds at once"
    );
    assert_eq!(app.balance(&buyer).await.0, 300);
    app.assert_ledger_ok().await;
}
