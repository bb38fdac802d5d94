//! WeChat Pay through the server against a local stub of its API v3 (signing its answers
//! with the test platform key of the published vectors): a Native order shows its QR code,
//! callbacks are verified (signature, serial, timestamp, probes) and decrypted, and pay the
//! order once however often or concurrently they arrive; callbacks for another merchant or app,
//! or for another amount, are recorded and change nothing; refunds go through the refund API.
//! Without a configured public key, platform certificates are downloaded and used by serial.

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bursar_payments::wechatpay::aead::ApiV3Key;
use bursar_payments::wechatpay::keys::{MerchantKey, PlatformKey, pem_der};
use bursar_payments::wechatpay::signing;
use bursar_server::config::WechatPaySettings;
use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};

const MCHID: &str = "1900007291";
const APPID: &str = "wxd678efh567hg6787";
const MERCHANT_SERIAL: &str = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB";
const APIV3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000072912025120600000000000001";
/// The serial of the W2 certificate, whose key is W6's.
const CERTIFICATE_SERIAL: &str = "D7CE59D1F522D701";
const CODE_URL: &str = "weixin://wxpay/bizpayurl?pr=bursarTest";
const REFUND_ID: &str = "50000000382019052709732678859";

fn vector(id: &str) -> Value {
    serde_json::from_str::<Vec<Value>>(include_str!(
        "../../../payments/tests/vectors/payments.json"
    ))
    .expect("JSON")
    .into_iter()
    .find(|v| v["id"] == id)
    .expect("vector")
}

fn text(value: &Value, name: &str) -> String {
    value[name].as_str().expect("text").to_string()
}

/// The merchant's key (the official sample key of W1).
fn merchant_key_pem() -> String {
    text(&vector("W1")["inputs"], "merchant_private_key_pem")
}

/// WeChat Pay's side: W6's key, whose certificate is W2's.
fn platform_signer() -> MerchantKey {
    MerchantKey::from_pem(&text(&vector("W6")["inputs"], "private_key_pem")).expect("key")
}

fn platform_certificate_pem() -> String {
    text(&vector("W2")["inputs"], "platform_certificate_pem")
}

/// WeChat Pay's signature headers over `body`, at `timestamp`, naming `serial`.
fn signed(serial: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let nonce = format!("nonce{timestamp}");
    let message = signing::response_message(&timestamp.to_string(), &nonce, body);
    vec![
        (signing::HEADER_TIMESTAMP, timestamp.to_string()),
        (signing::HEADER_NONCE, nonce),
        (signing::HEADER_SIGNATURE, platform_signer().sign(&message)),
        (signing::HEADER_SERIAL, serial.to_string()),
        (
            "Wechatpay-Signature-Type",
            "WECHATPAY2-SHA256-RSA2048".into(),
        ),
    ]
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Checks a request's `Authorization` against the merchant's public key, as WeChat Pay does.
fn merchant_signed(method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(params) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(signing::authorization_params)
    else {
        return false;
    };
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let (Some(timestamp), Some(nonce), Some(signature)) =
        (get("timestamp"), get("nonce_str"), get("signature"))
    else {
        return false;
    };
    let pair =
        RsaKeyPair::from_pkcs8(&pem_der(&merchant_key_pem(), &["PRIVATE KEY"]).expect("PEM"))
            .expect("key");
    let message = format!(
        "{method}\n{path}\n{timestamp}\n{nonce}\n{}\n",
        String::from_utf8_lossy(body)
    );
    get("mchid") == Some(MCHID)
        && get("serial_no") == Some(MERCHANT_SERIAL)
        && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
            .verify(
                message.as_bytes(),
                &STANDARD.decode(signature).unwrap_or_default(),
            )
            .is_ok()
}

/// Answers like WeChat Pay, signed with the platform key under `serial`, and remembers each
/// request (method, path, JSON body). Requests not signed by the merchant get 401.
async fn stub(serial: &'static str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answer = move |status: StatusCode, body: Value| -> Response {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let mut response = (status, body.clone()).into_response();
        for (name, value) in signed(serial, now_s(), &body) {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        response
    };
    let handle = move |seen: Seen,
                       method: &'static str,
                       uri: axum::http::Uri,
                       headers: HeaderMap,
                       body: Bytes| {
        let path = uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !merchant_signed(method, &path, &headers, &body) {
            return answer(
                StatusCode::UNAUTHORIZED,
                json!({"code": "SIGN_ERROR", "message": "bad signature"}),
            );
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock()
            .expect("lock")
            .push((method.to_string(), path.clone(), json.clone()));
        let route = uri.path();
        if route == "/v3/pay/transactions/native" {
            answer(StatusCode::OK, json!({"code_url": CODE_URL}))
        } else if route.starts_with("/v3/pay/transactions/out-trade-no/")
            && route.ends_with("/close")
        {
            answer(StatusCode::NO_CONTENT, Value::Null)
        } else if let Some(no) = route.strip_prefix("/v3/pay/transactions/out-trade-no/") {
            answer(
                StatusCode::OK,
                json!({"mchid": MCHID, "appid": APPID, "out_trade_no": no,
                       "transaction_id": "4200000000000000001", "trade_state": "SUCCESS",
                       "amount": {"total": 4500, "currency": "CNY"}}),
            )
        } else if route == "/v3/refund/domestic/refunds" {
            answer(
                StatusCode::OK,
                json!({"refund_id": REFUND_ID, "out_refund_no": json["out_refund_no"],
                       "status": "PROCESSING"}),
            )
        } else if route == "/v3/certificates" {
            let key = ApiV3Key::new(APIV3_KEY).expect("key");
            let nonce = "c3e2b1a09f8d";
            let ciphertext = key
                .encrypt(nonce, "certificate", platform_certificate_pem().as_bytes())
                .expect("encrypts");
            answer(
                StatusCode::OK,
                json!({"data": [{"serial_no": CERTIFICATE_SERIAL,
                    "effective_time": "2021-04-27T16:55:23+08:00",
                    "expire_time": "2031-04-25T16:55:23+08:00",
                    "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM",
                        "associated_data": "certificate", "nonce": nonce,
                        "ciphertext": ciphertext}}]}),
            )
        } else {
            answer(
                StatusCode::NOT_FOUND,
                json!({"code": "NOT_FOUND", "message": "?"}),
            )
        }
    };
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = Router::new().fallback_service(
        get(move |uri, headers, body| async move { handle(s1, "GET", uri, headers, body) })
            .post(move |uri, headers, body| async move { handle(s2, "POST", uri, headers, body) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn settings(api_base: String, public_key: bool) -> WechatPaySettings {
    let platform_public_key = public_key.then(|| {
        let mut key =
            PlatformKey::from_certificate_pem(&platform_certificate_pem()).expect("certificate");
        key.id = PUBLIC_KEY_ID.into();
        key.expires_at_s = None;
        key
    });
    WechatPaySettings {
        mchid: MCHID.into(),
        appid: APPID.into(),
        serial_no: MERCHANT_SERIAL.into(),
        private_key: MerchantKey::from_pem(&merchant_key_pem()).expect("merchant key"),
        apiv3_key: ApiV3Key::new(APIV3_KEY).expect("APIv3 key"),
        platform_public_key,
        api_base,
    }
}

struct Shop {
    app: TestApp,
    admin: Member,
    buyer: Member,
    package_id: String,
    seen: Seen,
}

async fn shop(backend: Backend, name: &str, serial: &'static str) -> Shop {
    let (api_base, seen) = stub(serial).await;
    let public_key = serial == PUBLIC_KEY_ID;
    let app = TestApp::spawn_with(backend, name, |config| {
        config.wechatpay = Some(settings(api_base, public_key));
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
    Shop {
        app,
        admin,
        buyer,
        package_id: package.json["id"].as_str().expect("id").to_string(),
        seen,
    }
}

/// A callback as WeChat Pay sends it: the transaction encrypted with the APIv3 key.
fn callback(event_id: &str, event_type: &str, resource: &Value) -> Vec<u8> {
    let key = ApiV3Key::new(APIV3_KEY).expect("key");
    let nonce = "a1b2c3d4e5f6";
    let original_type = if event_type.starts_with("REFUND") {
        "refund"
    } else {
        "transaction"
    };
    let ciphertext = key
        .encrypt(nonce, original_type, resource.to_string().as_bytes())
        .expect("encrypts");
    json!({"id": event_id, "create_time": "2026-12-06T10:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
        "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext, "associated_data": original_type, "nonce": nonce}})
    .to_string()
    .into_bytes()
}

fn transaction(out_trade_no: &str, payment_id: &str, total: i64) -> Value {
    json!({"mchid": MCHID, "appid": APPID, "out_trade_no": out_trade_no,
        "transaction_id": "4200000000000000001", "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "attach": payment_id, "success_time": "2026-12-06T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}})
}

async fn deliver(app: &TestApp, body: &[u8], headers: &[(&'static str, String)]) -> (u16, String) {
    let mut request = app
        .http
        .post(format!("{}/api/v1/webhooks/wechatpay", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn clock_s(app: &TestApp) -> i64 {
    app.state.store.clock.now_ms() / 1000
}

async fn outcomes(app: &TestApp, outcome: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM provider_events
         WHERE provider = 'wechatpay' AND outcome = $1",
    )
    .bind(outcome)
    .fetch_one(&app.state.store.db.pool)
    .await
    .expect("query")
}

async fn order_json(app: &TestApp, buyer: &Member, order_id: &str) -> Value {
    app.get(&format!("/api/v1/orders/{order_id}"), &buyer.token)
        .await
        .json
}

crate::for_both_backends!(wechat_pay_orders_are_paid_once_by_verified_callbacks_and_refunded);

async fn wechat_pay_orders_are_paid_once_by_verified_callbacks_and_refunded(backend: Backend) {
    let Shop {
        app,
        admin,
        buyer,
        package_id,
        seen,
    } = shop(backend, "wechatpay_flow", PUBLIC_KEY_ID).await;
    let placed = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "wechatpay"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(placed.json["payment"]["qr_code"], CODE_URL);
    assert!(
        placed.json["payment"]["qr_svg"]
            .as_str()
            .is_some_and(|svg| svg.contains("<svg")),
        "{}",
        placed.text
    );
    let order_id = placed.json["id"].as_str().expect("id").to_string();
    let payment_id = placed.json["payment"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let out_trade_no = {
        let seen = seen.lock().expect("lock");
        let (method, path, body) = &seen[0];
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/v3/pay/transactions/native")
        );
        assert_eq!(body["amount"], json!({"total": 4500, "currency": "CNY"}));
        assert_eq!(body["mchid"], MCHID);
        assert_eq!(body["appid"], APPID);
        assert_eq!(body["attach"], payment_id.as_str());
        assert_eq!(
            body["notify_url"],
            "http://127.0.0.1/api/v1/webhooks/wechatpay"
        );
        assert!(
            body["time_expire"]
                .as_str()
                .is_some_and(|t| t.ends_with("+08:00"))
        );
        body["out_trade_no"]
            .as_str()
            .expect("out_trade_no")
            .to_string()
    };
    assert!(out_trade_no.len() <= 32 && payment_id.ends_with(&out_trade_no));

    let paid = callback(
        "EV-paid",
        "TRANSACTION.SUCCESS",
        &transaction(&out_trade_no, &payment_id, 4500),
    );
    let now = clock_s(&app);
    // Refused with 400 and nothing recorded: a forged signature (the merchant's own key), an
    // unknown serial, a timestamp more than five minutes off, a probe signature.
    let mut forged = signed(PUBLIC_KEY_ID, now, &paid);
    forged[2].1 = MerchantKey::from_pem(&merchant_key_pem())
        .expect("key")
        .sign(&signing::response_message(
            &now.to_string(),
            &forged[1].1,
            &paid,
        ));
    let unknown_serial = signed(CERTIFICATE_SERIAL, now, &paid);
    let stale = signed(PUBLIC_KEY_ID, now - 301, &paid);
    let mut probe = signed(PUBLIC_KEY_ID, now, &paid);
    probe[2].1 = format!("{}{}", signing::SIGNTEST_PREFIX, probe[2].1);
    let mut tampered = paid.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    for (headers, body) in [
        (forged, &paid),
        (unknown_serial, &paid),
        (stale, &paid),
        (probe, &paid),
        (signed(PUBLIC_KEY_ID, now, &paid), &tampered),
        (Vec::new(), &paid),
    ] {
        let (status, text) = deliver(&app, body, &headers).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("invalid_signature"), "{text}");
    }
    let recorded: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM provider_events")
        .fetch_one(&app.state.store.db.pool)
        .await
        .expect("query");
    assert_eq!(recorded, 0);

    // Well signed but not ours, or not the order's amount: recorded, acknowledged, not paid.
    let mut other_merchant = transaction(&out_trade_no, &payment_id, 4500);
    other_merchant["mchid"] = "1230000109".into();
    let mut other_app = transaction(&out_trade_no, &payment_id, 4500);
    other_app["appid"] = "wx0000000000000000".into();
    for (id, resource) in [
        ("EV-merchant", other_merchant),
        ("EV-app", other_app),
        ("EV-amount", transaction(&out_trade_no, &payment_id, 100)),
    ] {
        let body = callback(id, "TRANSACTION.SUCCESS", &resource);
        let (status, text) = deliver(&app, &body, &signed(PUBLIC_KEY_ID, now, &body)).await;
        assert_eq!(status, 204, "{text}");
        assert_eq!(text, "");
    }
    assert_eq!(outcomes(&app, "refused").await, 2);
    assert_eq!(outcomes(&app, "amount_mismatch").await, 1);
    let order = order_json(&app, &buyer, &order_id).await;
    assert_eq!(order["status"], "pending");
    assert_eq!(app.balance(&buyer).await.0, 0);

    // The real one pays once, delivered again and at once under other ids.
    let (status, _) = deliver(&app, &paid, &signed(PUBLIC_KEY_ID, now, &paid)).await;
    assert_eq!(status, 204);
    let (status, _) = deliver(&app, &paid, &signed(PUBLIC_KEY_ID, now + 1, &paid)).await;
    assert_eq!(status, 204);
    let concurrent = futures::future::join_all((0..6).map(|i| {
        let body = callback(
            &format!("EV-again-{i}"),
            "TRANSACTION.SUCCESS",
            &transaction(&out_trade_no, &payment_id, 4500),
        );
        let headers = signed(PUBLIC_KEY_ID, now, &body);
        let app = &app;
        async move { deliver(app, &body, &headers).await.0 }
    }))
    .await;
    assert!(concurrent.iter().all(|s| *s == 204), "{concurrent:?}");
    assert_eq!(app.balance(&buyer).await.0, 500);
    let order = order_json(&app, &buyer, &order_id).await;
    assert_eq!(order["status"], "paid");

    // An admin's refund goes through WeChat Pay's refund API with the order's total.
    let refund = app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &admin.token,
            json!({"amount": 1500}),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);
    assert_eq!(refund.json["status"], "succeeded", "{}", refund.text);
    assert_eq!(refund.json["provider_ref"], REFUND_ID);
    {
        let seen = seen.lock().expect("lock");
        let (method, path, body) = seen.last().expect("refund call");
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/v3/refund/domestic/refunds")
        );
        assert_eq!(body["out_trade_no"], out_trade_no.as_str());
        assert_eq!(
            body["amount"],
            json!({"refund": 1500, "total": 4500, "currency": "CNY"})
        );
        assert!(
            body["out_refund_no"]
                .as_str()
                .is_some_and(|n| n.starts_with("orf_"))
        );
    }
    // WeChat Pay's callback for that refund changes nothing more.
    let refunded = callback(
        "EV-refund",
        "REFUND.SUCCESS",
        &json!({"mchid": MCHID, "out_trade_no": out_trade_no, "transaction_id": "4200000000000000001",
            "out_refund_no": refund.json["id"], "refund_id": REFUND_ID, "refund_status": "SUCCESS",
            "amount": {"total": 4500, "refund": 1500, "payer_total": 4500, "payer_refund": 1500}}),
    );
    let (status, _) = deliver(&app, &refunded, &signed(PUBLIC_KEY_ID, now, &refunded)).await;
    assert_eq!(status, 204);
    let order = order_json(&app, &buyer, &order_id).await;
    assert_eq!(order["amount_refunded"]["amount"], 1500, "{order}");
    assert_eq!(app.balance(&buyer).await.0, 500 - 166);
    app.assert_ledger_ok().await;
}

crate::for_both_backends!(wechat_pay_without_a_public_key_downloads_platform_certificates);

async fn wechat_pay_without_a_public_key_downloads_platform_certificates(backend: Backend) {
    let Shop {
        app,
        buyer,
        package_id,
        seen,
        ..
    } = shop(backend, "wechatpay_certificates", CERTIFICATE_SERIAL).await;
    // Downloaded at start, verified, and stored for every instance.
    assert_eq!(seen.lock().expect("lock")[0].1, "/v3/certificates");
    let stored: String = sqlx::query_scalar(
        "SELECT value FROM settings WHERE key = 'wechatpay_platform_certificates'",
    )
    .fetch_one(&app.state.store.db.pool)
    .await
    .expect("stored");
    assert!(stored.contains("BEGIN CERTIFICATE"));
    // The job downloads them again and stores them for every instance; an instance that
    // meets a serial it does not know reloads what is stored.
    let downloads = |seen: &Seen| {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|(_, path, _)| path == "/v3/certificates")
            .count()
    };
    // The schedule's job for the first period may still be queued on a busy machine: let it
    // run before counting, so only the next period's download is counted below.
    app.settle_jobs().await;
    let before = downloads(&seen);
    sqlx::query("DELETE FROM settings WHERE key = 'wechatpay_platform_certificates'")
        .execute(&app.state.store.db.pool)
        .await
        .expect("deleted");
    app.state.store.clock.advance_ms(12 * 3600 * 1000);
    let job = bursar_server::jobs::wechatpay_certificates_job(app.state.store.clock.now_ms());
    app.state.store.jobs.enqueue(&job).await.expect("enqueued");
    app.settle_jobs().await;
    assert_eq!(downloads(&seen), before + 1);
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT value FROM settings WHERE key = 'wechatpay_platform_certificates'",
    )
    .fetch_optional(&app.state.store.db.pool)
    .await
    .expect("read");
    assert!(stored.is_some_and(|pems| pems.contains("BEGIN CERTIFICATE")));
    let placed = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "wechatpay"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let payment_id = placed.json["payment"]["id"].as_str().expect("id");
    let out_trade_no = payment_id.strip_prefix("pay_").expect("pay_ id");
    let body = callback(
        "EV-cert",
        "TRANSACTION.SUCCESS",
        &transaction(out_trade_no, payment_id, 4500),
    );
    // This instance forgets its certificates (as one started before they were stored would
    // not have them): a callback naming an unknown serial reloads them from the database.
    let wechatpay = app.state.payments.wechatpay.as_ref().expect("on");
    wechatpay.install_certificates(&[]).expect("emptied");
    assert!(wechatpay.certificate_serials().is_empty());
    let downloaded = downloads(&seen);
    let now = clock_s(&app);
    let (status, text) = deliver(&app, &body, &signed(PUBLIC_KEY_ID, now, &body)).await;
    assert_eq!(status, 400, "a public key id is unknown here: {text}");
    let (status, text) = deliver(&app, &body, &signed(CERTIFICATE_SERIAL, now, &body)).await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(
        downloads(&seen),
        downloaded,
        "reloaded from the database, not downloaded"
    );
    assert_eq!(
        wechatpay.certificate_serials(),
        vec![CERTIFICATE_SERIAL.to_string()]
    );
    assert_eq!(app.balance(&buyer).await.0, 500);

    // A cancelled order is closed at WeChat Pay too, so its code takes no more money.
    let second = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "wechatpay"}),
        )
        .await;
    let order_id = second.json["id"].as_str().expect("id");
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &buyer.token,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let closed = format!(
        "/v3/pay/transactions/out-trade-no/{}/close",
        second.json["payment"]["id"]
            .as_str()
            .expect("id")
            .strip_prefix("pay_")
            .expect("pay_")
    );
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|(method, path, body)| method == "POST"
                && *path == closed
                && body["mchid"] == MCHID)
    );
    app.assert_ledger_ok().await;
}
