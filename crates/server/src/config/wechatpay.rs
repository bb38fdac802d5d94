//! `BURSAR_WECHATPAY_*`: WeChat Pay is on when the merchant's settings are all present. Keys
//! are parsed here, so a key that does not parse stops the server at start, naming its
//! setting, instead of failing the first payment.

use bursar_payments::wechatpay::aead::ApiV3Key;
use bursar_payments::wechatpay::keys::{MerchantKey, PlatformKey};

use super::{ConfigError, Sources};

pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";

#[derive(Clone)]
pub struct WechatPaySettings {
    pub mchid: String,
    pub appid: String,
    /// The merchant API certificate's serial.
    pub serial_no: String,
    pub private_key: MerchantKey,
    pub apiv3_key: ApiV3Key,
    /// WeChat Pay's public key and its id; without it, platform certificates are downloaded.
    pub platform_public_key: Option<PlatformKey>,
    pub api_base: String,
}

impl std::fmt::Debug for WechatPaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPaySettings")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("serial_no", &self.serial_no)
            .field(
                "platform_public_key_id",
                &self.platform_public_key.as_ref().map(|k| &k.id),
            )
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

const REQUIRED: [&str; 5] = [
    "BURSAR_WECHATPAY_MCHID",
    "BURSAR_WECHATPAY_APPID",
    "BURSAR_WECHATPAY_SERIAL_NO",
    "BURSAR_WECHATPAY_PRIVATE_KEY",
    "BURSAR_WECHATPAY_APIV3_KEY",
];

fn problem(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        problem: problem.into(),
    }
}

/// PEM text as is, or the contents of the PEM file a path names.
fn pem_text(name: &'static str, value: &str) -> Result<String, ConfigError> {
    if value.contains("-----BEGIN") {
        return Ok(value.replace("\\n", "\n"));
    }
    std::fs::read_to_string(value.trim()).map_err(|e| {
        problem(
            name,
            format!("neither PEM text nor a readable PEM file ({e})"),
        )
    })
}

pub(super) fn settings(src: &Sources<'_>) -> Result<Option<WechatPaySettings>, ConfigError> {
    let values: Vec<Option<String>> = REQUIRED.iter().map(|name| src.var(name)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let value = |index: usize| {
        values[index].clone().ok_or_else(|| {
            problem(
                REQUIRED[index],
                format!(
                    "WeChat Pay needs all of {}; this one is missing",
                    REQUIRED.join(", ")
                ),
            )
        })
    };
    // Every missing setting is reported before any key is parsed.
    let [mchid, appid, serial_no, private_key, apiv3_key] =
        [value(0)?, value(1)?, value(2)?, value(3)?, value(4)?];
    let (mchid, appid, serial_no) = (
        mchid.trim().to_string(),
        appid.trim().to_string(),
        serial_no.trim().to_string(),
    );
    let private_key = MerchantKey::from_pem(&pem_text(REQUIRED[3], &private_key)?)
        .map_err(|e| problem(REQUIRED[3], e.to_string()))?;
    let apiv3_key =
        ApiV3Key::new(apiv3_key.trim()).map_err(|e| problem(REQUIRED[4], e.to_string()))?;
    let platform_public_key = match (
        src.var("BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY"),
        src.var("BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY_ID"),
    ) {
        (None, None) => None,
        (Some(pem), Some(id)) => {
            let name = "BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY";
            Some(
                PlatformKey::from_public_key_pem(id.trim(), &pem_text(name, &pem)?)
                    .map_err(|e| problem(name, e.to_string()))?,
            )
        }
        _ => {
            return Err(problem(
                "BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
                "BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY and BURSAR_WECHATPAY_PLATFORM_PUBLIC_KEY_ID \
                 go together: set both, or neither (platform certificates are then downloaded)",
            ));
        }
    };
    Ok(Some(WechatPaySettings {
        mchid,
        appid,
        serial_no,
        private_key,
        apiv3_key,
        platform_public_key,
        api_base: src
            .var("BURSAR_WECHATPAY_API_BASE")
            .unwrap_or_else(|| DEFAULT_API_BASE.into()),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;

    fn file(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const FULL: [(&str, &str); 5] = [
        ("BURSAR_WECHATPAY_MCHID", "1900007291"),
        ("BURSAR_WECHATPAY_APPID", "wxd678efh567hg6787"),
        (
            "BURSAR_WECHATPAY_SERIAL_NO",
            "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
        ),
        (
            "BURSAR_WECHATPAY_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        ),
        (
            "BURSAR_WECHATPAY_APIV3_KEY",
            "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
        ),
    ];

    #[test]
    fn a_private_key_that_does_not_parse_is_refused_by_its_setting_name() {
        let error = Config::from_sources(&file(&FULL)).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("BURSAR_WECHATPAY_PRIVATE_KEY: "),
            "{error}"
        );
    }

    #[test]
    fn a_missing_setting_and_a_short_apiv3_key_are_named() {
        let error = Config::from_sources(&file(&FULL[..4])).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("BURSAR_WECHATPAY_APIV3_KEY: "),
            "{error}"
        );
        let error = Config::from_sources(&file(&[(
            "BURSAR_WECHATPAY_PRIVATE_KEY",
            "/nonexistent/apiclient_key.pem",
        )]))
        .expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_WECHATPAY_MCHID: "),
            "{error}"
        );
    }
}
