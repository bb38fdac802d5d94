//! The merchants' points marketplace through the API: stock that is never oversold and points
//! never overdrawn under racing members, cancellations that refund once and restore stock,
//! fulfilment racing cancellation, merchants kept apart, and bad input that changes nothing.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Member, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    racing_members_never_oversell_the_stock,
    members_who_can_afford_one_get_one,
    one_member_racing_their_own_balance_never_overdraws,
    cancelling_refunds_once_and_fulfilment_races_cancellation,
    merchants_and_members_are_kept_apart,
    bad_marketplace_input_is_refused_and_changes_nothing,
);

async fn merchant(app: &TestApp, email: &str) -> Member {
    let resp = app
        .send(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": email, "password": "correct horse", "role": "merchant"})),
            &[],
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    Member {
        id: resp.json["user"]["id"].as_str().expect("id").to_string(),
        token: resp.json["access_token"]
            .as_str()
            .expect("token")
            .to_string(),
        refresh_token: String::new(),
    }
}

async fn members(app: &TestApp, prefix: &str, count: usize, points: i64) -> Vec<Member> {
    let registered = (0..count).map(|i| {
        let email = format!("{prefix}{i}@example.com");
        async move { app.register(&email).await }
    });
    let members = join_all(registered).await;
    for member in &members {
        if points > 0 {
            app.grant(&member.id, points).await;
        }
    }
    members
}

async fn product(app: &TestApp, merchant: &Member, body: Value) -> Value {
    let resp = app
        .post("/api/v1/merchant/products", &merchant.token, body)
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    resp.json
}

fn redeem(
    app: &TestApp,
    member: &Member,
    product_id: &str,
    quantity: i64,
) -> impl Future<Output = Resp> + use<> {
    app.post(
        "/api/v1/redemptions",
        &member.token,
        json!({"product_id": product_id, "quantity": quantity}),
    )
}

async fn stock_of(app: &TestApp, merchant: &Member, product_id: &str) -> i64 {
    let list = app
        .get("/api/v1/merchant/products?limit=200", &merchant.token)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|p| p["id"] == product_id)
        .expect("the product")["stock"]
        .as_i64()
        .expect("stock")
}

async fn merchant_balance(app: &TestApp, merchant: &Member) -> i64 {
    let resp = app.get("/api/v1/merchant/balance", &merchant.token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json["balance"].as_i64().expect("balance")
}

fn count(answers: &[Resp], status: u16, code: &str) -> usize {
    answers
        .iter()
        .filter(|r| r.status == status && (code.is_empty() || r.code() == code))
        .count()
}

async fn racing_members_never_oversell_the_stock(app: TestApp) {
    let shop = merchant(&app, "shop@example.com").await;
    let mug = product(
        &app,
        &shop,
        json!({"name": "Mug", "points_price": 50, "stock": 10}),
    )
    .await;
    let id = mug["id"].as_str().expect("id");
    let crowd = members(&app, "buyer", 100, 500).await;
    let answers = join_all(crowd.iter().map(|m| redeem(&app, m, id, 1))).await;
    assert_eq!(
        count(&answers, 201, ""),
        10,
        "exactly the stock is redeemed"
    );
    assert_eq!(count(&answers, 409, "out_of_stock"), 90);
    assert!(
        answers
            .iter()
            .filter(|r| r.status == 409)
            .all(Resp::is_problem)
    );
    assert_eq!(stock_of(&app, &shop, id).await, 0);
    assert_eq!(merchant_balance(&app, &shop).await, 500);
    for (member, answer) in crowd.iter().zip(&answers) {
        let expected = if answer.status == 201 { 450 } else { 500 };
        assert_eq!(app.balance(member).await.0, expected);
    }
    let sold = answers.iter().find(|r| r.status == 201).expect("one");
    assert_eq!(sold.json["status"], "pending");
    assert_eq!(sold.json["points_cost"], 50);
    assert_eq!(sold.json["balance_after"], 450);
    // Out of stock, it is no longer on offer.
    let offer = app.get("/api/v1/products", &crowd[0].token).await;
    assert!(
        offer.json["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|p| p["id"] != id)
    );
    app.assert_ledger_ok().await;
}

async fn members_who_can_afford_one_get_one(app: TestApp) {
    let shop = merchant(&app, "shop@example.com").await;
    let pen = product(
        &app,
        &shop,
        json!({"name": "Pen", "points_price": 30, "stock": 1000}),
    )
    .await;
    let id = pen["id"].as_str().expect("id");
    // Each member holds enough for one pen, and tries for three at once.
    let crowd = members(&app, "thrifty", 30, 40).await;
    let tries = crowd
        .iter()
        .flat_map(|m| (0..3).map(move |_| m))
        .map(|m| redeem(&app, m, id, 1));
    let answers = join_all(tries).await;
    assert_eq!(count(&answers, 201, ""), 30);
    assert_eq!(count(&answers, 409, "insufficient_credits"), 60);
    for member in &crowd {
        assert_eq!(app.balance(member).await.0, 10);
    }
    assert_eq!(stock_of(&app, &shop, id).await, 970);
    assert_eq!(merchant_balance(&app, &shop).await, 900);
    app.assert_ledger_ok().await;
}

async fn one_member_racing_their_own_balance_never_overdraws(app: TestApp) {
    let shop = merchant(&app, "shop@example.com").await;
    let sticker = product(
        &app,
        &shop,
        json!({"name": "Sticker", "points_price": 15, "stock": 100, "limit_per_member": 40}),
    )
    .await;
    let id = sticker["id"].as_str().expect("id");
    let member = app.register("eager@example.com").await;
    app.grant(&member.id, 110).await; // seven stickers' worth, and 5 over
    let answers = join_all((0..50).map(|_| redeem(&app, &member, id, 1))).await;
    assert_eq!(count(&answers, 201, ""), 7);
    assert_eq!(count(&answers, 409, "insufficient_credits"), 43);
    assert_eq!(app.balance(&member).await.0, 5);
    assert_eq!(stock_of(&app, &shop, id).await, 93);

    // The limit per member counts what is not cancelled.
    app.grant(&member.id, 10_000).await;
    let many = redeem(&app, &member, id, 34).await;
    assert_eq!(
        (many.status, many.code()),
        (409, "conflict"),
        "{}",
        many.text
    );
    let most = redeem(&app, &member, id, 33).await;
    assert_eq!(most.status, 201, "{}", most.text);
    app.assert_ledger_ok().await;
}

async fn cancelling_refunds_once_and_fulfilment_races_cancellation(app: TestApp) {
    let shop = merchant(&app, "shop@example.com").await;
    let hat = product(
        &app,
        &shop,
        json!({"name": "Hat", "points_price": 100, "stock": 20}),
    )
    .await;
    let id = hat["id"].as_str().expect("id");
    let member = app.register("wearer@example.com").await;
    app.grant(&member.id, 2000).await;

    // The price is kept as it was at redemption.
    let first = redeem(&app, &member, id, 2).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let cheaper = app
        .send(
            "PUT",
            &format!("/api/v1/merchant/products/{id}"),
            Some(&shop.token),
            Some(&json!({"name": "Hat", "points_price": 80, "stock": 18})),
            &[],
        )
        .await;
    assert_eq!(cheaper.status, 200, "{}", cheaper.text);
    let cancel_path = format!(
        "/api/v1/redemptions/{}/cancel",
        first.json["id"].as_str().expect("id")
    );
    // Ten cancellations at once, by the member and the merchant: one refund of 200.
    let cancels = (0..10).map(|i| {
        let token = if i % 2 == 0 {
            &member.token
        } else {
            &shop.token
        };
        app.send("POST", &cancel_path, Some(token), None, &[])
    });
    let answers = join_all(cancels).await;
    assert_eq!(count(&answers, 200, ""), 1, "{answers:?}");
    assert_eq!(count(&answers, 409, "conflict"), 9);
    let cancelled = answers.iter().find(|r| r.status == 200).expect("one");
    assert_eq!(cancelled.json["status"], "cancelled");
    assert_eq!(cancelled.json["points_cost"], 200);
    assert_eq!(app.balance(&member).await.0, 2000);
    assert_eq!(stock_of(&app, &shop, id).await, 20);
    assert_eq!(merchant_balance(&app, &shop).await, 0);
    let fulfil_path = format!(
        "/api/v1/merchant/redemptions/{}/fulfil",
        first.json["id"].as_str().expect("id")
    );
    let late = app
        .send("POST", &fulfil_path, Some(&shop.token), None, &[])
        .await;
    assert_eq!(late.status, 409, "a cancelled redemption is not fulfilled");

    // Fulfilment racing cancellation, ten times over: each ends exactly one way.
    for round in 0..10 {
        let placed = redeem(&app, &member, id, 1).await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        let rid = placed.json["id"].as_str().expect("id").to_string();
        let fulfil = app.send(
            "POST",
            &format!("/api/v1/merchant/redemptions/{rid}/fulfil"),
            Some(&shop.token),
            None,
            &[],
        );
        let cancel = app.send(
            "POST",
            &format!("/api/v1/redemptions/{rid}/cancel"),
            Some(&member.token),
            None,
            &[],
        );
        let (fulfilled, cancelled) = tokio::join!(fulfil, cancel);
        assert!(
            (fulfilled.status == 200) != (cancelled.status == 200),
            "round {round}: fulfil {} / cancel {}",
            fulfilled.text,
            cancelled.text
        );
        let status = if fulfilled.status == 200 {
            "fulfilled"
        } else {
            "cancelled"
        };
        let mine = app.get("/api/v1/me/redemptions", &member.token).await;
        assert_eq!(mine.json["data"][0]["status"], status);
    }
    app.assert_ledger_ok().await;
}

async fn merchants_and_members_are_kept_apart(app: TestApp) {
    let alice = merchant(&app, "alice-shop@example.com").await;
    let bob = merchant(&app, "bob-shop@example.com").await;
    let member = app.register("member@example.com").await;
    let other = app.register("other@example.com").await;
    app.grant(&member.id, 500).await;
    let mug = product(
        &app,
        &alice,
        json!({"name": "Mug", "points_price": 50, "stock": 5}),
    )
    .await;
    let id = mug["id"].as_str().expect("id");
    let placed = redeem(&app, &member, id, 1).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let rid = placed.json["id"].as_str().expect("id");

    // Bob sees none of Alice's, and cannot touch them.
    let bobs = app.get("/api/v1/merchant/products", &bob.token).await;
    assert_eq!(bobs.json["data"], json!([]));
    let bob_redemptions = app.get("/api/v1/merchant/redemptions", &bob.token).await;
    assert_eq!(bob_redemptions.json["data"], json!([]));
    let product_path = format!("/api/v1/merchant/products/{id}");
    let edit = json!({"name": "Mine now", "points_price": 1, "stock": 999});
    for (method, path, body) in [
        ("PUT", product_path.as_str(), Some(&edit)),
        ("DELETE", product_path.as_str(), None),
        (
            "POST",
            &format!("/api/v1/merchant/redemptions/{rid}/fulfil"),
            None,
        ),
        ("POST", &format!("/api/v1/redemptions/{rid}/cancel"), None),
    ] {
        let resp = app.send(method, path, Some(&bob.token), body, &[]).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
        assert!(resp.is_problem());
    }
    // Another member cannot cancel it either, nor see it.
    let theirs = app
        .send(
            "POST",
            &format!("/api/v1/redemptions/{rid}/cancel"),
            Some(&other.token),
            None,
            &[],
        )
        .await;
    assert_eq!(theirs.status, 404);
    let others = app.get("/api/v1/me/redemptions", &other.token).await;
    assert_eq!(others.json["data"], json!([]));
    // Members cannot use merchant routes; merchants cannot redeem.
    for path in [
        "/api/v1/merchant/products",
        "/api/v1/merchant/redemptions",
        "/api/v1/merchant/balance",
    ] {
        assert_eq!(app.get(path, &member.token).await.status, 403, "{path}");
    }
    let as_member = app
        .post(
            "/api/v1/merchant/products",
            &member.token,
            json!({"name": "Fake", "points_price": 1, "stock": 1}),
        )
        .await;
    assert_eq!(as_member.status, 403);
    let as_merchant = redeem(&app, &bob, id, 1).await;
    assert_eq!(as_merchant.status, 403, "{}", as_merchant.text);

    // Alice cancels a member's redemption of her product, without learning the member's balance.
    let second = redeem(&app, &member, id, 1).await;
    assert_eq!(second.status, 201, "{}", second.text);
    let by_merchant = app
        .send(
            "POST",
            &format!(
                "/api/v1/redemptions/{}/cancel",
                second.json["id"].as_str().expect("id")
            ),
            Some(&alice.token),
            None,
            &[],
        )
        .await;
    assert_eq!(by_merchant.status, 200, "{}", by_merchant.text);
    assert_eq!(by_merchant.json["status"], "cancelled");
    assert!(
        by_merchant.json.get("balance_after").is_none(),
        "{}",
        by_merchant.text
    );
    // Alice's view: her product, its redemption, her balance; a delisted product stays in
    // her list but is no longer on offer or redeemable.
    assert_eq!(merchant_balance(&app, &alice).await, 50);
    assert_eq!(merchant_balance(&app, &bob).await, 0);
    let hers = app.get("/api/v1/merchant/redemptions", &alice.token).await;
    assert_eq!(hers.json["data"][1]["id"], rid);
    assert_eq!(hers.json["data"][1]["user_id"], member.id.as_str());
    let delisted = app
        .send("DELETE", &product_path, Some(&alice.token), None, &[])
        .await;
    assert_eq!(delisted.status, 204, "{}", delisted.text);
    let listed = app.get("/api/v1/merchant/products", &alice.token).await;
    assert!(listed.json["data"][0]["delisted_at"].is_string());
    let gone = redeem(&app, &member, id, 1).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    // Its pending redemption can still be fulfilled.
    let fulfilled = app
        .send(
            "POST",
            &format!("/api/v1/merchant/redemptions/{rid}/fulfil"),
            Some(&alice.token),
            None,
            &[],
        )
        .await;
    assert_eq!(fulfilled.status, 200, "{}", fulfilled.text);
    assert_eq!(fulfilled.json["status"], "fulfilled");
    let cancel = app
        .send(
            "POST",
            &format!("/api/v1/redemptions/{rid}/cancel"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        cancel.status, 409,
        "a fulfilled redemption is not cancelled"
    );
    app.assert_ledger_ok().await;
}

async fn bad_marketplace_input_is_refused_and_changes_nothing(app: TestApp) {
    let shop = merchant(&app, "shop@example.com").await;
    let member = app.register("careful@example.com").await;
    app.grant(&member.id, 100).await;
    let mug = product(
        &app,
        &shop,
        json!({"name": "Mug", "points_price": 50, "stock": 3}),
    )
    .await;
    let id = mug["id"].as_str().expect("id").to_string();
    let long = "x".repeat(201);
    for body in [
        json!({"name": "", "points_price": 1, "stock": 1}),
        json!({"name": long, "points_price": 1, "stock": 1}),
        json!({"name": "A", "points_price": 0, "stock": 1}),
        json!({"name": "A", "points_price": -5, "stock": 1}),
        json!({"name": "A", "points_price": 1, "stock": -1}),
        json!({"name": "A", "points_price": 1, "stock": 1, "limit_per_member": 0}),
        json!({"name": "A", "points_price": 1.5, "stock": 1}),
        json!({"name": "A", "points_price": 1}),
        json!({"name": "A", "points_price": 1, "stock": 1, "colour": "red"}),
    ] {
        for (method, path) in [
            ("POST", "/api/v1/merchant/products".to_string()),
            ("PUT", format!("/api/v1/merchant/products/{id}")),
        ] {
            let resp = app
                .send(method, &path, Some(&shop.token), Some(&body), &[])
                .await;
            assert!(
                (400..500).contains(&resp.status) && resp.is_problem(),
                "{method} {body}: {}",
                resp.text
            );
        }
    }
    for body in [
        json!({"product_id": id, "quantity": 0}),
        json!({"product_id": id, "quantity": 1001}),
        json!({"product_id": id, "quantity": -1}),
        json!({"product_id": "prd_missing"}),
        json!({"quantity": 1}),
        json!({"product_id": id, "quantity": 1, "extra": true}),
    ] {
        let resp = app
            .post("/api/v1/redemptions", &member.token, body.clone())
            .await;
        assert!(
            (400..500).contains(&resp.status) && resp.is_problem(),
            "{body}: {}",
            resp.text
        );
    }
    let too_many = redeem(&app, &member, &id, 4).await;
    assert_eq!((too_many.status, too_many.code()), (409, "out_of_stock"));
    let too_dear = redeem(&app, &member, &id, 3).await;
    assert_eq!(
        (too_dear.status, too_dear.code()),
        (409, "insufficient_credits")
    );
    for path in [
        "/api/v1/redemptions/rdm_missing/cancel".to_string(),
        "/api/v1/merchant/redemptions/rdm_missing/fulfil".to_string(),
    ] {
        let token = if path.contains("merchant") {
            &shop.token
        } else {
            &member.token
        };
        let resp = app.send("POST", &path, Some(token), None, &[]).await;
        assert_eq!(resp.status, 404, "{path}");
    }
    for path in [
        "/api/v1/products?limit=0",
        "/api/v1/me/redemptions?limit=500",
    ] {
        assert_eq!(app.get(path, &member.token).await.status, 422, "{path}");
    }
    // Nothing changed: the product as made, the member's points, no redemptions.
    assert_eq!(stock_of(&app, &shop, &id).await, 3);
    let listed = app.get("/api/v1/merchant/products", &shop.token).await;
    assert_eq!(listed.json["data"][0]["name"], "Mug");
    assert_eq!(listed.json["data"][0]["points_price"], 50);
    assert_eq!(app.balance(&member).await.0, 100);
    let mine = app.get("/api/v1/me/redemptions", &member.token).await;
    assert_eq!(mine.json["data"], json!([]));

    // A retried redemption with its Idempotency-Key redeems once.
    let keyed = |key: &'static str| {
        app.send(
            "POST",
            "/api/v1/redemptions",
            Some(&member.token),
            Some(&json!({"product_id": id, "quantity": 1})),
            &[("Idempotency-Key", key)],
        )
    };
    let first = keyed("redeem-once").await;
    let again = keyed("redeem-once").await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.text, again.text);
    assert_eq!(app.balance(&member).await.0, 50);
    assert_eq!(stock_of(&app, &shop, &id).await, 2);
    app.assert_ledger_ok().await;
}
