//! Alipay against the vectors of `tests/vectors/payments.json` (A1–A4: notifications of both
//! styles, a synchronous response, a request signature), every `must_fail` refused, and the
//! provider's notification rules (app id, seller, statuses, refunds) on notifications signed
//! with the vectors' test key.

use std::collections::BTreeMap;

use bursar_payments::alipay::keys::{AlipayPublicKey, AppPrivateKey};
use bursar_payments::alipay::sign::{notify_excluded, response_key, sign_content, signed_response};
use bursar_payments::alipay::{Alipay, AlipayConfig, form, gateway, notify};
use bursar_payments::{Amount, EventKind, PaymentProvider, WebhookError, WebhookRequest};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

fn vectors(algorithm: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("payments.json is a JSON array")
        .into_iter()
        .filter(|v| v["algorithm"] == algorithm)
        .collect()
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is a string"))
}

fn params(inputs: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(inputs["params"].clone()).expect("params are strings")
}

/// Both forms of the key the vectors give: PEM and bare Base64 SPKI.
fn public_keys(inputs: &Value) -> [AlipayPublicKey; 2] {
    ["alipay_public_key_pem", "alipay_public_key_base64"].map(|form| {
        AlipayPublicKey::parse(text(inputs, form)).unwrap_or_else(|e| panic!("{form}: {e}"))
    })
}

/// The vector's own rule for what is signed: its `exclude` list.
fn verifies_as_given(inputs: &Value, key: &AlipayPublicKey) -> bool {
    let params = params(inputs);
    let exclude: Vec<&str> = inputs["exclude"]
        .as_array()
        .expect("exclude")
        .iter()
        .map(|v| v.as_str().expect("a key"))
        .collect();
    key.verifies(sign_content(&params, &exclude).as_bytes(), &params["sign"])
}

#[test]
fn both_notification_styles_verify_and_every_altered_one_is_refused() {
    let notifications = vectors("alipay-rsa2-verify-notify");
    assert_eq!(notifications.len(), 2, "A1 and A2");
    let mut refused = 0;
    for vector in &notifications {
        let id = text(vector, "id");
        let inputs = &vector["inputs"];
        let fields = params(inputs);
        // The provider's own rule picks the same exclusions as the vector.
        let exclude: Vec<String> =
            serde_json::from_value(inputs["exclude"].clone()).expect("exclude");
        assert_eq!(notify_excluded(&fields), exclude.as_slice(), "{id}");
        assert_eq!(
            sign_content(&fields, notify_excluded(&fields)),
            text(&vector["expected"], "content"),
            "{id}: content"
        );
        for key in &public_keys(inputs) {
            assert!(verifies_as_given(inputs, key), "{id}");
            assert!(notify::verify(&fields, key).is_ok(), "{id}");
        }
        for variant in vector["must_fail"].as_array().into_iter().flatten() {
            let variant_inputs = &variant["inputs"];
            for key in &public_keys(variant_inputs) {
                assert!(
                    !verifies_as_given(variant_inputs, key),
                    "{id} must fail: {}",
                    variant["why"]
                );
            }
            // Through the provider's rule too, unless the variant only changes the rule.
            let variant_fields = params(variant_inputs);
            if variant_fields != fields {
                let [key, _] = public_keys(variant_inputs);
                assert!(notify::verify(&variant_fields, &key).is_err(), "{id}");
            }
            refused += 1;
        }
    }
    assert!(refused >= 3, "the must_fail variants ran ({refused})");
}

#[test]
fn a_response_verifies_over_its_raw_response_text() {
    let responses = vectors("alipay-rsa2-verify-response");
    assert!(!responses.is_empty(), "A3");
    for vector in &responses {
        let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
        let method = text(inputs, "method");
        let body = text(inputs, "response_body");
        assert_eq!(response_key(method), text(expected, "response_key"));
        let response = signed_response(body, method).expect("a response object");
        assert_eq!(response.key, text(expected, "response_key"));
        assert_eq!(response.content, text(expected, "signed_content"));
        assert_eq!(response.sign.as_deref(), Some(text(expected, "sign")));
        for key in &public_keys(inputs) {
            assert!(key.verifies(response.content.as_bytes(), text(expected, "sign")));
            let reply = gateway::read_reply(body, method, key).expect("a verified reply");
            assert!(matches!(reply, gateway::Reply::Ok(_)), "{reply:?}");
            // The same body with one character of the content changed is refused.
            let forged = body.replace("CAxAToWB1Js", "CAxAToWB1Jt");
            assert!(gateway::read_reply(&forged, method, key).is_err());
        }
    }
}

#[test]
fn a_request_is_signed_exactly_as_the_vector() {
    let requests = vectors("alipay-rsa2-sign-request");
    assert!(!requests.is_empty(), "A4");
    for vector in &requests {
        let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
        let params = params(inputs);
        let content = sign_content(&params, &["sign"]);
        assert_eq!(content, text(expected, "sign_content"));
        let pem = text(inputs, "app_private_key_pem");
        // PKCS#1 PEM, and the same key as bare Base64 of its DER.
        let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for form in [pem, bare.as_str()] {
            let key = AppPrivateKey::parse(form).expect("the app key parses");
            assert_eq!(key.sign(content.as_bytes()), text(expected, "sign"));
        }
        let app_public = AlipayPublicKey::parse(text(inputs, "app_public_key_pem")).expect("key");
        assert!(app_public.verifies(content.as_bytes(), text(expected, "sign")));
    }
}

#[test]
fn keys_that_are_not_keys_are_refused_and_never_printed() {
    assert!(AppPrivateKey::parse("").is_err());
    assert!(AppPrivateKey::parse("not base64 !!").is_err());
    assert!(AppPrivateKey::parse("aGVsbG8=").is_err());
    let public = &vectors("alipay-rsa2-verify-response")[0]["inputs"];
    // A public key is not a private key, and the other way round.
    assert!(AppPrivateKey::parse(text(public, "alipay_public_key_pem")).is_err());
    let private = test_private_pem();
    assert!(AlipayPublicKey::parse(&private).is_err());
    let key = AppPrivateKey::parse(&private).expect("parses");
    assert_eq!(format!("{key:?}"), "AppPrivateKey(..)");
    // One long line, as keys are often pasted into settings.
    let one_line = private.replace('\n', "");
    let one_line = one_line
        .replace("-----BEGIN RSA PRIVATE KEY-----", "")
        .replace("-----END RSA PRIVATE KEY-----", "");
    assert!(AppPrivateKey::parse(&one_line).is_ok());
}

fn test_private_pem() -> String {
    text(
        &vectors("alipay-rsa2-sign-request")[0]["inputs"],
        "app_private_key_pem",
    )
    .to_string()
}

// --- the provider's notification rules, on notifications signed with A4's app key (the
// --- tests play Alipay, whose "public key" is then A4's app public key).

const APP_ID: &str = "2021000000000001";
const SELLER: &str = "2088000000000001";

fn provider(seller_id: Option<&str>) -> Alipay {
    let inputs = &vectors("alipay-rsa2-sign-request")[0]["inputs"];
    Alipay::new(AlipayConfig {
        app_id: APP_ID.into(),
        private_key: AppPrivateKey::parse(text(inputs, "app_private_key_pem")).expect("key"),
        alipay_public_key: AlipayPublicKey::parse(text(inputs, "app_public_key_pem")).expect("key"),
        seller_id: seller_id.map(str::to_string),
        gateway: "http://127.0.0.1:9/gateway.do".into(),
        notify_url: "https://bursar.test/api/v1/webhooks/alipay".into(),
    })
}

fn trade_notification(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = [
        ("notify_type", "trade_status_sync"),
        ("notify_id", "n_1"),
        ("notify_time", "2026-12-06 08:00:00"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", APP_ID),
        ("seller_id", SELLER),
        ("out_trade_no", "pay_1"),
        ("trade_no", "2026120622001400000000000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "45.00"),
        ("subject", "1 × 语雀 credits"),
    ]
    .into_iter()
    .chain(overrides.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .filter(|(_, v)| v != "(remove)")
    .collect();
    let key = AppPrivateKey::parse(&test_private_pem()).expect("key");
    fields.insert("sign_type".into(), "RSA2".into());
    let sign = key.sign(sign_content(&fields, &["sign", "sign_type"]).as_bytes());
    fields.insert("sign".into(), sign);
    fields
}

fn deliver(
    alipay: &Alipay,
    body: &[u8],
    content_type: &str,
) -> Result<bursar_payments::WebhookEvent, WebhookError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("ascii"),
    );
    alipay.parse_webhook(&WebhookRequest::new(&headers, body), 0)
}

fn post(
    alipay: &Alipay,
    fields: &BTreeMap<String, String>,
) -> Result<bursar_payments::WebhookEvent, WebhookError> {
    deliver(
        alipay,
        form::encode(fields).as_bytes(),
        "application/x-www-form-urlencoded; charset=utf-8",
    )
}

#[test]
fn a_paid_trade_notification_succeeds_with_its_amount_in_fen() {
    let event = post(&provider(Some(SELLER)), &trade_notification(&[])).expect("verifies");
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.event_id, "n_1");
    assert_eq!(event.payment_id.as_deref(), Some("pay_1"));
    assert_eq!(
        event.provider_ref.as_deref(),
        Some("2026120622001400000000000001")
    );
    assert_eq!(
        event.amount,
        Some(Amount {
            amount: 4500,
            currency: "CNY".into()
        })
    );
    let finished = trade_notification(&[("trade_status", "TRADE_FINISHED")]);
    assert_eq!(
        post(&provider(None), &finished).expect("verifies").kind,
        EventKind::Succeeded
    );
    let ack = provider(None).acknowledgement();
    assert_eq!(
        (ack.status, ack.content_type, ack.body),
        (200, "text/plain", "success")
    );
}

#[test]
fn a_gbk_notification_verifies_over_its_decoded_text() {
    let fields = trade_notification(&[("charset", "gbk")]);
    // The same fields, every value encoded in GBK and percent-escaped.
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            let (bytes, _, _) = encoding_rs::GBK.encode(v);
            let escaped: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
            format!("{k}={escaped}")
        })
        .collect();
    let body = body.join("&");
    let event = deliver(
        &provider(None),
        body.as_bytes(),
        "application/x-www-form-urlencoded",
    )
    .expect("a GBK notification verifies");
    assert_eq!(event.kind, EventKind::Succeeded);
    // Read as UTF-8, the same bytes are refused rather than misread.
    assert!(
        deliver(
            &provider(None),
            body.replace("charset=%67%62%6B", "charset=utf-8")
                .as_bytes(),
            "application/x-www-form-urlencoded; charset=utf-8"
        )
        .is_err()
    );
}

#[test]
fn forged_and_unsigned_notifications_are_refused() {
    let alipay = provider(None);
    let mut forged = trade_notification(&[]);
    forged.insert("total_amount".into(), "0.01".into());
    assert!(matches!(
        post(&alipay, &forged),
        Err(WebhookError::Signature(_))
    ));
    let mut unsigned = trade_notification(&[]);
    unsigned.remove("sign");
    assert_eq!(
        post(&alipay, &unsigned),
        Err(WebhookError::MissingSignature)
    );
    let mut sha1 = trade_notification(&[]);
    sha1.insert("sign_type".into(), "RSA".into());
    assert!(post(&alipay, &sha1).is_err());
    assert!(deliver(&alipay, b"not a form at all", "text/plain").is_err());
}

#[test]
fn another_app_or_seller_is_refused_after_verifying() {
    let other_app = trade_notification(&[("app_id", "2021999999999999")]);
    let event = post(&provider(None), &other_app).expect("verifies");
    assert!(matches!(event.kind, EventKind::Refused { .. }), "{event:?}");
    let other_seller = trade_notification(&[("seller_id", "2088999999999999")]);
    let event = post(&provider(Some(SELLER)), &other_seller).expect("verifies");
    assert!(matches!(event.kind, EventKind::Refused { .. }), "{event:?}");
    // Without a configured seller, any seller of this app is taken.
    let event = post(&provider(None), &other_seller).expect("verifies");
    assert_eq!(event.kind, EventKind::Succeeded);
}

#[test]
fn waiting_closed_and_refunded_trades_are_told_apart() {
    let alipay = provider(None);
    let waiting = trade_notification(&[("trade_status", "WAIT_BUYER_PAY")]);
    assert_eq!(
        post(&alipay, &waiting).expect("verifies").kind,
        EventKind::Ignored
    );
    let closed = trade_notification(&[("trade_status", "TRADE_CLOSED")]);
    assert!(matches!(
        post(&alipay, &closed).expect("verifies").kind,
        EventKind::Failed { .. }
    ));
    let refunded = trade_notification(&[
        ("refund_fee", "10.00"),
        ("gmt_refund", "2026-12-06 09:00:00"),
    ]);
    assert_eq!(
        post(&alipay, &refunded).expect("verifies").kind,
        EventKind::Refunded {
            amount: Amount {
                amount: 1000,
                currency: "CNY".into()
            }
        }
    );
    let bad_amount = trade_notification(&[("total_amount", "45.001")]);
    assert!(matches!(
        post(&alipay, &bad_amount),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn a_success_is_believed_only_when_signed_and_a_refusal_only_as_a_refusal() {
    let inputs = &vectors("alipay-rsa2-sign-request")[0]["inputs"];
    // The tests play Alipay with A4's key pair.
    let alipay_private = AppPrivateKey::parse(text(inputs, "app_private_key_pem")).expect("key");
    let alipay_public = AlipayPublicKey::parse(text(inputs, "app_public_key_pem")).expect("key");
    let method = "alipay.trade.query";
    let signed = |content: &str| {
        let sign = alipay_private.sign(content.as_bytes());
        format!(r#"{{"alipay_trade_query_response":{content},"sign":"{sign}"}}"#)
    };
    let paid =
        r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS","total_amount":"45.00"}"#;
    assert!(matches!(
        gateway::read_reply(&signed(paid), method, &alipay_public),
        Ok(gateway::Reply::Ok(_))
    ));
    // The same success unsigned, or signed over other text, is not believed.
    let unsigned = format!(r#"{{"alipay_trade_query_response":{paid}}}"#);
    assert!(gateway::read_reply(&unsigned, method, &alipay_public).is_err());
    let swapped = signed(paid).replace("45.00", "4500.00");
    assert!(gateway::read_reply(&swapped, method, &alipay_public).is_err());
    // A refusal, signed or not, is a refusal with Alipay's codes.
    let refusal = r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#;
    for body in [
        signed(refusal),
        format!(r#"{{"error_response":{refusal}}}"#),
    ] {
        assert_eq!(
            gateway::read_reply(&body, method, &alipay_public).expect("read"),
            gateway::Reply::Refused {
                sub_code: "ACQ.TRADE_NOT_EXIST".into(),
                message: "交易不存在".into()
            }
        );
    }
    assert!(gateway::read_reply("<html>busy</html>", method, &alipay_public).is_err());
}
