//! Signing in with Google, Apple and Facebook against local stand-ins: a JWKS server with test
//! keys (ID tokens signed here) and a Graph API stub. Good tokens sign in, create and link
//! accounts; every kind of bad token is a 401 that creates nothing; keys rotate; identities are
//! linked and unlinked, never the last.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bursar_server::config::{FacebookSettings, OidcSettings};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::for_both_backends;
use crate::helpers::{Backend, Member, Resp, TestApp};

for_both_backends!(
    google_tokens_sign_in_create_and_link_by_verified_email,
    bad_tokens_are_refused_and_create_nothing,
    keys_rotate_and_unknown_kids_cannot_flood_the_provider,
    apple_es256_tokens_and_private_relay_addresses,
    identities_are_linked_and_unlinked_but_never_the_last,
    facebook_tokens_are_checked_with_debug_token,
);

pub(crate) const RSA_A: &[u8] = include_bytes!("keys/rsa_a.pem");
const RSA_A_PUBLIC: &[u8] = include_bytes!("keys/rsa_a.pub.pem");
const RSA_B: &[u8] = include_bytes!("keys/rsa_b.pem");
pub(crate) const EC_P256: &[u8] = include_bytes!("keys/ec_p256.pem");
/// The public halves, as a JWKS publishes them.
pub(crate) const RSA_A_N: &str = "rxWVDsSL6Ik0SchCR8JgRyVvfxJF_3ltnBb42VuXXnzS6WCaiAyxRX7wN0IB-C2jniUtuViEsPHv7q4kAA3JQviUXlFrA2TxloHSpqP3k9GIvxsUazJ5wns0f-8vTsBDFjicC8NfJlZTNJjrkqaGtqeKGZVRNWqdMDuoeAmJ3bFU1OyMHNxtFzv5HioGwyPepN6kkfYhvyV1tGVuk2vPtdC4kGnCiC0CeBl4JLgYyafIN2BJstrZtoNQm5LuTTTLsqeuH8ozLWXtuy6ctZoyDjmGy9GCzk4HgIFTxIzkoYpOaEx9BM97cME79-A68TFrokgRYMMS4EYtnwVeENWkbw";
const RSA_B_N: &str = "xhC09tSy6DY7Ej94_ZYgPdeJo9nQvCQxW53Ra313AZYjYEpxqxioqV0fYsUdsqgNuBHHz6qx7QtGTCVsTKM8RG35np1cAMn6Jd776CaF4JX4RdRphFxnRRQ8h7Cq2an1x2xiqOUq6cf8-kxsJGRXF1km07-RYGcwvncs0o33bqwhjPEFw6KZd-hCDXztnMzu-1k2xW3sB0n-DFeiSP5fPXdzob4TD8ZWMgw6IoTmNG_5M2AGFxZKKRH6orMcYYpddFxvU4XUgc0SUPKUWcBi8CPrEJfGKvgxGaNMBlzFZ8kimUfznVoxgC6EfdexA1YdOAGGuVan0VRILPmMgxUmSw";
pub(crate) const EC_X: &str = "JsmTcFzBp3nSAyi4-SVJh2mmbo2dgoSa12HvtPQ6Vus";
pub(crate) const EC_Y: &str = "OokejPGK39Z4GcCO6XVqJol5Va2tgO0pnG4vchKEI3E";

pub(crate) const ISSUER: &str = "https://accounts.google.test";
pub(crate) const CLIENT_ID: &str = "bursar-web.apps.test";
pub(crate) const APPLE_ISSUER: &str = "https://appleid.apple.test";
pub(crate) const APPLE_CLIENT_ID: &str = "com.example.bursar";
pub(crate) const FB_APP_ID: &str = "1234567890";

pub(crate) fn rsa_jwk(kid: &str, n: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"})
}

/// A JWKS server whose key set the test can change, counting its fetches.
pub(crate) struct Jwks {
    pub(crate) url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

pub(crate) async fn jwks(keys: Value) -> Jwks {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (keys.clone(), fetches.clone());
    let app = Router::new().route(
        "/certs",
        get(move || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().expect("lock").clone();
            (
                [("cache-control", "public, max-age=3600")],
                axum::Json(body),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}/certs", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks { url, keys, fetches }
}

/// A Graph API stub: tokens `good-<id>` belong to this app's user <id>; `other-app` to another
/// app; `revoked` is not valid; `old` has expired. Facebook Login's code `code-<id>` is
/// exchanged for `good-<id>`, `code-revoked` for `revoked`; any other code is refused.
pub(crate) async fn graph() -> String {
    async fn debug_token(Query(q): Query<Vec<(String, String)>>) -> axum::Json<Value> {
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("access_token").as_deref(),
            Some("1234567890|fb-secret"),
            "the app's own credentials"
        );
        let token = get("input_token").unwrap_or_default();
        let data = match token.as_str() {
            "other-app" => json!({"app_id": "999", "is_valid": true, "user_id": "55"}),
            "revoked" => json!({"app_id": FB_APP_ID, "is_valid": false, "user_id": "55"}),
            "old" => {
                json!({"app_id": FB_APP_ID, "is_valid": true, "user_id": "55", "expires_at": 1000})
            }
            good => {
                let id = good.strip_prefix("good-").unwrap_or("0");
                json!({"app_id": FB_APP_ID, "is_valid": true, "user_id": id, "expires_at": 0})
            }
        };
        axum::Json(json!({ "data": data }))
    }
    async fn me(Query(q): Query<Vec<(String, String)>>) -> axum::Json<Value> {
        let token = q
            .iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let id = token.strip_prefix("good-").unwrap_or("55");
        axum::Json(json!({"id": id, "name": "Face Book", "email": format!("fb{id}@example.com")}))
    }
    async fn exchange(Query(q): Query<Vec<(String, String)>>) -> axum::response::Response {
        use axum::response::IntoResponse;
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("client_id").as_deref(), Some(FB_APP_ID));
        assert_eq!(get("client_secret").as_deref(), Some("fb-secret"));
        let redirect_uri = get("redirect_uri").unwrap_or_default();
        assert!(
            redirect_uri.ends_with("/login/facebook/callback"),
            "{redirect_uri}"
        );
        match get("code").unwrap_or_default().strip_prefix("code-") {
            Some(id) => {
                let token = if id == "revoked" {
                    "revoked".to_string()
                } else {
                    format!("good-{id}")
                };
                axum::Json(json!({"access_token": token, "token_type": "bearer",
                    "expires_in": 5_183_944}))
                .into_response()
            }
            None => {
                let error = json!({"error": {"message": "Invalid verification code format.",
                    "type": "OAuthException", "code": 100}});
                (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
            }
        }
    }
    let app = Router::new()
        .route("/debug_token", get(debug_token))
        .route("/me", get(me))
        .route("/oauth/access_token", get(exchange));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn start(backend: Backend, name: &str, jwks_url: &str, min_refetch: Duration) -> TestApp {
    let (jwks_url, graph_url) = (jwks_url.to_string(), graph().await);
    TestApp::spawn_with(backend, name, move |config| {
        config.google = Some(OidcSettings {
            client_ids: vec!["another-client".into(), CLIENT_ID.into()],
            jwks_url: jwks_url.clone(),
            issuers: vec![ISSUER.into()],
            authorize_url: OidcSettings::GOOGLE_AUTHORIZE_URL.into(),
            min_refetch,
        });
        config.apple = Some(OidcSettings {
            client_ids: vec![APPLE_CLIENT_ID.into()],
            jwks_url,
            issuers: vec![APPLE_ISSUER.into()],
            authorize_url: OidcSettings::APPLE_AUTHORIZE_URL.into(),
            min_refetch,
        });
        config.facebook = Some(FacebookSettings {
            app_id: FB_APP_ID.into(),
            app_secret: "fb-secret".into(),
            graph_url,
            dialog_url: FacebookSettings::DIALOG_URL.into(),
        });
    })
    .await
}

pub(crate) fn now_s(app: &TestApp) -> i64 {
    app.state.store.clock.now_ms() / 1000
}

fn claims(app: &TestApp, sub: &str, email: Option<&str>, verified: bool) -> Value {
    let now = now_s(app);
    json!({"iss": ISSUER, "aud": CLIENT_ID, "sub": sub, "iat": now, "exp": now + 600,
           "email": email, "email_verified": verified, "name": "Test Person", "nonce": "n-1"})
}

pub(crate) fn sign(kid: &str, alg: Algorithm, pem: &[u8], claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .expect("a test key");
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    encode(&header, claims, &key).expect("signs")
}

fn google_token(app: &TestApp, sub: &str, email: Option<&str>, verified: bool) -> String {
    sign(
        "k1",
        Algorithm::RS256,
        RSA_A,
        &claims(app, sub, email, verified),
    )
}

async fn sign_in(app: &TestApp, provider: &str, token: &str, bearer: Option<&str>) -> Resp {
    app.send(
        "POST",
        &format!("/api/v1/auth/oidc/{provider}"),
        bearer,
        Some(&json!({"id_token": token, "nonce": "n-1"})),
        &[],
    )
    .await
}

async fn identities(app: &TestApp, token: &str) -> Vec<Value> {
    let resp = app.get("/api/v1/me/identities", token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json["data"].as_array().expect("data").clone()
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let pool = &app.state.store.db.pool;
    let users: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM users")
        .fetch_one(pool)
        .await
        .expect("counts");
    let identities: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM identities")
        .fetch_one(pool)
        .await
        .expect("counts");
    (users, identities)
}

async fn google_tokens_sign_in_create_and_link_by_verified_email(backend: Backend) {
    let keys = jwks(json!({"keys": [rsa_jwk("k1", RSA_A_N)]})).await;
    let app = start(backend, "oidc_google", &keys.url, Duration::ZERO).await;
    let methods = app
        .send("GET", "/api/v1/auth/methods", None, None, &[])
        .await;
    assert_eq!(
        methods.json["methods"],
        json!([
            "password",
            "google",
            "apple",
            "facebook",
            "email_code",
            "sms_code"
        ])
    );

    let first = sign_in(
        &app,
        "google",
        &google_token(&app, "g-1", Some("new@example.com"), true),
        None,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["created"], true);
    assert_eq!(first.json["user"]["email"], "new@example.com");
    assert_eq!(first.json["user"]["display_name"], "Test Person");
    let again = sign_in(
        &app,
        "google",
        &google_token(&app, "g-1", Some("new@example.com"), true),
        None,
    )
    .await;
    assert_eq!(again.json["created"], false);
    assert_eq!(again.json["user"]["id"], first.json["user"]["id"]);
    let token = first.json["access_token"].as_str().expect("token");
    let linked = identities(&app, token).await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["provider"], "google");
    assert_eq!(linked[0]["subject"], "g-1");
    // A Google account that has no password cannot sign in with one.
    let no_password = app.login("new@example.com", "!").await;
    assert_eq!(no_password.status, 401);

    // A verified email links to the account that has it.
    let member = app.register("member@example.com").await;
    let linked = sign_in(
        &app,
        "google",
        &google_token(&app, "g-2", Some("Member@Example.com"), true),
        None,
    )
    .await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    assert_eq!(linked.json["created"], false);
    assert_eq!(linked.json["user"]["id"], member.id.as_str());
    assert_eq!(identities(&app, &member.token).await.len(), 2);

    // An unverified one never does: it gets an account of its own, without that address.
    let victim = app.register("victim@example.com").await;
    let takeover = sign_in(
        &app,
        "google",
        &google_token(&app, "g-3", Some("victim@example.com"), false),
        None,
    )
    .await;
    assert_eq!(takeover.status, 200, "{}", takeover.text);
    assert_eq!(takeover.json["created"], true);
    assert_ne!(takeover.json["user"]["id"], victim.id.as_str());
    assert_ne!(takeover.json["user"]["email"], "victim@example.com");
    assert_eq!(identities(&app, &victim.token).await.len(), 1);

    // Ten first sign-ins of one person at once make one account.
    let token = google_token(&app, "g-4", Some("racer@example.com"), true);
    let racing = (0..10).map(|_| sign_in(&app, "google", &token, None));
    let answers = futures::future::join_all(racing).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|r| r.json["user"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        answers.iter().filter(|r| r.json["created"] == true).count(),
        1
    );
    // The same without an email to meet on: still one account.
    let token = google_token(&app, "g-5", None, false);
    let racing = (0..10).map(|_| sign_in(&app, "google", &token, None));
    let answers = futures::future::join_all(racing).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|r| r.json["user"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");

    // A suspended account cannot sign in this way either.
    let admin = app.admin().await;
    let suspended = app
        .patch(
            &format!("/api/v1/admin/users/{}", member.id),
            &admin.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    let refused = sign_in(
        &app,
        "google",
        &google_token(&app, "g-2", Some("member@example.com"), true),
        None,
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    // An admin sees the member's ways to sign in.
    let seen = app
        .get(
            &format!("/api/v1/admin/users/{}/identities", member.id),
            &admin.token,
        )
        .await;
    assert_eq!(seen.json["data"].as_array().map(Vec::len), Some(2));
    let forbidden = app
        .get(
            &format!("/api/v1/admin/users/{}/identities", member.id),
            &victim.token,
        )
        .await;
    assert_eq!(forbidden.status, 403);
}

async fn bad_tokens_are_refused_and_create_nothing(backend: Backend) {
    let keys = jwks(json!({"keys": [rsa_jwk("k1", RSA_A_N)]})).await;
    let app = start(backend, "oidc_refusals", &keys.url, Duration::ZERO).await;
    let good = claims(&app, "bad-1", Some("bad@example.com"), true);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        change(&mut c);
        c
    };
    let now = now_s(&app);
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        encode(&header, &good, &EncodingKey::from_secret(RSA_A_PUBLIC)).expect("signs")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "another key's signature",
            sign("k1", Algorithm::RS256, RSA_B, &good),
        ),
        (
            "wrong issuer",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| c["iss"] = json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| c["aud"] = json!("someone-else")),
            ),
        ),
        (
            "expired",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| c["exp"] = json!(now - 120)),
            ),
        ),
        (
            "issued in the future",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| c["iat"] = json!(now + 3600)),
            ),
        ),
        (
            "another nonce",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| c["nonce"] = json!("n-2")),
            ),
        ),
        (
            "no subject",
            sign(
                "k1",
                Algorithm::RS256,
                RSA_A,
                &with(&|c| {
                    c.as_object_mut().expect("object").remove("sub");
                }),
            ),
        ),
        ("alg none", format!("{header_none}.{payload}.")),
        ("HS256 with the public key", hs256_with_public_key),
        ("unknown kid", sign("k9", Algorithm::RS256, RSA_A, &good)),
        (
            "RS384 on an RS256 key",
            sign("k1", Algorithm::RS384, RSA_A, &good),
        ),
        ("not a JWT", "not.a.jwt".into()),
    ];
    let before = counts(&app).await;
    for (what, token) in cases {
        let resp = sign_in(&app, "google", &token, None).await;
        assert_eq!(resp.status, 401, "{what}: {}", resp.text);
        assert!(resp.is_problem(), "{what}");
        assert_eq!(resp.code(), "unauthorized", "{what}");
    }
    assert_eq!(counts(&app).await, before, "nothing was created");
    // Bad requests and unknown or unconfigured providers.
    for (path, body, status) in [
        ("/api/v1/auth/oidc/google", json!({}), 422),
        ("/api/v1/auth/oidc/google", json!({"id_token": ""}), 422),
        (
            "/api/v1/auth/oidc/google",
            json!({"id_token": "x".repeat(20_000)}),
            422,
        ),
        (
            "/api/v1/auth/oidc/google",
            json!({"id_token": "a.b.c", "extra": 1}),
            422,
        ),
        (
            "/api/v1/auth/oidc/myspace",
            json!({"id_token": "a.b.c"}),
            404,
        ),
        (
            "/api/v1/auth/oidc/facebook",
            json!({"id_token": "a.b.c"}),
            404,
        ),
        ("/api/v1/auth/facebook", json!({"access_token": ""}), 422),
    ] {
        let resp = app.send("POST", path, None, Some(&body), &[]).await;
        assert_eq!(resp.status, status, "{path} {body}: {}", resp.text);
        assert!(resp.is_problem());
    }
    let plain = TestApp::spawn(backend, "oidc_unconfigured").await;
    let methods = plain
        .send("GET", "/api/v1/auth/methods", None, None, &[])
        .await;
    assert_eq!(
        methods.json["methods"],
        json!(["password", "email_code", "sms_code"])
    );
    for path in ["/api/v1/auth/oidc/google", "/api/v1/auth/oidc/apple"] {
        let resp = plain
            .send("POST", path, None, Some(&json!({"id_token": "a.b.c"})), &[])
            .await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        assert!(
            resp.json["detail"]
                .as_str()
                .expect("detail")
                .contains("not configured")
        );
    }
    assert_eq!(counts(&app).await, before);
}

async fn keys_rotate_and_unknown_kids_cannot_flood_the_provider(backend: Backend) {
    let keys = jwks(json!({"keys": [rsa_jwk("k1", RSA_A_N)]})).await;
    let app = start(backend, "oidc_rotation", &keys.url, Duration::ZERO).await;
    let ok = sign_in(
        &app,
        "google",
        &google_token(&app, "r-1", Some("r@example.com"), true),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The provider rotates to key k2; a token signed with it is picked up at once.
    *keys.keys.lock().expect("lock") = json!({"keys": [rsa_jwk("k2", RSA_B_N)]});
    let rotated = sign(
        "k2",
        Algorithm::RS256,
        RSA_B,
        &claims(&app, "r-1", Some("r@example.com"), true),
    );
    let resp = sign_in(&app, "google", &rotated, None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["user"]["id"], ok.json["user"]["id"]);

    // With the default minute between refetches, 30 invented kids make no fetch at all.
    let guarded = jwks(json!({"keys": [rsa_jwk("k1", RSA_A_N)]})).await;
    let app = start(
        backend,
        "oidc_flood",
        &guarded.url,
        OidcSettings::MIN_REFETCH,
    )
    .await;
    let ok = sign_in(
        &app,
        "google",
        &google_token(&app, "f-1", Some("f@example.com"), true),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(guarded.fetches.load(Ordering::SeqCst), 1);
    for i in 0..30 {
        let forged = sign(
            &format!("forged-{i}"),
            Algorithm::RS256,
            RSA_B,
            &claims(&app, "f-1", None, false),
        );
        assert_eq!(sign_in(&app, "google", &forged, None).await.status, 401);
    }
    assert_eq!(
        guarded.fetches.load(Ordering::SeqCst),
        1,
        "no fetch per forged kid"
    );
}

async fn apple_es256_tokens_and_private_relay_addresses(backend: Backend) {
    let keys = jwks(json!({"keys": [
        rsa_jwk("k1", RSA_A_N),
        {"kty": "EC", "kid": "apple-1", "use": "sig", "crv": "P-256", "x": EC_X, "y": EC_Y}
    ]}))
    .await;
    let app = start(backend, "oidc_apple", &keys.url, Duration::ZERO).await;
    let now = now_s(&app);
    // Apple sends email_verified as a string, a relay address, and no name.
    let apple = json!({"iss": APPLE_ISSUER, "aud": APPLE_CLIENT_ID, "sub": "001234.abc",
        "iat": now, "exp": now + 600, "email": "x7k2@privaterelay.appleid.com",
        "email_verified": "true", "is_private_email": "true", "nonce": "n-1"});
    let token = sign("apple-1", Algorithm::ES256, EC_P256, &apple);
    let resp = sign_in(&app, "apple", &token, None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["created"], true);
    assert_eq!(resp.json["user"]["email"], "x7k2@privaterelay.appleid.com");
    assert_eq!(resp.json["user"]["display_name"], Value::Null);
    // Later sign-ins carry no email at all: the identity still finds its account.
    let mut later = apple.clone();
    later.as_object_mut().expect("object").remove("email");
    let again = sign_in(
        &app,
        "apple",
        &sign("apple-1", Algorithm::ES256, EC_P256, &later),
        None,
    )
    .await;
    assert_eq!(again.json["user"]["id"], resp.json["user"]["id"]);
    // A Google token is not an Apple one (issuer and audience), nor the other way round.
    let google = google_token(&app, "g-1", None, false);
    assert_eq!(sign_in(&app, "apple", &google, None).await.status, 401);
    assert_eq!(sign_in(&app, "google", &token, None).await.status, 401);
}

async fn identities_are_linked_and_unlinked_but_never_the_last(backend: Backend) {
    let keys = jwks(json!({"keys": [rsa_jwk("k1", RSA_A_N)]})).await;
    let app = start(backend, "oidc_linking", &keys.url, Duration::ZERO).await;
    let member: Member = app.register("linker@example.com").await;
    let other = app.register("other@example.com").await;
    // Signed in, a Google account (with any email) is linked to the caller.
    let token = google_token(&app, "l-1", Some("elsewhere@example.com"), true);
    let linked = sign_in(&app, "google", &token, Some(&member.token)).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    assert_eq!(linked.json["user"]["id"], member.id.as_str());
    let mine = identities(&app, &member.token).await;
    assert_eq!(mine.len(), 2);
    // Someone else cannot link it again.
    let taken = sign_in(&app, "google", &token, Some(&other.token)).await;
    assert_eq!(taken.status, 409, "{}", taken.text);

    // Another member's identity reads as not found.
    let google_id = mine
        .iter()
        .find(|i| i["provider"] == "google")
        .expect("google")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let not_theirs = app
        .send(
            "DELETE",
            &format!("/api/v1/me/identities/{google_id}"),
            Some(&other.token),
            None,
            &[],
        )
        .await;
    assert_eq!(not_theirs.status, 404);
    // Removing the password forgets it and ends the sessions; Google still signs in.
    let password_id = mine
        .iter()
        .find(|i| i["provider"] == "password")
        .expect("password")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let removed = app
        .send(
            "DELETE",
            &format!("/api/v1/me/identities/{password_id}"),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let login = app.login("linker@example.com", "correct horse").await;
    assert_eq!(login.status, 401);
    let refreshed = app
        .send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": member.refresh_token})),
            &[],
        )
        .await;
    assert_eq!(refreshed.status, 401, "sessions ended");
    let back = sign_in(&app, "google", &token, None).await;
    assert_eq!(back.json["user"]["id"], member.id.as_str());
    let fresh = back.json["access_token"].as_str().expect("token");
    // The last way in cannot be removed.
    let last = app
        .send(
            "DELETE",
            &format!("/api/v1/me/identities/{google_id}"),
            Some(fresh),
            None,
            &[],
        )
        .await;
    assert_eq!(last.status, 409, "{}", last.text);
    assert_eq!(identities(&app, fresh).await.len(), 1);
    // Setting a password again adds it back as a way in.
    let set = app
        .patch("/api/v1/me", fresh, json!({"password": "a new password"}))
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let relogin = app.login("linker@example.com", "a new password").await;
    assert_eq!(relogin.status, 200, "{}", relogin.text);
    let session = relogin.json["access_token"].as_str().expect("token");
    assert_eq!(identities(&app, session).await.len(), 2);

    // A Google account the member removed stays out: no sign-in links it back, until the
    // member links it again from their account.
    let removed = app
        .send(
            "DELETE",
            &format!("/api/v1/me/identities/{google_id}"),
            Some(session),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let kept_out = sign_in(&app, "google", &token, None).await;
    assert_eq!(kept_out.status, 409, "{}", kept_out.text);
    let relinked = sign_in(&app, "google", &token, Some(session)).await;
    assert_eq!(relinked.status, 200, "{}", relinked.text);
    let back = sign_in(&app, "google", &token, None).await;
    assert_eq!(back.json["user"]["id"], member.id.as_str());
}

async fn facebook_tokens_are_checked_with_debug_token(backend: Backend) {
    let keys = jwks(json!({"keys": []})).await;
    let app = start(backend, "facebook_sign_in", &keys.url, Duration::ZERO).await;
    let login = |token: &str| {
        app.send(
            "POST",
            "/api/v1/auth/facebook",
            None,
            Some(&json!({"access_token": token})),
            &[],
        )
    };
    let first = login("good-77").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["created"], true);
    // Facebook does not say the address was confirmed, so it is not the account's email.
    let email = first.json["user"]["email"].as_str().expect("email");
    assert!(email.ends_with("@identity.invalid"), "{email}");
    let again = login("good-77").await;
    assert_eq!(again.json["user"]["id"], first.json["user"]["id"]);
    assert_eq!(again.json["created"], false);
    let before = counts(&app).await;
    for bad in ["other-app", "revoked", "old"] {
        let resp = login(bad).await;
        assert_eq!(resp.status, 401, "{bad}: {}", resp.text);
        assert!(resp.is_problem());
    }
    assert_eq!(counts(&app).await, before);
}
