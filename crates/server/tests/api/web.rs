//! The web UI through HTTP, as a browser without JavaScript uses it: sessions in cookies, CSRF
//! tokens in forms, redirects, languages, and the same use cases as the API underneath.

use std::sync::Arc;

use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{Member, Resp, TestApp, uuid_suffix};
use crate::orders::package;

crate::on_both_backends!(
    a_visitor_is_sent_to_sign_in_from_every_member_page,
    sign_up_buy_with_the_sandbox_card_and_see_the_credits_and_the_receipt,
    a_form_without_its_csrf_token_is_refused_and_changes_nothing,
    logging_out_and_suspension_end_the_session,
    a_password_change_ends_other_sessions_and_keeps_this_one,
    the_language_follows_the_setting_then_the_browser_then_the_switcher,
    every_page_is_translated_in_both_chinese_scripts,
    the_csv_export_matches_the_api,
    an_export_longer_than_one_batch_streams_every_row_once,
    a_coupon_recomputes_the_price_and_a_bad_one_is_shown_beside_its_field,
    a_member_cannot_open_another_members_order,
    pages_carry_security_headers_and_browsers_get_an_html_404,
);

/// A browser: its own cookie jar, redirects not followed (so tests see each 303).
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Self {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .build()
                .expect("client builds"),
            jar,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[]).await
    }

    pub(crate) async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        TestApp::read(request.send().await.expect("answered")).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("encodes"))
            .send()
            .await
            .expect("answered");
        TestApp::read(response).await
    }

    /// Posts a form the way the page renders it: with the CSRF token of the page at `from`.
    pub(crate) async fn submit(&self, from: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let page = self.get(from).await;
        let csrf = field_value(&page.text, "csrf").expect("the page's form carries a CSRF token");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    pub(crate) async fn sign_up(&self, email: &str) -> Resp {
        let resp = self
            .submit(
                "/register",
                "/register",
                &[("email", email), ("password", "correct horse")],
            )
            .await;
        assert_eq!(resp.status, 303, "{}", resp.text);
        resp
    }

    pub(crate) fn has_session(&self) -> bool {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().expect("url");
        self.jar
            .cookies(&url)
            .is_some_and(|c| c.to_str().unwrap_or_default().contains("bursar_session="))
    }
}

pub(crate) fn location(resp: &Resp) -> String {
    resp.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `value` of the first input named `name` in a page.
pub(crate) fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The text of the element with `id`, tags stripped.
pub(crate) fn text_of(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest.find("</")?;
    Some(rest[start..end].trim().to_string())
}

async fn credit_pack(app: &TestApp, admin: &Member, credits: i64, price: i64) -> String {
    package(
        app,
        admin,
        json!({"name": format!("{credits} credits"), "kind": "credit_pack", "credits": credits,
               "price": {"amount": price, "currency": "CNY"}}),
    )
    .await
}

/// Signs a browser up and returns it with the member's id (read through the store).
async fn member_browser(app: &TestApp) -> (Browser, String, String) {
    let browser = Browser::new(app);
    let email = format!("web-{}@example.com", uuid_suffix());
    browser.sign_up(&email).await;
    let user = app
        .state
        .store
        .user_by_email(&email)
        .await
        .expect("reads")
        .expect("signed up");
    (browser, user.id, email)
}

/// Orders `package_id` on the buy page and pays on the sandbox page with `card`; returns the
/// order's page path.
async fn buy(browser: &Browser, package_id: &str, coupon: &str, card: &str) -> (Resp, String) {
    let placed = browser
        .submit(
            "/account/buy",
            "/account/buy",
            &[
                ("package_id", package_id),
                ("provider", "sandbox"),
                ("quantity", "1"),
                ("coupon_code", coupon),
                ("order_key", &uuid_suffix()),
            ],
        )
        .await;
    assert_eq!(placed.status, 303, "{}", placed.text);
    let pay_url = location(&placed);
    let path = pay_url[pay_url.find("/pay/sandbox/").expect("the sandbox page")..].to_string();
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let paid = browser.post(&path, &[("card_number", card)]).await;
    assert_eq!(paid.status, 303, "{}", paid.text);
    let result = browser.get(&location(&paid)).await;
    let payment_id = path.trim_start_matches("/pay/sandbox/").to_string();
    (result, payment_id)
}

async fn a_visitor_is_sent_to_sign_in_from_every_member_page(app: TestApp) {
    let browser = Browser::new(&app);
    for path in [
        "/account",
        "/account/buy",
        "/account/orders",
        "/account/orders/ord_x",
        "/account/orders/ord_x/receipt",
        "/account/transactions",
        "/account/transactions.csv",
        "/account/settings",
        "/account/rewards",
        "/account/marketplace",
        "/account/auto-top-up",
        "/account/subscriptions",
        "/merchant",
    ] {
        let resp = browser.get(path).await;
        assert_eq!(resp.status, 303, "{path}");
        let expected = format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", path)]).expect("encodes")
        );
        assert_eq!(location(&resp), expected, "{path}");
    }
    // The public pages need no session.
    for path in ["/", "/login", "/register"] {
        assert_eq!(browser.get(path).await.status, 200, "{path}");
    }
}

async fn sign_up_buy_with_the_sandbox_card_and_see_the_credits_and_the_receipt(app: TestApp) {
    let admin = app.admin().await;
    let pack = credit_pack(&app, &admin, 1000, 4500).await;
    let (browser, user_id, _) = member_browser(&app).await;
    assert!(browser.has_session());
    let dashboard = browser.get("/account").await;
    assert_eq!(dashboard.status, 200);
    assert_eq!(text_of(&dashboard.text, "balance").as_deref(), Some("0"));

    // A declined card: a clear failure, nothing credited.
    let (declined, _) = buy(&browser, &pack, "", "4000000000000002").await;
    assert!(
        declined.text.contains("Payment failed"),
        "{}",
        declined.text
    );
    let orders = browser.get("/account/orders").await;
    assert!(orders.text.contains("Failed"), "{}", orders.text);

    let (paid, payment_id) = buy(&browser, &pack, "", "4242424242424242").await;
    assert!(paid.text.contains("Payment received"), "{}", paid.text);
    let order = app
        .state
        .store
        .order_by_payment(&payment_id)
        .await
        .expect("reads")
        .expect("the order");
    assert_eq!(order.user_id, user_id);
    assert_eq!(order.status.as_str(), "paid");

    let dashboard = browser.get("/account").await;
    assert_eq!(
        text_of(&dashboard.text, "balance").as_deref(),
        Some("1,000")
    );
    assert!(
        dashboard.text.contains("Purchase"),
        "the activity lists the purchase"
    );
    let detail = browser.get(&format!("/account/orders/{}", order.id)).await;
    assert_eq!(
        text_of(&detail.text, "order-status").as_deref(),
        Some("Paid")
    );
    let receipt = browser
        .get(&format!("/account/orders/{}/receipt", order.id))
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    assert_eq!(
        text_of(&receipt.text, "receipt-total").as_deref(),
        Some("¥45.00")
    );
    app.assert_ledger_ok().await;
}

async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing(app: TestApp) {
    let (browser, user_id, _) = member_browser(&app).await;
    let form = [
        ("display_name", "Changed"),
        ("language", "en"),
        ("time_zone", ""),
    ];
    let refused = browser.post("/account/settings", &form).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let wrong = [
        ("csrf", "csrf_forged"),
        ("display_name", "Changed"),
        ("language", "en"),
        ("time_zone", ""),
    ];
    assert_eq!(browser.post("/account/settings", &wrong).await.status, 403);
    let user = app
        .state
        .store
        .user(&user_id)
        .await
        .expect("reads")
        .expect("user");
    assert_eq!(user.display_name, None, "nothing changed");
    // Signing in and up are forms too.
    let login = Browser::new(&app)
        .post(
            "/login",
            &[("email", "a@example.com"), ("password", "whatever1")],
        )
        .await;
    assert_eq!(login.status, 403);
    // With the token, the same change is made.
    let saved = browser
        .submit("/account/settings", "/account/settings", &form)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let user = app
        .state
        .store
        .user(&user_id)
        .await
        .expect("reads")
        .expect("user");
    assert_eq!(user.display_name.as_deref(), Some("Changed"));
}

async fn logging_out_and_suspension_end_the_session(app: TestApp) {
    let (browser, _, _) = member_browser(&app).await;
    let cookie = session_cookie(&browser);
    let out = browser.submit("/account", "/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(browser.get("/account").await.status, 303);
    // The old cookie, replayed, is no session any more.
    let replay = Browser::new(&app);
    replay
        .jar
        .add_cookie_str(&cookie, &app.base.parse().expect("url"));
    assert_eq!(replay.get("/account").await.status, 303);

    let admin = app.admin().await;
    let (browser, user_id, _) = member_browser(&app).await;
    assert_eq!(browser.get("/account").await.status, 200);
    let suspended = app
        .patch(
            &format!("/api/v1/admin/users/{user_id}"),
            &admin.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(
        browser.get("/account").await.status,
        303,
        "a suspended user's session is over"
    );
}

fn session_cookie(browser: &Browser) -> String {
    use reqwest::cookie::CookieStore;
    let url = browser.base.parse().expect("url");
    let header = browser.jar.cookies(&url).expect("cookies");
    header
        .to_str()
        .expect("ascii")
        .split("; ")
        .find(|c| c.starts_with("bursar_session="))
        .expect("a session cookie")
        .to_string()
}

async fn a_password_change_ends_other_sessions_and_keeps_this_one(app: TestApp) {
    let (browser, _, email) = member_browser(&app).await;
    let other = Browser::new(&app);
    let signed_in = other
        .submit(
            "/login",
            "/login",
            &[("email", &email), ("password", "correct horse")],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert_eq!(other.get("/account").await.status, 200);

    let wrong = browser
        .submit(
            "/account/settings",
            "/account/password",
            &[
                ("current_password", "not it at all"),
                ("new_password", "battery staple"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.text.contains("current password is wrong"),
        "{}",
        wrong.text
    );
    let changed = browser
        .submit(
            "/account/settings",
            "/account/password",
            &[
                ("current_password", "correct horse"),
                ("new_password", "battery staple"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    assert_eq!(
        browser.get("/account").await.status,
        200,
        "this browser stays in"
    );
    assert_eq!(
        other.get("/account").await.status,
        303,
        "the other session ended"
    );
    let api = app.login(&email, "battery staple").await;
    assert_eq!(api.status, 200, "the new password works for the API too");
}

async fn the_language_follows_the_setting_then_the_browser_then_the_switcher(app: TestApp) {
    let visitor = Browser::new(&app);
    let english = visitor.get("/login").await;
    assert!(english.text.contains("<html lang=\"en\">"));
    let traditional = visitor
        .get_with("/login", &[("accept-language", "zh-TW,zh;q=0.9,en;q=0.5")])
        .await;
    assert!(traditional.text.contains("<html lang=\"zh-Hant\">"));
    assert!(traditional.text.contains("登入"));
    let simplified = visitor
        .get_with("/login", &[("accept-language", "zh-CN")])
        .await;
    assert!(simplified.text.contains("<html lang=\"zh-Hans\">"));
    assert!(simplified.text.contains("登录"));
    // The switcher wins over the browser, and is remembered.
    let switched = visitor
        .get_with("/login?lang=zh-Hant", &[("accept-language", "en")])
        .await;
    assert!(switched.text.contains("<html lang=\"zh-Hant\">"));
    let again = visitor
        .get_with("/login", &[("accept-language", "en")])
        .await;
    assert!(
        again.text.contains("<html lang=\"zh-Hant\">"),
        "the choice is kept in a cookie"
    );

    // Signing up on a page in Simplified Chinese makes it the user's setting, which then wins
    // over the browser's; the switcher changes the setting.
    let browser = Browser::new(&app);
    let email = format!("web-{}@example.com", uuid_suffix());
    let form = browser
        .get_with("/register", &[("accept-language", "zh-CN")])
        .await;
    let csrf = field_value(&form.text, "csrf").expect("csrf");
    let signed_up = browser
        .post(
            "/register?lang=zh-Hans",
            &[
                ("csrf", &csrf),
                ("email", &email),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.text);
    let me = app
        .state
        .store
        .user_by_email(&email)
        .await
        .expect("reads")
        .expect("user");
    assert_eq!(me.language.as_str(), "zh-Hans");
    let user_id = me.id;
    let page = browser
        .get_with("/account", &[("accept-language", "en")])
        .await;
    assert!(
        page.text.contains("<html lang=\"zh-Hans\">"),
        "the setting wins over the browser"
    );
    let switched = browser.get("/account?lang=zh-Hant").await;
    assert!(switched.text.contains("<html lang=\"zh-Hant\">"));
    let me = app
        .state
        .store
        .user(&user_id)
        .await
        .expect("reads")
        .expect("user");
    assert_eq!(
        me.language.as_str(),
        "zh-Hant",
        "the switcher saved the setting"
    );
}

async fn every_page_is_translated_in_both_chinese_scripts(app: TestApp) {
    let admin = app.admin().await;
    let pack = credit_pack(&app, &admin, 1000, 4500).await;
    let (browser, _, _) = member_browser(&app).await;
    let (_, payment_id) = buy(&browser, &pack, "", "4242424242424242").await;
    let order = app
        .state
        .store
        .order_by_payment(&payment_id)
        .await
        .expect("reads")
        .expect("order");
    let pages = [
        "/".to_string(),
        "/account".into(),
        format!("/account/buy?package_id={pack}"),
        "/account/orders".into(),
        format!("/account/orders/{}", order.id),
        format!("/account/orders/{}/receipt", order.id),
        "/account/transactions".into(),
        "/account/settings".into(),
        "/account/rewards".into(),
        "/account/marketplace".into(),
        "/account/auto-top-up".into(),
        "/account/subscriptions".into(),
        "/login/code".into(),
        "/no/such/page".into(),
    ];
    for language in ["zh-Hans", "zh-Hant", "en"] {
        for path in &pages {
            let separator = if path.contains('?') { '&' } else { '?' };
            let resp = browser
                .get(&format!("{path}{separator}lang={language}"))
                .await;
            assert!(
                resp.status == 200 || resp.status == 404,
                "{path}: {}",
                resp.status
            );
            assert!(
                resp.text.contains(&format!("<html lang=\"{language}\">")),
                "{path}"
            );
            assert!(
                !resp.text.contains('⟦'),
                "{path} in {language} uses a key its catalog lacks"
            );
        }
    }
}

async fn the_csv_export_matches_the_api(app: TestApp) {
    let (browser, user_id, email) = member_browser(&app).await;
    app.grant(&user_id, 500).await;
    let signed_in = app.login(&email, "correct horse").await;
    let token = signed_in.json["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    for amount in [30, 45] {
        let spent = app
            .post(
                "/api/v1/credits/spend",
                &token,
                json!({"amount": amount, "description": "coffee, large"}),
            )
            .await;
        assert_eq!(spent.status, 200, "{}", spent.text);
    }
    let api = app.get("/api/v1/me/transactions", &token).await;
    let csv = browser.get("/account/transactions.csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    let data = api.json["data"].as_array().expect("data");
    assert_eq!(rows.len(), data.len());
    assert_eq!(rows.len(), 3);
    for (row, item) in rows.iter().zip(data) {
        assert_eq!(&row[0], item["id"].as_str().expect("id"));
        assert_eq!(&row[1], item["created_at"].as_str().expect("at"));
        assert_eq!(&row[2], item["kind"].as_str().expect("kind"));
        assert_eq!(
            row[3].parse::<i64>().expect("amount"),
            item["amount"].as_i64().expect("amount")
        );
        assert_eq!(
            row[4].parse::<i64>().expect("after"),
            item["balance_after"].as_i64().expect("after")
        );
    }
    // The kind filter selects the same rows in the page and in the export.
    let spends = browser.get("/account/transactions.csv?kind=spend").await;
    assert_eq!(spends.text.lines().count(), 3, "a header and two spends");
    // Dates are days in the user's zone (UTC here): today holds all three, yesterday none.
    let now = chrono::DateTime::from_timestamp_millis(app.state.store.clock.now_ms()).expect("now");
    let today = now.format("%Y-%m-%d").to_string();
    let yesterday = (now - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let from_today = browser
        .get(&format!(
            "/account/transactions.csv?from={today}&to={today}"
        ))
        .await;
    assert_eq!(from_today.text.lines().count(), 4, "{}", from_today.text);
    let before = browser
        .get(&format!("/account/transactions.csv?to={yesterday}"))
        .await;
    assert_eq!(
        before.text.lines().count(),
        1,
        "only the header: {}",
        before.text
    );
    let page = browser.get("/account/transactions?kind=purchase").await;
    assert!(
        page.text.contains("+500") && !page.text.contains("-45"),
        "{}",
        page.text
    );
}

/// The export is streamed in the store's batches of 5,000: a history of 5,201 transfers comes
/// out whole, newest first, each row once, across the batch boundaries.
async fn an_export_longer_than_one_batch_streams_every_row_once(app: TestApp) {
    use bursar_core::Credits;
    use bursar_store::ledger::Command;
    let (browser, user_id, _) = member_browser(&app).await;
    app.grant(&user_id, 100_000).await;
    let spends = 5_200;
    for chunk in (0..spends).collect::<Vec<_>>().chunks(400) {
        let runs = chunk.iter().map(|_| {
            app.state.store.ledger.execute(Command::Spend {
                user_id: user_id.clone(),
                amount: Credits::new(1).expect("valid amount"),
                description: None,
                metadata: None,
                actor: "test".into(),
            })
        });
        for outcome in futures::future::join_all(runs).await {
            outcome.expect("spend applies");
        }
    }
    let export = browser.get("/account/transactions.csv").await;
    assert_eq!(export.status, 200);
    let mut reader = csv::Reader::from_reader(export.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), spends + 1, "every spend and the grant");
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids.len(), rows.len(), "no row twice");
    let balances: Vec<i64> = rows
        .iter()
        .map(|r| r[4].parse().expect("balance_after"))
        .collect();
    let newest_first: Vec<i64> = (100_000 - spends as i64..=100_000).collect();
    assert_eq!(balances, newest_first, "newest first");
    assert_eq!(&rows[rows.len() - 1][2], "purchase");
}

async fn a_coupon_recomputes_the_price_and_a_bad_one_is_shown_beside_its_field(app: TestApp) {
    let admin = app.admin().await;
    let pack = credit_pack(&app, &admin, 1000, 5000).await;
    let coupon = app
        .post(
            "/api/v1/admin/coupons",
            &admin.token,
            json!({"code": "TENOFF", "percent_off": 10}),
        )
        .await;
    assert_eq!(coupon.status, 201, "{}", coupon.text);
    let (browser, _, _) = member_browser(&app).await;
    let quote = browser
        .get(&format!(
            "/account/buy/quote?package_id={pack}&provider=sandbox&coupon_code=TENOFF"
        ))
        .await;
    assert_eq!(quote.status, 200);
    assert_eq!(text_of(&quote.text, "total").as_deref(), Some("¥45.00"));
    let bad = browser
        .get(&format!(
            "/account/buy?package_id={pack}&provider=sandbox&coupon_code=NOPE"
        ))
        .await;
    assert!(bad.text.contains("id=\"coupon-error\""), "{}", bad.text);
    assert!(bad.text.contains("value=\"NOPE\""), "the input is kept");
    let (paid, payment_id) = buy(&browser, &pack, "TENOFF", "4242424242424242").await;
    assert!(paid.status < 400, "{}", paid.text);
    let order = app
        .state
        .store
        .order_by_payment(&payment_id)
        .await
        .expect("reads")
        .expect("order");
    assert_eq!(order.total, 4500);
    assert_eq!(order.status.as_str(), "paid");
}

async fn a_member_cannot_open_another_members_order(app: TestApp) {
    let admin = app.admin().await;
    let pack = credit_pack(&app, &admin, 100, 1000).await;
    let (owner, _, _) = member_browser(&app).await;
    let (_, payment_id) = buy(&owner, &pack, "", "4242424242424242").await;
    let order = app
        .state
        .store
        .order_by_payment(&payment_id)
        .await
        .expect("reads")
        .expect("order");
    let (other, _, _) = member_browser(&app).await;
    for path in [
        format!("/account/orders/{}", order.id),
        format!("/account/orders/{}/receipt", order.id),
    ] {
        let resp = other.get(&path).await;
        assert_eq!(resp.status, 404, "{path}");
        assert!(!resp.text.contains("100 credits") && !resp.text.contains("¥10.00"));
    }
}

async fn pages_carry_security_headers_and_browsers_get_an_html_404(app: TestApp) {
    let browser = Browser::new(&app);
    let page = browser.get("/login").await;
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(!header("content-security-policy").contains("unsafe-inline"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    let set_cookie = header("set-cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let api = app
        .send(
            "GET",
            "/api/v1/no/such",
            None,
            None,
            &[("accept", "text/html")],
        )
        .await;
    assert!(api.is_problem(), "the API keeps problem+json");
    let css = browser.get("/static/app.css").await;
    assert_eq!(css.status, 200);
    assert!(
        browser
            .get("/static/htmx-2.0.11.min.js")
            .await
            .text
            .contains("htmx")
    );
}
