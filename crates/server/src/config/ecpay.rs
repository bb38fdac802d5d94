//! `BURSAR_ECPAY_*`: ECPay is on when the merchant id and both hash keys are present.

use bursar_payments::ecpay::checkmac::HashKeys;

use super::{ConfigError, Sources};

pub const DEFAULT_GATEWAY: &str = "https://payment.ecpay.com.tw";

#[derive(Clone)]
pub struct EcpaySettings {
    pub merchant_id: String,
    pub hash_keys: HashKeys,
    pub gateway: String,
}

impl std::fmt::Debug for EcpaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcpaySettings")
            .field("merchant_id", &self.merchant_id)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

const REQUIRED: [&str; 3] = [
    "BURSAR_ECPAY_MERCHANT_ID",
    "BURSAR_ECPAY_HASH_KEY",
    "BURSAR_ECPAY_HASH_IV",
];

pub(super) fn settings(src: &Sources<'_>) -> Result<Option<EcpaySettings>, ConfigError> {
    let values: Vec<Option<String>> = REQUIRED.iter().map(|name| src.var(name)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let value = |index: usize| {
        values[index]
            .as_deref()
            .map(|v| v.trim().to_string())
            .ok_or_else(|| ConfigError {
                name: REQUIRED[index],
                problem: format!(
                    "ECPay needs all of {}; this one is missing",
                    REQUIRED.join(", ")
                ),
            })
    };
    let merchant_id = value(0)?;
    if merchant_id.len() > 10 || !merchant_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError {
            name: REQUIRED[0],
            problem: "an ECPay MerchantID is at most 10 letters and digits".into(),
        });
    }
    Ok(Some(EcpaySettings {
        merchant_id,
        hash_keys: HashKeys {
            key: value(1)?,
            iv: value(2)?,
        },
        gateway: src
            .var("BURSAR_ECPAY_GATEWAY")
            .map(|g| g.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_GATEWAY.into()),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;

    #[test]
    fn ecpay_needs_its_three_settings_and_defaults_to_the_production_gateway() {
        let mut file = HashMap::from([
            (
                "BURSAR_ECPAY_MERCHANT_ID".to_string(),
                "3002607".to_string(),
            ),
            (
                "BURSAR_ECPAY_HASH_KEY".to_string(),
                "pwFHCqoQZGmho4w6".to_string(),
            ),
        ]);
        let error = Config::from_sources(&file).expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_ECPAY_HASH_IV: "),
            "{error}"
        );
        file.insert("BURSAR_ECPAY_HASH_IV".into(), "EkRm7iFT261dpevs".into());
        let config = Config::from_sources(&file).expect("valid");
        let ecpay = config.ecpay.expect("on");
        assert_eq!(ecpay.gateway, super::DEFAULT_GATEWAY);
        assert!(!format!("{ecpay:?}").contains("pwFHCqoQZGmho4w6"));
    }
}
