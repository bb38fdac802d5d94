//! Stripe through the server against a local stub of Stripe's API: a Checkout Session for the
//! order, the signed `checkout.session.completed` that pays it, refunds through Stripe's refund
//! API, and a refund made in Stripe's dashboard arriving as `charge.refunded`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path};
use axum::routing::{get, post};
use bursar_payments::signature::header_v1;
use bursar_server::config::StripeSettings;
use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};

const WEBHOOK_SECRET: &str = "whsec_stripe_test";

type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// Answers like Stripe's API and remembers every form it was sent. While `down` is set, the
/// refund API answers 500 as an outage would.
async fn stub() -> (String, Seen, Arc<AtomicBool>) {
    let seen: Seen = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let down_now = down.clone();
    let record = |seen: &Seen, path: &str, form: Vec<(String, String)>| {
        seen.lock().expect("lock").push((path.to_string(), form));
    };
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = Router::new()
        .route(
            "/v1/checkout/sessions",
            post(move |Form(form): Form<Vec<(String, String)>>| async move {
                record(&s1, "/v1/checkout/sessions", form);
                axum::Json(json!({"id": "cs_test_1", "object": "checkout.session",
                                  "url": "https://checkout.stripe.test/c/pay/cs_test_1"}))
            }),
        )
        .route(
            "/v1/checkout/sessions/{id}",
            get(|Path(id): Path<String>| async move {
                axum::Json(
                    json!({"id": id, "object": "checkout.session", "payment_intent": "pi_test_1"}),
                )
            }),
        )
        .route(
            "/v1/refunds",
            post(move |Form(form): Form<Vec<(String, String)>>| async move {
                record(&s2, "/v1/refunds", form);
                if down_now.load(Ordering::SeqCst) {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({"error": {"type": "api_error", "message": "outage"}})),
                    );
                }
                (
                    axum::http::StatusCode::OK,
                    axum::Json(
                        json!({"id": "re_test_1", "object": "refund", "status": "succeeded"}),
                    ),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen, down)
}

async fn stripe_app(backend: Backend, name: &str, api_base: String) -> TestApp {
    TestApp::spawn_with(backend, name, |config| {
        config.stripe = Some(StripeSettings {
            secret_key: "sk_test_123".into(),
            webhook_secrets: vec!["whsec_old".into(), WEBHOOK_SECRET.into()],
            api_base,
        });
    })
    .await
}

/// A server that talks to the Stripe stub, with an admin, a buyer and a 4,500 CNY package.
struct Shop {
    app: TestApp,
    admin: Member,
    buyer: Member,
    package_id: String,
    /// What the stub was sent, and the switch that makes its refund API fail.
    seen: Seen,
    down: Arc<AtomicBool>,
}

async fn shop(backend: Backend, name: &str) -> Shop {
    let (api_base, seen, down) = stub().await;
    let app = stripe_app(backend, name, api_base).await;
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package = app
        .post(
            "/api/v1/admin/packages",
            &admin.token,
            json!({"name": "500 credits", "kind": "credit_pack", "credits": 500,
                   "price": {"amount": 4500, "currency": "CNY"}}),
        )
        .await;
    let package_id = package.json["id"].as_str().expect("id").to_string();
    Shop {
        app,
        admin,
        buyer,
        package_id,
        seen,
        down,
    }
}

async fn deliver(app: &TestApp, event: Value) -> u16 {
    let body = event.to_string();
    let signature = header_v1(
        WEBHOOK_SECRET,
        app.state.store.clock.now_ms() / 1000,
        body.as_bytes(),
    );
    app.http
        .post(format!("{}/api/v1/webhooks/stripe", app.base))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_orders_are_paid_by_signed_webhooks_and_refunded_through_stripe_sqlite() {
    stripe_flow(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_orders_are_paid_by_signed_webhooks_and_refunded_through_stripe_postgres() {
    stripe_flow(Backend::Postgres).await
}

async fn stripe_flow(backend: Backend) {
    let Shop {
        app,
        admin,
        buyer,
        package_id,
        seen,
        ..
    } = shop(backend, "stripe_flow").await;
    let placed = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "stripe"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(
        placed.json["payment"]["redirect_url"],
        "https://checkout.stripe.test/c/pay/cs_test_1"
    );
    let order_id = placed.json["id"].as_str().expect("id").to_string();
    let payment_id = placed.json["payment"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    {
        let seen = seen.lock().expect("lock");
        let (_, form) = &seen[0];
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            field("line_items[0][price_data][unit_amount]"),
            Some("4500")
        );
        assert_eq!(field("line_items[0][price_data][currency]"), Some("cny"));
        assert_eq!(field("metadata[payment_id]"), Some(payment_id.as_str()));
        // The session closes a minute before the order expires.
        let expires_at = chrono::DateTime::parse_from_rfc3339(
            placed.json["expires_at"].as_str().expect("expires_at"),
        )
        .expect("rfc3339")
        .timestamp();
        assert_eq!(
            field("expires_at"),
            Some((expires_at - 60).to_string().as_str())
        );
        assert!(expires_at - app.state.store.clock.now_ms() / 1000 >= 32 * 60);
    }

    // A refund reported before the payment it refunds is not recorded: Stripe is asked to
    // deliver it again.
    let early_refund = json!({"id": "evt_3", "object": "event", "type": "charge.refunded",
        "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_test_1",
            "amount": 4500, "amount_refunded": 4500, "currency": "cny",
            "metadata": {"order_id": order_id, "payment_id": payment_id}}}});
    assert_eq!(deliver(&app, early_refund).await, 409);
    // A declined card leaves the order payable: Checkout lets the customer try another card.
    let declined = json!({"id": "evt_0", "object": "event", "type": "payment_intent.payment_failed",
        "data": {"object": {"id": "pi_test_1", "object": "payment_intent", "amount": 4500,
            "currency": "cny", "last_payment_error": {"code": "card_declined"},
            "metadata": {"order_id": order_id, "payment_id": payment_id}}}});
    assert_eq!(deliver(&app, declined).await, 200);
    let now = app
        .get(&format!("/api/v1/orders/{order_id}"), &buyer.token)
        .await;
    assert_eq!(now.json["status"], "pending");
    assert_eq!(now.json["payment_status"], "failed");
    assert_eq!(now.json["failure_reason"], "card_declined");

    // A forged event changes nothing; the signed one pays, once.
    let completed = json!({"id": "evt_1", "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "payment_status": "paid",
            "amount_total": 4500, "currency": "cny", "client_reference_id": order_id,
            "metadata": {"order_id": order_id, "payment_id": payment_id}}}});
    let forged = app
        .http
        .post(format!("{}/api/v1/webhooks/stripe", app.base))
        .header("Stripe-Signature", format!("t=1,v1={}", "00".repeat(32)))
        .body(completed.to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 400);
    assert_eq!(app.balance(&buyer).await.0, 0);
    assert_eq!(deliver(&app, completed.clone()).await, 200);
    assert_eq!(deliver(&app, completed).await, 200);
    let intent = json!({"id": "evt_2", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_test_1", "object": "payment_intent", "amount": 4500,
            "amount_received": 4500, "currency": "cny",
            "metadata": {"order_id": order_id, "payment_id": payment_id}}}});
    assert_eq!(deliver(&app, intent).await, 200);
    assert_eq!(app.balance(&buyer).await.0, 500);

    // An admin refund goes through Stripe's refund API.
    let refund = app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &admin.token,
            json!({"amount": 1500}),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);
    assert_eq!(refund.json["status"], "succeeded");
    assert_eq!(refund.json["provider_ref"], "re_test_1");
    assert_eq!(refund.json["credits_clawed_back"], 166);
    {
        let seen = seen.lock().expect("lock");
        let (path, form) = seen.last().expect("refund call");
        assert_eq!(path, "/v1/refunds");
        assert!(form.contains(&("payment_intent".into(), "pi_test_1".into())));
        assert!(form.contains(&("amount".into(), "1500".into())));
    }
    // The rest refunded in Stripe's dashboard arrives as charge.refunded and is recorded.
    let refunded = json!({"id": "evt_3", "object": "event", "type": "charge.refunded",
        "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_test_1",
            "amount": 4500, "amount_refunded": 4500, "currency": "cny",
            "metadata": {"order_id": order_id, "payment_id": payment_id}}}});
    assert_eq!(deliver(&app, refunded).await, 200);
    let now = app
        .get(&format!("/api/v1/orders/{order_id}"), &buyer.token)
        .await;
    assert_eq!(now.json["status"], "refunded", "{}", now.text);
    assert_eq!(now.json["amount_refunded"]["amount"], 4500);
    assert_eq!(app.balance(&buyer).await.0, 0);
    app.assert_ledger_ok().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_wait_out_a_stripe_outage_sqlite() {
    refunds_wait_out_an_outage(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_wait_out_a_stripe_outage_postgres() {
    refunds_wait_out_an_outage(Backend::Postgres).await
}

/// A refund whose provider call fails for a transient reason stays pending and is sent again
/// by the retry job; a late payment reported twice is refunded once.
async fn refunds_wait_out_an_outage(backend: Backend) {
    let Shop {
        app,
        admin,
        buyer,
        package_id,
        seen,
        down,
    } = shop(backend, "stripe_outage").await;
    let place = || {
        app.post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "stripe"}),
        )
    };
    let placed = place().await;
    let order_id = placed.json["id"].as_str().expect("id").to_string();
    let payment_id = placed.json["payment"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let paid = |event_id: &str, order_id: &str, payment_id: &str| {
        json!({"id": event_id, "object": "event", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_test_1", "object": "payment_intent", "amount": 4500,
                "amount_received": 4500, "currency": "cny",
                "metadata": {"order_id": order_id, "payment_id": payment_id}}}})
    };
    assert_eq!(
        deliver(&app, paid("evt_a", &order_id, &payment_id)).await,
        200
    );

    down.store(true, Ordering::SeqCst);
    let refund = app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);
    assert_eq!(refund.json["status"], "pending", "{}", refund.text);
    assert_eq!(
        app.balance(&buyer).await.0,
        0,
        "the credits are clawed back at once"
    );
    let refund_id = refund.json["id"].as_str().expect("id").to_string();
    // Its job backs off: not due yet, so the queue leaves it alone.
    app.settle_jobs().await;
    let calls = |seen: &Seen| {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p == "/v1/refunds")
            .count()
    };
    assert_eq!(calls(&seen), 1);
    down.store(false, Ordering::SeqCst);
    // The first back-off is 30 s with up to a fifth of jitter either way.
    app.state.store.clock.advance_ms(37_000);
    app.settle_jobs().await;
    assert_eq!(calls(&seen), 2);
    let record = app
        .state
        .store
        .order_refund(&refund_id)
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(record.status, bursar_core::RefundStatus::Succeeded);
    assert_eq!(record.attempts, 2);
    let sent: Vec<_> = seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|(p, _)| p == "/v1/refunds")
        .map(|(_, f)| f.clone())
        .collect();
    assert!(sent[0].contains(&("metadata[refund_id]".into(), refund_id.clone())));
    assert_eq!(
        sent[0], sent[1],
        "the retry is the same request, under the same idempotency key"
    );

    // A payment for a cancelled order, reported by two events, is returned once.
    let second = place().await;
    let second_id = second.json["id"].as_str().expect("id").to_string();
    let second_payment = second.json["payment"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{second_id}/cancel"),
            &buyer.token,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200);
    let before = calls(&seen);
    let completed = json!({"id": "evt_c", "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "payment_status": "paid",
            "amount_total": 4500, "currency": "cny",
            "metadata": {"order_id": second_id, "payment_id": second_payment}}}});
    let (a, b) = tokio::join!(
        deliver(&app, completed),
        deliver(&app, paid("evt_d", &second_id, &second_payment))
    );
    assert_eq!((a, b), (200, 200));
    // A webhook's answer does not wait for the refund's job; the queue runs it at once.
    app.settle_jobs().await;
    assert_eq!(calls(&seen), before + 1);
    let now = app
        .get(&format!("/api/v1/orders/{second_id}"), &buyer.token)
        .await;
    assert_eq!(now.json["status"], "cancelled");
    assert_eq!(now.json["payment_status"], "refunded");
    assert_eq!(app.balance(&buyer).await.0, 0);
    app.assert_ledger_ok().await;
}
