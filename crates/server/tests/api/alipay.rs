//! Alipay through the server against a local stub playing Alipay's gateway (it checks each
//! request's RSA2 signature and signs its answers) and notifications signed as Alipay signs
//! them: an order's QR code, the notification that pays it once however often and however
//! concurrently it arrives, forged, foreign and short-paid notifications refused, a GBK notification read as GBK, a lost
//! notification recovered by reconciliation, and a refund through `alipay.trade.refund`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use axum::Router;
use axum::extract::{Form, State};
use axum::routing::post;
use base64::Engine;
use bursar_payments::alipay::form;
use bursar_payments::alipay::keys::{AlipayPublicKey, AppPrivateKey};
use bursar_payments::alipay::sign::sign_content;
use bursar_server::config::AlipaySettings;
use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
const QR_CODE: &str = "https://qr.alipay.com/bax00000000test";

fn vector_input(id: &str, name: &str) -> String {
    let vectors: Vec<Value> = serde_json::from_str(include_str!(
        "../../../payments/tests/vectors/payments.json"
    ))
    .expect("vectors");
    let vector = vectors.iter().find(|v| v["id"] == id).expect("the vector");
    vector["inputs"][name]
        .as_str()
        .expect("a string")
        .to_string()
}

/// The app's key pair is A4's; Alipay's own is played by W1's PKCS#8 key, so the two
/// directions cannot be mixed up.
struct Keys {
    app_private_pem: String,
    app_public: AlipayPublicKey,
    alipay_private: AppPrivateKey,
    alipay_public_base64: String,
}

fn keys() -> Keys {
    let alipay_pem = vector_input("W1", "merchant_private_key_pem");
    let der: String = alipay_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .expect("base64");
    let pair = RsaKeyPair::from_pkcs8(&der).expect("W1's key");
    Keys {
        app_private_pem: vector_input("A4", "app_private_key_pem"),
        app_public: AlipayPublicKey::parse(&vector_input("A4", "app_public_key_pem"))
            .expect("A4's public key"),
        alipay_private: AppPrivateKey::parse(&alipay_pem).expect("W1's key"),
        alipay_public_base64: base64::engine::general_purpose::STANDARD
            .encode(pair.public_key().as_ref()),
    }
}

/// What the gateway stub knows: every call it was sent, and the trades paid at "Alipay".
#[derive(Clone, Default)]
struct Gateway {
    calls: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    paid: Arc<Mutex<HashMap<String, String>>>,
    keys: Arc<Option<Keys>>,
}

impl Gateway {
    fn keys(&self) -> &Keys {
        self.keys.as_ref().as_ref().expect("keys")
    }

    fn calls_of(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|c| c["method"] == method)
            .map(|c| serde_json::from_str(&c["biz_content"]).expect("biz_content is JSON"))
            .collect()
    }
}

/// Answers like Alipay's gateway: refuses a request whose signature does not verify, and signs
/// the raw text of every `…_response` it sends.
async fn gateway(
    State(gateway): State<Gateway>,
    Form(params): Form<BTreeMap<String, String>>,
) -> String {
    let keys = gateway.keys();
    let method = params.get("method").cloned().unwrap_or_default();
    let key = format!("{}_response", method.replace('.', "_"));
    let signed = keys
        .app_public
        .verifies(sign_content(&params, &["sign"]).as_bytes(), &params["sign"]);
    let biz: Value = serde_json::from_str(&params["biz_content"]).unwrap_or_default();
    gateway.calls.lock().expect("lock").push(params.clone());
    let out_trade_no = biz["out_trade_no"].as_str().unwrap_or_default().to_string();
    let response = if !signed || params["app_id"] != APP_ID {
        json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
               "sub_msg": "验签出错"})
    } else {
        match method.as_str() {
            "alipay.trade.precreate" => json!({"code": "10000", "msg": "Success",
                "out_trade_no": out_trade_no, "qr_code": QR_CODE}),
            "alipay.trade.query" => match gateway.paid.lock().expect("lock").get(&out_trade_no) {
                Some(total) => json!({"code": "10000", "msg": "Success",
                    "out_trade_no": out_trade_no, "trade_no": "2026120622001400000000000001",
                    "trade_status": "TRADE_SUCCESS", "total_amount": total}),
                None => json!({"code": "40004", "msg": "Business Failed",
                    "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}),
            },
            "alipay.trade.refund" => json!({"code": "10000", "msg": "Success",
                "out_trade_no": out_trade_no, "trade_no": "2026120622001400000000000001",
                "refund_fee": biz["refund_amount"], "fund_change": "Y"}),
            _ => json!({"code": "40004", "msg": "Business Failed", "sub_code": "unknown"}),
        }
    };
    let content = response.to_string();
    let sign = keys.alipay_private.sign(content.as_bytes());
    format!(r#"{{"{key}":{content},"sign":"{sign}"}}"#)
}

async fn stub() -> (String, Gateway) {
    let state = Gateway {
        keys: Arc::new(Some(keys())),
        ..Gateway::default()
    };
    let app = Router::new()
        .route("/gateway.do", post(gateway))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/gateway.do"), state)
}

/// A server that talks to the stub, with an admin, a buyer and a ¥45.00 package.
struct Shop {
    app: TestApp,
    admin: Member,
    buyer: Member,
    package_id: String,
    gateway: Gateway,
    gateway_url: String,
}

async fn shop(backend: Backend, name: &str) -> Shop {
    let (gateway_url, gateway) = stub().await;
    let keys = keys();
    let url = gateway_url.clone();
    let app = TestApp::spawn_with(backend, name, |config| {
        config.alipay = Some(AlipaySettings {
            app_id: APP_ID.into(),
            private_key: keys.app_private_pem.clone(),
            public_key: keys.alipay_public_base64.clone(),
            seller_id: Some(SELLER_ID.into()),
            gateway: url,
        });
    })
    .await;
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
        gateway,
        gateway_url,
    }
}

impl Shop {
    /// Places an Alipay order; answers its id and payment id.
    async fn order(&self) -> (String, String) {
        let placed = self
            .app
            .post(
                "/api/v1/orders",
                &self.buyer.token,
                json!({"package_id": self.package_id, "provider": "alipay"}),
            )
            .await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        let id = placed.json["id"].as_str().expect("id").to_string();
        let payment_id = placed.json["payment"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        (id, payment_id)
    }

    async fn order_view(&self, order_id: &str) -> Value {
        self.app
            .get(&format!("/api/v1/orders/{order_id}"), &self.buyer.token)
            .await
            .json
    }
}

/// A trade notification for `payment_id`, signed with Alipay's key; `overrides` change or add
/// fields before signing.
fn notification(
    payment_id: &str,
    notify_id: &str,
    overrides: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = [
        ("notify_type", "trade_status_sync"),
        ("notify_id", notify_id),
        ("notify_time", "2026-12-06 08:00:00"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", APP_ID),
        ("auth_app_id", APP_ID),
        ("seller_id", SELLER_ID),
        ("out_trade_no", payment_id),
        ("trade_no", "2026120622001400000000000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "45.00"),
        ("buyer_pay_amount", "45.00"),
        ("subject", "1 × 500 credits"),
    ]
    .into_iter()
    .chain(overrides.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    fields.insert("sign_type".into(), "RSA2".into());
    let sign = keys()
        .alipay_private
        .sign(sign_content(&fields, &["sign", "sign_type"]).as_bytes());
    fields.insert("sign".into(), sign);
    fields
}

/// Posts a notification as Alipay does; answers the status and body.
async fn notify(app: &TestApp, fields: &BTreeMap<String, String>) -> (u16, String) {
    let response = app
        .http
        .post(format!("{}/api/v1/webhooks/alipay", app.base))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form::encode(fields))
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn provider_event_outcomes(app: &TestApp) -> Vec<String> {
    let pool = &app.state.store.db.pool;
    sqlx::query_scalar(
        "SELECT outcome FROM provider_events WHERE provider = 'alipay' ORDER BY received_at, event_id",
    )
    .fetch_all(pool)
    .await
    .expect("read")
}

crate::for_both_backends!(
    an_alipay_order_is_paid_once_by_its_signed_notification_and_refunded_through_alipay,
    forged_foreign_and_short_notifications_change_nothing,
    reconciliation_recovers_a_lost_notification,
    alipay_sells_cny_only_and_pays_on_its_page_when_asked,
    a_web_purchase_with_alipay_shows_the_qr_code_on_the_order_page,
);

async fn an_alipay_order_is_paid_once_by_its_signed_notification_and_refunded_through_alipay(
    backend: Backend,
) {
    let shop = shop(backend, "alipay_flow").await;
    let placed = shop
        .app
        .post(
            "/api/v1/orders",
            &shop.buyer.token,
            json!({"package_id": shop.package_id, "provider": "alipay"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(placed.json["payment"]["qr_code"], QR_CODE);
    let svg = placed.json["payment"]["qr_svg"].as_str().expect("qr_svg");
    assert!(svg.contains("<svg"), "{svg:.60}");
    let order_id = placed.json["id"].as_str().expect("id").to_string();
    let payment_id = placed.json["payment"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    {
        let calls = shop.gateway.calls.lock().expect("lock");
        let call = &calls[0];
        assert_eq!(call["method"], "alipay.trade.precreate");
        assert_eq!(call["app_id"], APP_ID);
        assert_eq!(call["sign_type"], "RSA2");
        assert_eq!(
            call["notify_url"],
            "http://127.0.0.1/api/v1/webhooks/alipay"
        );
        let biz: Value = serde_json::from_str(&call["biz_content"]).expect("JSON");
        assert_eq!(biz["out_trade_no"], payment_id);
        assert_eq!(biz["total_amount"], "45.00");
    }

    let paid = notification(&payment_id, "n_paid", &[]);
    let (status, body) = notify(&shop.app, &paid).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let now = shop.order_view(&order_id).await;
    assert_eq!(now["status"], "paid", "{now}");
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);

    // The same notification again, and a later one for the same trade, many at once: each is
    // answered `success` and none pays again.
    let (status, body) = notify(&shop.app, &paid).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let finished = notification(
        &payment_id,
        "n_finished",
        &[("trade_status", "TRADE_FINISHED")],
    );
    let answers = futures::future::join_all((0..8).map(|i| {
        let fields = if i % 2 == 0 {
            paid.clone()
        } else {
            finished.clone()
        };
        let app = &shop.app;
        async move { notify(app, &fields).await }
    }))
    .await;
    for (status, body) in answers {
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);
    assert_eq!(
        provider_event_outcomes(&shop.app).await,
        ["fulfilled", "already_paid"]
    );

    // An admin's partial refund goes through alipay.trade.refund, in yuan.
    let refund = shop
        .app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &shop.admin.token,
            json!({"amount": 1500}),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);
    assert_eq!(refund.json["status"], "succeeded", "{}", refund.text);
    assert_eq!(refund.json["credits_clawed_back"], 166);
    let refunds = shop.gateway.calls_of("alipay.trade.refund");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["out_trade_no"], payment_id);
    assert_eq!(refunds[0]["refund_amount"], "15.00");
    assert_eq!(refunds[0]["out_request_no"], refund.json["id"]);
    // The rest, refunded in full: Alipay reports the refund on the trade's notification.
    let rest = shop
        .app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &shop.admin.token,
            json!({}),
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(
        shop.gateway.calls_of("alipay.trade.refund")[1]["refund_amount"],
        "30.00"
    );
    let reported = notification(
        &payment_id,
        "n_refund",
        &[
            ("trade_status", "TRADE_CLOSED"),
            ("refund_fee", "45.00"),
            ("gmt_refund", "2026-12-06 09:00:00"),
        ],
    );
    let (status, body) = notify(&shop.app, &reported).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let now = shop.order_view(&order_id).await;
    assert_eq!(now["status"], "refunded", "{now}");
    assert_eq!(now["amount_refunded"]["amount"], 4500);
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 0);
    shop.app.assert_ledger_ok().await;
}

async fn forged_foreign_and_short_notifications_change_nothing(backend: Backend) {
    let shop = shop(backend, "alipay_refusals").await;
    let (order_id, payment_id) = shop.order().await;

    // Signed, then changed: 400 invalid_signature, nothing recorded.
    let mut forged = notification(&payment_id, "n_forged", &[("total_amount", "0.01")]);
    forged.insert("total_amount".into(), "45.00".into());
    let (status, body) = notify(&shop.app, &forged).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_signature"), "{body}");
    let mut unsigned = notification(&payment_id, "n_unsigned", &[]);
    unsigned.remove("sign");
    assert_eq!(notify(&shop.app, &unsigned).await.0, 400);
    // Signed with the app's own key instead of Alipay's.
    let mut wrong_key = notification(&payment_id, "n_wrong_key", &[]);
    let app_key = AppPrivateKey::parse(&keys().app_private_pem).expect("key");
    let content = sign_content(&wrong_key, &["sign", "sign_type"]);
    wrong_key.insert("sign".into(), app_key.sign(content.as_bytes()));
    assert_eq!(notify(&shop.app, &wrong_key).await.0, 400);
    assert!(provider_event_outcomes(&shop.app).await.is_empty());

    // Well signed but for another app, another seller, or less money: recorded, answered
    // `success` so Alipay stops resending, and never fulfilled.
    for (notify_id, overrides) in [
        ("n_app", [("app_id", "2021999999999999")]),
        ("n_seller", [("seller_id", "2088999999999999")]),
        ("n_short", [("total_amount", "0.01")]),
    ] {
        let (status, body) =
            notify(&shop.app, &notification(&payment_id, notify_id, &overrides)).await;
        assert_eq!((status, body.as_str()), (200, "success"), "{notify_id}");
    }
    assert_eq!(
        provider_event_outcomes(&shop.app).await,
        ["refused", "refused", "amount_mismatch"]
    );
    let now = shop.order_view(&order_id).await;
    assert_eq!(now["status"], "pending", "{now}");
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 0);

    // The right notification, from an app set up for GBK (its subject in Chinese), pays.
    let gbk = notification(
        &payment_id,
        "n_gbk",
        &[("charset", "gbk"), ("subject", "充值 500 积分")],
    );
    let body: Vec<String> = gbk
        .iter()
        .map(|(name, value)| {
            let (bytes, _, _) = encoding_rs::GBK.encode(value);
            let escaped: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
            format!("{name}={escaped}")
        })
        .collect();
    let response = shop
        .app
        .http
        .post(format!("{}/api/v1/webhooks/alipay", shop.app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "success");
    assert_eq!(shop.order_view(&order_id).await["status"], "paid");
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);
    shop.app.assert_ledger_ok().await;
}

async fn reconciliation_recovers_a_lost_notification(backend: Backend) {
    let shop = shop(backend, "alipay_reconcile").await;
    let (order_id, payment_id) = shop.order().await;
    let (other_id, _) = shop.order().await;
    let reconcile = || bursar_server::app::reconciliation::reconcile_payments(&shop.app.state);

    // Paid at Alipay, but the notification never comes.
    shop.gateway
        .paid
        .lock()
        .expect("lock")
        .insert(payment_id.clone(), "45.00".into());
    // Too early: the notification is given its time first.
    assert_eq!(reconcile().await.expect("runs").asked, 0);
    shop.app.state.store.clock.advance_ms(4 * 60 * 1000);
    let done = reconcile().await.expect("runs");
    assert_eq!((done.asked, done.fulfilled), (2, 1));
    assert_eq!(shop.order_view(&order_id).await["status"], "paid");
    assert_eq!(shop.order_view(&other_id).await["status"], "pending");
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);
    let queries = shop.gateway.calls_of("alipay.trade.query");
    assert!(queries.iter().any(|q| q["out_trade_no"] == payment_id));

    // Asked again, and the notification arriving after all: paid once.
    let again = reconcile().await.expect("runs");
    assert_eq!((again.asked, again.fulfilled), (1, 0));
    let (status, body) = notify(&shop.app, &notification(&payment_id, "n_late", &[])).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);
    // The scheduled job does the same.
    shop.app.settle_jobs().await;
    assert_eq!(shop.app.balance(&shop.buyer).await.0, 500);
    shop.app.assert_ledger_ok().await;
}

async fn alipay_sells_cny_only_and_pays_on_its_page_when_asked(backend: Backend) {
    let shop = shop(backend, "alipay_rules").await;
    let usd = shop
        .app
        .post(
            "/api/v1/admin/packages",
            &shop.admin.token,
            json!({"name": "USD pack", "kind": "credit_pack", "credits": 100,
                   "price": {"amount": 500, "currency": "USD"}}),
        )
        .await;
    let refused = shop
        .app
        .post(
            "/api/v1/orders",
            &shop.buyer.token,
            json!({"package_id": usd.json["id"], "provider": "alipay"}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("CNY"), "{}", refused.text);

    let page = shop
        .app
        .post(
            "/api/v1/orders",
            &shop.buyer.token,
            json!({"package_id": shop.package_id, "provider": "alipay", "alipay_mode": "page"}),
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.text);
    assert!(
        page.json["payment"].get("qr_code").is_none(),
        "{}",
        page.text
    );
    let url = reqwest::Url::parse(page.json["payment"]["redirect_url"].as_str().expect("url"))
        .expect("a URL");
    assert!(url.as_str().starts_with(&shop.gateway_url), "{url}");
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["method"], "alipay.trade.page.pay");
    assert!(params["return_url"].contains("/pay/result/"));
    assert!(
        keys()
            .app_public
            .verifies(sign_content(&params, &["sign"]).as_bytes(), &params["sign"]),
        "the page URL is signed with the app's key"
    );
    let biz: Value = serde_json::from_str(&params["biz_content"]).expect("JSON");
    assert_eq!(biz["product_code"], "FAST_INSTANT_TRADE_PAY");
    assert_eq!(biz["total_amount"], "45.00");
    // Nothing was called for a page payment.
    assert!(shop.gateway.calls_of("alipay.trade.page.pay").is_empty());

    let bad_mode = shop
        .app
        .post(
            "/api/v1/orders",
            &shop.buyer.token,
            json!({"package_id": shop.package_id, "provider": "alipay", "alipay_mode": "app"}),
        )
        .await;
    assert_eq!(bad_mode.status, 422, "{}", bad_mode.text);
}

async fn a_web_purchase_with_alipay_shows_the_qr_code_on_the_order_page(backend: Backend) {
    let shop = shop(backend, "alipay_web").await;
    let browser = crate::web::Browser::new(&shop.app);
    browser
        .sign_up(&format!(
            "web-{}@example.com",
            crate::helpers::uuid_suffix()
        ))
        .await;
    let placed = browser
        .submit(
            "/account/buy",
            "/account/buy",
            &[
                ("package_id", shop.package_id.as_str()),
                ("provider", "alipay"),
                ("quantity", "1"),
                ("coupon_code", ""),
                ("order_key", &crate::helpers::uuid_suffix()),
            ],
        )
        .await;
    assert_eq!(placed.status, 303, "{}", placed.text);
    let order_page = crate::web::location(&placed);
    assert!(order_page.starts_with("/account/orders/"), "{order_page}");
    let page = browser.get(&order_page).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The QR code's SVG is part of the page itself, without an XML declaration.
    assert!(page.text.contains("<svg"), "{}", page.text);
    assert!(!page.text.contains("<?xml"));
}
