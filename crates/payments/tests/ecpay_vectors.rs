//! The ECPay vectors of `tests/vectors/payments.json`, byte for byte: every intermediate string
//! a vector gives (sorted, raw, URL-encoded, lowercased), the digest, the `CheckMacValue`, the
//! verification of a received callback, and no `wrong_expected` value ever produced.

use bursar_payments::ecpay::callback::Fields;
use bursar_payments::ecpay::checkmac::{self, HashKeys, MacHash};
use serde_json::Value;

fn vectors(algorithm: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(include_str!("vectors/payments.json"))
        .expect("payments.json is a JSON array")
        .into_iter()
        .filter(|v| v["algorithm"] == algorithm)
        .collect()
}

fn keys(inputs: &Value) -> HashKeys {
    HashKeys {
        key: inputs["hash_key"].as_str().expect("hash_key").into(),
        iv: inputs["hash_iv"].as_str().expect("hash_iv").into(),
    }
}

fn params(inputs: &Value) -> Vec<(&str, &str)> {
    inputs["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().expect("string values")))
        .collect()
}

fn check_form_vector(vector: &Value, hash: MacHash) -> usize {
    let id = vector["id"].as_str().unwrap_or_default();
    let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
    let (keys, fields) = (keys(inputs), params(inputs));
    let mut compared = 0;
    let mut same = |name: &str, ours: String| {
        if let Some(theirs) = expected[name].as_str() {
            assert_eq!(ours, theirs, "{id}: {name}");
            compared += 1;
        }
    };
    same("sorted", checkmac::sorted(fields.iter().copied()));
    same("raw", checkmac::raw(&keys, fields.iter().copied()));
    same(
        "url_encoded",
        checkmac::dotnet_url_encode(&checkmac::raw(&keys, fields.iter().copied())),
    );
    let lowercased = checkmac::lowercased(&keys, fields.iter().copied());
    if let Some(start) = expected["lowercased_starts_with"].as_str() {
        assert!(lowercased.starts_with(start), "{id}: lowercased start");
    }
    same("lowercased", lowercased);
    let mac = checkmac::check_mac_value(&keys, hash, fields.iter().copied());
    same("digest_hex", mac.to_ascii_lowercase());
    same("check_mac_value", mac.clone());
    if expected["valid"].as_bool() == Some(true) {
        assert!(
            checkmac::verify(&keys, hash, fields.iter().copied()),
            "{id}: the received CheckMacValue verifies"
        );
        let mut forged = fields.clone();
        let amount = forged
            .iter_mut()
            .find(|(k, _)| *k == "TradeAmt")
            .expect("a callback has TradeAmt");
        amount.1 = "1";
        assert!(
            !checkmac::verify(&keys, hash, forged.iter().copied()),
            "{id}: a changed amount fails"
        );
        compared += 1;
    }
    for variant in vector["must_fail"].as_array().into_iter().flatten() {
        let wrong = variant["wrong_expected"]["check_mac_value"]
            .as_str()
            .expect("a wrong_expected value");
        assert_ne!(mac, wrong, "{id}: {}", variant["why"]);
        compared += 1;
    }
    compared
}

#[test]
fn every_ecpay_sha256_vector_gives_each_published_string_and_value() {
    let vectors = vectors("ecpay-checkmac-sha256");
    assert!(vectors.len() >= 6, "E1–E5 are present");
    let compared: usize = vectors
        .iter()
        .map(|v| check_form_vector(v, MacHash::Sha256))
        .sum();
    assert!(
        compared >= 30,
        "the intermediates were compared ({compared})"
    );
}

#[test]
fn every_ecpay_md5_vector_gives_its_published_value() {
    let vectors = vectors("ecpay-checkmac-md5");
    assert!(vectors.len() >= 2, "E2-md5 and E6 are present");
    for vector in &vectors {
        check_form_vector(vector, MacHash::Md5);
    }
}

#[test]
fn the_json_api_vector_uses_the_other_scheme() {
    for vector in vectors("ecpay-json-checkmac-sha256") {
        let (inputs, expected) = (&vector["inputs"], &vector["expected"]);
        let data = inputs["data"].as_str().expect("data");
        assert_eq!(
            checkmac::json_check_mac_value(&keys(inputs), data),
            expected["check_mac_value"].as_str().expect("value")
        );
        // The form scheme over the same text gives something else: the two are not confused.
        assert_ne!(
            checkmac::check_mac_value(&keys(inputs), MacHash::Sha256, [("data", data)]),
            expected["check_mac_value"].as_str().expect("value")
        );
    }
}

#[test]
fn the_real_stage_callback_verifies_once_form_encoded_and_decoded_again() {
    let vector = vectors("ecpay-checkmac-sha256")
        .into_iter()
        .find(|v| v["id"] == "E5")
        .expect("E5");
    let keys = keys(&vector["inputs"]);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params(&vector["inputs"]))
        .finish();
    assert!(Fields::decode(body.as_bytes()).verify(&keys));
    let twice = format!("{body}&RtnCode=1");
    assert!(
        !Fields::decode(twice.as_bytes()).verify(&keys),
        "a field given twice is refused"
    );
    let other_keys = HashKeys {
        key: "5294y06JbISpM5x9".into(),
        iv: "v77hoKGq4kWxNNIS".into(),
    };
    assert!(!Fields::decode(body.as_bytes()).verify(&other_keys));
}
