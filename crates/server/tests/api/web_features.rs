//! The web pages of the marketplace (member and merchant), the daily gift and inbox, automatic
//! top-up and subscriptions, through HTTP as a browser without JavaScript uses them.

use serde_json::json;

use crate::helpers::{Backend, TestApp, uuid_suffix};
use crate::orders::package;
use crate::web::{Browser, field_value, location, text_of};

crate::on_both_backends!(
    a_merchant_lists_a_product_a_member_redeems_it_and_the_merchant_fulfils_or_cancels,
    merchant_pages_refuse_members_and_bad_products_change_nothing,
    the_daily_gift_is_claimed_once_a_day_from_the_page,
    auto_top_up_shows_its_fee_as_typed_and_saves_a_rule_with_a_saved_card,
    a_subscription_bought_on_the_page_can_have_its_renewal_turned_off,
);

crate::for_both_backends!(
    a_bank_transfer_order_shows_its_reference_and_the_account_to_pay,
    an_ecpay_order_page_carries_the_signed_form_that_sends_itself,
    a_forgotten_password_is_replaced_after_signing_in_with_an_emailed_code,
    a_code_sent_by_text_message_signs_in_on_the_web,
);

async fn signed_up(app: &TestApp, merchant: bool) -> (Browser, String) {
    let browser = Browser::new(app);
    let email = format!("web-{}@example.com", uuid_suffix());
    let kind = if merchant { "merchant" } else { "member" };
    let resp = browser
        .submit(
            "/register",
            "/register",
            &[
                ("email", &email),
                ("password", "correct horse"),
                ("account_type", kind),
            ],
        )
        .await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    let user = app
        .state
        .store
        .user_by_email(&email)
        .await
        .expect("reads")
        .expect("user");
    (browser, user.id)
}

/// The first `href` in `html` that starts with `prefix`.
fn link(html: &str, prefix: &str) -> String {
    let at = html
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("a link to {prefix}…"));
    let rest = &html[at + 6..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

async fn a_merchant_lists_a_product_a_member_redeems_it_and_the_merchant_fulfils_or_cancels(
    app: TestApp,
) {
    let (merchant, merchant_id) = signed_up(&app, true).await;
    let created = merchant
        .submit(
            "/merchant",
            "/merchant/products",
            &[
                ("name", "Mug"),
                ("points_price", "300"),
                ("stock", "2"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let home = merchant.get(&location(&created)).await;
    assert!(home.text.contains("The product is saved."));
    assert!(home.text.contains("Mug"));

    let (member, member_id) = signed_up(&app, false).await;
    app.grant(&member_id, 1000).await;
    let market = member.get("/account/marketplace").await;
    assert_eq!(market.status, 200);
    let product_id = field_value(&market.text, "product_id").expect("a product to redeem");
    for _ in 0..2 {
        let redeemed = member
            .submit(
                "/account/marketplace",
                "/account/marketplace/redeem",
                &[
                    ("product_id", &product_id),
                    ("quantity", "1"),
                    ("form_key", &uuid_suffix()),
                ],
            )
            .await;
        assert_eq!(redeemed.status, 303);
        assert!(
            location(&redeemed).contains("notice=notice-redeemed"),
            "{}",
            location(&redeemed)
        );
    }
    let sold_out = member
        .submit(
            "/account/marketplace",
            "/account/marketplace/redeem",
            &[
                ("product_id", &product_id),
                ("quantity", "1"),
                ("form_key", &uuid_suffix()),
            ],
        )
        .await;
    let page = member.get(&location(&sold_out)).await;
    assert!(
        page.text.contains("id=\"error\""),
        "the third is refused: {}",
        page.text
    );
    assert_eq!(
        app.state
            .store
            .balance(&member_id)
            .await
            .expect("reads")
            .expect("account")
            .balance,
        400
    );

    // The merchant fulfils one and cancels the other (after confirming).
    let home = merchant.get("/merchant").await;
    assert_eq!(
        text_of(&home.text, "merchant-balance").as_deref(),
        Some("600")
    );
    let fulfil = link(&home.text, "/merchant/redemptions/").replace("/cancel", "/fulfil");
    let done = merchant.submit("/merchant", &fulfil, &[]).await;
    assert!(
        location(&done).contains("notice-redemption-fulfilled"),
        "{}",
        location(&done)
    );
    let home = merchant.get("/merchant").await;
    let cancel = link(&home.text, "/merchant/redemptions/");
    let confirm = merchant.get(&cancel).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text.contains("Cancel the redemption of Mug"));
    let key = field_value(&confirm.text, "form_key").expect("form key");
    let csrf = field_value(&confirm.text, "csrf").expect("csrf");
    let cancelled = merchant
        .post(&cancel, &[("csrf", &csrf), ("form_key", &key)])
        .await;
    assert!(
        location(&cancelled).contains("notice-redemption-cancelled"),
        "{}",
        location(&cancelled)
    );
    // The same confirmation posted again changes nothing more.
    merchant
        .post(&cancel, &[("csrf", &csrf), ("form_key", &key)])
        .await;
    assert_eq!(
        app.state
            .store
            .balance(&member_id)
            .await
            .expect("reads")
            .expect("account")
            .balance,
        700
    );
    assert_eq!(
        app.state
            .store
            .merchant_balance(&merchant_id)
            .await
            .expect("reads"),
        300
    );
    app.assert_ledger_ok().await;
}

async fn merchant_pages_refuse_members_and_bad_products_change_nothing(app: TestApp) {
    let visitor = Browser::new(&app);
    assert_eq!(visitor.get("/merchant").await.status, 303);
    let (member, _) = signed_up(&app, false).await;
    let refused = member.get("/merchant").await;
    assert_eq!(refused.status, 403);
    assert!(refused.text.contains("Not allowed"));
    let csrf = field_value(&member.get("/account").await.text, "csrf").expect("csrf");
    let posted = member
        .post(
            "/merchant/products",
            &[
                ("csrf", &csrf),
                ("name", "X"),
                ("points_price", "1"),
                ("stock", "1"),
            ],
        )
        .await;
    assert_eq!(posted.status, 403);

    let (merchant, merchant_id) = signed_up(&app, true).await;
    let bad = merchant
        .submit(
            "/merchant",
            "/merchant/products",
            &[
                ("name", "Mug"),
                ("points_price", "0"),
                ("stock", "-1"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("id=\"price-error\"") && bad.text.contains("id=\"stock-error\""));
    assert!(bad.text.contains("value=\"Mug\""), "the input is kept");
    let first = bursar_store::page::PageRequest {
        limit: 10,
        before: None,
    };
    let products = app
        .state
        .store
        .merchant_products(&merchant_id, &first)
        .await
        .expect("reads");
    assert!(products.data.is_empty(), "nothing was created");
    // Another merchant's product cannot be opened or delisted.
    merchant
        .submit(
            "/merchant",
            "/merchant/products",
            &[
                ("name", "Mine"),
                ("points_price", "5"),
                ("stock", "1"),
                ("active", "on"),
            ],
        )
        .await;
    let product = app
        .state
        .store
        .merchant_products(&merchant_id, &first)
        .await
        .expect("reads")
        .data
        .remove(0);
    let (other, _) = signed_up(&app, true).await;
    assert_eq!(
        other
            .get(&format!("/merchant/products/{}", product.id))
            .await
            .status,
        404
    );
    let delist = other
        .submit(
            "/merchant",
            &format!("/merchant/products/{}/delist", product.id),
            &[],
        )
        .await;
    assert_eq!(delist.status, 404);
    assert!(
        app.state
            .store
            .product(&product.id)
            .await
            .expect("reads")
            .expect("product")
            .delisted_at
            .is_none()
    );
}

async fn the_daily_gift_is_claimed_once_a_day_from_the_page(app: TestApp) {
    let (member, member_id) = signed_up(&app, false).await;
    let page = member.get("/account/rewards").await;
    assert_eq!(page.status, 200);
    let key = field_value(&page.text, "form_key").expect("form key");
    let csrf = field_value(&page.text, "csrf").expect("csrf");
    let claimed = member
        .post(
            "/account/rewards/gift",
            &[("csrf", &csrf), ("form_key", &key)],
        )
        .await;
    assert!(
        location(&claimed).contains("notice-gift-claimed"),
        "{}",
        location(&claimed)
    );
    // The same form again is the same claim; a new form is refused until tomorrow.
    member
        .post(
            "/account/rewards/gift",
            &[("csrf", &csrf), ("form_key", &key)],
        )
        .await;
    let again = member
        .post(
            "/account/rewards/gift",
            &[("csrf", &csrf), ("form_key", &uuid_suffix())],
        )
        .await;
    assert!(
        location(&again).contains("error-already-claimed"),
        "{}",
        location(&again)
    );
    let page = member.get("/account/rewards").await;
    assert!(text_of(&page.text, "gift-state").is_some_and(|t| t.starts_with("Claimed today")));
    let balance = app
        .state
        .store
        .balance(&member_id)
        .await
        .expect("reads")
        .expect("account");
    assert_eq!(
        balance.balance,
        app.state.config.daily_gift_schedule.credits_for(1)
    );
}

async fn auto_top_up_shows_its_fee_as_typed_and_saves_a_rule_with_a_saved_card(app: TestApp) {
    let (member, member_id) = signed_up(&app, false).await;
    let preview = member
        .get("/account/auto-top-up/preview?threshold=100&target=1000")
        .await;
    assert_eq!(preview.status, 200);
    assert!(
        preview.text.contains("901 credits for US$901.00")
            && preview.text.contains("US$26.13")
            && preview.text.contains("US$927.13"),
        "{}",
        preview.text
    );
    let saved = member
        .submit(
            "/account/auto-top-up",
            "/account/auto-top-up/cards",
            &[("card_number", "4242 4242 4242 4242")],
        )
        .await;
    assert!(
        location(&saved).contains("notice-card-saved"),
        "{}",
        location(&saved)
    );
    let methods = app
        .state
        .store
        .payment_methods(&member_id)
        .await
        .expect("reads");
    assert_eq!(methods.len(), 1);

    let bad = member
        .submit(
            "/account/auto-top-up",
            "/account/auto-top-up",
            &[
                ("enabled", "on"),
                ("threshold", "500"),
                ("target", "100"),
                ("payment_method_id", &methods[0].id),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("id=\"target-error\""), "{}", bad.text);
    assert!(
        app.state
            .store
            .auto_topup_rule(&member_id)
            .await
            .expect("reads")
            .is_none(),
        "nothing saved"
    );

    let good = member
        .submit(
            "/account/auto-top-up",
            "/account/auto-top-up",
            &[
                ("enabled", "on"),
                ("threshold", "100"),
                ("target", "1000"),
                ("payment_method_id", &methods[0].id),
                ("max_topups_per_day", "2"),
                ("monthly_limit", "50.00"),
            ],
        )
        .await;
    assert_eq!(good.status, 303, "{}", good.text);
    let rule = app
        .state
        .store
        .auto_topup_rule(&member_id)
        .await
        .expect("reads")
        .expect("rule");
    assert_eq!(
        (rule.threshold, rule.target, rule.max_topups_per_day),
        (100, 1000, Some(2))
    );
    assert_eq!(rule.monthly_limit.map(|m| m.amount), Some(5000));
    assert!(rule.consent_at_ms.is_some(), "enabling records consent");
}

async fn a_subscription_bought_on_the_page_can_have_its_renewal_turned_off(app: TestApp) {
    let admin = app.admin().await;
    let plan = package(
        &app,
        &admin,
        json!({"name": "Daily 100", "kind": "subscription", "credits": 0, "daily_credits": 100,
               "duration_days": 30, "price": {"amount": 3000, "currency": "CNY"}}),
    )
    .await;
    let (member, member_id) = signed_up(&app, false).await;
    let placed = member
        .submit(
            "/account/buy",
            "/account/buy",
            &[
                ("package_id", &plan),
                ("provider", "sandbox"),
                ("quantity", "1"),
                ("order_key", &uuid_suffix()),
            ],
        )
        .await;
    let pay = location(&placed);
    let path = &pay[pay.find("/pay/sandbox/").expect("sandbox page")..];
    let paid = member
        .post(path, &[("card_number", "4242424242424242")])
        .await;
    assert_eq!(paid.status, 303);
    let page = member.get("/account/subscriptions").await;
    assert!(
        page.text.contains("Daily 100") && page.text.contains("Turn renewal on"),
        "{}",
        page.text
    );
    let subscription = app
        .state
        .store
        .subscriptions_of(&member_id)
        .await
        .expect("reads")
        .remove(0);
    let path = format!("/account/subscriptions/{}", subscription.id);
    for (setting, expected) in [("on", true), ("off", false)] {
        let changed = member
            .submit("/account/subscriptions", &path, &[("auto_renew", setting)])
            .await;
        assert_eq!(changed.status, 303);
        let now = app
            .state
            .store
            .subscription(&subscription.id)
            .await
            .expect("reads")
            .expect("sub");
        assert_eq!(now.auto_renew, expected);
    }
    // Someone else's subscription reads as not found.
    let (other, _) = signed_up(&app, false).await;
    let theirs = other
        .submit(
            "/account/subscriptions",
            &format!("/account/subscriptions/{}", subscription.id),
            &[("auto_renew", "on")],
        )
        .await;
    assert_eq!(theirs.status, 404);
}

async fn a_bank_transfer_order_shows_its_reference_and_the_account_to_pay(backend: Backend) {
    const ACCOUNT: &str = "Bursar Ltd, ICBC 6222 0000 1234 5678";
    let app = TestApp::spawn_with(backend, "bank_account_page", |config| {
        config.bank_account = Some(ACCOUNT.into());
    })
    .await;
    let admin = app.admin().await;
    let pack = package(
        &app,
        &admin,
        json!({"name": "Pack", "kind": "credit_pack", "credits": 100,
               "price": {"amount": 4500, "currency": "CNY"}}),
    )
    .await;
    let (member, member_id) = signed_up(&app, false).await;
    let placed = member
        .submit(
            "/account/buy",
            "/account/buy",
            &[
                ("package_id", &pack),
                ("provider", "bank_transfer"),
                ("quantity", "1"),
                ("order_key", &uuid_suffix()),
            ],
        )
        .await;
    assert_eq!(placed.status, 303, "{}", placed.text);
    let order_page = member.get(&location(&placed)).await;
    assert_eq!(order_page.status, 200);
    let first = bursar_store::page::PageRequest {
        limit: 1,
        before: None,
    };
    let filter = bursar_store::orders::OrderFilter {
        user_id: Some(member_id),
        ..Default::default()
    };
    let order = app
        .state
        .store
        .orders(&filter, &first)
        .await
        .expect("reads")
        .data
        .remove(0);
    let payment: serde_json::Value =
        serde_json::from_str(order.payment_json.as_deref().expect("payment")).expect("json");
    assert_eq!(payment["account"], ACCOUNT);
    assert!(
        payment["instructions"]
            .as_str()
            .expect("instructions")
            .contains(ACCOUNT)
    );
    let reference = payment["reference"].as_str().expect("reference");
    assert!(order_page.text.contains(reference), "{}", order_page.text);
    assert!(order_page.text.contains(ACCOUNT), "{}", order_page.text);
}

async fn an_ecpay_order_page_carries_the_signed_form_that_sends_itself(backend: Backend) {
    let app = TestApp::spawn_with(backend, "ecpay_page", |config| {
        config.ecpay = Some(bursar_server::config::EcpaySettings {
            merchant_id: "3002607".into(),
            hash_keys: bursar_payments::ecpay::checkmac::HashKeys {
                key: "pwFHCqoQZGmho4w6".into(),
                iv: "EkRm7iFT261dpevs".into(),
            },
            gateway: "https://payment-stage.ecpay.com.tw".into(),
        });
    })
    .await;
    let admin = app.admin().await;
    let pack = package(
        &app,
        &admin,
        json!({"name": "300 credits", "kind": "credit_pack", "credits": 300,
               "price": {"amount": 30000, "currency": "TWD"}}),
    )
    .await;
    let (member, _) = signed_up(&app, false).await;
    let buy = member
        .get(&format!("/account/buy?package_id={pack}&provider=ecpay"))
        .await;
    assert_eq!(
        text_of(&buy.text, "total").as_deref(),
        Some("NT$300"),
        "TWD in whole dollars"
    );
    let placed = member
        .submit(
            "/account/buy",
            "/account/buy",
            &[
                ("package_id", &pack),
                ("provider", "ecpay"),
                ("quantity", "1"),
                ("order_key", &uuid_suffix()),
            ],
        )
        .await;
    assert_eq!(placed.status, 303, "{}", placed.text);
    let page = member.get(&location(&placed)).await;
    assert!(
        page.text
            .contains("action=\"https://payment-stage.ecpay.com.tw/Cashier/AioCheckOut/V5\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-autosubmit"));
    assert!(page.text.contains("name=\"CheckMacValue\""));
    assert!(page.text.contains("name=\"TotalAmount\" value=\"300\""));
    assert!(page.text.contains("src=\"/static/app.js\""));
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("form-action 'self' https:"),
        "the form may post to ECPay: {csp}"
    );
}

/// The six digits in the body of the last mail received.
fn last_code(mails: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> String {
    let mails = mails.lock().expect("lock").clone();
    let mail = mails.last().expect("a mail arrived");
    // The body only: a header (the Message-ID's hex) may hold six digits in a row too.
    let body = mail
        .split_once("\r\n\r\n")
        .or_else(|| mail.split_once("\n\n"))
        .map_or(mail.as_str(), |(_, b)| b);
    let text: Vec<char> = body.chars().collect();
    text.windows(6)
        .map(|w| w.iter().collect::<String>())
        .find(|w| w.chars().all(|c| c.is_ascii_digit()))
        .expect("six digits in the mail")
}

/// With an SMS gateway (and no mail), the code page takes a phone number: the code goes by text
/// message and signs in (here creating the account, as the API's code sign-in does); a number
/// without its country code is refused beside the field and nothing is sent.
async fn a_code_sent_by_text_message_signs_in_on_the_web(backend: Backend) {
    let (url, texts) = crate::notifications::sms_gateway(0).await;
    let app = TestApp::spawn_with(backend, "sms_code_page", move |config| {
        config.sms_gateway_url = Some(url);
        config.sms_gateway_token = Some("sms-secret".into());
    })
    .await;
    let browser = Browser::new(&app);
    let form = browser.get("/login/code").await;
    assert!(form.text.contains("type=\"text\""), "{}", form.text);

    let refused = browser
        .submit("/login/code", "/login/code", &[("email", "+12")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("id=\"email-error\""));

    let phone = "+447700900123";
    let asked = browser
        .submit("/login/code", "/login/code", &[("email", phone)])
        .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert!(
        asked.text.contains("id=\"code\""),
        "the page asks for the code"
    );
    let mut code = String::new();
    for _ in 0..100 {
        app.settle_jobs().await;
        let sent = texts.lock().expect("lock").first().cloned();
        if let Some((_, body)) = sent {
            let text = body.to_string();
            code = text
                .as_bytes()
                .windows(6)
                .map(|w| String::from_utf8_lossy(w).to_string())
                .find(|w| w.chars().all(|c| c.is_ascii_digit()))
                .expect("six digits in the text message");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(code.len(), 6, "the code was sent by text message");
    assert_eq!(
        texts.lock().expect("lock").len(),
        1,
        "only the good number got one"
    );
    let signed_in = browser
        .submit(
            "/login/code",
            "/login/code/verify",
            &[("email", phone), ("code", &code)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    let dashboard = browser.get("/account").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.text);
}

async fn a_forgotten_password_is_replaced_after_signing_in_with_an_emailed_code(backend: Backend) {
    let (port, mails) = crate::notifications::smtp_sink().await;
    let app = TestApp::spawn_with(backend, "code_sign_in_page", move |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let email = format!("forgot-{}@example.com", uuid_suffix());
    app.send(
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&json!({"email": email, "password": "old password"})),
        &[],
    )
    .await;
    let browser = Browser::new(&app);
    let asked = browser
        .submit("/login/code", "/login/code", &[("email", &email)])
        .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert!(
        asked.text.contains("id=\"code\""),
        "the page asks for the code"
    );
    let mut code = String::new();
    for _ in 0..100 {
        app.settle_jobs().await;
        if !mails.lock().expect("lock").is_empty() {
            code = last_code(&mails);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(code.len(), 6, "the code was mailed");
    let wrong = browser
        .submit(
            "/login/code",
            "/login/code/verify",
            &[("email", &email), ("code", "000000")],
        )
        .await;
    if code != "000000" {
        assert_eq!(wrong.status, 401);
        assert!(wrong.text.contains("id=\"code-error\""));
    }
    let signed_in = browser
        .submit(
            "/login/code",
            "/login/code/verify",
            &[("email", &email), ("code", &code)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert!(location(&signed_in).starts_with("/account/settings"));
    let settings = browser.get("/account/settings").await;
    assert!(
        !settings.text.contains("id=\"current_password\""),
        "no old password asked"
    );
    let changed = browser
        .submit(
            "/account/settings",
            "/account/password",
            &[("new_password", "brand new one")],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    let login = app.login(&email, "brand new one").await;
    assert_eq!(login.status, 200, "the new password works");

    // A session signed in with the password still needs the current one.
    let other = Browser::new(&app);
    other
        .submit(
            "/login",
            "/login",
            &[("email", &email), ("password", "brand new one")],
        )
        .await;
    let refused = other
        .submit(
            "/account/settings",
            "/account/password",
            &[("new_password", "sneaky change")],
        )
        .await;
    assert_eq!(refused.status, 422);
}
