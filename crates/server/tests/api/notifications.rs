//! Notifications delivered for real: by email to a local SMTP server this test runs (headers,
//! language, a plain-text and an HTML part), by SMS to a local gateway (its token, a failure
//! retried), in the member's language; and the profile settings they depend on.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{Backend, Member, TestApp};

/// A minimal SMTP server: accepts every message and keeps its raw text.
pub(crate) async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("address").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 localhost ESMTP test\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-localhost\r\n250 OK\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 end with .\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            kept.lock().expect("lock").push(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, received)
}

/// A local SMS gateway: records each request's authorization and body; the first `failures`
/// requests are answered 503.
pub(crate) async fn sms_gateway(failures: usize) -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let kept = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let kept = Arc::clone(&kept);
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let mut kept = kept.lock().expect("lock");
                kept.push((auth, body.0));
                if kept.len() <= failures {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}/send", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn notifications(app: &TestApp, member: &Member) -> Vec<Value> {
    let list = app.get("/api/v1/me/notifications", &member.token).await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["data"].as_array().expect("data").clone()
}

async fn an_email_in_the_members_language_reaches_the_smtp_server(backend: Backend) {
    let (port, received) = smtp_sink().await;
    let app = TestApp::spawn_with(backend, "email_delivery", |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let member = app.register("mail-me@example.com").await;
    let changed = app
        .patch("/api/v1/me", &member.token, json!({"language": "zh-Hans"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["language"], "zh-Hans");
    app.top_up_once(&member).await;

    let sent = notifications(&app, &member).await;
    let topped = sent
        .iter()
        .find(|n| n["kind"] == "auto_topup_succeeded")
        .expect("a top-up notification");
    assert_eq!(topped["status"], "sent", "{topped}");
    assert_eq!(topped["channel"], "email");
    assert!(
        topped["subject"]
            .as_str()
            .expect("subject")
            .contains("自动充值"),
        "{topped}"
    );
    // Two mails: `balance_low` at the crossing, then the top-up's.
    let mails = received.lock().expect("lock").clone();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for mail in &mails {
        for needle in [
            "From: \"Bursar Test Shop\" <shop@example.com>",
            "To: mail-me@example.com",
            "Subject: =?utf-8?",
            "Content-Language: zh-Hans",
            "multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
        ] {
            assert!(mail.contains(needle), "{needle} missing from:\n{mail}");
        }
    }
}

async fn an_sms_reaches_the_gateway_after_it_failed_once(backend: Backend) {
    let (url, received) = sms_gateway(1).await;
    let app = TestApp::spawn_with(backend, "sms_delivery", |config| {
        config.sms_gateway_url = Some(url.clone());
        config.sms_gateway_token = Some("sms-secret".into());
    })
    .await;
    let member = app.register("text-me@example.com").await;
    let changed = app
        .patch(
            "/api/v1/me",
            &member.token,
            json!({"phone": "+8613800000000", "language": "zh-Hant"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    app.top_up_once(&member).await;
    // The gateway refused the first message; it waits for its retry.
    let first = notifications(&app, &member).await;
    let waiting: Vec<_> = first.iter().filter(|n| n["status"] == "queued").collect();
    assert_eq!(waiting.len(), 1, "{first:?}");
    assert!(
        waiting[0]["error"].as_str().expect("error").contains("503"),
        "{first:?}"
    );
    // The job's back-off passes and the gateway takes it.
    app.state.store.clock.advance_ms(10 * 60_000);
    app.settle_jobs().await;
    let now = notifications(&app, &member).await;
    assert_eq!(now.len(), 2, "{now:?}");
    for sent in &now {
        assert_eq!(
            (sent["status"].as_str(), sent["channel"].as_str()),
            (Some("sent"), Some("sms")),
            "{sent}"
        );
    }
    let calls = received.lock().expect("lock").clone();
    assert_eq!(calls.len(), 3, "one refused, two taken: {calls:?}");
    for (auth, body) in &calls {
        assert_eq!(auth, "Bearer sms-secret");
        assert_eq!(body["to"], "+8613800000000");
        assert!(
            body["text"].as_str().expect("text").contains("點"),
            "{body}"
        );
    }
}

async fn bad_profile_settings_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend, "profile_settings").await;
    let member = app.register("settings@example.com").await;
    for body in [
        json!({"language": "fr"}),
        json!({"phone": "13800000000"}),
        json!({"phone": "+0123456789"}),
        json!({"phone": "+12"}),
        json!({"language": "zh-Hans", "phone": "call me"}),
    ] {
        let refused = app.patch("/api/v1/me", &member.token, body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert!(refused.is_problem());
    }
    let me = app.get("/api/v1/me", &member.token).await;
    assert_eq!(
        (me.json["language"].as_str(), &me.json["phone"]),
        (Some("en"), &Value::Null)
    );
    let set = app
        .patch(
            "/api/v1/me",
            &member.token,
            json!({"phone": "+886912345678"}),
        )
        .await;
    assert_eq!(set.json["phone"], "+886912345678", "{}", set.text);
    let removed = app
        .patch("/api/v1/me", &member.token, json!({"phone": ""}))
        .await;
    assert_eq!(removed.json["phone"], Value::Null, "{}", removed.text);
}

crate::for_both_backends!(
    an_email_in_the_members_language_reaches_the_smtp_server,
    an_sms_reaches_the_gateway_after_it_failed_once,
    bad_profile_settings_are_refused_and_change_nothing
);
