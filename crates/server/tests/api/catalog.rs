use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    admins_create_update_and_delete_packages_and_each_change_is_audited,
    invalid_packages_are_refused_and_change_nothing,
    the_game_store_shows_six_items_to_everyone_and_eight_to_rich_high_level_users,
);

fn pack(name: &str, credits: i64, price: i64) -> Value {
    json!({"name": name, "kind": "credit_pack", "credits": credits, "price": {"amount": price, "currency": "CNY"}})
}

async fn admins_create_update_and_delete_packages_and_each_change_is_audited(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("buyer@example.com").await;
    let created = app
        .post(
            "/api/v1/admin/packages",
            &admin.token,
            json!({"name": "Monthly", "kind": "subscription", "credits": 0, "daily_credits": 50,
                   "duration_days": 30, "price": {"amount": 9900, "currency": "CNY"},
                   "first_purchase_bonus_percent": 20, "sort_order": 5}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("pkg_"));
    assert_eq!(
        created.json["price"],
        json!({"amount": 9900, "currency": "CNY"})
    );
    assert_eq!(created.json["daily_credits"], 50);
    let listed = app.get("/api/v1/packages", &member.token).await;
    assert_eq!(listed.json["data"][0]["id"], id.as_str());
    assert_eq!(listed.json["data"][0]["first_purchase_bonus_percent"], 20);
    assert!(
        listed.json["data"][0].get("min_balance").is_none(),
        "buyers do not see the rules"
    );

    let mut changed = pack("500 credits", 500, 4500);
    changed["active"] = json!(false);
    let updated = app
        .send(
            "PUT",
            &format!("/api/v1/admin/packages/{id}"),
            Some(&admin.token),
            Some(&changed),
            &[],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["kind"], "credit_pack");
    assert_eq!(updated.json["active"], false);
    assert_eq!(
        app.get("/api/v1/packages", &member.token).await.json["data"],
        json!([]),
        "inactive packages are hidden"
    );
    assert_eq!(
        app.get(&format!("/api/v1/admin/packages/{id}"), &admin.token)
            .await
            .json["name"],
        "500 credits"
    );

    let deleted = app
        .send(
            "DELETE",
            &format!("/api/v1/admin/packages/{id}"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&format!("/api/v1/admin/packages/{id}"), &admin.token)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/v1/admin/packages", &admin.token).await.json["data"],
        json!([])
    );
    let again = app
        .send(
            "PUT",
            &format!("/api/v1/admin/packages/{id}"),
            Some(&admin.token),
            Some(&changed),
            &[],
        )
        .await;
    assert_eq!(again.status, 404);

    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    let actions: Vec<&str> = log.json["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for action in ["package.create", "package.update", "package.delete"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

async fn invalid_packages_are_refused_and_change_nothing(app: TestApp) {
    let admin = app.admin().await;
    let bad = [
        json!({"name": "x", "kind": "bundle", "credits": 1, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 0, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": -5, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1.5, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": -1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "yuan"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": 100}),
        json!({"name": "x", "kind": "subscription", "credits": 0, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}, "first_purchase_bonus_percent": 101}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}, "min_level": 1.234}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}, "min_balance": -1}),
        json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}, "colour": "red"}),
        json!({"name": "", "kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}}),
        json!({"kind": "credit_pack", "credits": 1, "price": {"amount": 1, "currency": "CNY"}}),
    ];
    for body in &bad {
        let resp = app
            .post("/api/v1/admin/packages", &admin.token, body.clone())
            .await;
        assert!(
            resp.status == 422 && resp.is_problem(),
            "{body} → {} {}",
            resp.status,
            resp.text
        );
    }
    assert_eq!(
        app.get("/api/v1/admin/packages", &admin.token).await.json["data"],
        json!([])
    );
    let member = app.register("notadmin@example.com").await;
    let forbidden = app
        .post(
            "/api/v1/admin/packages",
            &member.token,
            pack("free", 1000, 0),
        )
        .await;
    assert_eq!((forbidden.status, forbidden.code()), (403, "forbidden"));
}

async fn the_game_store_shows_six_items_to_everyone_and_eight_to_rich_high_level_users(
    app: TestApp,
) {
    let admin = app.admin().await;
    for i in 0..6 {
        let created = app
            .post(
                "/api/v1/admin/packages",
                &admin.token,
                pack(&format!("item {i}"), 10 * (i + 1), 100),
            )
            .await;
        assert_eq!(created.status, 201);
    }
    for i in 6..8 {
        let mut body = pack(&format!("vip item {i}"), 1000, 10_000);
        body["min_level"] = json!(99.99);
        body["min_balance"] = json!(10_000);
        body["sort_order"] = json!(100 + i);
        assert_eq!(
            app.post("/api/v1/admin/packages", &admin.token, body)
                .await
                .status,
            201
        );
    }
    let player = app.register("player@example.com").await;
    let visible = |app: &TestApp, token: String| {
        let request = app.get("/api/v1/packages", &token);
        async move {
            request.await.json["data"]
                .as_array()
                .map(Vec::len)
                .unwrap_or_default()
        }
    };
    assert_eq!(visible(&app, player.token.clone()).await, 6);
    let level = app
        .patch(
            &format!("/api/v1/admin/users/{}", player.id),
            &admin.token,
            json!({"level": 99.99}),
        )
        .await;
    assert_eq!(level.status, 200);
    assert_eq!(
        visible(&app, player.token.clone()).await,
        6,
        "the level alone is not enough"
    );
    app.grant(&player.id, 9_999).await;
    assert_eq!(
        visible(&app, player.token.clone()).await,
        6,
        "nor 9,999 credits"
    );
    app.grant(&player.id, 1).await;
    assert_eq!(visible(&app, player.token.clone()).await, 8);
    let rich_low_level = app.register("rich@example.com").await;
    app.grant(&rich_low_level.id, 50_000).await;
    assert_eq!(
        visible(&app, rich_low_level.token.clone()).await,
        6,
        "nor the balance alone"
    );
    assert_eq!(
        app.get("/api/v1/admin/packages", &admin.token).await.json["data"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gets_the_demo_catalog_unless_turned_off() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app =
            TestApp::spawn_with(backend, "demo_catalog", |config| config.demo_catalog = true).await;
        let member = app.register("demo@example.com").await;
        let listed = app.get("/api/v1/packages", &member.token).await;
        let offers: Vec<(i64, i64, String)> = listed.json["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    p["credits"].as_i64().unwrap_or_default(),
                    p["price"]["amount"].as_i64().unwrap_or_default(),
                    p["price"]["currency"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let cny = |c: i64, p: i64| (c, p, "CNY".to_string());
        assert_eq!(
            offers,
            vec![
                cny(100, 1000),
                cny(500, 4500),
                cny(1000, 8000),
                cny(5000, 35000)
            ]
        );
        // Seeding happens only for a catalog that never had a package: an admin's deletions stick.
        assert!(!app.state.store.seed_demo_catalog().await.expect("checks"));

        let plain = TestApp::spawn(backend, "no_demo_catalog").await;
        let member = plain.register("nodemo@example.com").await;
        assert_eq!(
            plain.get("/api/v1/packages", &member.token).await.json["data"],
            json!([])
        );
    }
}
