//! The Stripe webhook-signature vectors of `tests/vectors/payments.json` (the providers'
//! published worked examples, kept in the repository), byte for byte:
//! every expected signature, every `must_pass` and every `must_fail` variant with its reason.

use bursar_payments::signature::{SignatureError, sign_v1, verify_v1};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("payments.json is a JSON array")
}

fn check(inputs: &Value) -> Result<i64, SignatureError> {
    let secret = inputs["secret"].as_str().expect("secret");
    verify_v1(
        inputs["header"].as_str().expect("header"),
        inputs["payload"].as_str().expect("payload").as_bytes(),
        &[secret],
        inputs["tolerance_s"].as_i64().expect("tolerance_s"),
        inputs["now"].as_i64().expect("now"),
    )
}

fn reason(error: SignatureError) -> &'static str {
    match error {
        SignatureError::MalformedHeader => "malformed_header",
        SignatureError::NoV1Signature => "no_v1_signature",
        SignatureError::NoMatchingSignature => "no_matching_signature",
        SignatureError::TimestampOutsideTolerance => "timestamp_outside_tolerance",
    }
}

#[test]
fn every_stripe_vector_signs_and_verifies_exactly_as_published() {
    let stripe: Vec<Value> = vectors()
        .into_iter()
        .filter(|v| v["algorithm"] == "stripe-webhook-v1")
        .collect();
    assert!(stripe.len() >= 3, "the Stripe vectors are present");
    let mut checked = 0;
    for vector in &stripe {
        let id = vector["id"].as_str().unwrap_or_default();
        let inputs = &vector["inputs"];
        let expected = &vector["expected"];
        let signature = sign_v1(
            inputs["secret"].as_str().expect("secret"),
            inputs["timestamp"].as_i64().expect("timestamp"),
            inputs["payload"].as_str().expect("payload").as_bytes(),
        );
        assert_eq!(signature, expected["v1"].as_str().expect("v1"), "{id}: v1");
        assert_eq!(
            check(inputs).is_ok(),
            expected["accept"].as_bool().expect("accept"),
            "{id}: accept"
        );
        for variant in vector["must_pass"].as_array().into_iter().flatten() {
            assert!(
                check(&variant["inputs"]).is_ok(),
                "{id} must pass: {}",
                variant["why"]
            );
            checked += 1;
        }
        for variant in vector["must_fail"].as_array().into_iter().flatten() {
            let Some(variant_inputs) = variant.get("inputs") else {
                continue;
            };
            let error =
                check(variant_inputs).expect_err(&format!("{id} must fail: {}", variant["why"]));
            if let Some(expected_reason) = variant["reason"].as_str() {
                assert_eq!(reason(error), expected_reason, "{id}: {}", variant["why"]);
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "the variants were exercised ({checked})");
}
