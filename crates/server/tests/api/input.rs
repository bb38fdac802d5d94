//! Bad input on every route: each gets a 4xx problem+json and changes nothing.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    bad_amounts_and_bodies_are_refused_on_every_credit_route_and_change_nothing,
    malformed_json_wrong_content_type_and_oversized_bodies_are_refused,
    json_routes_take_only_json_and_bodiless_routes_refuse_large_bodies,
    every_error_is_problem_json_and_pages_answer_with_an_html_page,
    members_get_403_on_every_admin_route,
);

async fn bad_amounts_and_bodies_are_refused_on_every_credit_route_and_change_nothing(app: TestApp) {
    let key = app.api_key().await;
    let admin = app.admin().await;
    let member = app.register("input@example.com").await;
    app.grant(&member.id, 100).await;
    let spent = app
        .post("/api/v1/credits/spend", &member.token, json!({"amount": 1}))
        .await;
    let txn = spent.json["transaction_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let hold = app
        .post("/api/v1/credits/holds", &member.token, json!({"amount": 1}))
        .await;
    let hold_id = hold.json["id"].as_str().unwrap_or_default().to_string();
    let before = app.balance(&member).await;

    let bad_amounts: Vec<Value> = vec![
        json!(0),
        json!(-5),
        json!(1.5),
        json!("10"),
        json!(null),
        json!(9_007_199_254_740_992_i64),
        json!(1e300),
        json!(true),
        json!([1]),
    ];
    let mut cases: Vec<(String, String, Value)> = Vec::new();
    for amount in &bad_amounts {
        cases.push((
            "/api/v1/credits/spend".into(),
            member.token.clone(),
            json!({"amount": amount}),
        ));
        cases.push((
            "/api/v1/credits/holds".into(),
            member.token.clone(),
            json!({"amount": amount}),
        ));
        // On refund and capture the amount is optional: null means "all of it".
        if !amount.is_null() {
            cases.push((
                "/api/v1/credits/refund".into(),
                key.clone(),
                json!({"transaction_id": txn, "amount": amount}),
            ));
            cases.push((
                format!("/api/v1/credits/holds/{hold_id}/capture"),
                member.token.clone(),
                json!({"amount": amount}),
            ));
        }
        // Adjustments are signed: a negative amount is a valid debit there.
        if amount.as_i64() != Some(-5) {
            cases.push((
                format!("/api/v1/admin/users/{}/adjustments", member.id),
                admin.token.clone(),
                json!({"amount": amount, "reason": "x"}),
            ));
        }
    }
    let spend = "/api/v1/credits/spend".to_string();
    cases.extend([
        (spend.clone(), member.token.clone(), json!({})),
        (
            spend.clone(),
            member.token.clone(),
            json!({"amount": 1, "unexpected": 1}),
        ),
        (
            spend.clone(),
            member.token.clone(),
            json!({"amount": 1, "description": 5}),
        ),
        (
            spend.clone(),
            member.token.clone(),
            json!({"amount": 1, "metadata": "not an object"}),
        ),
        (
            spend.clone(),
            member.token.clone(),
            json!({"amount": 1, "description": "x".repeat(501)}),
        ),
        (spend.clone(), member.token.clone(), json!([])),
        (
            "/api/v1/credits/holds".into(),
            member.token.clone(),
            json!({"amount": 1, "expires_in_seconds": 0}),
        ),
        (
            "/api/v1/credits/holds".into(),
            member.token.clone(),
            json!({"amount": 1, "expires_in_seconds": 86_401}),
        ),
        (
            "/api/v1/credits/refund".into(),
            key.clone(),
            json!({"amount": 1}),
        ),
        (
            format!("/api/v1/admin/users/{}/adjustments", member.id),
            admin.token.clone(),
            json!({"amount": 5}),
        ),
        (
            format!("/api/v1/admin/users/{}/adjustments", member.id),
            admin.token.clone(),
            json!({"amount": 5, "reason": "  "}),
        ),
        (
            "/api/v1/auth/register".into(),
            String::new(),
            json!({"email": 5, "password": "long enough"}),
        ),
        (
            "/api/v1/auth/register".into(),
            String::new(),
            json!({"email": "a@example.com", "password": "long enough", "role": "owner"}),
        ),
        (
            "/api/v1/auth/login".into(),
            String::new(),
            json!({"email": "input@example.com"}),
        ),
        (
            "/api/v1/auth/refresh".into(),
            String::new(),
            json!({"refresh_token": 1}),
        ),
        (
            "/api/v1/admin/api-keys".into(),
            admin.token.clone(),
            json!({"name": ""}),
        ),
    ]);
    for (path, token, body) in &cases {
        let token = (!token.is_empty()).then_some(token.as_str());
        let resp = app.send("POST", path, token, Some(body), &[]).await;
        assert!(
            (400..500).contains(&resp.status) && resp.is_problem(),
            "POST {path} {body} → {} {}",
            resp.status,
            resp.text
        );
    }
    let patches = [
        json!({"role": "owner"}),
        json!({"status": "gone"}),
        json!({"level": -1}),
        json!({"level": 1.234}),
        json!({"overdraft_limit": -1}),
        json!({"overdraft_limit": 1.5}),
        json!({"nickname": "x"}),
    ];
    for body in &patches {
        let resp = app
            .send(
                "PATCH",
                &format!("/api/v1/admin/users/{}", member.id),
                Some(&admin.token),
                Some(body),
                &[],
            )
            .await;
        assert!(
            resp.status == 422 && resp.is_problem(),
            "PATCH {body} → {} {}",
            resp.status,
            resp.text
        );
    }
    let me_patch = app
        .patch("/api/v1/me", &member.token, json!({"password": "short"}))
        .await;
    assert_eq!(me_patch.status, 422);
    assert_eq!(app.balance(&member).await, before);
    let history = app.get("/api/v1/me/transactions", &member.token).await;
    assert_eq!(
        history.json["data"].as_array().map(Vec::len),
        Some(2),
        "nothing new was recorded"
    );
    app.assert_ledger_ok().await;
}

async fn malformed_json_wrong_content_type_and_oversized_bodies_are_refused(app: TestApp) {
    let member = app.register("bytes@example.com").await;
    app.grant(&member.id, 10).await;
    let url = format!("{}/api/v1/credits/spend", app.base);
    let send = |body: Vec<u8>, content_type: &'static str| {
        let request = app
            .http
            .post(&url)
            .bearer_auth(&member.token)
            .header("content-type", content_type)
            .body(body);
        async move { TestApp::read(request.send().await.expect("answered")).await }
    };
    let malformed = send(b"{\"amount\": 1".to_vec(), "application/json").await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "invalid_request")
    );
    assert!(malformed.is_problem());
    let text = send(b"{\"amount\": 1}".to_vec(), "text/plain").await;
    assert!(text.status == 415 && text.is_problem(), "{}", text.text);
    // Announce a 2 MiB body and send none of it: the server must refuse on the length alone,
    // without reading it. (Sending it all races the server's early answer against the upload.)
    let addr = app.base.trim_start_matches("http://").to_string();
    let token = member.token.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
        write!(
            stream,
            "POST /api/v1/credits/spend HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        )
        .expect("writes");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .expect("raw request runs");
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.to_lowercase()
            .contains("content-type: application/problem+json"),
        "{raw}"
    );
    assert!(raw.contains("\"code\":\"payload_too_large\""), "{raw}");
    assert_eq!(app.balance(&member).await, (10, 10));
}

async fn members_get_403_on_every_admin_route(app: TestApp) {
    let member = app.register("nosy@example.com").await;
    let merchant = {
        let resp = app
            .send("POST", "/api/v1/auth/register", None, Some(&json!({"email": "shop@example.com", "password": "long enough", "role": "merchant"})), &[])
            .await;
        resp.json["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let key = app.api_key().await;
    let target = &member.id;
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/admin/users".into(), None),
        ("GET", format!("/api/v1/admin/users/{target}"), None),
        (
            "GET",
            format!("/api/v1/admin/users/{target}/transactions"),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/admin/users/{target}"),
            Some(json!({"role": "admin"})),
        ),
        (
            "POST",
            format!("/api/v1/admin/users/{target}/adjustments"),
            Some(json!({"amount": 1000, "reason": "free money"})),
        ),
        ("GET", "/api/v1/admin/api-keys".into(), None),
        (
            "POST",
            "/api/v1/admin/api-keys".into(),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", "/api/v1/admin/api-keys/key_x".into(), None),
        ("GET", "/api/v1/admin/audit-log".into(), None),
        ("GET", "/api/v1/admin/ledger/verify".into(), None),
        ("GET", "/api/v1/admin/jobs".into(), None),
        ("POST", "/api/v1/admin/jobs/job_x/retry".into(), None),
        ("GET", "/api/v1/admin/packages".into(), None),
        (
            "POST",
            "/api/v1/admin/packages".into(),
            Some(
                json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 0, "currency": "CNY"}}),
            ),
        ),
        ("GET", "/api/v1/admin/packages/pkg_x".into(), None),
        (
            "PUT",
            "/api/v1/admin/packages/pkg_x".into(),
            Some(
                json!({"name": "x", "kind": "credit_pack", "credits": 1, "price": {"amount": 0, "currency": "CNY"}}),
            ),
        ),
        ("DELETE", "/api/v1/admin/packages/pkg_x".into(), None),
    ];
    for token in [&member.token, &merchant, &key] {
        for (method, path, body) in &routes {
            let resp = app
                .send(method, path, Some(token), body.as_ref(), &[])
                .await;
            assert_eq!(
                (resp.status, resp.code()),
                (403, "forbidden"),
                "{method} {path}"
            );
        }
    }
    let me = app.get("/api/v1/me", &member.token).await;
    assert_eq!(me.json["role"], "member");
    assert_eq!(app.balance(&member).await, (0, 0));
}

/// Sends a request by hand with `head` (request line and headers, without the blank line)
/// announcing `length` bytes and sending `sent` of them, and answers the raw response: the
/// server must answer an oversized body early, from the announcement or the first bytes.
async fn raw_request(app: &TestApp, head: String, sent: Vec<u8>) -> String {
    let addr = app.base.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
        write!(
            stream,
            "{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("writes");
        let _ = stream.write_all(&sent);
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .expect("raw request runs")
}

fn assert_raw_problem(raw: &str, status: u16, code: &str) {
    assert!(raw.starts_with(&format!("HTTP/1.1 {status}")), "{raw}");
    assert!(
        raw.to_lowercase()
            .contains("content-type: application/problem+json"),
        "{raw}"
    );
    assert!(raw.contains(&format!("\"code\":\"{code}\"")), "{raw}");
}

async fn json_routes_take_only_json_and_bodiless_routes_refuse_large_bodies(app: TestApp) {
    let member = app.register("typed@example.com").await;
    app.grant(&member.id, 100).await;
    let send = |path: String, body: &'static str, content_type: Option<&'static str>| {
        let mut request = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&member.token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { TestApp::read(request.send().await.expect("answered")).await }
    };
    let spend = || "/api/v1/credits/spend".to_string();
    for refused in [
        "application/vnd.api+json",
        "application/json; charset=latin1",
        "application/json; version=2",
        "text/plain",
        "application/jsonx",
    ] {
        let resp = send(spend(), r#"{"amount": 1}"#, Some(refused)).await;
        assert_eq!(
            (resp.status, resp.is_problem()),
            (415, true),
            "{refused}: {}",
            resp.text
        );
    }
    assert_eq!(send(spend(), r#"{"amount": 1}"#, None).await.status, 415);
    for accepted in [
        "application/json; charset=UTF-8",
        "Application/JSON;charset=\"utf-8\"",
    ] {
        let resp = send(spend(), r#"{"amount": 1}"#, Some(accepted)).await;
        assert_eq!(resp.status, 200, "{accepted}: {}", resp.text);
    }
    assert_eq!(
        app.balance(&member).await,
        (98, 98),
        "only the JSON spends counted"
    );

    let hold = || async {
        let resp = app
            .post(
                "/api/v1/credits/holds",
                &member.token,
                json!({"amount": 10}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.json["id"].as_str().expect("id").to_string()
    };
    let held = hold().await;
    let capture = format!("/api/v1/credits/holds/{held}/capture");
    for (body, content_type) in [
        (r#"{"amount": 1}"#, Some("text/plain")),
        (r#"{"amount": 1}"#, None),
    ] {
        let resp = send(capture.clone(), body, content_type).await;
        assert_eq!(
            resp.status, 415,
            "capture with {content_type:?}: {}",
            resp.text
        );
    }
    // Left out entirely, the body means "capture all of it", whatever the type says.
    let all = send(capture.clone(), "", None).await;
    assert_eq!(
        (all.status, all.json["captured"].as_i64()),
        (200, Some(10)),
        "{}",
        all.text
    );

    // Routes that take no body accept a small one (`{}`) and refuse a large one, announced or
    // streamed, before acting.
    let void_small = hold().await;
    let small = send(
        format!("/api/v1/credits/holds/{void_small}/void"),
        "{}",
        Some("application/json"),
    )
    .await;
    assert_eq!(small.status, 200, "{}", small.text);
    let kept = hold().await;
    let token = member.token.clone();
    let announced = raw_request(
        &app,
        format!("POST /api/v1/credits/holds/{kept}/void HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 4096"),
        Vec::new(),
    )
    .await;
    assert_raw_problem(&announced, 413, "payload_too_large");
    let mut chunked = format!("{:x}\r\n", 4096).into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', 4096));
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let streamed = raw_request(
        &app,
        format!("POST /api/v1/credits/holds/{kept}/void HTTP/1.1\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked"),
        chunked,
    )
    .await;
    assert_raw_problem(&streamed, 413, "payload_too_large");
    let still = app.get("/api/v1/me/balance", &member.token).await;
    assert_eq!(
        still.json["held"], 10,
        "the refused voids released nothing: {}",
        still.text
    );
}

async fn every_error_is_problem_json_and_pages_answer_with_an_html_page(app: TestApp) {
    let member = app.register("errors@example.com").await;
    let token = member.token.clone();
    let two_mib = 2 * 1024 * 1024;
    for (path, content_type) in [
        ("/api/v1/credits/holds/hld_x/capture", "application/json"),
        ("/api/v1/auth/logout", "application/json"),
        ("/api/v1/webhooks/sandbox", "application/json"),
        ("/api/v1/orders/ord_x/cancel", "application/json"),
    ] {
        let raw = raw_request(
            &app,
            format!("POST {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {two_mib}"),
            Vec::new(),
        )
        .await;
        assert_raw_problem(&raw, 413, "payload_too_large");
    }
    // A path segment that is not UTF-8 is refused by axum's own extractor: still problem+json.
    let bad_path = app.get("/api/v1/orders/%FF%FE", &token).await;
    assert!(
        bad_path.status >= 400 && bad_path.is_problem(),
        "{}",
        bad_path.text
    );

    // The sandbox's hosted page: a person gets an HTML page, never JSON or plain text.
    let page =
        |method: reqwest::Method, path: &str, content_type: &'static str, body: &'static str| {
            let request = app
                .http
                .request(method, format!("{}{path}", app.base))
                .header("content-type", content_type)
                .body(body);
            async move { request.send().await.expect("answered") }
        };
    for (method, path, content_type, body, status) in [
        (
            reqwest::Method::POST,
            "/pay/sandbox/pay_missing",
            "application/json",
            "{}",
            415,
        ),
        (
            reqwest::Method::POST,
            "/pay/sandbox/pay_missing",
            "application/x-www-form-urlencoded",
            "other=1",
            422,
        ),
        (
            reqwest::Method::POST,
            "/pay/sandbox/pay_missing",
            "application/x-www-form-urlencoded",
            "card_number=4242424242424242",
            404,
        ),
        (
            reqwest::Method::GET,
            "/pay/sandbox/pay_missing",
            "text/plain",
            "",
            404,
        ),
        (
            reqwest::Method::GET,
            "/pay/result/pay_missing",
            "text/plain",
            "",
            404,
        ),
    ] {
        let response = page(method.clone(), path, content_type, body).await;
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(kind.starts_with("text/html"), "{method} {path}: {kind}");
        let html = response.text().await.expect("body");
        assert!(
            html.contains(&format!("data-status=\"{status}\"")),
            "{html}"
        );
    }
}
