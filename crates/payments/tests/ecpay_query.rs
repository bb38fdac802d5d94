//! ECPay's QueryTradeInfo/V5 (reconciliation) against a local stub: the request is signed, the
//! answer's CheckMacValue is checked before it is believed, and TradeStatus maps to paid or
//! pending.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use bursar_payments::ecpay::callback::Fields;
use bursar_payments::ecpay::checkmac::{self, HashKeys, MacHash};
use bursar_payments::ecpay::{Ecpay, EcpayConfig};
use bursar_payments::{Amount, PaymentProvider, PaymentQuery, PaymentStatus, ProviderError};

fn keys() -> HashKeys {
    HashKeys {
        key: "pwFHCqoQZGmho4w6".into(),
        iv: "EkRm7iFT261dpevs".into(),
    }
}

fn signed(fields: &[(&str, &str)]) -> String {
    let mac = checkmac::check_mac_value(&keys(), MacHash::Sha256, fields.iter().copied());
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().copied())
        .append_pair("CheckMacValue", &mac)
        .finish()
}

/// Answers by trade number: `PAID…` paid, `FORGED…` with a bad CheckMacValue, else unpaid.
/// Requests whose own CheckMacValue does not verify get ECPay's error text.
async fn stub() -> String {
    let app = Router::new().route(
        "/Cashier/QueryTradeInfo/V5",
        post(|body: Bytes| async move {
            let fields = Fields::decode(&body);
            if !fields.verify(&keys()) {
                return "10200073|CheckMacValue Error".to_string();
            }
            let no = fields
                .get("MerchantTradeNo")
                .unwrap_or_default()
                .to_string();
            let status = if no.starts_with("PAID") { "1" } else { "0" };
            let answer = signed(&[
                ("MerchantID", "3002607"),
                ("MerchantTradeNo", &no),
                ("TradeNo", "2612061000001234"),
                ("TradeAmt", "300"),
                ("TradeStatus", status),
                ("PaymentType", "Credit_CreditCard"),
                ("CustomField1", ""),
            ]);
            if no.starts_with("FORGED") {
                answer.replace("TradeStatus=0", "TradeStatus=1")
            } else {
                answer
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn query(trade_no: &str) -> PaymentQuery {
    PaymentQuery {
        order_id: "ord_1".into(),
        payment_id: "pay_1".into(),
        provider_ref: Some(trade_no.into()),
    }
}

#[tokio::test]
async fn the_trade_query_believes_only_a_signed_answer() {
    let ecpay = Ecpay::new(EcpayConfig {
        merchant_id: "3002607".into(),
        hash_keys: keys(),
        gateway: stub().await,
        webhook_url: "https://bursar.example/api/v1/webhooks/ecpay".into(),
    });
    assert!(ecpay.queries_payments());
    assert_eq!(
        ecpay.query_payment(&query("PAID0000000000000001")).await,
        Ok(PaymentStatus::Paid {
            amount: Amount {
                amount: 30000,
                currency: "TWD".into()
            },
            provider_ref: Some("2612061000001234".into()),
        })
    );
    assert_eq!(
        ecpay.query_payment(&query("BU000000000000000001")).await,
        Ok(PaymentStatus::Pending)
    );
    assert!(matches!(
        ecpay.query_payment(&query("FORGED00000000000001")).await,
        Err(ProviderError::Unavailable(_))
    ));
    let wrong_keys = Ecpay::new(EcpayConfig {
        merchant_id: "3002607".into(),
        hash_keys: HashKeys {
            key: "5294y06JbISpM5x9".into(),
            iv: "v77hoKGq4kWxNNIS".into(),
        },
        gateway: stub().await,
        webhook_url: "https://bursar.example/api/v1/webhooks/ecpay".into(),
    });
    assert!(matches!(
        wrong_keys
            .query_payment(&query("PAID0000000000000001"))
            .await,
        Err(ProviderError::Unavailable(_))
    ));
}
