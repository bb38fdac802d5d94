//! Stripe payment methods saved through a SetupIntent, against a local stub of Stripe that
//! keeps its customers, SetupIntents and off-session PaymentIntents: the Customer made once on
//! first use, the card saved once whether the member's client or Stripe's webhook reports the
//! setup, another member's setup never saved, and auto top-up charging the card off-session on
//! its customer (and an "authentication required" decline recorded as such). From the web
//! pages, without Stripe.js: the card is entered on Stripe Checkout in setup mode, and the
//! session is read back from Stripe when the member returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bursar_payments::signature::header_v1;
use bursar_server::config::StripeSettings;
use serde_json::{Value, json};

use crate::for_both_backends;
use crate::helpers::{Backend, Member, TestApp};
use crate::web::{Browser, location};

for_both_backends!(
    a_card_is_saved_once_through_a_setup_intent,
    a_card_is_saved_from_the_web_page_through_stripe_checkout,
    auto_topup_charges_a_stripe_card_off_session_on_its_customer,
    bad_setup_requests_are_refused_and_save_nothing,
);

const WEBHOOK_SECRET: &str = "whsec_methods_test";
/// The stub declines this card off-session as a card that wants its holder to authenticate.
const CARD_NEEDING_AUTHENTICATION: &str = "pm_card_authentication_required";

#[derive(Default)]
struct Stripe {
    /// Idempotency-Key → customer id, as Stripe replays a keyed request.
    customers: HashMap<String, String>,
    /// SetupIntent id → (customer, its card once the member completed it).
    setups: HashMap<String, (String, Option<Value>)>,
    /// Every off-session PaymentIntent's form.
    charges: Vec<Vec<(String, String)>>,
    /// How long a charge takes to answer.
    charge_delay: std::time::Duration,
    /// Checkout Session id → (its form, its SetupIntent).
    checkout_sessions: HashMap<String, (Vec<(String, String)>, String)>,
}

type Shared = Arc<Mutex<Stripe>>;

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn create_customer(State(stripe): State<Shared>, headers: HeaderMap) -> Response {
    let key = headers["idempotency-key"]
        .to_str()
        .expect("ascii")
        .to_string();
    let mut stripe = stripe.lock().expect("lock");
    let next = format!("cus_{}", stripe.customers.len() + 1);
    let id = stripe.customers.entry(key).or_insert(next).clone();
    axum::Json(json!({"id": id, "object": "customer"})).into_response()
}

async fn create_setup(
    State(stripe): State<Shared>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    assert_eq!(field(&form, "usage"), Some("off_session"));
    let customer = field(&form, "customer").expect("a customer").to_string();
    let mut stripe = stripe.lock().expect("lock");
    let id = format!("seti_{}", stripe.setups.len() + 1);
    stripe.setups.insert(id.clone(), (customer, None));
    axum::Json(json!({"id": id, "object": "setup_intent",
        "client_secret": format!("{id}_secret_xyz"), "status": "requires_payment_method"}))
    .into_response()
}

async fn read_setup(State(stripe): State<Shared>, Path(id): Path<String>) -> Response {
    let stripe = stripe.lock().expect("lock");
    let Some((customer, card)) = stripe.setups.get(&id) else {
        let error = json!({"error": {"type": "invalid_request_error",
            "code": "resource_missing", "message": format!("No such setupintent: '{id}'")}});
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    };
    let status = if card.is_some() {
        "succeeded"
    } else {
        "requires_payment_method"
    };
    axum::Json(json!({"id": id, "object": "setup_intent", "status": status,
        "customer": customer, "payment_method": card}))
    .into_response()
}

/// Checkout in setup mode: the session makes its SetupIntent on the customer at once, and the
/// member completes it on Stripe's page.
async fn create_checkout_session(
    State(stripe): State<Shared>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    assert_eq!(field(&form, "mode"), Some("setup"));
    let customer = field(&form, "customer").expect("a customer").to_string();
    let mut stripe = stripe.lock().expect("lock");
    let setup = format!("seti_{}", stripe.setups.len() + 1);
    stripe.setups.insert(setup.clone(), (customer, None));
    let id = format!("cs_test_{}", stripe.checkout_sessions.len() + 1);
    stripe.checkout_sessions.insert(id.clone(), (form, setup));
    axum::Json(
        json!({"id": id, "object": "checkout.session", "mode": "setup",
        "status": "open", "url": format!("https://checkout.stripe.test/c/pay/{id}")}),
    )
    .into_response()
}

async fn read_checkout_session(State(stripe): State<Shared>, Path(id): Path<String>) -> Response {
    let stripe = stripe.lock().expect("lock");
    let Some((_, setup)) = stripe.checkout_sessions.get(&id) else {
        let error = json!({"error": {"type": "invalid_request_error",
            "code": "resource_missing", "message": format!("No such checkout.session: '{id}'")}});
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    };
    let (customer, card) = &stripe.setups[setup];
    let status = if card.is_some() { "complete" } else { "open" };
    axum::Json(
        json!({"id": id, "object": "checkout.session", "mode": "setup",
        "status": status, "customer": customer, "setup_intent": setup}),
    )
    .into_response()
}

async fn charge(State(stripe): State<Shared>, Form(form): Form<Vec<(String, String)>>) -> Response {
    let declined = field(&form, "payment_method") == Some(CARD_NEEDING_AUTHENTICATION);
    let delay = {
        let mut stripe = stripe.lock().expect("lock");
        stripe.charges.push(form.clone());
        stripe.charge_delay
    };
    tokio::time::sleep(delay).await;
    if declined {
        let error = json!({"error": {"type": "card_error", "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": "Your card was declined. This transaction requires authentication."}});
        return (StatusCode::PAYMENT_REQUIRED, axum::Json(error)).into_response();
    }
    axum::Json(
        json!({"id": format!("pi_{}", field(&form, "metadata[order_id]").unwrap_or("")),
        "object": "payment_intent", "status": "succeeded"}),
    )
    .into_response()
}

/// A Bursar server talking to a fresh Stripe stub.
async fn start(backend: Backend, name: &str) -> (TestApp, Shared) {
    let stripe = Shared::default();
    let routes = Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/setup_intents", post(create_setup))
        .route("/v1/setup_intents/{id}", get(read_setup))
        .route("/v1/payment_intents", post(charge))
        .route("/v1/checkout/sessions", post(create_checkout_session))
        .route("/v1/checkout/sessions/{id}", get(read_checkout_session))
        .with_state(stripe.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let api_base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let app = TestApp::spawn_with(backend, name, |config| {
        config.stripe = Some(StripeSettings {
            secret_key: "sk_test_methods".into(),
            webhook_secrets: vec![WEBHOOK_SECRET.into()],
            api_base,
        });
    })
    .await;
    (app, stripe)
}

/// The member enters a card in Stripe.js and confirms the setup.
fn complete(stripe: &Shared, setup_id: &str, card_id: &str, last4: &str) {
    let card = json!({"id": card_id, "object": "payment_method", "type": "card",
        "card": {"brand": "visa", "last4": last4}});
    let mut stripe = stripe.lock().expect("lock");
    stripe.setups.get_mut(setup_id).expect("a setup").1 = Some(card);
}

async fn start_setup(app: &TestApp, member: &Member) -> String {
    let resp = app
        .post(
            "/api/v1/me/payment-methods",
            &member.token,
            json!({"provider": "stripe"}),
        )
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text);
    assert_eq!(resp.json["provider"], "stripe");
    let id = resp.json["setup_intent_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(resp.json["client_secret"], format!("{id}_secret_xyz"));
    id
}

async fn finish(app: &TestApp, member: &Member, setup_id: &str) -> crate::helpers::Resp {
    app.post(
        "/api/v1/me/payment-methods",
        &member.token,
        json!({"provider": "stripe", "setup_intent_id": setup_id}),
    )
    .await
}

async fn deliver_setup_succeeded(app: &TestApp, setup_id: &str, event_id: &str) -> u16 {
    let body = json!({"id": event_id, "object": "event", "type": "setup_intent.succeeded",
        "data": {"object": {"id": setup_id, "object": "setup_intent", "status": "succeeded"}}})
    .to_string();
    let now_s = app.state.store.clock.now_ms() / 1000;
    app.http
        .post(format!("{}/api/v1/webhooks/stripe", app.base))
        .header(
            "Stripe-Signature",
            header_v1(WEBHOOK_SECRET, now_s, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

async fn methods(app: &TestApp, member: &Member) -> Vec<Value> {
    let resp = app.get("/api/v1/me/payment-methods", &member.token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json["data"].as_array().expect("data").clone()
}

async fn a_card_is_saved_once_through_a_setup_intent(backend: Backend) {
    let (app, stripe) = start(backend, "stripe_setup_saves_once").await;
    let member = app.register("saver@example.com").await;
    let other = app.register("other@example.com").await;

    // Ten first setups at once: one Customer, every setup on it.
    let starts = (0..10).map(|_| start_setup(&app, &member));
    let setups = futures::future::join_all(starts).await;
    let customer = app
        .state
        .store
        .provider_customer(&member.id, "stripe")
        .await
        .expect("reads")
        .expect("a customer");
    {
        let stripe = stripe.lock().expect("lock");
        assert!(
            setups.iter().all(|id| stripe.setups[id].0 == customer),
            "every setup is on the member's one customer"
        );
    }

    // Not completed yet: nothing to save.
    let early = finish(&app, &member, &setups[0]).await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert!(early.is_problem());
    assert!(methods(&app, &member).await.is_empty());

    complete(&stripe, &setups[0], "pm_card_first", "4242");
    // Another member cannot save it, by id or by guessing.
    let stolen = finish(&app, &other, &setups[0]).await;
    assert_eq!(stolen.status, 404, "{}", stolen.text);
    assert!(methods(&app, &other).await.is_empty());

    let saved = finish(&app, &member, &setups[0]).await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    assert_eq!(saved.json["provider"], "stripe");
    assert_eq!(saved.json["brand"], "visa");
    assert_eq!(saved.json["last4"], "4242");
    assert!(
        !saved.text.contains("pm_card_first"),
        "the token stays private"
    );
    // Posted again, and reported by Stripe's webhook twice: still one method.
    let again = finish(&app, &member, &setups[0]).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json["id"], saved.json["id"]);
    assert_eq!(
        deliver_setup_succeeded(&app, &setups[0], "evt_a").await,
        200
    );
    assert_eq!(
        deliver_setup_succeeded(&app, &setups[0], "evt_a").await,
        200
    );
    assert_eq!(methods(&app, &member).await.len(), 1);

    // A setup reported only by the webhook is saved by it, once.
    complete(&stripe, &setups[1], "pm_card_second", "1881");
    assert_eq!(
        deliver_setup_succeeded(&app, &setups[1], "evt_b").await,
        200
    );
    assert_eq!(
        deliver_setup_succeeded(&app, &setups[1], "evt_b2").await,
        200
    );
    let listed = methods(&app, &member).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["last4"], "1881");

    // Removed, it stays removed however often its setup is reported again.
    let removed = app
        .send(
            "DELETE",
            &format!(
                "/api/v1/me/payment-methods/{}",
                listed[0]["id"].as_str().expect("id")
            ),
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(
        deliver_setup_succeeded(&app, &setups[1], "evt_c").await,
        200
    );
    let resaved = finish(&app, &member, &setups[1]).await;
    assert_eq!(resaved.status, 409, "{}", resaved.text);
    assert_eq!(methods(&app, &member).await.len(), 1);

    // A setup Stripe does not know, or on a customer Bursar did not make, saves nothing.
    assert_eq!(
        deliver_setup_succeeded(&app, "seti_unknown", "evt_d").await,
        200
    );
    stripe
        .lock()
        .expect("lock")
        .setups
        .insert("seti_foreign".into(), ("cus_elsewhere".into(), None));
    complete(&stripe, "seti_foreign", "pm_card_foreign", "0005");
    assert_eq!(
        deliver_setup_succeeded(&app, "seti_foreign", "evt_e").await,
        200
    );
    assert_eq!(methods(&app, &member).await.len(), 1);
    assert!(methods(&app, &other).await.is_empty());
    // A forged event is refused before anything is read.
    let forged = app
        .http
        .post(format!("{}/api/v1/webhooks/stripe", app.base))
        .header("Stripe-Signature", "t=1,v1=00")
        .body(r#"{"id":"evt_f","type":"setup_intent.succeeded","data":{"object":{"id":"seti_3"}}}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 400);
}

async fn auto_topup_charges_a_stripe_card_off_session_on_its_customer(backend: Backend) {
    let (app, stripe) = start(backend, "stripe_topup_off_session").await;
    let member = app.register("topup@example.com").await;
    app.grant(&member.id, 100).await;
    let setup = start_setup(&app, &member).await;
    complete(&stripe, &setup, "pm_card_good", "4242");
    let card = finish(&app, &member, &setup).await;
    assert_eq!(card.status, 201, "{}", card.text);
    let rule = json!({"enabled": true, "threshold": 50, "target": 200,
                      "payment_method_id": card.json["id"]});
    let saved = app
        .send(
            "PUT",
            "/api/v1/me/auto-topup",
            Some(&member.token),
            Some(&rule),
            &[],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    // A slow charge, and runs of the rule beside the one the crossing starts: while one run
    // charges the order, no other sends its charge again.
    stripe.lock().expect("lock").charge_delay = std::time::Duration::from_millis(300);
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 60}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    let runs = (0..3).map(|_| bursar_server::app::auto_topup::run(&app.state, &member.id, None));
    for outcome in futures::future::join_all(runs).await {
        outcome.expect("a run ends");
    }
    app.settle_jobs().await;
    stripe.lock().expect("lock").charge_delay = std::time::Duration::ZERO;

    let customer = app
        .state
        .store
        .provider_customer(&member.id, "stripe")
        .await
        .expect("reads")
        .expect("a customer");
    let charges = stripe.lock().expect("lock").charges.clone();
    assert_eq!(charges.len(), 1, "one top-up charged");
    for (key, value) in [
        ("customer", customer.as_str()),
        ("payment_method", "pm_card_good"),
        ("off_session", "true"),
        ("confirm", "true"),
    ] {
        assert_eq!(field(&charges[0], key), Some(value), "{key}");
    }
    assert_eq!(app.balance(&member).await.0, 200);

    // A card that wants its holder to authenticate is a decline with that reason.
    let member = app.register("needs3ds@example.com").await;
    app.grant(&member.id, 100).await;
    let setup = start_setup(&app, &member).await;
    complete(&stripe, &setup, CARD_NEEDING_AUTHENTICATION, "3155");
    let card = finish(&app, &member, &setup).await;
    assert_eq!(card.status, 201, "{}", card.text);
    let rule = json!({"enabled": true, "threshold": 50, "target": 200,
                      "payment_method_id": card.json["id"]});
    let saved = app
        .send(
            "PUT",
            "/api/v1/me/auto-topup",
            Some(&member.token),
            Some(&rule),
            &[],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let spent = app
        .post(
            "/api/v1/credits/spend",
            &member.token,
            json!({"amount": 60}),
        )
        .await;
    assert_eq!(spent.status, 200, "{}", spent.text);
    app.settle_jobs().await;
    let orders = app.get("/api/v1/orders", &member.token).await;
    let failed = &orders.json["data"][0];
    assert_eq!(failed["kind"], "auto_topup");
    assert_eq!(failed["status"], "failed");
    let reason = failed["failure_reason"].as_str().expect("a reason");
    assert!(reason.starts_with("authentication_required"), "{reason}");
    let rule = app.get("/api/v1/me/auto-topup", &member.token).await;
    assert_eq!(rule.json["consecutive_failures"], 1);
    assert_eq!(app.balance(&member).await.0, 40);
    app.assert_ledger_ok().await;
}

async fn bad_setup_requests_are_refused_and_save_nothing(backend: Backend) {
    let (app, stripe) = start(backend, "stripe_setup_bad_input").await;
    let member = app.register("careless@example.com").await;
    let long = "s".repeat(300);
    for (body, status) in [
        (
            json!({"provider": "stripe", "card_number": "4242424242424242"}),
            422,
        ),
        (
            json!({"provider": "sandbox", "setup_intent_id": "seti_1"}),
            422,
        ),
        (json!({"provider": "stripe", "setup_intent_id": long}), 422),
        (
            json!({"provider": "stripe", "setup_intent_id": "../customers/cus_1"}),
            404,
        ),
        (
            json!({"provider": "stripe", "setup_intent_id": "seti_missing"}),
            404,
        ),
        (json!({"provider": "stripe", "setup_intent_id": 7}), 422),
        (json!({"provider": "paypal"}), 422),
    ] {
        let resp = app
            .post("/api/v1/me/payment-methods", &member.token, body.clone())
            .await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text);
        assert!(resp.is_problem(), "{body}: {}", resp.text);
    }
    assert!(methods(&app, &member).await.is_empty());
    assert!(stripe.lock().expect("lock").setups.is_empty());

    // Without Stripe configured, a Stripe method cannot be saved at all.
    let plain = TestApp::spawn(backend, "stripe_setup_unconfigured").await;
    let member = plain.register("plain@example.com").await;
    let resp = plain
        .post(
            "/api/v1/me/payment-methods",
            &member.token,
            json!({"provider": "stripe"}),
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text);
    assert!(resp.is_problem());
}

/// A member signed up on the web pages: their browser and id.
async fn web_member(app: &TestApp, email: &str) -> (Browser, String) {
    let browser = Browser::new(app);
    browser.sign_up(email).await;
    let user = app
        .state
        .store
        .user_by_email(email)
        .await
        .expect("reads")
        .expect("signed up");
    (browser, user.id)
}

async fn saved_cards(app: &TestApp, user_id: &str) -> Vec<(String, String)> {
    app.state
        .store
        .payment_methods(user_id)
        .await
        .expect("reads")
        .into_iter()
        .map(|m| (m.provider, m.last4))
        .collect()
}

/// Clicks "Add a card with Stripe": the Checkout page's address.
async fn to_checkout(browser: &Browser) -> String {
    let page = browser.get(TOPUP_PAGE).await;
    assert!(
        page.text
            .contains(r#"action="/account/auto-top-up/cards/stripe""#),
        "{}",
        page.text
    );
    let resp = browser
        .submit(TOPUP_PAGE, "/account/auto-top-up/cards/stripe", &[])
        .await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    location(&resp)
}

const TOPUP_PAGE: &str = "/account/auto-top-up";
const RETURN: &str = "/account/auto-top-up/cards/stripe/return?session_id=";

async fn a_card_is_saved_from_the_web_page_through_stripe_checkout(backend: Backend) {
    let (app, stripe) = start(backend, "stripe_web_checkout_setup").await;
    let (browser, member) = web_member(&app, "web-saver@example.com").await;
    for (language, button) in [
        ("zh-Hans", "通过 Stripe 添加银行卡"),
        ("zh-Hant", "透過 Stripe 新增信用卡"),
        ("en", "Add a card with Stripe"),
    ] {
        let page = browser.get(&format!("{TOPUP_PAGE}?lang={language}")).await;
        assert!(page.text.contains(button), "{language}: {}", page.text);
        assert!(!page.text.contains('⟦'), "{language}");
    }

    // To Stripe Checkout in setup mode, on the member's one customer, made now.
    let checkout = to_checkout(&browser).await;
    assert_eq!(checkout, "https://checkout.stripe.test/c/pay/cs_test_1");
    let customer = app
        .state
        .store
        .provider_customer(&member, "stripe")
        .await
        .expect("reads")
        .expect("a customer");
    let (form, setup) = stripe.lock().expect("lock").checkout_sessions["cs_test_1"].clone();
    for (key, value) in [
        ("mode", "setup"),
        ("customer", customer.as_str()),
        ("currency", "usd"),
        ("payment_method_types[0]", "card"),
        (
            "success_url",
            "http://127.0.0.1/account/auto-top-up/cards/stripe/return?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "http://127.0.0.1/account/auto-top-up"),
    ] {
        assert_eq!(field(&form, key), Some(value), "{key}");
    }
    // A second click reuses the customer.
    let second = to_checkout(&browser).await;
    assert_eq!(second, "https://checkout.stripe.test/c/pay/cs_test_2");
    assert_eq!(stripe.lock().expect("lock").customers.len(), 1);

    // Back before the card was entered (or by typing the address): nothing is saved.
    let early = browser.get(&format!("{RETURN}cs_test_1")).await;
    assert_eq!(early.status, 303, "{}", early.text);
    assert_eq!(
        location(&early),
        "/account/auto-top-up?error=error-card-not-saved"
    );
    assert!(saved_cards(&app, &member).await.is_empty());

    complete(&stripe, &setup, "pm_card_web", "4242");
    // Another member with a Stripe customer of their own cannot save it with its session id.
    let (thief, thief_id) = web_member(&app, "web-thief@example.com").await;
    to_checkout(&thief).await;
    let stolen = thief.get(&format!("{RETURN}cs_test_1")).await;
    assert_eq!(
        location(&stolen),
        "/account/auto-top-up?error=error-card-not-saved"
    );
    assert!(saved_cards(&app, &thief_id).await.is_empty());
    let shown = thief.get(&location(&stolen)).await;
    assert!(
        shown
            .text
            .contains("The card was not saved. Nothing was changed; please try again."),
        "{}",
        shown.text
    );

    // The member is back from Stripe: the session read from Stripe, its card saved.
    let saved = browser.get(&format!("{RETURN}cs_test_1")).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    assert_eq!(
        location(&saved),
        "/account/auto-top-up?notice=notice-card-saved"
    );
    assert_eq!(
        saved_cards(&app, &member).await,
        [("stripe".to_string(), "4242".to_string())]
    );
    let page = browser.get(&location(&saved)).await;
    assert!(page.text.contains("visa •••• 4242"), "{}", page.text);
    assert!(
        !page.text.contains("pm_card_web"),
        "the token stays private"
    );
    // The return page reloaded, and Stripe's webhook for the same SetupIntent twice: still one.
    let again = browser.get(&format!("{RETURN}cs_test_1")).await;
    assert_eq!(
        location(&again),
        "/account/auto-top-up?notice=notice-card-saved"
    );
    assert_eq!(
        deliver_setup_succeeded(&app, &setup, "evt_web_1").await,
        200
    );
    assert_eq!(
        deliver_setup_succeeded(&app, &setup, "evt_web_2").await,
        200
    );
    assert_eq!(saved_cards(&app, &member).await.len(), 1);

    // Session ids Stripe does not know, that would change the path, or none at all.
    for bad in ["cs_unknown", "..%2Fcustomers%2Fcus_1", ""] {
        let resp = browser.get(&format!("{RETURN}{bad}")).await;
        assert_eq!(
            location(&resp),
            "/account/auto-top-up?error=error-card-not-saved",
            "{bad}"
        );
    }
    let none = browser
        .get("/account/auto-top-up/cards/stripe/return")
        .await;
    assert_eq!(
        location(&none),
        "/account/auto-top-up?error=error-card-not-saved"
    );
    assert_eq!(saved_cards(&app, &member).await.len(), 1);
    // A visitor is sent to sign in; the form without its CSRF token is refused.
    let visitor = Browser::new(&app);
    let resp = visitor.get(&format!("{RETURN}cs_test_1")).await;
    assert_eq!(resp.status, 303);
    assert!(location(&resp).starts_with("/login?next="));
    let forged = browser.post("/account/auto-top-up/cards/stripe", &[]).await;
    assert_eq!(forged.status, 403);

    // Without Stripe configured there is no Stripe button, and the form saves nothing.
    let plain = TestApp::spawn(backend, "stripe_web_unconfigured").await;
    let (browser, member) = web_member(&plain, "web-plain@example.com").await;
    let page = browser.get(TOPUP_PAGE).await;
    assert!(!page.text.contains("cards/stripe"), "{}", page.text);
    let refused = browser
        .submit(TOPUP_PAGE, "/account/auto-top-up/cards/stripe", &[])
        .await;
    assert_eq!(
        location(&refused),
        "/account/auto-top-up?error=error-card-not-saved"
    );
    assert!(saved_cards(&plain, &member).await.is_empty());
}
