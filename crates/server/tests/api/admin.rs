use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    admins_search_users_and_read_their_balance,
    adjustments_move_credits_both_ways_and_are_audit_logged,
    an_overdraft_limit_lets_a_balance_go_negative_but_no_further,
    api_keys_are_shown_once_listed_without_secret_and_stop_working_when_deleted,
    the_ledger_check_reports_every_asset,
    an_admin_can_promote_a_member,
    a_refused_admin_change_leaves_neither_the_change_nor_an_audit_entry,
    an_admin_cannot_demote_or_suspend_itself_nor_remove_the_last_admin,
    a_suspended_account_cannot_spend_or_hold_even_through_a_service_key,
    no_balance_passes_2_pow_53_even_under_concurrent_changes,
);

async fn admins_search_users_and_read_their_balance(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("findme@example.com").await;
    app.register("other@example.com").await;
    app.grant(&member.id, 42).await;
    let found = app.get("/api/v1/admin/users?q=FINDME", &admin.token).await;
    assert_eq!(found.status, 200);
    let data = found.json["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["email"], "findme@example.com");
    let one = app
        .get(&format!("/api/v1/admin/users/{}", member.id), &admin.token)
        .await;
    assert_eq!(one.json["balance"]["balance"], 42);
    let everyone = app.get("/api/v1/admin/users?limit=1", &admin.token).await;
    assert!(everyone.json["next_cursor"].is_string());
    assert_eq!(
        app.get("/api/v1/admin/users/usr_missing", &admin.token)
            .await
            .status,
        404
    );
}

async fn adjustments_move_credits_both_ways_and_are_audit_logged(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("adjusted@example.com").await;
    let path = format!("/api/v1/admin/users/{}/adjustments", member.id);
    let credit = app
        .post(
            &path,
            &admin.token,
            json!({"amount": 50, "reason": "goodwill"}),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.text);
    let debit = app
        .post(
            &path,
            &admin.token,
            json!({"amount": -20, "reason": "correction"}),
        )
        .await;
    assert_eq!(debit.status, 201);
    assert_eq!(debit.json["balance_after"], 30);
    let too_much = app
        .post(
            &path,
            &admin.token,
            json!({"amount": -31, "reason": "correction"}),
        )
        .await;
    assert_eq!(too_much.code(), "insufficient_credits");
    assert_eq!(app.balance(&member).await, (30, 30));
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    let adjustments: Vec<_> = log.json["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["action"] == "ledger.adjustment")
        .collect();
    assert_eq!(adjustments.len(), 2, "the refused adjustment left no entry");
    assert_eq!(adjustments[0]["actor_id"], admin.id.as_str());
    assert_eq!(adjustments[0]["details"]["reason"], "correction");
    assert!(adjustments[0]["ip"].is_string() && adjustments[0]["created_at"].is_string());
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    assert_eq!(history.json["data"][0]["kind"], "adjustment");
    let seen_by_admin = app
        .get(
            &format!("/api/v1/admin/users/{}/transactions", member.id),
            &admin.token,
        )
        .await;
    assert_eq!(seen_by_admin.status, 200);
    assert_eq!(seen_by_admin.json["data"][0]["amount"], -20);
    assert_eq!(
        seen_by_admin.json["data"][0]["paid_by"][0]["source"],
        "adjustment"
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/admin/users/{}/transactions", member.id),
            &member.token
        )
        .await
        .status,
        403
    );
    app.assert_ledger_ok().await;
}

async fn an_overdraft_limit_lets_a_balance_go_negative_but_no_further(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("overdraft@example.com").await;
    app.grant(&member.id, 10).await;
    let patch = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"overdraft_limit": 25, "level": 99.99}),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(patch.json["level"], 99.99);
    assert_eq!(patch.json["balance"]["overdraft_limit"], 25);
    assert_eq!(
        app.post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 35})
        )
        .await
        .status,
        200
    );
    assert_eq!(app.balance(&member).await, (-25, -25));
    assert_eq!(
        app.post("/api/v1/credits/spend", &member.token, json!({"amount": 1}))
            .await
            .code(),
        "insufficient_credits"
    );
    let lower = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"overdraft_limit": 0}),
        )
        .await;
    assert_eq!(
        lower.status, 409,
        "cannot set a limit the balance already breaks"
    );
    app.assert_ledger_ok().await;
}

async fn api_keys_are_shown_once_listed_without_secret_and_stop_working_when_deleted(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("keyuser@example.com").await;
    app.grant(&member.id, 10).await;
    let created = app
        .post(
            "/api/v1/admin/api-keys",
            &admin.token,
            json!({"name": "ai service"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.json["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = created.json["id"].as_str().unwrap_or_default().to_string();
    assert!(secret.starts_with("bsk_"));
    let list = app.get("/api/v1/admin/api-keys", &admin.token).await;
    assert!(!list.text.contains(&secret), "the secret is never listed");
    assert!(list.text.contains(&id));
    assert_eq!(
        app.post(
            "/api/v1/credits/spend",
            &secret,
            json!({"user_id": member.id, "amount": 1})
        )
        .await
        .status,
        200
    );
    // Its use is recorded (written in bulk by each instance, here at once).
    assert!(
        list.json["data"][0]["last_used_at"].is_null(),
        "{}",
        list.text
    );
    bursar_server::record_api_key_uses(&app.state).await;
    let used = app.get("/api/v1/admin/api-keys", &admin.token).await;
    let listed = used.json["data"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["id"] == id.as_str()).cloned())
        .unwrap_or_default();
    assert!(listed["last_used_at"].is_string(), "{}", used.text);
    let deleted = app
        .send(
            "DELETE",
            &format!("/api/v1/admin/api-keys/{id}"),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    let after = app
        .post(
            "/api/v1/credits/spend",
            &secret,
            json!({"user_id": member.id, "amount": 1}),
        )
        .await;
    assert_eq!(after.status, 401);
    assert_eq!(
        app.send(
            "DELETE",
            &format!("/api/v1/admin/api-keys/{id}"),
            Some(&admin.token),
            None,
            &[]
        )
        .await
        .status,
        404
    );
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    let actions: Vec<&str> = log.json["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.contains(&"api_key.create") && actions.contains(&"api_key.delete"));
    assert!(!log.text.contains(&secret), "no secret in the audit log");
}

async fn the_ledger_check_reports_every_asset(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("verify@example.com").await;
    app.grant(&member.id, 10).await;
    let report = app.get("/api/v1/admin/ledger/verify", &admin.token).await;
    assert_eq!(report.status, 200);
    assert_eq!(report.json["ok"], true);
    assert_eq!(report.json["assets"][0]["sum_of_balances"], 0);
    assert!(
        report.json["assets"][0]["transfers"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    );
    assert_eq!(report.json["problems"].as_array().map(Vec::len), Some(0));
}

async fn an_admin_can_promote_a_member(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("promoted@example.com").await;
    assert_eq!(
        app.get("/api/v1/admin/users", &member.token).await.status,
        403
    );
    let patch = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(patch.status, 200);
    // Roles are read fresh on every request, so the member's current token now works.
    assert_eq!(
        app.get("/api/v1/admin/users", &member.token).await.status,
        200
    );
}

/// The change and its audit entry commit in one transaction: when a later part of the change
/// is refused, the earlier parts and the entry are rolled back with it.
async fn a_refused_admin_change_leaves_neither_the_change_nor_an_audit_entry(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("partial@example.com").await;
    let path = format!("/api/v1/admin/users/{}", member.id);
    let limit = app
        .patch(&path, &admin.token, json!({"overdraft_limit": 20}))
        .await;
    assert_eq!(limit.status, 200, "{}", limit.text);
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 15}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    let entries = |log: &serde_json::Value| log["data"].as_array().map_or(0, Vec::len);
    let before = entries(&app.get("/api/v1/admin/audit-log", &admin.token).await.json);

    // Suspending is fine; the lower limit is not (the balance is already at -15).
    let refused = app
        .patch(
            &path,
            &admin.token,
            json!({"status": "suspended", "overdraft_limit": 5}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let user = app.get(&path, &admin.token).await;
    assert_eq!(user.json["status"], "active", "the suspension rolled back");
    assert_eq!(user.json["balance"]["overdraft_limit"], 20);
    let after = app.get("/api/v1/admin/audit-log", &admin.token).await.json;
    assert_eq!(
        entries(&after),
        before,
        "no entry for a change that did not happen"
    );
    assert_eq!(
        app.get("/api/v1/me/balance", &member.token).await.status,
        200,
        "the member's session still works"
    );

    let applied = app
        .patch(&path, &admin.token, json!({"status": "suspended"}))
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await.json;
    assert_eq!(entries(&log), before + 1);
    assert_eq!(log["data"][0]["action"], "user.update");
    assert_eq!(log["data"][0]["target"], member.id.as_str());
}

async fn an_admin_cannot_demote_or_suspend_itself_nor_remove_the_last_admin(app: TestApp) {
    let first = app.admin().await;
    let own = format!("/api/v1/admin/users/{}", first.id);
    for change in [json!({"role": "member"}), json!({"status": "suspended"})] {
        let refused = app.patch(&own, &first.token, change).await;
        assert_eq!(
            (refused.status, refused.code()),
            (409, "conflict"),
            "{}",
            refused.text
        );
    }
    assert_eq!(app.get(&own, &first.token).await.json["role"], "admin");

    // Two admins demoting each other at once: one wins, and an admin is left.
    let second = app.admin().await;
    let theirs = format!("/api/v1/admin/users/{}", second.id);
    let (a, b) = tokio::join!(
        app.patch(&theirs, &first.token, json!({"role": "member"})),
        app.patch(&own, &second.token, json!({"role": "member"})),
    );
    let won = [a.status, b.status].iter().filter(|s| **s == 200).count();
    assert_eq!(won, 1, "{} / {}", a.text, b.text);
    let admins = app
        .get(
            "/api/v1/admin/users?limit=200",
            &admin_token(&a, &first, &second),
        )
        .await;
    let active_admins = admins.json["data"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == "admin" && u["status"] == "active")
        .count();
    assert_eq!(active_admins, 1);
}

/// The token of whichever admin kept the role.
fn admin_token(
    first_demoted_second: &crate::helpers::Resp,
    first: &crate::helpers::Member,
    second: &crate::helpers::Member,
) -> String {
    if first_demoted_second.status == 200 {
        first.token.clone()
    } else {
        second.token.clone()
    }
}

async fn a_suspended_account_cannot_spend_or_hold_even_through_a_service_key(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("frozen@example.com").await;
    app.grant(&member.id, 100).await;
    let key = app.api_key().await;
    // Taken before the suspension: a spend (refunded after it) and two holds.
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &key,
            json!({"user_id": member.id, "amount": 10}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    let mut holds = Vec::new();
    for _ in 0..2 {
        let hold = app
            .post(
                "/api/v1/credits/holds",
                &key,
                json!({"user_id": member.id, "amount": 5}),
            )
            .await;
        assert_eq!(hold.status, 201, "{}", hold.text);
        holds.push(hold.json["id"].as_str().expect("hold id").to_string());
    }
    let suspend = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspend.status, 200, "{}", suspend.text);
    for path in ["/api/v1/credits/spend", "/api/v1/credits/holds"] {
        let refused = app
            .post(path, &key, json!({"user_id": member.id, "amount": 10}))
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, "account_suspended"),
            "{path}: {}",
            refused.text
        );
    }
    // A hold taken before cannot be captured now, only released; the ledger refuses whoever
    // asks (here a command with no HTTP in front of it).
    let capture = app
        .post(
            &format!("/api/v1/credits/holds/{}/capture", holds[0]),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (capture.status, capture.code()),
        (403, "account_suspended"),
        "{}",
        capture.text
    );
    let void = app
        .post(
            &format!("/api/v1/credits/holds/{}/void", holds[1]),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(void.status, 200, "{}", void.text);
    let direct = app
        .state
        .store
        .ledger
        .execute(bursar_store::ledger::Command::Spend {
            user_id: member.id.clone(),
            amount: bursar_core::Credits::new(1).expect("valid"),
            description: None,
            metadata: None,
            actor: "job".into(),
        })
        .await;
    assert!(
        matches!(
            direct,
            Err(bursar_store::StoreError::Domain(
                bursar_core::LedgerError::AccountSuspended
            ))
        ),
        "{direct:?}"
    );
    let refund = app
        .post(
            "/api/v1/credits/refund",
            &key,
            json!({"transaction_id": spent.json["transaction_id"]}),
        )
        .await;
    assert_eq!(
        refund.status, 200,
        "a refund still reaches a suspended account: {}",
        refund.text
    );
    // Admins can still correct the account.
    let adjusted = app
        .post(
            &format!("/api/v1/admin/users/{}/adjustments", member.id),
            &admin.token,
            json!({"amount": -5, "reason": "correction"}),
        )
        .await;
    assert_eq!(adjusted.status, 201, "{}", adjusted.text);
    let balance = app
        .get(&format!("/api/v1/admin/users/{}", member.id), &admin.token)
        .await;
    assert_eq!(balance.json["balance"]["balance"], 95);
    assert_eq!(
        balance.json["balance"]["available"], 90,
        "the uncaptured hold still holds"
    );
    app.assert_ledger_ok().await;
}

/// Every balance stays within ±(2^53 − 1), system accounts included: a change that would take
/// one past is refused with 409 `balance_out_of_range` and changes nothing (no credits, no
/// audit entry), also when it arrives in one batch with changes that fit; verify still holds.
async fn no_balance_passes_2_pow_53_even_under_concurrent_changes(app: TestApp) {
    const MAX: i64 = (1 << 53) - 1;
    let admin = app.admin().await;
    let rich = app.register("rich@example.com").await;
    let other = app.register("other@example.com").await;
    let adjust = |user: &str, amount: i64| {
        let path = format!("/api/v1/admin/users/{user}/adjustments");
        let token = admin.token.clone();
        let app = &app;
        async move {
            app.post(&path, &token, json!({"amount": amount, "reason": "range"}))
                .await
        }
    };
    assert_eq!(adjust(&rich.id, MAX).await.status, 201);
    let past = adjust(&rich.id, 1).await;
    assert_eq!(past.status, 409, "{}", past.text);
    assert_eq!(past.code(), "balance_out_of_range");
    // The issuance account is at −MAX now, so no one else can be credited either.
    assert_eq!(adjust(&other.id, 1).await.code(), "balance_out_of_range");
    // Taking 5 back leaves room for exactly 5 more, however many ask at once.
    assert_eq!(adjust(&rich.id, -5).await.status, 201);
    let at_once = futures::future::join_all((0..20).map(|_| adjust(&other.id, 1))).await;
    let statuses: Vec<u16> = at_once.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        at_once
            .iter()
            .all(|r| r.status == 201 || r.code() == "balance_out_of_range"),
        "{statuses:?}"
    );
    assert_eq!(app.balance(&rich).await, (MAX - 5, MAX - 5));
    assert_eq!(app.balance(&other).await, (5, 5));
    let log = app
        .get("/api/v1/admin/audit-log?limit=200", &admin.token)
        .await;
    let adjustments = log.json["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "ledger.adjustment")
        .count();
    assert_eq!(
        adjustments, 7,
        "only the applied adjustments are audit-logged"
    );
    let verify = app.get("/api/v1/admin/ledger/verify", &admin.token).await;
    assert_eq!(verify.status, 200, "{}", verify.text);
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
}
