//! Signing in with Google, Apple and Facebook from the web pages, without the providers'
//! scripts, against the local JWKS server and Graph API stub of `sign_in.rs`: the browser is
//! sent to the provider (whose page the test plays, signing the ID token with the nonce it
//! reads from the redirect), the provider posts back from its own site without Bursar's
//! cookies, and the same browser picks the answer up. Answers that are not the browser's are
//! refused and create nothing.

use std::collections::HashMap;
use std::time::Duration;

use bursar_server::config::{FacebookSettings, OidcSettings};
use jsonwebtoken::Algorithm;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{Backend, Resp, TestApp};
use crate::sign_in::{
    APPLE_CLIENT_ID, APPLE_ISSUER, CLIENT_ID, EC_P256, EC_X, EC_Y, FB_APP_ID, ISSUER, RSA_A,
    RSA_A_N, graph, jwks, now_s, rsa_jwk, sign,
};
use crate::web::{Browser, location};

crate::for_both_backends!(
    google_signs_a_browser_in_through_its_posted_token_and_a_one_time_ticket,
    apple_signs_up_with_the_name_it_posts_beside_the_token,
    facebook_signs_in_with_the_code_its_dialog_returns,
    answers_that_are_not_the_browsers_are_refused_and_create_nothing,
    only_the_providers_answers_skip_the_csrf_check,
);

const GOOGLE_AUTHORIZE: &str = "https://accounts.google.test/o/oauth2/v2/auth";
const APPLE_AUTHORIZE: &str = "https://appleid.apple.test/auth/authorize";
const FACEBOOK_DIALOG: &str = "https://www.facebook.test/v19.0/dialog/oauth";
/// What the server calls itself (`BURSAR_PUBLIC_URL` of `Config::for_tests`).
const PUBLIC_URL: &str = "http://127.0.0.1";

async fn start(backend: Backend, name: &str) -> TestApp {
    let keys = jwks(json!({"keys": [
        rsa_jwk("k1", RSA_A_N),
        {"kty": "EC", "kid": "apple-1", "use": "sig", "crv": "P-256", "x": EC_X, "y": EC_Y}
    ]}))
    .await;
    let graph_url = graph().await;
    TestApp::spawn_with(backend, name, move |config| {
        config.google = Some(OidcSettings {
            client_ids: vec![CLIENT_ID.into(), "bursar-ios.apps.test".into()],
            jwks_url: keys.url.clone(),
            issuers: vec![ISSUER.into()],
            authorize_url: GOOGLE_AUTHORIZE.into(),
            min_refetch: Duration::ZERO,
        });
        config.apple = Some(OidcSettings {
            client_ids: vec![APPLE_CLIENT_ID.into()],
            jwks_url: keys.url.clone(),
            issuers: vec![APPLE_ISSUER.into()],
            authorize_url: APPLE_AUTHORIZE.into(),
            min_refetch: Duration::ZERO,
        });
        config.facebook = Some(FacebookSettings {
            app_id: FB_APP_ID.into(),
            app_secret: "fb-secret".into(),
            graph_url,
            dialog_url: FACEBOOK_DIALOG.into(),
        });
    })
    .await
}

/// The query of a URL, by name.
fn query_of(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn set_cookies(resp: &Resp) -> Vec<String> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

/// Clicks a provider's button on `/login`: the redirect to the provider, and its query.
async fn begin(browser: &Browser, provider: &str, next: &str) -> (Resp, HashMap<String, String>) {
    let resp = browser
        .submit("/login", &format!("/login/{provider}"), &[("next", next)])
        .await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    let query = query_of(&location(&resp));
    (resp, query)
}

/// The provider's page posting its answer back from the provider's own site: a request
/// without any of Bursar's cookies (SameSite=Lax keeps them off a cross-site POST) and without
/// a CSRF token.
async fn provider_posts(app: &TestApp, provider: &str, form: &[(&str, &str)]) -> Resp {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client builds");
    let origin = if provider == "apple" {
        "https://appleid.apple.test"
    } else {
        "https://accounts.google.test"
    };
    let response = client
        .post(format!("{}/login/{provider}/callback", app.base))
        .header("accept", "text/html")
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("encodes"))
        .send()
        .await
        .expect("answered");
    TestApp::read(response).await
}

fn google_claims(app: &TestApp, sub: &str, email: &str, nonce: &str) -> Value {
    let now = now_s(app);
    json!({"iss": ISSUER, "aud": CLIENT_ID, "sub": sub, "iat": now, "exp": now + 600,
           "email": email, "email_verified": true, "name": "Web Person", "nonce": nonce})
}

fn google_token(app: &TestApp, sub: &str, email: &str, nonce: &str) -> String {
    sign(
        "k1",
        Algorithm::RS256,
        RSA_A,
        &google_claims(app, sub, email, nonce),
    )
}

async fn count(app: &TestApp, table: &'static str) -> i64 {
    // The table names are this file's own constants.
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&app.state.store.db.pool)
        .await
        .expect("counts")
}

/// Users, identities and web sessions: what a sign-in creates.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    (
        count(app, "users").await,
        count(app, "identities").await,
        count(app, "web_sessions").await,
    )
}

/// A whole Google sign-in in `browser`: the redirect, the token for the nonce, the post back,
/// the browser picking it up. Returns the last answer.
async fn google_sign_in(app: &TestApp, browser: &Browser, sub: &str, email: &str) -> Resp {
    let (_, to_google) = begin(browser, "google", "/account").await;
    let token = google_token(app, sub, email, &to_google["nonce"]);
    let posted = provider_posts(
        app,
        "google",
        &[("id_token", &token), ("state", &to_google["state"])],
    )
    .await;
    assert_eq!(posted.status, 303, "{}", posted.text);
    browser.get(&location(&posted)).await
}

fn assert_refused(resp: &Resp, key: &str, provider: &str) {
    assert_eq!(resp.status, 303, "{}", resp.text);
    assert_eq!(
        location(resp),
        format!("/login?error={key}&provider={provider}")
    );
    assert!(
        !set_cookies(resp)
            .iter()
            .any(|c| c.starts_with("bursar_session=") && !c.starts_with("bursar_session=;")),
        "no session"
    );
}

async fn google_signs_a_browser_in_through_its_posted_token_and_a_one_time_ticket(
    backend: Backend,
) {
    let app = start(backend, "web_google_sign_in").await;
    let browser = Browser::new(&app);
    // A button per provider, in every language, each a form with the page's CSRF token.
    for (language, label) in [
        ("en", "Continue with Google"),
        ("zh-Hans", "使用 Google 继续"),
        ("zh-Hant", "使用 Google 繼續"),
    ] {
        for path in ["/login", "/register"] {
            let page = browser.get(&format!("{path}?lang={language}")).await;
            assert_eq!(page.status, 200, "{}", page.text);
            assert!(page.text.contains(label), "{path} in {language}");
            for provider in ["google", "apple", "facebook"] {
                assert!(
                    page.text.contains(&format!(
                        "<form method=\"post\" action=\"/login/{provider}\">"
                    )),
                    "{path}: {provider}"
                );
            }
            assert!(!page.text.contains('⟦'), "{path} in {language}");
        }
    }
    // Every reason a sign-in did not happen, in every language, beside the form.
    for key in [
        "provider-cancelled",
        "provider-expired",
        "provider-refused",
        "provider-unlinked",
        "login-suspended",
        "login-too-many",
    ] {
        for language in ["en", "zh-Hans", "zh-Hant"] {
            let page = browser
                .get(&format!(
                    "/login?error={key}&provider=google&lang={language}"
                ))
                .await;
            assert_eq!(page.status, 200);
            assert!(page.text.contains("role=\"alert\""), "{key} in {language}");
            assert!(!page.text.contains('⟦'), "{key} in {language}");
        }
    }
    // Only those: a link cannot put other text on the page.
    let page = browser
        .get("/login?error=error-internal&provider=google")
        .await;
    assert!(!page.text.contains("role=\"alert\""));
    let page = browser.get("/login?lang=en").await;
    assert!(page.text.contains("Continue with Apple"));
    assert!(page.text.contains("Continue with Facebook"));
    let before = counts(&app).await;

    // To Google: an ID token posted back, for the first client id, with a nonce and a state.
    let (started, to_google) = begin(&browser, "google", "/account/orders").await;
    assert!(
        location(&started).starts_with(&format!("{GOOGLE_AUTHORIZE}?")),
        "{}",
        location(&started)
    );
    assert_eq!(to_google["client_id"], CLIENT_ID);
    assert_eq!(
        to_google["redirect_uri"],
        format!("{PUBLIC_URL}/login/google/callback")
    );
    assert_eq!(to_google["response_type"], "id_token");
    assert_eq!(to_google["response_mode"], "form_post");
    assert_eq!(to_google["scope"], "openid email");
    let (state, nonce) = (to_google["state"].clone(), to_google["nonce"].clone());
    assert!(state.len() >= 32 && nonce.len() >= 32 && state != nonce);
    // The cookie that binds the answer to this browser: short-lived, script-proof, Lax, and
    // holding neither the state nor the nonce.
    let flow = set_cookies(&started)
        .into_iter()
        .find(|c| c.starts_with("bursar_sign_in="))
        .expect("the sign-in cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/login", "Max-Age=600"] {
        assert!(flow.contains(attribute), "{attribute}: {flow}");
    }
    assert!(!flow.contains(&state) && !flow.contains(&nonce), "{flow}");
    // Another click starts another sign-in, with its own state and nonce.
    let (_, again) = begin(&Browser::new(&app), "google", "/account").await;
    assert_ne!(again["state"], state);
    assert_ne!(again["nonce"], nonce);

    // Google posts the token back from its own site: no cookie, no CSRF token, and the answer
    // is a redirect to this site carrying only a ticket, never the token.
    let token = google_token(&app, "web-g-1", "webby@example.com", &nonce);
    let posted = provider_posts(
        &app,
        "google",
        &[
            ("id_token", &token),
            ("state", &state),
            ("authuser", "0"),
            ("prompt", "none"),
        ],
    )
    .await;
    assert_eq!(posted.status, 303, "{}", posted.text);
    let finish = location(&posted);
    assert!(
        finish.starts_with("/login/google/finish?ticket="),
        "{finish}"
    );
    assert_eq!(query_of(&format!("{PUBLIC_URL}{finish}")).len(), 1);
    assert!(!finish.contains(&token[..40]) && !finish.contains(&state));
    assert_eq!(counts(&app).await, before, "nothing yet");
    assert_eq!(count(&app, "web_sign_in_tickets").await, 1);

    // The same browser, with its cookie: signed in, sent on, the cookie and the ticket gone.
    let done = browser.get(&finish).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(location(&done), "/account/orders");
    assert!(browser.has_session());
    assert!(
        set_cookies(&done)
            .iter()
            .any(|c| c.starts_with("bursar_sign_in=;") || c.starts_with("bursar_sign_in=\"\";")),
        "{:?}",
        set_cookies(&done)
    );
    assert_eq!(count(&app, "web_sign_in_tickets").await, 0);
    let account = browser.get("/account").await;
    assert_eq!(account.status, 200, "{}", account.text);
    let user = app
        .state
        .store
        .user_by_email("webby@example.com")
        .await
        .expect("reads")
        .expect("an account was made");
    assert_eq!(user.display_name.as_deref(), Some("Web Person"));
    let identities = app
        .state
        .store
        .identities_of(&user.id)
        .await
        .expect("reads");
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].provider.as_str(), "google");
    assert_eq!(identities[0].subject, "web-g-1");
    let with: String = sqlx::query_scalar("SELECT signed_in_with FROM web_sessions")
        .fetch_one(&app.state.store.db.pool)
        .await
        .expect("a session");
    assert_eq!(with, "google");
    let after = counts(&app).await;
    assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1));

    // The ticket worked once: used again, even by the same browser, it signs nobody in.
    let replayed = browser.get(&finish).await;
    assert_refused(&replayed, "provider-expired", "google");
    assert_eq!(counts(&app).await, after);
    // The person signs in again another day, in another browser: the same account.
    let other = Browser::new(&app);
    let second = google_sign_in(&app, &other, "web-g-1", "webby@example.com").await;
    assert_eq!(location(&second), "/account");
    assert!(other.has_session());
    let now = counts(&app).await;
    assert_eq!((now.0, now.1), (after.0, after.1));

    // A suspended account cannot sign in this way.
    let admin = app.admin().await;
    let suspended = app
        .patch(
            &format!("/api/v1/admin/users/{}", user.id),
            &admin.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    let sessions = count(&app, "web_sessions").await;
    let third = Browser::new(&app);
    let refused = google_sign_in(&app, &third, "web-g-1", "webby@example.com").await;
    assert_refused(&refused, "login-suspended", "google");
    assert!(!third.has_session());
    assert_eq!(count(&app, "web_sessions").await, sessions);
    let shown = third.get(&location(&refused)).await;
    assert!(
        shown
            .text
            .contains("This account is suspended. Please contact support."),
        "{}",
        shown.text
    );
}

async fn apple_signs_up_with_the_name_it_posts_beside_the_token(backend: Backend) {
    let app = start(backend, "web_apple_sign_in").await;
    let browser = Browser::new(&app);
    // Signing up from a page in Traditional Chinese.
    let page = browser.get("/register?lang=zh-Hant").await;
    assert!(page.text.contains("使用 Apple 繼續"), "{}", page.text);
    let resp = browser
        .submit("/register", "/login/apple", &[("next", "/account")])
        .await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    assert!(location(&resp).starts_with(&format!("{APPLE_AUTHORIZE}?")));
    let to_apple = query_of(&location(&resp));
    assert_eq!(to_apple["client_id"], APPLE_CLIENT_ID);
    assert_eq!(
        to_apple["redirect_uri"],
        format!("{PUBLIC_URL}/login/apple/callback")
    );
    assert_eq!(to_apple["response_type"], "code id_token");
    assert_eq!(to_apple["response_mode"], "form_post");
    assert_eq!(to_apple["scope"], "openid email name");
    // Apple's token: ES256, `email_verified` as a string, no name (the name comes beside it,
    // the first time only).
    let now = now_s(&app);
    let claims = json!({"iss": APPLE_ISSUER, "aud": APPLE_CLIENT_ID, "sub": "001234.web",
        "iat": now, "exp": now + 600, "email": "apple-web@example.com",
        "email_verified": "true", "nonce": to_apple["nonce"]});
    let token = sign("apple-1", Algorithm::ES256, EC_P256, &claims);
    let user =
        r#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"apple-web@example.com"}"#;
    let posted = provider_posts(
        &app,
        "apple",
        &[
            ("state", &to_apple["state"]),
            ("code", "c0de.apple"),
            ("id_token", &token),
            ("user", user),
        ],
    )
    .await;
    assert_eq!(posted.status, 303, "{}", posted.text);
    assert!(location(&posted).starts_with("/login/apple/finish?ticket="));
    let done = browser.get(&location(&posted)).await;
    assert_eq!(location(&done), "/account", "{}", done.text);
    assert!(browser.has_session());
    let made = app
        .state
        .store
        .user_by_email("apple-web@example.com")
        .await
        .expect("reads")
        .expect("an account");
    assert_eq!(made.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(made.language.as_str(), "zh-Hant", "the page's language");
    let dashboard = browser.get("/account").await;
    assert!(dashboard.text.contains("<html lang=\"zh-Hant\">"));
}

async fn facebook_signs_in_with_the_code_its_dialog_returns(backend: Backend) {
    let app = start(backend, "web_facebook_sign_in").await;
    let browser = Browser::new(&app);
    let (started, to_facebook) = begin(&browser, "facebook", "/account/rewards").await;
    assert!(location(&started).starts_with(&format!("{FACEBOOK_DIALOG}?")));
    assert_eq!(to_facebook["client_id"], FB_APP_ID);
    assert_eq!(
        to_facebook["redirect_uri"],
        format!("{PUBLIC_URL}/login/facebook/callback")
    );
    assert_eq!(to_facebook["scope"], "email");
    assert_eq!(to_facebook["response_type"], "code");
    assert!(!to_facebook.contains_key("nonce"));
    assert!(
        !location(&started).contains("fb-secret"),
        "the secret stays on the server"
    );
    let state = to_facebook["state"].clone();
    let before = counts(&app).await;

    // The person refuses at Facebook: nothing happens, and /login says so in their language.
    let cancelled = browser
        .get(&format!(
            "/login/facebook/callback?error=access_denied&error_reason=user_denied&state={state}"
        ))
        .await;
    assert_refused(&cancelled, "provider-cancelled", "facebook");
    assert_eq!(counts(&app).await, before);
    for (language, message) in [
        (
            "en",
            "You cancelled signing in with Facebook. Nothing was changed.",
        ),
        ("zh-Hans", "你已取消使用 Facebook 登录，未做任何更改。"),
        ("zh-Hant", "你已取消使用 Facebook 登入，沒有任何變更。"),
    ] {
        let shown = browser
            .get(&format!("{}&lang={language}", location(&cancelled)))
            .await;
        assert_eq!(shown.status, 200);
        assert!(shown.text.contains(message), "{language}: {}", shown.text);
        assert!(shown.text.contains("role=\"alert\""));
    }

    // Started again, and accepted: the code is exchanged server to server, and the token it
    // gives checked with debug_token as the API checks one.
    let (_, to_facebook) = begin(&browser, "facebook", "/account/rewards").await;
    let state = to_facebook["state"].clone();
    // A code Facebook refuses, or one for a revoked token, signs nobody in.
    for code in ["forged", "code-revoked"] {
        let (_, fresh) = begin(&browser, "facebook", "/account").await;
        let refused = browser
            .get(&format!(
                "/login/facebook/callback?code={code}&state={}",
                fresh["state"]
            ))
            .await;
        assert_refused(&refused, "provider-refused", "facebook");
    }
    assert_eq!(counts(&app).await, before);
    let (_, to_facebook) = begin(&browser, "facebook", "/account/rewards").await;
    assert_ne!(to_facebook["state"], state);
    let done = browser
        .get(&format!(
            "/login/facebook/callback?code=code-4242&state={}",
            to_facebook["state"]
        ))
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(location(&done), "/account/rewards");
    assert!(browser.has_session());
    let after = counts(&app).await;
    assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1));
    let subject: String =
        sqlx::query_scalar("SELECT subject FROM identities WHERE provider = 'facebook'")
            .fetch_one(&app.state.store.db.pool)
            .await
            .expect("an identity");
    assert_eq!(subject, "4242");
    // The same answer again: this browser's sign-in is over (its cookie is gone).
    let again = browser
        .get(&format!(
            "/login/facebook/callback?code=code-4242&state={}",
            to_facebook["state"]
        ))
        .await;
    assert_refused(&again, "provider-expired", "facebook");
    assert_eq!(counts(&app).await, after);
}

async fn answers_that_are_not_the_browsers_are_refused_and_create_nothing(backend: Backend) {
    let app = start(backend, "web_sign_in_refusals").await;
    let before = counts(&app).await;

    // Another browser's answer (an attacker's own sign-in, pushed into a victim's browser
    // that has a sign-in of its own under way): the state is not this browser's.
    let attacker = Browser::new(&app);
    let (_, attackers) = begin(&attacker, "google", "/account").await;
    let victim = Browser::new(&app);
    let (_, victims) = begin(&victim, "google", "/account").await;
    let token = google_token(
        &app,
        "attacker",
        "attacker@example.com",
        &attackers["nonce"],
    );
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", &token), ("state", &attackers["state"])],
    )
    .await;
    let pushed = victim.get(&location(&posted)).await;
    assert_refused(&pushed, "provider-refused", "google");
    assert!(!victim.has_session());

    // A browser with no sign-in under way (no cookie) cannot use a ticket, and the ticket is
    // spent by trying: the browser that started it cannot use it afterwards either.
    let token = google_token(&app, "someone", "someone@example.com", &victims["nonce"]);
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", &token), ("state", &victims["state"])],
    )
    .await;
    let stranger = Browser::new(&app);
    let stolen = stranger.get(&location(&posted)).await;
    assert_refused(&stolen, "provider-expired", "google");
    let late = victim.get(&location(&posted)).await;
    assert_refused(&late, "provider-expired", "google");

    // The right state with a token for another nonce (a token replayed from another sign-in).
    let (_, fresh) = begin(&victim, "google", "/account").await;
    let token = google_token(&app, "someone", "someone@example.com", &victims["nonce"]);
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", &token), ("state", &fresh["state"])],
    )
    .await;
    let replayed = victim.get(&location(&posted)).await;
    assert_refused(&replayed, "provider-refused", "google");

    // A ticket taken after its two minutes.
    let (_, fresh) = begin(&victim, "google", "/account").await;
    let token = google_token(&app, "someone", "someone@example.com", &fresh["nonce"]);
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", &token), ("state", &fresh["state"])],
    )
    .await;
    app.state.store.clock.advance_ms(3 * 60 * 1000);
    let expired = victim.get(&location(&posted)).await;
    assert_refused(&expired, "provider-expired", "google");

    // A Google answer picked up as Apple's, with Apple's sign-in under way: spent, and refused.
    let (_, fresh) = begin(&victim, "google", "/account").await;
    let token = google_token(&app, "someone", "someone@example.com", &fresh["nonce"]);
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", &token), ("state", &fresh["state"])],
    )
    .await;
    let (_, _) = begin(&victim, "apple", "/account").await;
    let ticket = location(&posted).replace("/login/google/", "/login/apple/");
    let crossed = victim.get(&ticket).await;
    assert_refused(&crossed, "provider-refused", "apple");
    assert_eq!(count(&app, "web_sign_in_tickets").await, 0);

    // Forged tickets, no ticket, a token that is not a token, the person saying no.
    let (_, fresh) = begin(&victim, "google", "/account").await;
    for path in [
        "/login/google/finish?ticket=sit_forged",
        "/login/google/finish",
    ] {
        assert_refused(&victim.get(path).await, "provider-expired", "google");
    }
    let (_, fresh2) = begin(&victim, "google", "/account").await;
    let posted = provider_posts(
        &app,
        "google",
        &[("id_token", "not.a.token"), ("state", &fresh2["state"])],
    )
    .await;
    assert_refused(
        &victim.get(&location(&posted)).await,
        "provider-refused",
        "google",
    );
    let denied = provider_posts(
        &app,
        "google",
        &[("error", "access_denied"), ("state", &fresh["state"])],
    )
    .await;
    assert_refused(&denied, "provider-cancelled", "google");
    let empty = provider_posts(&app, "google", &[("state", &fresh["state"])]).await;
    assert_refused(&empty, "provider-refused", "google");

    assert_eq!(counts(&app).await, before, "no user, identity or session");
    assert!(!attacker.has_session() && !victim.has_session() && !stranger.has_session());
    assert_eq!(count(&app, "web_sign_in_tickets").await, 0);
    // Unknown or unconfigured providers are not pages.
    let unknown = victim.submit("/login", "/login/github", &[]).await;
    assert_eq!(unknown.status, 404);
    let plain = TestApp::spawn(backend, "web_sign_in_unconfigured").await;
    let browser = Browser::new(&plain);
    let login = browser.get("/login").await;
    assert!(!login.text.contains("provider-sign-in"), "no buttons");
    assert_eq!(
        browser.submit("/login", "/login/google", &[]).await.status,
        404
    );
    assert_eq!(
        provider_posts(&plain, "google", &[("state", "x")])
            .await
            .status,
        404
    );
}

async fn only_the_providers_answers_skip_the_csrf_check(backend: Backend) {
    let app = start(backend, "web_sign_in_csrf").await;
    let browser = Browser::new(&app);
    browser.get("/login").await;
    // Starting a sign-in is a form like any other: without its token it is refused.
    for path in ["/login/google", "/login/apple", "/login/facebook"] {
        let refused = browser.post(path, &[("next", "/account")]).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text);
        assert!(
            set_cookies(&refused)
                .iter()
                .all(|c| !c.starts_with("bursar_sign_in="))
        );
    }
    // Only the two paths Google and Apple post to take a POST without one; Facebook answers
    // with a GET, and the pick-up is a GET.
    for path in ["/login/facebook/callback", "/login", "/logout"] {
        let refused = browser.post(path, &[("state", "x")]).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text);
    }
    let not_a_form = browser
        .post("/login/google/finish", &[("ticket", "x")])
        .await;
    assert_eq!(not_a_form.status, 405, "{}", not_a_form.text);
    for provider in ["google", "apple"] {
        let taken = provider_posts(&app, provider, &[("error", "access_denied")]).await;
        assert_eq!(taken.status, 303, "{provider}: {}", taken.text);
    }
}
