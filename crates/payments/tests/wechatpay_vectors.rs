//! The WeChat Pay API v3 vectors of `tests/vectors/payments.json`: request signatures (W1, W7)
//! and their `Authorization` parameters, SHA256withRSA (W6), callback verification by
//! certificate serial (W2), AEAD decryption (W3–W5) with every `must_fail` refused.

use bursar_payments::wechatpay::aead::{self, AeadError, ApiV3Key};
use bursar_payments::wechatpay::keys::{MerchantKey, PlatformKey};
use bursar_payments::wechatpay::signing::{self, Merchant, SignedHeaders, VerifyError};
use serde_json::Value;

fn all() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("payments.json is a JSON array")
}

fn vectors(algorithm: &str) -> Vec<Value> {
    all()
        .into_iter()
        .filter(|v| v["algorithm"] == algorithm)
        .collect()
}

fn vector(id: &str) -> Value {
    all()
        .into_iter()
        .find(|v| v["id"] == id)
        .expect("the vector is present")
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name].as_str().unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn request_signatures_match_the_published_ones_and_the_header_carries_every_parameter() {
    let vectors = vectors("wechatpay-v3-sign-request");
    assert!(vectors.len() >= 2, "W1 and W7 are present");
    for vector in vectors {
        let id = text(&vector, "id");
        let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
        let timestamp = inputs["timestamp"].as_i64().expect("timestamp");
        let (method, url, nonce, body) = (
            text(inputs, "method"),
            text(inputs, "url"),
            text(inputs, "nonce_str"),
            text(inputs, "body"),
        );
        assert_eq!(
            signing::request_message(method, url, timestamp, nonce, body),
            text(expected, "message"),
            "{id}: message"
        );
        let merchant = Merchant {
            mchid: text(inputs, "mchid").into(),
            serial_no: text(inputs, "serial_no").into(),
            key: MerchantKey::from_pem(text(inputs, "merchant_private_key_pem"))
                .expect("the merchant key loads"),
        };
        let ours = merchant.authorization(method, url, timestamp, nonce, body);
        let mut ours = signing::authorization_params(&ours).expect("our header parses");
        let mut theirs = signing::authorization_params(text(expected, "authorization"))
            .expect("the published header parses");
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{id}: authorization parameters");
        assert!(
            theirs.contains(&("signature", text(expected, "signature"))),
            "{id}: signature"
        );
    }
}

#[test]
fn the_sdk_test_key_signs_as_published_and_pairs_with_the_w2_certificate() {
    let w6 = vector("W6");
    let key = MerchantKey::from_pem(text(&w6["inputs"], "private_key_pem")).expect("key");
    let message = text(&w6["inputs"], "message").as_bytes();
    let signature = key.sign(message);
    assert_eq!(signature, text(&w6["expected"], "signature"));
    let w2 = vector(text(&w6["expected"], "public_key_matches_certificate_of"));
    let certificate =
        PlatformKey::from_certificate_pem(text(&w2["inputs"], "platform_certificate_pem"))
            .expect("the certificate loads");
    assert!(certificate.verifies(message, &signature));
    assert!(!certificate.verifies(b"sourcE", &signature));
}

fn w2_headers(inputs: &Value) -> SignedHeaders<'_> {
    let headers = &inputs["headers"];
    SignedHeaders {
        timestamp: text(headers, "Wechatpay-Timestamp"),
        nonce: text(headers, "Wechatpay-Nonce"),
        signature: text(headers, "Wechatpay-Signature"),
        serial: text(headers, "Wechatpay-Serial"),
    }
}

#[test]
fn the_sdk_callback_verifies_by_its_certificate_serial_and_its_resource_decrypts() {
    let w2 = vector("W2");
    let (inputs, expected) = (&w2["inputs"], &w2["expected"]);
    let certificate =
        PlatformKey::from_certificate_pem(text(inputs, "platform_certificate_pem")).expect("cert");
    assert_eq!(certificate.id, text(expected, "certificate_serial"));
    let body = text(inputs, "body").as_bytes();
    let headers = w2_headers(inputs);
    assert_eq!(
        signing::response_message(headers.timestamp, headers.nonce, body),
        text(expected, "message").as_bytes()
    );
    let now = inputs["now"].as_i64().expect("now");
    let known = |serial: &str| (serial == certificate.id).then(|| certificate.clone());
    assert_eq!(signing::verify(headers, body, now, known), Ok(()));

    // What must be refused: a changed body, another serial, a stale or future timestamp, and
    // WeChat Pay's probe signatures.
    let mut changed = body.to_vec();
    changed[10] ^= 1;
    assert_eq!(
        signing::verify(headers, &changed, now, known),
        Err(VerifyError::BadSignature)
    );
    let other = SignedHeaders {
        serial: "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC",
        ..headers
    };
    assert!(matches!(
        signing::verify(other, body, now, known),
        Err(VerifyError::UnknownSerial(_))
    ));
    for off in [-301, 301, 3600] {
        assert_eq!(
            signing::verify(headers, body, now + off, known),
            Err(VerifyError::StaleTimestamp),
            "{off} s off"
        );
    }
    assert_eq!(signing::verify(headers, body, now + 300, known), Ok(()));
    let probe = format!("{}{}", signing::SIGNTEST_PREFIX, headers.signature);
    let probe = SignedHeaders {
        signature: &probe,
        ..headers
    };
    assert_eq!(
        signing::verify(probe, body, now, known),
        Err(VerifyError::SignTest)
    );

    // The SDK's test key is 16 bytes: AES-128-GCM, which only this test allows.
    let event: Value = serde_json::from_slice(body).expect("JSON");
    let resource = &event["resource"];
    let plaintext = aead::open(
        text(inputs, "apiv3_key").as_bytes(),
        text(resource, "nonce"),
        text(resource, "associated_data"),
        text(resource, "ciphertext"),
    )
    .expect("the resource decrypts");
    assert_eq!(plaintext, text(expected, "resource_plaintext").as_bytes());
    assert_eq!(
        ApiV3Key::new(text(inputs, "apiv3_key")).err(),
        Some(AeadError::KeyLength),
        "a production key must be 32 bytes"
    );
}

fn decrypt(inputs: &Value) -> Result<Vec<u8>, AeadError> {
    aead::open(
        text(inputs, "apiv3_key").as_bytes(),
        text(inputs, "nonce"),
        text(inputs, "associated_data"),
        text(inputs, "ciphertext"),
    )
}

#[test]
fn every_aead_vector_decrypts_and_every_must_fail_is_refused() {
    let vectors = vectors("wechatpay-v3-aead-decrypt");
    assert!(vectors.len() >= 3, "W3, W4 and W5 are present");
    let mut refused = 0;
    for vector in &vectors {
        let id = text(vector, "id");
        let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
        let plaintext = String::from_utf8(decrypt(inputs).expect(id)).expect("UTF-8");
        if let Some(whole) = expected["plaintext"].as_str() {
            assert_eq!(plaintext, whole, "{id}");
        }
        if let Some(start) = expected["plaintext_starts_with"].as_str() {
            assert!(plaintext.starts_with(start), "{id}");
        }
        if expected["aes_key_bits"] == 256 {
            let key = ApiV3Key::new(text(inputs, "apiv3_key")).expect("a 32-byte key");
            let again = key
                .decrypt(
                    text(inputs, "nonce"),
                    text(inputs, "associated_data"),
                    text(inputs, "ciphertext"),
                )
                .expect(id);
            assert_eq!(again, plaintext.as_bytes());
            if expected["encrypt_roundtrip"] == true {
                let sealed = key
                    .encrypt(
                        text(inputs, "nonce"),
                        text(inputs, "associated_data"),
                        plaintext.as_bytes(),
                    )
                    .expect("encrypts");
                assert_eq!(sealed, text(inputs, "ciphertext"), "{id}: round trip");
            }
            let mut wrong_aad = inputs.clone();
            wrong_aad["associated_data"] = "other".into();
            assert_eq!(
                decrypt(&wrong_aad),
                Err(AeadError::Open),
                "{id}: AAD counts"
            );
        }
        if let Some(serial) = expected["certificate_serial"].as_str() {
            let certificate = PlatformKey::from_certificate_pem(&plaintext).expect("certificate");
            assert_eq!(certificate.id, serial, "{id}: serial");
            let expire = chrono::DateTime::parse_from_rfc3339(text(expected, "expire_time"))
                .expect("RFC 3339");
            assert_eq!(certificate.expires_at_s, Some(expire.timestamp()), "{id}");
        }
        for variant in vector["must_fail"].as_array().into_iter().flatten() {
            assert!(
                decrypt(&variant["inputs"]).is_err(),
                "{id} must fail: {}",
                variant["why"]
            );
            refused += 1;
        }
    }
    assert!(refused >= 2, "the must_fail variants were exercised");
}
