//! WeChat Pay's order query (reconciliation) and close against a local stub that signs its
//! answers with the vectors' platform key: every trade state maps to paid, pending or failed,
//! an order WeChat Pay does not know is pending, and an answer that is not signed by WeChat
//! Pay's key is not believed.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bursar_payments::wechatpay::aead::ApiV3Key;
use bursar_payments::wechatpay::keys::{MerchantKey, PlatformKey};
use bursar_payments::wechatpay::{WechatPay, WechatPayConfig, signing};
use bursar_payments::{Amount, PaymentProvider, PaymentQuery, PaymentStatus, ProviderError};
use serde_json::{Value, json};

const KEY_ID: &str = "PUB_KEY_ID_0000000000000000000000000000000001";

fn vector(id: &str, field: &str) -> String {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("JSON")
        .into_iter()
        .find(|v| v["id"] == id)
        .and_then(|v| v["inputs"][field].as_str().map(str::to_string))
        .expect("vector field")
}

/// Signs like WeChat Pay with W6's key (`signer`), or with the merchant's own key to forge.
fn answer(status: StatusCode, body: Value, forged: bool) -> Response {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let signer = if forged {
        vector("W1", "merchant_private_key_pem")
    } else {
        vector("W6", "private_key_pem")
    };
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let message = signing::response_message(&timestamp, "n0nce", body.as_bytes());
    let signature = MerchantKey::from_pem(&signer).expect("key").sign(&message);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (signing::HEADER_TIMESTAMP, timestamp.as_str()),
        (signing::HEADER_NONCE, "n0nce"),
        (signing::HEADER_SIGNATURE, signature.as_str()),
        (signing::HEADER_SERIAL, KEY_ID),
    ] {
        headers.insert(name, value.parse().expect("header"));
    }
    response
}

async fn stub() -> String {
    let app = Router::new()
        .route(
            "/v3/pay/transactions/out-trade-no/{no}",
            get(|Path(no): Path<String>| async move {
                let state = no.split('_').next().unwrap_or_default().to_string();
                match state.as_str() {
                    "MISSING" => answer(
                        StatusCode::NOT_FOUND,
                        json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
                        false,
                    ),
                    "FORGED" => answer(
                        StatusCode::OK,
                        json!({"mchid": "1900007291", "appid": "wxd678efh567hg6787",
                               "out_trade_no": no, "trade_state": "SUCCESS",
                               "amount": {"total": 4500, "currency": "CNY"}}),
                        true,
                    ),
                    _ => answer(
                        StatusCode::OK,
                        json!({"mchid": "1900007291", "appid": "wxd678efh567hg6787",
                               "out_trade_no": no, "transaction_id": "4200000001",
                               "trade_state": state, "trade_state_desc": format!("{state} desc"),
                               "amount": {"total": 4500, "currency": "CNY"}}),
                        false,
                    ),
                }
            }),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}/close",
            post(|| async { answer(StatusCode::NO_CONTENT, Value::Null, false) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn wechatpay() -> WechatPay {
    let mut key =
        PlatformKey::from_certificate_pem(&vector("W2", "platform_certificate_pem")).expect("key");
    key.id = KEY_ID.into();
    WechatPay::new(WechatPayConfig {
        mchid: "1900007291".into(),
        appid: "wxd678efh567hg6787".into(),
        serial_no: "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB".into(),
        private_key: MerchantKey::from_pem(&vector("W1", "merchant_private_key_pem")).expect("key"),
        apiv3_key: ApiV3Key::new("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").expect("key"),
        platform_public_key: Some(key),
        api_base: stub().await,
        notify_url: "https://bursar.example/api/v1/webhooks/wechatpay".into(),
    })
}

fn query(out_trade_no: &str) -> PaymentQuery {
    PaymentQuery {
        order_id: "ord_1".into(),
        payment_id: "pay_1".into(),
        provider_ref: Some(out_trade_no.into()),
    }
}

#[tokio::test]
async fn the_order_query_maps_every_trade_state_and_believes_only_signed_answers() {
    let wechatpay = wechatpay().await;
    assert!(wechatpay.queries_payments());
    let shown = format!("{wechatpay:?}");
    assert!(!shown.contains("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb") && !shown.contains("PRIVATE"));
    assert_eq!(
        wechatpay.query_payment(&query("SUCCESS_1")).await,
        Ok(PaymentStatus::Paid {
            amount: Amount {
                amount: 4500,
                currency: "CNY".into()
            },
            provider_ref: Some("4200000001".into()),
        })
    );
    for pending in ["NOTPAY_1", "USERPAYING_1", "MISSING_1"] {
        assert_eq!(
            wechatpay.query_payment(&query(pending)).await,
            Ok(PaymentStatus::Pending),
            "{pending}"
        );
    }
    assert_eq!(
        wechatpay.query_payment(&query("CLOSED_1")).await,
        Ok(PaymentStatus::Failed {
            reason: "CLOSED desc".into()
        })
    );
    assert!(matches!(
        wechatpay.query_payment(&query("FORGED_1")).await,
        Err(ProviderError::Unavailable(_))
    ));
    assert_eq!(wechatpay.close("NOTPAY_1").await, Ok(()));
    assert!(matches!(
        wechatpay.query_payment(&query("../etc")).await,
        Err(ProviderError::Declined(_))
    ));
}
