//! Signing in with one-time codes received for real: by email through a local SMTP server and
//! by SMS through a local gateway. A code signs in once; wrong, expired and reused codes are
//! refused; the sixth try is refused even with the right code; limits per destination and per
//! address; the answer for an unknown address is the one for a known address.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::for_both_backends;
use crate::helpers::{Backend, Resp, TestApp};
use crate::notifications::{sms_gateway, smtp_sink};

for_both_backends!(
    an_email_code_signs_in_once,
    wrong_expired_and_reused_codes_are_refused,
    sms_codes_and_the_limits,
);

async fn with_transports(
    backend: Backend,
    name: &str,
) -> (
    TestApp,
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<Vec<(String, Value)>>>,
) {
    let (port, mails) = smtp_sink().await;
    let (url, texts) = sms_gateway(0).await;
    let app = TestApp::spawn_with(backend, name, move |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        config.sms_gateway_url = Some(url);
        config.sms_gateway_token = Some("gateway-token".into());
        config.codes_per_destination_per_hour = 3;
        config.codes_per_address_per_hour = 6;
    })
    .await;
    (app, mails, texts)
}

async fn ask(app: &TestApp, channel: &str, destination: &str) -> Resp {
    app.send(
        "POST",
        "/api/v1/auth/codes",
        None,
        Some(&json!({"channel": channel, "destination": destination})),
        &[],
    )
    .await
}

async fn verify(app: &TestApp, channel: &str, destination: &str, code: &str) -> Resp {
    app.send(
        "POST",
        "/api/v1/auth/codes/verify",
        None,
        Some(&json!({"channel": channel, "destination": destination, "code": code})),
        &[],
    )
    .await
}

/// The six digits in the last message received.
fn last_code(texts: &[String]) -> String {
    let text = texts.last().expect("a message arrived");
    // A mail's body only: a header (the Message-ID's hex) may hold six digits in a row too.
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, body)| body);
    let digits: Vec<char> = body.chars().collect();
    digits
        .windows(6)
        .map(|w| w.iter().collect::<String>())
        .find(|w| w.chars().all(|c| c.is_ascii_digit()))
        .expect("six digits in the message")
}

fn mails(kept: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    kept.lock().expect("lock").clone()
}

async fn an_email_code_signs_in_once(backend: Backend) {
    let (app, mailbox, _) = with_transports(backend, "codes_email").await;
    let member = app.register("known@example.com").await;
    // The same answer for an address with an account and one without.
    let known = ask(&app, "email", "Known@Example.com").await;
    let unknown = ask(&app, "email", "nobody@example.com").await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.text, unknown.text);
    assert_eq!(known.json["expires_in"], 600);
    app.settle_jobs().await;
    let received = mails(&mailbox);
    assert_eq!(received.len(), 2);
    let to_known = received
        .iter()
        .find(|m| m.contains("known@example.com"))
        .expect("the member's mail");
    assert!(
        to_known.contains("Subject: Your sign-in code"),
        "{to_known}"
    );
    assert!(to_known.contains("text/plain") && to_known.contains("text/html"));
    let code = last_code(std::slice::from_ref(to_known));
    // The code is kept only as a hash once sent.
    let pending: Vec<Option<String>> = sqlx::query_scalar("SELECT pending_code FROM sign_in_codes")
        .fetch_all(&app.state.store.db.pool)
        .await
        .expect("reads");
    assert!(pending.iter().all(Option::is_none));

    let signed_in = verify(&app, "email", "known@example.com", &code).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(signed_in.json["user"]["id"], member.id.as_str());
    assert_eq!(signed_in.json["created"], false);
    let again = verify(&app, "email", "known@example.com", &code).await;
    assert_eq!((again.status, again.code()), (401, "code_expired"));

    // An address without an account gets one.
    let to_unknown = received
        .iter()
        .find(|m| m.contains("nobody@example.com"))
        .expect("the newcomer's mail");
    let code = last_code(std::slice::from_ref(to_unknown));
    let created = verify(&app, "email", "nobody@example.com", &code).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["created"], true);
    assert_eq!(created.json["user"]["email"], "nobody@example.com");
}

async fn wrong_expired_and_reused_codes_are_refused(backend: Backend) {
    let (app, mailbox, _) = with_transports(backend, "codes_refusals").await;
    assert_eq!(ask(&app, "email", "tries@example.com").await.status, 202);
    app.settle_jobs().await;
    let code = last_code(&mails(&mailbox));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let resp = verify(&app, "email", "tries@example.com", wrong).await;
        assert_eq!(
            (resp.status, resp.code()),
            (401, "invalid_code"),
            "try {attempt}"
        );
    }
    // The sixth try is refused, even with the right code.
    let sixth = verify(&app, "email", "tries@example.com", &code).await;
    assert_eq!((sixth.status, sixth.code()), (429, "too_many_attempts"));

    // A new code works, but not after ten minutes.
    assert_eq!(ask(&app, "email", "late@example.com").await.status, 202);
    app.settle_jobs().await;
    let code = last_code(&mails(&mailbox));
    app.state.store.clock.advance_ms(10 * 60_000 + 1);
    let late = verify(&app, "email", "late@example.com", &code).await;
    assert_eq!((late.status, late.code()), (401, "code_expired"));

    // Ten verifications of one code at once: one signs in.
    assert_eq!(ask(&app, "email", "racer@example.com").await.status, 202);
    app.settle_jobs().await;
    let code = last_code(&mails(&mailbox));
    let racing = (0..10).map(|_| verify(&app, "email", "racer@example.com", &code));
    let answers = futures::future::join_all(racing).await;
    assert_eq!(
        answers.iter().filter(|r| r.status == 200).count(),
        1,
        "{answers:?}"
    );

    // Bad input, and no code at all.
    for body in [
        json!({"channel": "pigeon", "destination": "a@example.com"}),
        json!({"channel": "email", "destination": "not an address"}),
        json!({"channel": "sms", "destination": "12345"}),
        json!({"channel": "email"}),
        json!({"channel": "email", "destination": "a@example.com", "extra": 1}),
    ] {
        let resp = app
            .send("POST", "/api/v1/auth/codes", None, Some(&body), &[])
            .await;
        assert_eq!(resp.status, 422, "{body}: {}", resp.text);
        assert!(resp.is_problem());
    }
    let never = verify(&app, "email", "never@example.com", "123456").await;
    assert_eq!((never.status, never.code()), (401, "invalid_code"));
}

async fn sms_codes_and_the_limits(backend: Backend) {
    let (app, _, texts) = with_transports(backend, "codes_sms").await;
    assert_eq!(ask(&app, "sms", "+8613800000001").await.status, 202);
    app.settle_jobs().await;
    let (auth, body) = texts.lock().expect("lock").last().cloned().expect("a text");
    assert_eq!(auth, "Bearer gateway-token");
    assert_eq!(body["to"], "+8613800000001");
    let code = last_code(&[body["text"].as_str().expect("text").to_string()]);
    let signed_in = verify(&app, "sms", "+8613800000001", &code).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(signed_in.json["created"], true);
    let token = signed_in.json["access_token"].as_str().expect("token");
    let mine = app.get("/api/v1/me/identities", token).await;
    assert_eq!(mine.json["data"][0]["provider"], "sms_code");

    // Three codes an hour to one destination (this server's setting), then 429.
    for _ in 0..2 {
        assert_eq!(ask(&app, "sms", "+8613800000001").await.status, 202);
    }
    let limited = ask(&app, "sms", "+8613800000001").await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    // Six an hour from one address, whatever the destinations.
    for i in 0..3 {
        let resp = ask(&app, "email", &format!("spread{i}@example.com")).await;
        assert_eq!(resp.status, 202, "{}", resp.text);
    }
    let limited = ask(&app, "email", "spread9@example.com").await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    // An hour later the limits have recovered.
    app.state.store.clock.advance_ms(3_600_001);
    assert_eq!(ask(&app, "email", "spread9@example.com").await.status, 202);
}
