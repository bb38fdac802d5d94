//! `Stripe` against an in-process stub of Stripe's HTTP API (which records what it was sent),
//! and its webhook parsing against events signed here and the published S vectors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use bursar_payments::signature::header_v1;
use bursar_payments::stripe::{Stripe, StripeConfig};
use bursar_payments::{
    Amount, ChargeRequest, CustomerRequest, EventKind, HostedSetupRequest, HostedSetupState,
    PaymentProvider, PaymentRequest, ProviderError, RefundRequest, SavedMethod, SetupRequest,
    WebhookError, WebhookEvent, WebhookRequest,
};
use serde_json::{Value, json};

const SECRET_KEY: &str = "sk_test_bursar";
const WHSEC: &str = "whsec_current";
const NOW: i64 = 1_700_000_000;

// ---- The stub ------------------------------------------------------------------------------

/// One request as the stub received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    authorization: Option<String>,
    idempotency_key: Option<String>,
    content_type: Option<String>,
    form: Vec<(String, String)>,
}

impl Recorded {
    fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct StubState {
    /// `"POST /v1/refunds"` → the status and JSON body to answer with.
    routes: HashMap<String, (u16, Value)>,
    requests: Mutex<Vec<Recorded>>,
}

struct Stub {
    base: String,
    state: Arc<StubState>,
}

impl Stub {
    async fn start(routes: &[(&str, u16, Value)]) -> Stub {
        let state = Arc::new(StubState {
            routes: routes
                .iter()
                .map(|(route, status, body)| (route.to_string(), (*status, body.clone())))
                .collect(),
            requests: Mutex::default(),
        });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let base = format!("http://{}", listener.local_addr().expect("stub address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("stub serves") });
        Stub { base, state }
    }

    fn stripe(&self) -> Stripe {
        Stripe::new(StripeConfig {
            api_base: self.base.clone(),
            ..config(vec![WHSEC.into()])
        })
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("stub lock").clone()
    }
}

/// Records the request, then answers with the configured route or Stripe's 404.
/// `Form` reads POST bodies only with the form content type (otherwise 415) and GET queries.
async fn answer(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    state.requests.lock().expect("stub lock").push(Recorded {
        method: method.clone(),
        path: uri.path().to_string(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        form,
    });
    let route = format!("{method} {}", uri.path());
    let (status, body) = state.routes.get(&route).cloned().unwrap_or_else(|| {
        let error = json!({"error": {"type": "invalid_request_error",
            "message": format!("Unrecognized request URL ({route})")}});
        (404, error)
    });
    (
        StatusCode::from_u16(status).expect("a valid status"),
        axum::Json(body),
    )
}

fn config(webhook_secrets: Vec<String>) -> StripeConfig {
    StripeConfig {
        secret_key: SECRET_KEY.into(),
        webhook_secrets,
        api_base: "http://127.0.0.1:9".into(),
        tolerance_s: 300,
    }
}

fn card_error(message: &str, decline_code: &str) -> Value {
    json!({"error": {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": decline_code,
        "message": message,
        "payment_intent": {"id": "pi_declined", "object": "payment_intent", "status": "requires_payment_method"}
    }})
}

fn payment_request() -> PaymentRequest {
    PaymentRequest {
        order_id: "ord_1".into(),
        payment_id: "pay_1".into(),
        amount: Amount {
            amount: 4500,
            currency: "USD".into(),
        },
        description: "450 credits & a bonus".into(),
        customer_email: Some("buyer+1@example.com".into()),
        return_url: "https://bursar.test/orders/ord_1?from=stripe".into(),
        idempotency_key: "ord_1:attempt:1".into(),
        expires_at_s: Some(1_900_000_000),
        mode: None,
    }
}

fn charge_request() -> ChargeRequest {
    ChargeRequest {
        payment_id: "pay_2".into(),
        order_id: "ord_2".into(),
        customer_ref: Some("cus_9".into()),
        payment_method: "pm_card_visa".into(),
        amount: Amount {
            amount: 1000,
            currency: "EUR".into(),
        },
        idempotency_key: "topup:ord_2".into(),
    }
}

// ---- API calls -----------------------------------------------------------------------------

#[tokio::test]
async fn create_payment_posts_a_checkout_session_and_returns_its_url() {
    let session = json!({"id": "cs_test_a1", "object": "checkout.session",
        "url": "https://checkout.stripe.com/c/pay/cs_test_a1", "status": "open",
        "payment_status": "unpaid"});
    let stub = Stub::start(&[("POST /v1/checkout/sessions", 200, session)]).await;
    let created = stub
        .stripe()
        .create_payment(&payment_request())
        .await
        .expect("the session is created");
    assert_eq!(created.provider_ref.as_deref(), Some("cs_test_a1"));
    assert_eq!(
        created.redirect_url.as_deref(),
        Some("https://checkout.stripe.com/c/pay/cs_test_a1")
    );

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path, "/v1/checkout/sessions");
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk_test_bursar"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("ord_1:attempt:1"));
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let expected = [
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "4500"),
        (
            "line_items[0][price_data][product_data][name]",
            "450 credits & a bonus",
        ),
        ("line_items[0][quantity]", "1"),
        (
            "success_url",
            "https://bursar.test/orders/ord_1?from=stripe",
        ),
        ("cancel_url", "https://bursar.test/orders/ord_1?from=stripe"),
        ("client_reference_id", "ord_1"),
        ("metadata[order_id]", "ord_1"),
        ("metadata[payment_id]", "pay_1"),
        ("payment_intent_data[metadata][order_id]", "ord_1"),
        ("payment_intent_data[metadata][payment_id]", "pay_1"),
        ("expires_at", "1900000000"),
        ("customer_email", "buyer+1@example.com"),
    ];
    for (key, value) in expected {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
    assert_eq!(sent.form.len(), expected.len(), "{:?}", sent.form);
}

#[tokio::test]
async fn create_payment_leaves_out_a_missing_customer_email() {
    let session =
        json!({"id": "cs_test_a2", "url": "https://checkout.stripe.com/c/pay/cs_test_a2"});
    let stub = Stub::start(&[("POST /v1/checkout/sessions", 200, session)]).await;
    let request = PaymentRequest {
        customer_email: None,
        ..payment_request()
    };
    stub.stripe()
        .create_payment(&request)
        .await
        .expect("the session is created");
    assert_eq!(stub.requests()[0].field("customer_email"), None);
}

#[tokio::test]
async fn a_card_error_is_declined_with_stripes_message() {
    let stub = Stub::start(&[(
        "POST /v1/checkout/sessions",
        402,
        card_error("Your card was declined.", "generic_decline"),
    )])
    .await;
    let error = stub
        .stripe()
        .create_payment(&payment_request())
        .await
        .expect_err("declined");
    assert_eq!(
        error,
        ProviderError::Declined("Your card was declined.".into())
    );
}

#[tokio::test]
async fn a_server_error_or_an_unexpected_body_is_unavailable() {
    let stub = Stub::start(&[
        (
            "POST /v1/checkout/sessions",
            500,
            json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        ),
        ("POST /v1/refunds", 200, json!({"unexpected": true})),
    ])
    .await;
    let stripe = stub.stripe();
    let error = stripe
        .create_payment(&payment_request())
        .await
        .expect_err("a 500");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");

    let refund = RefundRequest {
        payment_id: "pay_1".into(),
        provider_ref: Some("pi_1".into()),
        amount: Amount {
            amount: 100,
            currency: "USD".into(),
        },
        refund_id: "ref_1".into(),
    };
    let error = stripe.refund(&refund).await.expect_err("no id in the body");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable() {
    // A port that was just free: nothing listens there any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let stripe = Stripe::new(StripeConfig {
        api_base: base,
        ..config(vec![WHSEC.into()])
    });
    let error = stripe
        .create_payment(&payment_request())
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn refund_of_a_checkout_session_resolves_its_payment_intent_first() {
    let stub = Stub::start(&[
        (
            "GET /v1/checkout/sessions/cs_test_paid",
            200,
            json!({"id": "cs_test_paid", "object": "checkout.session", "payment_intent": "pi_paid"}),
        ),
        (
            "POST /v1/refunds",
            200,
            json!({"id": "re_1", "object": "refund", "status": "succeeded"}),
        ),
    ])
    .await;
    let refund = RefundRequest {
        payment_id: "pay_1".into(),
        provider_ref: Some("cs_test_paid".into()),
        amount: Amount {
            amount: 1500,
            currency: "USD".into(),
        },
        refund_id: "rf_7".into(),
    };
    let result = stub.stripe().refund(&refund).await.expect("refunded");
    assert_eq!(result.provider_ref, "re_1");

    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].method, Method::GET);
    assert_eq!(requests[0].path, "/v1/checkout/sessions/cs_test_paid");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk_test_bursar")
    );
    assert_eq!(requests[0].idempotency_key, None, "only POSTs carry a key");
    let post = &requests[1];
    assert_eq!(
        (post.method.clone(), post.path.as_str()),
        (Method::POST, "/v1/refunds")
    );
    assert_eq!(post.idempotency_key.as_deref(), Some("rf_7"));
    assert_eq!(post.field("payment_intent"), Some("pi_paid"));
    assert_eq!(post.field("amount"), Some("1500"));
    assert_eq!(post.field("metadata[payment_id]"), Some("pay_1"));
    assert_eq!(post.field("metadata[refund_id]"), Some("rf_7"));
}

#[tokio::test]
async fn refund_of_a_payment_intent_posts_directly() {
    let stub = Stub::start(&[("POST /v1/refunds", 200, json!({"id": "re_2"}))]).await;
    let refund = RefundRequest {
        payment_id: "pay_1".into(),
        provider_ref: Some("pi_direct".into()),
        amount: Amount {
            amount: 200,
            currency: "USD".into(),
        },
        refund_id: "rf_8".into(),
    };
    let result = stub.stripe().refund(&refund).await.expect("refunded");
    assert_eq!(result.provider_ref, "re_2");
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field("payment_intent"), Some("pi_direct"));
}

#[tokio::test]
async fn refund_of_an_unpaid_session_or_without_a_reference_is_declined() {
    let stub = Stub::start(&[(
        "GET /v1/checkout/sessions/cs_test_unpaid",
        200,
        json!({"id": "cs_test_unpaid", "payment_intent": null}),
    )])
    .await;
    let stripe = stub.stripe();
    let mut refund = RefundRequest {
        payment_id: "pay_1".into(),
        provider_ref: Some("cs_test_unpaid".into()),
        amount: Amount {
            amount: 200,
            currency: "USD".into(),
        },
        refund_id: "rf_9".into(),
    };
    let error = stripe.refund(&refund).await.expect_err("nothing to refund");
    assert!(matches!(error, ProviderError::Declined(_)), "{error:?}");
    refund.provider_ref = Some("cs_../../v1/customers".into());
    let error = stripe.refund(&refund).await.expect_err("not an id");
    assert!(matches!(error, ProviderError::Declined(_)), "{error:?}");
    refund.provider_ref = None;
    let error = stripe.refund(&refund).await.expect_err("no reference");
    assert!(matches!(error, ProviderError::Declined(_)), "{error:?}");
    assert_eq!(stub.requests().len(), 1, "no refund was posted");
}

#[tokio::test]
async fn charge_saved_method_confirms_off_session() {
    let intent = json!({"id": "pi_topup", "object": "payment_intent", "status": "succeeded",
        "amount": 1000, "currency": "eur"});
    let stub = Stub::start(&[("POST /v1/payment_intents", 200, intent)]).await;
    let result = stub
        .stripe()
        .charge_saved_method(&charge_request())
        .await
        .expect("charged");
    assert_eq!(result.provider_ref, "pi_topup");

    let sent = &stub.requests()[0];
    assert_eq!(sent.path, "/v1/payment_intents");
    assert_eq!(sent.idempotency_key.as_deref(), Some("topup:ord_2"));
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk_test_bursar"));
    for (key, value) in [
        ("amount", "1000"),
        ("currency", "eur"),
        ("customer", "cus_9"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
        ("off_session", "true"),
        ("metadata[order_id]", "ord_2"),
        ("metadata[payment_id]", "pay_2"),
    ] {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
}

#[tokio::test]
async fn charge_saved_method_declines_a_card_error() {
    let stub = Stub::start(&[(
        "POST /v1/payment_intents",
        402,
        card_error("Your card has insufficient funds.", "insufficient_funds"),
    )])
    .await;
    let error = stub
        .stripe()
        .charge_saved_method(&charge_request())
        .await
        .expect_err("declined");
    assert_eq!(
        error,
        ProviderError::Declined("Your card has insufficient funds.".into())
    );
}

#[tokio::test]
async fn charge_saved_method_declines_when_the_customer_must_act() {
    let intent = json!({"id": "pi_3ds", "object": "payment_intent", "status": "requires_action",
        "next_action": {"type": "use_stripe_sdk"}, "last_payment_error": null});
    let stub = Stub::start(&[("POST /v1/payment_intents", 200, intent)]).await;
    let error = stub
        .stripe()
        .charge_saved_method(&charge_request())
        .await
        .expect_err("needs the customer");
    match error {
        ProviderError::Declined(reason) => {
            assert!(reason.starts_with("requires_action: "), "{reason}")
        }
        other => panic!("expected Declined, got {other:?}"),
    }
}

#[tokio::test]
async fn an_off_session_charge_that_needs_authentication_is_declined_with_that_reason() {
    let body = json!({"error": {"type": "card_error", "code": "authentication_required",
        "decline_code": "authentication_required",
        "message": "Your card was declined. This transaction requires authentication."}});
    let stub = Stub::start(&[("POST /v1/payment_intents", 402, body)]).await;
    let error = stub
        .stripe()
        .charge_saved_method(&charge_request())
        .await
        .expect_err("declined");
    assert_eq!(
        error,
        ProviderError::Declined(
            "authentication_required: Your card was declined. This transaction requires \
             authentication."
                .into()
        )
    );
}

#[tokio::test]
async fn a_customer_is_created_with_the_users_id_and_a_key_derived_from_it() {
    let customer = json!({"id": "cus_new", "object": "customer"});
    let stub = Stub::start(&[("POST /v1/customers", 200, customer)]).await;
    let request = CustomerRequest {
        user_id: "usr_1".into(),
        email: Some("member@example.com".into()),
        idempotency_key: "customer_usr_1".into(),
    };
    let made = stub.stripe().create_customer(&request).await.expect("made");
    assert_eq!(made, "cus_new");
    let sent = &stub.requests()[0];
    assert_eq!(sent.idempotency_key.as_deref(), Some("customer_usr_1"));
    assert_eq!(sent.field("email"), Some("member@example.com"));
    assert_eq!(sent.field("metadata[bursar_user_id]"), Some("usr_1"));
}

#[tokio::test]
async fn a_setup_is_an_off_session_card_setup_intent_on_the_customer() {
    let intent = json!({"id": "seti_1", "object": "setup_intent",
        "client_secret": "seti_1_secret_abc", "status": "requires_payment_method"});
    let stub = Stub::start(&[("POST /v1/setup_intents", 200, intent)]).await;
    let request = SetupRequest {
        customer_ref: "cus_9".into(),
        user_id: "usr_1".into(),
        idempotency_key: "setup_1".into(),
    };
    let started = stub.stripe().start_setup(&request).await.expect("started");
    assert_eq!(started.provider_ref, "seti_1");
    assert_eq!(started.client_secret, "seti_1_secret_abc");
    assert!(!format!("{started:?}").contains("secret_abc"));
    let sent = &stub.requests()[0];
    assert_eq!(sent.idempotency_key.as_deref(), Some("setup_1"));
    for (key, value) in [
        ("customer", "cus_9"),
        ("usage", "off_session"),
        ("payment_method_types[0]", "card"),
        ("metadata[bursar_user_id]", "usr_1"),
    ] {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
}

#[tokio::test]
async fn a_setup_is_read_back_with_its_card() {
    let intent = json!({"id": "seti_1", "object": "setup_intent", "status": "succeeded",
        "customer": "cus_9", "payment_method": {"id": "pm_card_1", "object": "payment_method",
            "type": "card", "card": {"brand": "visa", "last4": "4242", "exp_month": 12}}});
    let stub = Stub::start(&[("GET /v1/setup_intents/seti_1", 200, intent)]).await;
    let setup = stub.stripe().fetch_setup("seti_1").await.expect("read");
    assert!(setup.succeeded());
    assert_eq!(setup.customer_ref.as_deref(), Some("cus_9"));
    assert_eq!(
        setup.method,
        Some(SavedMethod {
            token: "pm_card_1".into(),
            brand: "visa".into(),
            last4: "4242".into(),
        })
    );
    let sent = &stub.requests()[0];
    assert_eq!(sent.method, Method::GET);
    assert_eq!(sent.field("expand[]"), Some("payment_method"));
}

#[tokio::test]
async fn an_unfinished_setup_has_no_method_and_a_path_changing_id_is_never_sent() {
    let intent = json!({"id": "seti_2", "object": "setup_intent",
        "status": "requires_payment_method", "customer": {"id": "cus_9"}, "payment_method": null});
    let stub = Stub::start(&[("GET /v1/setup_intents/seti_2", 200, intent)]).await;
    let stripe = stub.stripe();
    let setup = stripe.fetch_setup("seti_2").await.expect("read");
    assert!(!setup.succeeded());
    assert_eq!(setup.customer_ref.as_deref(), Some("cus_9"));
    assert_eq!(setup.method, None);
    for id in ["../customers/cus_9", "seti_2?expand[]=customer", ""] {
        let error = stripe.fetch_setup(id).await.expect_err("refused");
        assert!(matches!(error, ProviderError::Declined(_)), "{error:?}");
    }
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn a_hosted_setup_is_a_checkout_session_in_setup_mode_on_the_customer() {
    let session = json!({"id": "cs_test_setup_1", "object": "checkout.session", "mode": "setup",
        "url": "https://checkout.stripe.com/c/pay/cs_test_setup_1", "status": "open"});
    let stub = Stub::start(&[("POST /v1/checkout/sessions", 200, session)]).await;
    let request = HostedSetupRequest {
        customer_ref: "cus_9".into(),
        user_id: "usr_1".into(),
        currency: "USD".into(),
        success_url: "https://bursar.test/account/auto-top-up/cards/stripe/return?session_id={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://bursar.test/account/auto-top-up".into(),
        idempotency_key: "setup_2".into(),
    };
    let started = stub
        .stripe()
        .start_hosted_setup(&request)
        .await
        .expect("started");
    assert_eq!(started.provider_ref, "cs_test_setup_1");
    assert_eq!(
        started.redirect_url,
        "https://checkout.stripe.com/c/pay/cs_test_setup_1"
    );
    let sent = &stub.requests()[0];
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk_test_bursar"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("setup_2"));
    for (key, value) in [
        ("mode", "setup"),
        ("customer", "cus_9"),
        ("currency", "usd"),
        ("payment_method_types[0]", "card"),
        // Stripe fills the placeholder in, so it must reach Stripe as it is.
        (
            "success_url",
            "https://bursar.test/account/auto-top-up/cards/stripe/return?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "https://bursar.test/account/auto-top-up"),
        ("metadata[bursar_user_id]", "usr_1"),
        ("setup_intent_data[metadata][bursar_user_id]", "usr_1"),
    ] {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
    assert_eq!(
        sent.field("line_items[0][quantity]"),
        None,
        "nothing to pay"
    );
}

#[tokio::test]
async fn a_hosted_setup_is_read_back_with_its_setup_intent_and_customer() {
    let done = json!({"id": "cs_1", "object": "checkout.session", "mode": "setup",
        "status": "complete", "customer": "cus_9", "setup_intent": "seti_7"});
    let open = json!({"id": "cs_2", "object": "checkout.session", "mode": "setup",
        "status": "open", "customer": {"id": "cus_9"}, "setup_intent": null});
    let payment = json!({"id": "cs_3", "object": "checkout.session", "mode": "payment",
        "status": "complete", "customer": "cus_9", "payment_intent": "pi_1"});
    let stub = Stub::start(&[
        ("GET /v1/checkout/sessions/cs_1", 200, done),
        ("GET /v1/checkout/sessions/cs_2", 200, open),
        ("GET /v1/checkout/sessions/cs_3", 200, payment),
    ])
    .await;
    let stripe = stub.stripe();
    let state = stripe.fetch_hosted_setup("cs_1").await.expect("read");
    assert_eq!(
        state,
        HostedSetupState {
            provider_ref: "cs_1".into(),
            status: "complete".into(),
            customer_ref: Some("cus_9".into()),
            setup_ref: Some("seti_7".into()),
        }
    );
    let unfinished = stripe.fetch_hosted_setup("cs_2").await.expect("read");
    assert_eq!(unfinished.customer_ref.as_deref(), Some("cus_9"));
    assert_eq!(unfinished.setup_ref, None);
    // A payment's session saves no method; a session Stripe does not know is declined; an id
    // that would change the path is never sent.
    for id in ["cs_3", "cs_unknown"] {
        let error = stripe.fetch_hosted_setup(id).await.expect_err("refused");
        assert!(
            matches!(error, ProviderError::Declined(_)),
            "{id}: {error:?}"
        );
    }
    for id in ["../customers/cus_9", "cs_1?expand[]=customer", ""] {
        let error = stripe.fetch_hosted_setup(id).await.expect_err("refused");
        assert!(matches!(error, ProviderError::Declined(_)), "{error:?}");
    }
    let sent = stub.requests();
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|r| r.method == Method::GET));
}

// ---- Webhooks ------------------------------------------------------------------------------

fn event(kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "id": "evt_1", "object": "event", "api_version": "2024-06-20", "created": NOW,
        "data": {"object": object}, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": kind
    }))
    .expect("an event serialises")
}

fn webhook_stripe() -> Stripe {
    Stripe::new(config(vec![WHSEC.into()]))
}

/// A webhook delivery with `signature` (if any) in `Stripe-Signature`.
fn deliver(
    stripe: &Stripe,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<WebhookEvent, WebhookError> {
    let mut headers = HeaderMap::new();
    if let Some(signature) = signature {
        let value = HeaderValue::from_str(signature).expect("an ASCII signature header");
        headers.insert("Stripe-Signature", value);
    }
    stripe.parse_webhook(&WebhookRequest::new(&headers, body), now_s)
}

fn parse_signed(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let header = header_v1(WHSEC, NOW - 10, body);
    deliver(&webhook_stripe(), Some(&header), body, NOW)
}

fn usd(amount: i64) -> Amount {
    Amount {
        amount,
        currency: "USD".into(),
    }
}

#[test]
fn checkout_session_completed_and_paid_succeeds() {
    let body = event(
        "checkout.session.completed",
        json!({"id": "cs_test_a1", "object": "checkout.session", "amount_total": 4500,
            "currency": "usd", "payment_status": "paid", "status": "complete",
            "client_reference_id": "ord_1", "payment_intent": "pi_1",
            "metadata": {"order_id": "ord_1", "payment_id": "pay_1"}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(
        parsed,
        WebhookEvent {
            event_id: "evt_1".into(),
            event_type: "checkout.session.completed".into(),
            kind: EventKind::Succeeded,
            payment_id: Some("pay_1".into()),
            provider_ref: Some("cs_test_a1".into()),
            order_id: Some("ord_1".into()),
            amount: Some(usd(4500)),
        }
    );
}

#[test]
fn checkout_session_completed_unpaid_is_ignored_and_order_falls_back_to_reference() {
    let body = event(
        "checkout.session.completed",
        json!({"id": "cs_test_a3", "amount_total": 4500, "currency": "usd",
            "payment_status": "unpaid", "client_reference_id": "ord_3", "metadata": {}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(parsed.kind, EventKind::Ignored);
    assert_eq!(parsed.order_id.as_deref(), Some("ord_3"));
    assert_eq!(parsed.amount, None);
}

#[test]
fn setup_intent_succeeded_names_the_setup_to_read_back() {
    let body = event(
        "setup_intent.succeeded",
        json!({"id": "seti_1", "object": "setup_intent", "status": "succeeded",
            "customer": "cus_9", "payment_method": "pm_card_1",
            "metadata": {"bursar_user_id": "usr_1"}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(parsed.kind, EventKind::MethodSetUp);
    assert_eq!(parsed.provider_ref.as_deref(), Some("seti_1"));
    assert_eq!(parsed.payment_id, None);
    assert_eq!(parsed.order_id, None);
}

#[test]
fn payment_intent_succeeded_succeeds_with_the_amount_received() {
    let body = event(
        "payment_intent.succeeded",
        json!({"id": "pi_1", "object": "payment_intent", "amount": 4500,
            "amount_received": 4400, "currency": "usd", "status": "succeeded",
            "metadata": {"order_id": "ord_1", "payment_id": "pay_1"}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(parsed.kind, EventKind::Succeeded);
    assert_eq!(parsed.event_type, "payment_intent.succeeded");
    assert_eq!(parsed.payment_id.as_deref(), Some("pay_1"));
    assert_eq!(parsed.order_id.as_deref(), Some("ord_1"));
    assert_eq!(parsed.provider_ref.as_deref(), Some("pi_1"));
    assert_eq!(parsed.amount, Some(usd(4400)));
}

#[test]
fn payment_intent_payment_failed_carries_the_reason() {
    let failed = |error: Value| {
        let body = event(
            "payment_intent.payment_failed",
            json!({"id": "pi_2", "amount": 4500, "currency": "usd",
                "status": "requires_payment_method", "last_payment_error": error,
                "metadata": {"order_id": "ord_2", "payment_id": "pay_2"}}),
        );
        parse_signed(&body).expect("parses")
    };
    let parsed = failed(json!({"type": "card_error", "code": "card_declined",
        "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}));
    assert_eq!(
        parsed.kind,
        EventKind::AttemptFailed {
            reason: "card_declined".into()
        }
    );
    assert_eq!(parsed.payment_id.as_deref(), Some("pay_2"));
    assert_eq!(parsed.provider_ref.as_deref(), Some("pi_2"));
    assert_eq!(
        failed(json!({"message": "Something went wrong."})).kind,
        EventKind::AttemptFailed {
            reason: "Something went wrong.".into()
        }
    );
    assert_eq!(
        failed(Value::Null).kind,
        EventKind::AttemptFailed {
            reason: "payment_failed".into()
        }
    );
}

#[test]
fn charge_refunded_carries_the_total_refunded() {
    let body = event(
        "charge.refunded",
        json!({"id": "ch_1", "object": "charge", "amount": 4500, "amount_refunded": 1500,
            "currency": "usd", "refunded": false, "payment_intent": "pi_1",
            "metadata": {"order_id": "ord_1", "payment_id": "pay_1"}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(parsed.kind, EventKind::Refunded { amount: usd(1500) });
    assert_eq!(parsed.payment_id.as_deref(), Some("pay_1"));
    assert_eq!(parsed.provider_ref.as_deref(), Some("pi_1"));
}

#[test]
fn an_unknown_type_is_ignored_but_keeps_its_id_and_type() {
    let body = event(
        "customer.created",
        json!({"id": "cus_1", "object": "customer"}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(parsed.kind, EventKind::Ignored);
    assert_eq!(parsed.event_id, "evt_1");
    assert_eq!(parsed.event_type, "customer.created");
}

#[test]
fn a_rotated_secret_still_verifies() {
    let stripe = Stripe::new(config(vec!["whsec_old".into(), "whsec_new".into()]));
    let body = event("customer.created", json!({"id": "cus_1"}));
    let header = header_v1("whsec_new", NOW, &body);
    assert!(deliver(&stripe, Some(&header), &body, NOW).is_ok());
    let header = header_v1("whsec_old", NOW, &body);
    assert!(deliver(&stripe, Some(&header), &body, NOW).is_ok());
}

#[test]
fn a_stale_a_foreign_or_a_missing_signature_is_refused() {
    let stripe = webhook_stripe();
    let body = event("customer.created", json!({"id": "cus_1"}));
    let stale = header_v1(WHSEC, NOW - 301, &body);
    assert!(matches!(
        deliver(&stripe, Some(&stale), &body, NOW),
        Err(WebhookError::Signature(_))
    ));
    let foreign = header_v1("whsec_someone_else", NOW, &body);
    assert!(matches!(
        deliver(&stripe, Some(&foreign), &body, NOW),
        Err(WebhookError::Signature(_))
    ));
    assert_eq!(
        deliver(&stripe, None, &body, NOW),
        Err(WebhookError::MissingSignature)
    );
}

#[test]
fn a_well_signed_body_that_is_not_an_event_is_malformed() {
    for body in [
        &b"not json"[..],
        br#"{"object":"event","type":"charge.refunded"}"#,
        br#"{"id":"evt_1","object":"event"}"#,
        br#"{"id":"evt_1","type":"charge.refunded"}"#,
        br#"{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}"#,
    ] {
        assert!(
            matches!(parse_signed(body), Err(WebhookError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// ---- The published vectors -----------------------------------------------------------------

fn stripe_vectors() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("payments.json is a JSON array")
        .into_iter()
        .filter(|v| v["algorithm"] == "stripe-webhook-v1")
        .collect()
}

/// Parses a vector's body as delivered with its header, secret, tolerance and clock.
fn parse_vector(inputs: &Value) -> Result<WebhookEvent, WebhookError> {
    let stripe = Stripe::new(StripeConfig {
        tolerance_s: inputs["tolerance_s"].as_i64().expect("tolerance_s"),
        ..config(vec![inputs["secret"].as_str().expect("secret").into()])
    });
    deliver(
        &stripe,
        inputs["header"].as_str(),
        inputs["payload"].as_str().expect("payload").as_bytes(),
        inputs["now"].as_i64().expect("now"),
    )
}

/// Past the signature, the vectors' bodies are a `customer.created` event (ignored) or a bare
/// `{"id","object"}` without a type (malformed).
fn assert_verified(id: &str, result: Result<WebhookEvent, WebhookError>) {
    match result {
        Ok(event) => assert_eq!(event.kind, EventKind::Ignored, "{id}"),
        Err(WebhookError::Malformed(_)) => {}
        Err(other) => panic!("{id}: the signature should verify, got {other:?}"),
    }
}

#[test]
fn the_published_stripe_vectors_verify_and_their_failures_are_refused() {
    let vectors = stripe_vectors();
    assert!(vectors.len() >= 3, "the Stripe vectors are present");
    let (mut accepted, mut refused) = (0, 0);
    for vector in &vectors {
        let id = vector["id"].as_str().unwrap_or_default();
        if vector["expected"]["accept"] == true {
            assert_verified(id, parse_vector(&vector["inputs"]));
            accepted += 1;
        }
        for variant in vector["must_pass"].as_array().into_iter().flatten() {
            assert_verified(id, parse_vector(&variant["inputs"]));
            accepted += 1;
        }
        for variant in vector["must_fail"].as_array().into_iter().flatten() {
            let Some(inputs) = variant.get("inputs") else {
                continue;
            };
            let result = parse_vector(inputs);
            assert!(
                matches!(
                    result,
                    Err(WebhookError::Signature(_) | WebhookError::MissingSignature)
                ),
                "{id} must fail ({}): {result:?}",
                variant["why"]
            );
            refused += 1;
        }
    }
    assert!(accepted >= 5 && refused >= 12, "{accepted} / {refused}");
    let s1 = vectors.iter().find(|v| v["id"] == "S1").expect("S1");
    let parsed = parse_vector(&s1["inputs"]).expect("S1 is a whole event");
    assert_eq!(
        (parsed.event_id.as_str(), parsed.event_type.as_str()),
        ("evt_123", "customer.created")
    );
}

#[test]
fn an_expired_checkout_session_fails_the_payment() {
    let body = event(
        "checkout.session.expired",
        json!({"id": "cs_9", "object": "checkout.session", "status": "expired",
            "client_reference_id": "ord_9", "metadata": {"payment_id": "pay_9"}}),
    );
    let parsed = parse_signed(&body).expect("parses");
    assert_eq!(
        parsed.kind,
        EventKind::Failed {
            reason: "checkout_expired".into()
        }
    );
    assert_eq!(parsed.payment_id.as_deref(), Some("pay_9"));
    assert_eq!(parsed.order_id.as_deref(), Some("ord_9"));
}
