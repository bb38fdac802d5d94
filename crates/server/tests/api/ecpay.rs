//! ECPay through the server, with the public stage merchant's keys: an order carries the
//! signed AioCheckOut form; ReturnURL notifications are verified over every field and pay the
//! order once however often or concurrently they arrive; a forged CheckMacValue is refused;
//! another merchant, another amount and a simulated payment on the production gateway are
//! recorded and change nothing; an ATM account is shown on the order until the transfer
//! arrives; refunds are refused with a clear reason. Also: providers refuse packages priced in
//! currencies (or, for ECPay, fractions of a dollar) they cannot take.

use bursar_payments::ecpay::checkmac::{self, HashKeys, MacHash};
use bursar_server::config::EcpaySettings;
use serde_json::{Value, json};

use crate::helpers::{Backend, Member, TestApp};

const MERCHANT_ID: &str = "3002607";
const PRODUCTION: &str = "https://payment.ecpay.com.tw";
const STAGE: &str = "https://payment-stage.ecpay.com.tw";

fn keys() -> HashKeys {
    HashKeys {
        key: "pwFHCqoQZGmho4w6".into(),
        iv: "EkRm7iFT261dpevs".into(),
    }
}

struct Shop {
    app: TestApp,
    admin: Member,
    buyer: Member,
    package_id: String,
}

async fn shop(backend: Backend, name: &str, gateway: &str) -> Shop {
    let app = TestApp::spawn_with(backend, name, |config| {
        config.ecpay = Some(EcpaySettings {
            merchant_id: MERCHANT_ID.into(),
            hash_keys: keys(),
            gateway: gateway.into(),
        });
    })
    .await;
    let admin = app.admin().await;
    let buyer = app.register("buyer@example.com").await;
    let package = app
        .post(
            "/api/v1/admin/packages",
            &admin.token,
            json!({"name": "300 credits", "kind": "credit_pack", "credits": 300,
                   "price": {"amount": 30000, "currency": "TWD"}}),
        )
        .await;
    Shop {
        app,
        admin,
        buyer,
        package_id: package.json["id"].as_str().expect("id").to_string(),
    }
}

/// A notification as ECPay posts it: every field signed, form-encoded.
fn notification(fields: &[(&str, &str)]) -> String {
    let mac = checkmac::check_mac_value(&keys(), MacHash::Sha256, fields.iter().copied());
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().copied())
        .append_pair("CheckMacValue", &mac)
        .finish()
}

/// A credit-card payment result for `trade_no` with the given overrides.
fn paid(
    merchant_trade_no: &str,
    payment_id: &str,
    overrides: &[(&'static str, &'static str)],
) -> String {
    let mut fields: Vec<(&str, &str)> = vec![
        ("CustomField1", payment_id),
        ("CustomField2", ""),
        ("MerchantID", MERCHANT_ID),
        ("MerchantTradeNo", merchant_trade_no),
        ("PaymentDate", "2026/12/06 10:00:00"),
        ("PaymentType", "Credit_CreditCard"),
        ("PaymentTypeChargeFee", "7"),
        ("RtnCode", "1"),
        ("RtnMsg", "交易成功"),
        ("SimulatePaid", "0"),
        ("StoreID", ""),
        ("TradeAmt", "300"),
        ("TradeDate", "2026/12/06 09:59:00"),
        ("TradeNo", "2612061000001234"),
        ("gwsr", "13955622"),
        ("auth_code", "777777"),
    ];
    for (name, value) in overrides {
        match fields.iter_mut().find(|(k, _)| k == name) {
            Some(field) => field.1 = value,
            None => fields.push((name, value)),
        }
    }
    notification(&fields)
}

async fn deliver(app: &TestApp, body: String) -> (u16, String) {
    let response = app
        .http
        .post(format!("{}/api/v1/webhooks/ecpay", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn outcomes(app: &TestApp, outcome: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM provider_events WHERE provider = 'ecpay' AND outcome = $1",
    )
    .bind(outcome)
    .fetch_one(&app.state.store.db.pool)
    .await
    .expect("query")
}

async fn place(app: &TestApp, buyer: &Member, package_id: &str) -> Value {
    let placed = app
        .post(
            "/api/v1/orders",
            &buyer.token,
            json!({"package_id": package_id, "provider": "ecpay"}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    placed.json
}

crate::for_both_backends!(
    ecpay_orders_carry_a_signed_form_and_are_paid_once_by_verified_notifications
);

async fn ecpay_orders_carry_a_signed_form_and_are_paid_once_by_verified_notifications(
    backend: Backend,
) {
    let Shop {
        app,
        admin,
        buyer,
        package_id,
    } = shop(backend, "ecpay_flow", PRODUCTION).await;
    let order = place(&app, &buyer, &package_id).await;
    let form = &order["payment"]["form"];
    assert_eq!(
        form["action"],
        format!("{PRODUCTION}/Cashier/AioCheckOut/V5")
    );
    let fields: Vec<(String, String)> = form["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    assert!(checkmac::verify(
        &keys(),
        MacHash::Sha256,
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    ));
    assert_eq!(field("MerchantID"), MERCHANT_ID);
    assert_eq!(field("TotalAmount"), "300");
    assert_eq!(field("PaymentType"), "aio");
    assert_eq!(field("ChoosePayment"), "ALL");
    assert_eq!(field("IgnorePayment"), "CVS#BARCODE");
    assert_eq!(field("EncryptType"), "1");
    assert_eq!(field("ReturnURL"), "http://127.0.0.1/api/v1/webhooks/ecpay");
    assert!(
        chrono::NaiveDateTime::parse_from_str(field("MerchantTradeDate"), "%Y/%m/%d %H:%M:%S")
            .is_ok()
    );
    let trade_no = field("MerchantTradeNo").to_string();
    assert!(trade_no.len() <= 20 && trade_no.chars().all(|c| c.is_ascii_alphanumeric()));
    let order_id = order["id"].as_str().expect("id").to_string();
    let payment_id = order["payment"]["id"].as_str().expect("id").to_string();
    assert_eq!(field("CustomField1"), payment_id);

    // An ATM account issued: shown on the order, which waits for the transfer.
    let issued = notification(&[
        ("BankCode", "812"),
        ("CustomField1", &payment_id),
        ("ExpireDate", "2026/12/07"),
        ("MerchantID", MERCHANT_ID),
        ("MerchantTradeNo", &trade_no),
        ("PaymentType", "ATM_TAISHIN"),
        ("RtnCode", "2"),
        ("RtnMsg", "Get VirtualAccount Succeeded"),
        ("TradeAmt", "300"),
        ("TradeDate", "2026/12/06 09:59:00"),
        ("TradeNo", "2612061000001234"),
        ("vAccount", "9103522850041234"),
    ]);
    assert_eq!(deliver(&app, issued).await, (200, "1|OK".to_string()));
    let now = app
        .get(&format!("/api/v1/orders/{order_id}"), &buyer.token)
        .await;
    assert_eq!(now.json["status"], "pending");
    assert_eq!(
        now.json["payment"]["atm"],
        json!({"bank_code": "812", "v_account": "9103522850041234", "expire_date": "2026/12/07"})
    );
    assert!(now.json["payment"]["form"].is_object(), "the form stays");

    // A forged CheckMacValue, or none: 400 and nothing recorded.
    let good = paid(&trade_no, &payment_id, &[]);
    let forged = good.replace("TradeAmt=300", "TradeAmt=3");
    let (status, text) = deliver(&app, forged).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid_signature"), "{text}");
    let unsigned = good
        .split("&CheckMacValue=")
        .next()
        .expect("fields")
        .to_string();
    assert_eq!(deliver(&app, unsigned).await.0, 400);

    // Well signed but another merchant's, another amount, or simulated on production:
    // acknowledged, recorded, never paid.
    for body in [
        paid(&trade_no, &payment_id, &[("MerchantID", "2000132")]),
        paid(&trade_no, &payment_id, &[("SimulatePaid", "1")]),
        paid(
            &trade_no,
            &payment_id,
            &[("TradeAmt", "200"), ("TradeNo", "2612061000009999")],
        ),
    ] {
        assert_eq!(deliver(&app, body).await, (200, "1|OK".to_string()));
    }
    assert_eq!(outcomes(&app, "refused").await, 2);
    assert_eq!(outcomes(&app, "amount_mismatch").await, 1);
    assert_eq!(app.balance(&buyer).await.0, 0);

    // The real payment: once, however often and however concurrently it is delivered.
    let deliveries = futures::future::join_all((0..6).map(|_| deliver(&app, good.clone()))).await;
    assert!(
        deliveries.iter().all(|d| d == &(200, "1|OK".to_string())),
        "{deliveries:?}"
    );
    assert_eq!(deliver(&app, good).await, (200, "1|OK".to_string()));
    assert_eq!(app.balance(&buyer).await.0, 300);
    let now = app
        .get(&format!("/api/v1/orders/{order_id}"), &buyer.token)
        .await;
    assert_eq!(now.json["status"], "paid");

    // ECPay refunds need a contract Bursar does not assume: refused before anything moves.
    let refund = app
        .post(
            &format!("/api/v1/admin/orders/{order_id}/refund"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(refund.status, 422, "{}", refund.text);
    assert!(refund.text.contains("DoAction"), "{}", refund.text);
    assert_eq!(app.balance(&buyer).await.0, 300);
    app.assert_ledger_ok().await;
}

crate::for_both_backends!(simulated_payments_are_fulfilled_on_the_stage_gateway_only);

async fn simulated_payments_are_fulfilled_on_the_stage_gateway_only(backend: Backend) {
    let Shop {
        app,
        buyer,
        package_id,
        ..
    } = shop(backend, "ecpay_stage", STAGE).await;
    let order = place(&app, &buyer, &package_id).await;
    assert_eq!(
        order["payment"]["form"]["action"],
        format!("{STAGE}/Cashier/AioCheckOut/V5")
    );
    // An ATM account stays open a day: the order waits two.
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(order["expires_at"].as_str().expect("at"))
            .expect("RFC 3339")
            .timestamp();
    assert!(expires_at - app.state.store.clock.now_ms() / 1000 >= 2 * 24 * 3600 - 60);
    let fields = &order["payment"]["form"]["fields"];
    let body = paid(
        fields["MerchantTradeNo"].as_str().expect("no"),
        order["payment"]["id"].as_str().expect("id"),
        &[("SimulatePaid", "1")],
    );
    assert_eq!(deliver(&app, body).await, (200, "1|OK".to_string()));
    assert_eq!(app.balance(&buyer).await.0, 300);
    app.assert_ledger_ok().await;
}

crate::for_both_backends!(providers_refuse_packages_they_cannot_take);

async fn providers_refuse_packages_they_cannot_take(backend: Backend) {
    let Shop {
        app, admin, buyer, ..
    } = shop(backend, "ecpay_currencies", PRODUCTION).await;
    let package = |amount: i64, currency: &str| {
        app.post(
            "/api/v1/admin/packages",
            &admin.token,
            json!({"name": format!("{amount} {currency}"), "kind": "credit_pack", "credits": 10,
                   "price": {"amount": amount, "currency": currency}}),
        )
    };
    let cents = package(30050, "TWD").await.json["id"].clone();
    let usd = package(500, "USD").await.json["id"].clone();
    for (package_id, detail) in [(&cents, "whole New Taiwan dollars"), (&usd, "TWD only")] {
        let refused = app
            .post(
                "/api/v1/orders",
                &buyer.token,
                json!({"package_id": package_id, "provider": "ecpay"}),
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(refused.text.contains(detail), "{}", refused.text);
    }
    let orders = app.get("/api/v1/orders", &buyer.token).await;
    assert_eq!(
        orders.json["data"].as_array().map_or(0, Vec::len),
        0,
        "{}",
        orders.text
    );
}
