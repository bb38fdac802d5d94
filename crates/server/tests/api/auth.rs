use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    registration_returns_a_session_and_the_profile_reads_back,
    registration_refuses_admins_short_passwords_and_taken_emails,
    login_checks_the_password,
    a_refresh_token_works_once_and_its_reuse_ends_the_family,
    logout_revokes_the_refresh_token,
    a_suspended_user_is_locked_out_at_once,
    tampered_expired_and_missing_tokens_get_401,
    a_password_change_takes_effect_and_ends_other_sessions,
);

async fn registration_returns_a_session_and_the_profile_reads_back(app: TestApp) {
    let resp = app
        .send("POST", "/api/v1/auth/register", None, Some(&json!({"email": "Ann@Example.com", "password": "long enough", "display_name": "Ann", "role": "merchant"})), &[])
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.json["user"]["email"], "ann@example.com");
    assert_eq!(resp.json["user"]["role"], "merchant");
    assert!(resp.json["expires_in"].as_i64().is_some_and(|s| s > 0));
    let token = resp.json["access_token"].as_str().unwrap_or_default();
    let me = app.get("/api/v1/me", token).await;
    assert_eq!(me.status, 200);
    for field in ["id", "email", "display_name", "role", "level", "created_at"] {
        assert!(!me.json[field].is_null(), "{field} present");
    }
    assert_eq!(me.json["display_name"], "Ann");
}

async fn registration_refuses_admins_short_passwords_and_taken_emails(app: TestApp) {
    let app = &app;
    let register = |body: serde_json::Value| async move {
        app.send("POST", "/api/v1/auth/register", None, Some(&body), &[])
            .await
    };
    let admin =
        register(json!({"email": "x@example.com", "password": "long enough", "role": "admin"}))
            .await;
    assert_eq!((admin.status, admin.code()), (422, "invalid_request"));
    let short = register(json!({"email": "y@example.com", "password": "short"})).await;
    assert_eq!(short.status, 422);
    let bad_email = register(json!({"email": "not-an-email", "password": "long enough"})).await;
    assert_eq!(bad_email.status, 422);
    assert_eq!(
        register(json!({"email": "z@example.com", "password": "long enough"}))
            .await
            .status,
        201
    );
    let taken = register(json!({"email": "Z@example.com", "password": "long enough"})).await;
    assert_eq!((taken.status, taken.code()), (409, "conflict"));
    assert!(taken.is_problem());
}

async fn login_checks_the_password(app: TestApp) {
    let app = &app;
    app.register("login@example.com").await;
    let login =
        |password: &'static str| async move { app.login("login@example.com", password).await };
    let good = login("correct horse").await;
    assert_eq!(good.status, 200);
    assert!(good.json["access_token"].is_string() && good.json["refresh_token"].is_string());
    let bad = login("wrong horse").await;
    assert_eq!((bad.status, bad.code()), (401, "unauthorized"));
    let unknown = app.login("nobody@example.com", "correct horse").await;
    assert_eq!(unknown.status, 401);
}

async fn a_refresh_token_works_once_and_its_reuse_ends_the_family(app: TestApp) {
    let app = &app;
    let member = app.register("refresh@example.com").await;
    let refresh = |token: String| async move {
        app.send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": token})),
            &[],
        )
        .await
    };
    let first = refresh(member.refresh_token.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rotated = first.json["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(rotated, member.refresh_token);
    assert_eq!(
        app.get(
            "/api/v1/me",
            first.json["access_token"].as_str().unwrap_or_default()
        )
        .await
        .status,
        200
    );
    let reused = refresh(member.refresh_token.clone()).await;
    assert_eq!(reused.status, 401);
    // Reusing a spent token is a sign of theft: the newer token of the same login dies too.
    assert_eq!(refresh(rotated).await.status, 401);
}

async fn logout_revokes_the_refresh_token(app: TestApp) {
    let member = app.register("logout@example.com").await;
    let out = app
        .post(
            "/api/v1/auth/logout",
            &member.token,
            json!({"refresh_token": member.refresh_token}),
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    let refresh = app
        .send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": member.refresh_token})),
            &[],
        )
        .await;
    assert_eq!(refresh.status, 401);
    assert_eq!(
        app.send("POST", "/api/v1/auth/logout", None, None, &[])
            .await
            .status,
        401
    );
}

async fn a_suspended_user_is_locked_out_at_once(app: TestApp) {
    let admin = app.admin().await;
    let member = app.register("suspend@example.com").await;
    assert_eq!(app.get("/api/v1/me", &member.token).await.status, 200);
    let patch = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(patch.json["status"], "suspended");
    let me = app.get("/api/v1/me", &member.token).await;
    assert_eq!((me.status, me.code()), (401, "unauthorized"));
    let login = app.login("suspend@example.com", "correct horse").await;
    assert_eq!(login.status, 401);
    let refresh = app
        .send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": member.refresh_token})),
            &[],
        )
        .await;
    assert_eq!(refresh.status, 401);
    let log = app.get("/api/v1/admin/audit-log", &admin.token).await;
    assert!(log.json["data"].as_array().is_some_and(|entries| {
        entries
            .iter()
            .any(|e| e["action"] == "user.update" && e["target"] == member.id.as_str())
    }));
}

async fn tampered_expired_and_missing_tokens_get_401(app: TestApp) {
    let member = app.register("tamper@example.com").await;
    let mut tampered = member.token.clone();
    let last = tampered.pop().unwrap_or('A');
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(app.get("/api/v1/me", &tampered).await.status, 401);
    let stale = app
        .state
        .tokens
        .issue(&member.id, "member", 1_000_000)
        .expect("token issues");
    let expired = app.get("/api/v1/me", &stale).await;
    assert_eq!((expired.status, expired.code()), (401, "unauthorized"));
    let other_secret = bursar_server::auth::tokens::TokenKeys::new("another secret", 900);
    let forged = other_secret
        .issue(&member.id, "admin", app.state.store.clock.now_ms() / 1000)
        .expect("issues");
    assert_eq!(app.get("/api/v1/me", &forged).await.status, 401);
    let none = app.send("GET", "/api/v1/me", None, None, &[]).await;
    assert!(none.status == 401 && none.is_problem());
    assert_eq!(app.get("/api/v1/me", "bsk_not_a_key").await.status, 401);
}

async fn a_password_change_takes_effect_and_ends_other_sessions(app: TestApp) {
    let member = app.register("password@example.com").await;
    let patch = app
        .patch(
            "/api/v1/me",
            &member.token,
            json!({"password": "a new password", "display_name": "New"}),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(patch.json["display_name"], "New");
    let old = app.login("password@example.com", "correct horse").await;
    assert_eq!(old.status, 401);
    let new = app.login("password@example.com", "a new password").await;
    assert_eq!(new.status, 200);
    let refresh = app
        .send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": member.refresh_token})),
            &[],
        )
        .await;
    assert_eq!(refresh.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_register_are_rate_limited_per_address_and_per_email() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn_with(backend, "rate_limit", |config| {
            config.auth_attempts_per_minute = 3
        })
        .await;
        let app = &app;
        let attempt = |email: &'static str, from: &'static str| async move {
            app.send(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": "whatever1"})),
                &[("x-forwarded-for", from)],
            )
            .await
        };
        for _ in 0..3 {
            assert_eq!(attempt("victim@example.com", "10.0.0.1").await.status, 401);
        }
        let limited = attempt("victim@example.com", "10.0.0.2").await;
        assert_eq!(
            (limited.status, limited.code()),
            (429, "rate_limited"),
            "per email"
        );
        assert!(limited.headers.get("retry-after").is_some());
        for i in 0..2 {
            let email = if i == 0 {
                "a1@example.com"
            } else {
                "a2@example.com"
            };
            assert_eq!(attempt(email, "10.0.0.1").await.status, 429, "per address");
        }
        assert_eq!(attempt("fresh@example.com", "10.0.0.9").await.status, 401);
    }
}
