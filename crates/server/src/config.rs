//! Settings, read from environment variables (or from `bursar.toml` lines `NAME = "value"`,
//! which the binary loads into the environment before this runs).

mod ecpay;
mod wechatpay;

use std::collections::HashMap;
use std::net::SocketAddr;

pub use ecpay::EcpaySettings;
pub use wechatpay::WechatPaySettings;

#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    /// `None`: generate one on first start and keep it in the database.
    pub jwt_secret: Option<String>,
    pub access_token_ttl_s: i64,
    pub refresh_token_ttl_s: i64,
    /// `synchronous=FULL` (durable against power loss) unless turned off.
    pub sqlite_durable: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Login and register attempts allowed per client address per minute, and per email.
    pub auth_attempts_per_minute: u32,
    /// How often overdue holds and grants are swept.
    pub expiry_sweep_interval_s: u64,
    /// Trust `X-Forwarded-For` for the client address (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// Create the demo catalog on first start with an empty catalog.
    pub demo_catalog: bool,
    /// How long an order waits for its payment before it expires.
    pub order_ttl_s: i64,
    /// The same for bank transfers, which take days.
    pub bank_transfer_ttl_s: i64,
    /// The account bank transfers are paid into, printed on every bank-transfer order (bank,
    /// account name and number, as the business writes them).
    pub bank_account: Option<String>,
    /// The address people and providers reach this server at (hosted pages, return URLs).
    /// Defaults to `http://<BURSAR_ADDR>`.
    pub public_url: String,
    /// `None`: generate one on first start and keep it in the database.
    pub sandbox_webhook_secret: Option<String>,
    pub stripe: Option<StripeSettings>,
    /// On when its app id and both keys are set.
    pub alipay: Option<AlipaySettings>,
    pub wechatpay: Option<WechatPaySettings>,
    pub ecpay: Option<EcpaySettings>,
    /// Sign in with Google, with Apple (OpenID Connect ID tokens), with Facebook.
    pub google: Option<OidcSettings>,
    pub apple: Option<OidcSettings>,
    pub facebook: Option<FacebookSettings>,
    /// One-time sign-in codes any one destination, and any one client address, may be sent in
    /// an hour.
    pub codes_per_destination_per_hour: i64,
    pub codes_per_address_per_hour: i64,
    /// Printed on receipts.
    pub seller: Seller,
    /// Run background jobs on this instance (off: it only serves requests, and other instances
    /// on the same database run its jobs).
    pub jobs_enabled: bool,
    /// Jobs this instance runs at once.
    pub jobs_in_flight_max: usize,
    /// Where local days begin (midnight jobs, daily allowances and gifts).
    pub timezone: bursar_worker::Tz,
    /// The daily gift for each day of a streak, repeating after the last.
    pub daily_gift_schedule: bursar_core::GiftSchedule,
    /// Users a reward's delivery job puts it in front of at once (not a setting: the tests
    /// lower it to see the chunks at work).
    pub reward_delivery_chunk: usize,
    /// How long a connection may take to send a request's headers, counted from when it opens
    /// or from its last response (so it also ends idle keep-alive connections).
    pub header_timeout_s: u64,
    /// Connections open at once; past it a new one is answered 503 and closed.
    pub connections_max: usize,
    /// How long a response may wait for its client to read any of it before the connection is
    /// closed.
    pub write_timeout_s: u64,
    /// What credits cost and how automatic top-ups are priced and bounded.
    pub topup: TopupConfig,
    /// Where email goes out (`smtp://host:port`, `smtps://user:pass@host`); unset: no email.
    pub smtp_url: Option<String>,
    /// The sender of every email.
    pub mail_from: String,
    /// The SMS gateway that takes `POST {"to", "text"}`; unset: no SMS.
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_token: Option<String>,
    /// How long an outgoing webhook's receiver may take to answer.
    pub webhook_timeout_s: u64,
}

/// Auto top-up: the price of one credit, the fee the user bears, and the operator's bounds.
#[derive(Debug, Clone)]
pub struct TopupConfig {
    /// Minor units of `currency` per credit.
    pub credit_price: i64,
    pub currency: String,
    pub fee_rate: bursar_core::topup::FeeRate,
    /// Minor units added to every top-up's fee.
    pub fee_fixed: i64,
    /// The largest single top-up, in credits.
    pub max_credits: i64,
    /// Top-ups per user per local day, whatever a rule allows.
    pub max_per_day: i64,
    /// How often every rule is checked, besides the check after each debit.
    pub sweep_s: u64,
}

impl Default for TopupConfig {
    fn default() -> Self {
        Self {
            credit_price: 100,
            currency: "USD".into(),
            fee_rate: bursar_core::topup::FeeRate {
                parts_per_million: 29_000,
            },
            fee_fixed: 0,
            max_credits: 1_000_000,
            max_per_day: 10,
            sweep_s: 300,
        }
    }
}

/// Shows every setting except the secrets, which only say whether they are set.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |secret: &Option<String>| if secret.is_some() { "[set]" } else { "[unset]" };
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &"[redacted]")
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("access_token_ttl_s", &self.access_token_ttl_s)
            .field("refresh_token_ttl_s", &self.refresh_token_ttl_s)
            .field("sqlite_durable", &self.sqlite_durable)
            .field("metrics_token", &set(&self.metrics_token))
            .field("auth_attempts_per_minute", &self.auth_attempts_per_minute)
            .field("expiry_sweep_interval_s", &self.expiry_sweep_interval_s)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("demo_catalog", &self.demo_catalog)
            .field("order_ttl_s", &self.order_ttl_s)
            .field("bank_transfer_ttl_s", &self.bank_transfer_ttl_s)
            .field("bank_account", &self.bank_account)
            .field("public_url", &self.public_url)
            .field("sandbox_webhook_secret", &set(&self.sandbox_webhook_secret))
            .field("stripe", &self.stripe)
            .field("alipay", &self.alipay)
            .field("wechatpay", &self.wechatpay)
            .field("ecpay", &self.ecpay)
            .field("seller", &self.seller)
            .field("jobs_enabled", &self.jobs_enabled)
            .field("jobs_in_flight_max", &self.jobs_in_flight_max)
            .field("timezone", &self.timezone)
            .field("daily_gift_schedule", &self.daily_gift_schedule)
            .field("reward_delivery_chunk", &self.reward_delivery_chunk)
            .field("header_timeout_s", &self.header_timeout_s)
            .field("connections_max", &self.connections_max)
            .field("write_timeout_s", &self.write_timeout_s)
            .field("topup", &self.topup)
            .field("smtp_url", &set(&self.smtp_url))
            .field("mail_from", &self.mail_from)
            .field("sms_gateway_url", &self.sms_gateway_url)
            .field("sms_gateway_token", &set(&self.sms_gateway_token))
            .field("webhook_timeout_s", &self.webhook_timeout_s)
            .finish()
    }
}

#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    /// Several while rotating: a webhook signed with any of them is accepted.
    pub webhook_secrets: Vec<String>,
    pub api_base: String,
}

// Secrets stay out of logs and panics.
impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// An Alipay app: `BURSAR_ALIPAY_*`. The keys are kept as given (checked when read) and
/// parsed when the provider is built.
#[derive(Clone)]
pub struct AlipaySettings {
    pub app_id: String,
    /// The app's private key: PKCS#1 or PKCS#8, PEM or bare Base64 of the DER.
    pub private_key: String,
    /// Alipay's public key: PEM or bare Base64 SPKI.
    pub public_key: String,
    pub seller_id: Option<String>,
    pub gateway: String,
}

impl AlipaySettings {
    pub const APP_ID: &'static str = "BURSAR_ALIPAY_APP_ID";
    pub const PRIVATE_KEY: &'static str = "BURSAR_ALIPAY_PRIVATE_KEY";
    pub const PUBLIC_KEY: &'static str = "BURSAR_ALIPAY_PUBLIC_KEY";
    pub const SELLER_ID: &'static str = "BURSAR_ALIPAY_SELLER_ID";
    pub const GATEWAY: &'static str = "BURSAR_ALIPAY_GATEWAY";
}

// The private key stays out of logs and panics.
impl std::fmt::Debug for AlipaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySettings")
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// Alipay is on when any of its required settings is set; then all must be, and its keys must
/// parse, so a mistake stops the server at start rather than at the first order.
fn alipay_settings(src: &Sources<'_>) -> Result<Option<AlipaySettings>, ConfigError> {
    use bursar_payments::alipay::keys::{AlipayPublicKey, AppPrivateKey};
    let required = [
        AlipaySettings::APP_ID,
        AlipaySettings::PRIVATE_KEY,
        AlipaySettings::PUBLIC_KEY,
    ];
    let values = required.map(|name| src.var(name));
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [app_id, private_key, public_key] = values;
    let present = |name: &'static str, value: Option<String>| {
        value.ok_or_else(|| ConfigError {
            name,
            problem: "is required once any BURSAR_ALIPAY_ setting is set".into(),
        })
    };
    let settings = AlipaySettings {
        app_id: present(AlipaySettings::APP_ID, app_id)?.trim().to_string(),
        private_key: present(AlipaySettings::PRIVATE_KEY, private_key)?,
        public_key: present(AlipaySettings::PUBLIC_KEY, public_key)?,
        seller_id: src
            .var(AlipaySettings::SELLER_ID)
            .map(|s| s.trim().to_string()),
        gateway: src
            .var(AlipaySettings::GATEWAY)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| bursar_payments::alipay::DEFAULT_GATEWAY.into()),
    };
    AppPrivateKey::parse(&settings.private_key).map_err(|e| ConfigError {
        name: AlipaySettings::PRIVATE_KEY,
        problem: format!("is not the app's RSA private key: {e}"),
    })?;
    AlipayPublicKey::parse(&settings.public_key).map_err(|e| ConfigError {
        name: AlipaySettings::PUBLIC_KEY,
        problem: format!("is not Alipay's RSA public key: {e}"),
    })?;
    Ok(Some(settings))
}

/// An OpenID Connect provider whose ID tokens sign people in.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The audiences accepted: the app's client ids (web, iOS, Android…).
    pub client_ids: Vec<String>,
    pub jwks_url: String,
    /// The `iss` values accepted.
    pub issuers: Vec<String>,
    /// Where the web pages send a browser to sign in (the provider's authorization endpoint).
    pub authorize_url: String,
    /// The least time between two fetches of the keys caused by tokens naming unknown keys.
    pub min_refetch: std::time::Duration,
}

impl OidcSettings {
    pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
    pub const GOOGLE_ISSUERS: &str = "https://accounts.google.com,accounts.google.com";
    pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";
    pub const APPLE_ISSUERS: &str = "https://appleid.apple.com";
    pub const GOOGLE_AUTHORIZE_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
    pub const APPLE_AUTHORIZE_URL: &str = "https://appleid.apple.com/auth/authorize";
    /// A flood of tokens with invented key ids makes at most one fetch a minute.
    pub const MIN_REFETCH: std::time::Duration = std::time::Duration::from_secs(60);
}

#[derive(Clone)]
pub struct FacebookSettings {
    pub app_id: String,
    pub app_secret: String,
    pub graph_url: String,
    /// Where the web pages send a browser to sign in (Facebook Login's dialog).
    pub dialog_url: String,
}

impl FacebookSettings {
    pub const GRAPH_URL: &str = "https://graph.facebook.com";
    pub const DIALOG_URL: &str = "https://www.facebook.com/v19.0/dialog/oauth";
}

impl std::fmt::Debug for FacebookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookSettings")
            .field("app_id", &self.app_id)
            .field("graph_url", &self.graph_url)
            .field("dialog_url", &self.dialog_url)
            .finish_non_exhaustive()
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `BURSAR_<NAME>_CLIENT_IDS` turns the provider on; its JWKS URL, issuers and authorization
/// endpoint default to the provider's own.
fn oidc_settings(
    src: &Sources<'_>,
    names: [&'static str; 4],
    defaults: [&str; 3],
) -> Option<OidcSettings> {
    let [client_ids, jwks_url, issuers, authorize_url] = names;
    let [default_jwks_url, default_issuers, default_authorize_url] = defaults;
    let client_ids = list(&src.var(client_ids)?);
    (!client_ids.is_empty()).then(|| OidcSettings {
        client_ids,
        jwks_url: src.var(jwks_url).unwrap_or_else(|| default_jwks_url.into()),
        issuers: list(&src.var(issuers).unwrap_or_else(|| default_issuers.into())),
        authorize_url: src
            .var(authorize_url)
            .map(|url| url.trim().to_string())
            .unwrap_or_else(|| default_authorize_url.into()),
        min_refetch: OidcSettings::MIN_REFETCH,
    })
}

/// Who sells, as receipts show it.
#[derive(Debug, Clone, Default)]
pub struct Seller {
    pub name: String,
    pub address: Option<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

/// Users per reward delivery job: each chunk is one transaction, so 100,000 recipients are a
/// hundred short transactions, never one long one.
pub const REWARD_DELIVERY_CHUNK: usize = 1000;

#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

/// Where settings come from: the environment first, then the settings file's values.
struct Sources<'a> {
    file: &'a HashMap<String, String>,
}

impl Sources<'_> {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.var(name) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|e: T::Err| ConfigError {
                name,
                problem: format!("{text:?} is not valid: {e}"),
            }),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_sources(&HashMap::new())
    }

    /// Reads every setting from the environment, falling back to `file` (from `bursar.toml`).
    pub fn from_sources(file: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let src = Sources { file };
        Ok(Self {
            addr: src.parsed("BURSAR_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: src
                .var("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://bursar.db".into()),
            jwt_secret: src.var("BURSAR_JWT_SECRET"),
            access_token_ttl_s: src.parsed("BURSAR_ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_s: src.parsed("BURSAR_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            sqlite_durable: !matches!(
                src.var("BURSAR_SQLITE_SYNCHRONOUS").as_deref(),
                Some("normal" | "NORMAL")
            ),
            metrics_token: src.var("BURSAR_METRICS_TOKEN"),
            auth_attempts_per_minute: src.parsed("BURSAR_AUTH_ATTEMPTS_PER_MINUTE", 10)?,
            expiry_sweep_interval_s: src.parsed("BURSAR_EXPIRY_SWEEP_SECONDS", 30)?,
            trust_forwarded_for: src.parsed("BURSAR_TRUST_FORWARDED_FOR", false)?,
            demo_catalog: src.parsed("BURSAR_DEMO_CATALOG", true)?,
            order_ttl_s: src.parsed("BURSAR_ORDER_TTL_SECONDS", 30 * 60)?,
            bank_transfer_ttl_s: src.parsed("BURSAR_BANK_TRANSFER_TTL_SECONDS", 7 * 24 * 3600)?,
            bank_account: src.var("BURSAR_BANK_ACCOUNT").map(|a| a.trim().to_string()),
            public_url: src.var("BURSAR_PUBLIC_URL").unwrap_or_else(|| {
                format!(
                    "http://{}",
                    src.var("BURSAR_ADDR").unwrap_or("127.0.0.1:8080".into())
                )
            }),
            sandbox_webhook_secret: src.var("BURSAR_SANDBOX_WEBHOOK_SECRET"),
            stripe: src
                .var("BURSAR_STRIPE_SECRET_KEY")
                .map(|secret_key| StripeSettings {
                    secret_key,
                    webhook_secrets: src
                        .var("BURSAR_STRIPE_WEBHOOK_SECRET")
                        .map(|v| {
                            v.split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                    api_base: src
                        .var("BURSAR_STRIPE_API_BASE")
                        .unwrap_or_else(|| "https://api.stripe.com".into()),
                }),
            alipay: alipay_settings(&src)?,
            wechatpay: wechatpay::settings(&src)?,
            ecpay: ecpay::settings(&src)?,
            google: oidc_settings(
                &src,
                [
                    "BURSAR_GOOGLE_CLIENT_IDS",
                    "BURSAR_GOOGLE_JWKS_URL",
                    "BURSAR_GOOGLE_ISSUER",
                    "BURSAR_GOOGLE_AUTHORIZE_URL",
                ],
                [
                    OidcSettings::GOOGLE_JWKS_URL,
                    OidcSettings::GOOGLE_ISSUERS,
                    OidcSettings::GOOGLE_AUTHORIZE_URL,
                ],
            ),
            apple: oidc_settings(
                &src,
                [
                    "BURSAR_APPLE_CLIENT_IDS",
                    "BURSAR_APPLE_JWKS_URL",
                    "BURSAR_APPLE_ISSUER",
                    "BURSAR_APPLE_AUTHORIZE_URL",
                ],
                [
                    OidcSettings::APPLE_JWKS_URL,
                    OidcSettings::APPLE_ISSUERS,
                    OidcSettings::APPLE_AUTHORIZE_URL,
                ],
            ),
            facebook: match (
                src.var("BURSAR_FACEBOOK_APP_ID"),
                src.var("BURSAR_FACEBOOK_APP_SECRET"),
            ) {
                (Some(app_id), Some(app_secret)) => Some(FacebookSettings {
                    app_id,
                    app_secret,
                    graph_url: src
                        .var("BURSAR_FACEBOOK_GRAPH_URL")
                        .unwrap_or_else(|| FacebookSettings::GRAPH_URL.into()),
                    dialog_url: src
                        .var("BURSAR_FACEBOOK_DIALOG_URL")
                        .map(|url| url.trim().to_string())
                        .unwrap_or_else(|| FacebookSettings::DIALOG_URL.into()),
                }),
                (None, None) => None,
                _ => {
                    return Err(ConfigError {
                        name: "BURSAR_FACEBOOK_APP_SECRET",
                        problem: "BURSAR_FACEBOOK_APP_ID and BURSAR_FACEBOOK_APP_SECRET \
                                  go together: set both, or neither"
                            .into(),
                    });
                }
            },
            codes_per_destination_per_hour: src
                .parsed("BURSAR_CODES_PER_DESTINATION_PER_HOUR", 5_i64)?
                .clamp(1, 1000),
            codes_per_address_per_hour: src
                .parsed("BURSAR_CODES_PER_ADDRESS_PER_HOUR", 20_i64)?
                .clamp(1, 100_000),
            seller: Seller {
                name: src
                    .var("BURSAR_SELLER_NAME")
                    .unwrap_or_else(|| "Bursar".into()),
                address: src.var("BURSAR_SELLER_ADDRESS"),
                tax_id: src.var("BURSAR_SELLER_TAX_ID"),
                email: src.var("BURSAR_SELLER_EMAIL"),
            },
            jobs_enabled: src.parsed("BURSAR_JOBS", true)?,
            jobs_in_flight_max: src
                .parsed("BURSAR_JOBS_IN_FLIGHT_MAX", 8_usize)?
                .clamp(1, 256),
            timezone: src.parsed("BURSAR_TIMEZONE", bursar_worker::Tz::UTC)?,
            daily_gift_schedule: match src.var("BURSAR_DAILY_GIFT_SCHEDULE") {
                None => bursar_core::GiftSchedule::default(),
                Some(text) => {
                    bursar_core::GiftSchedule::parse(&text).map_err(|problem| ConfigError {
                        name: "BURSAR_DAILY_GIFT_SCHEDULE",
                        problem: format!(
                            "{text:?} is not valid ({problem}): give comma-separated whole \
                             numbers of credits, each at least 1"
                        ),
                    })?
                }
            },
            reward_delivery_chunk: REWARD_DELIVERY_CHUNK,
            header_timeout_s: src
                .parsed("BURSAR_HEADER_TIMEOUT_SECONDS", 10_u64)?
                .clamp(1, 3600),
            connections_max: src
                .parsed("BURSAR_CONNECTIONS_MAX", 8192_usize)?
                .clamp(1, 1_000_000),
            write_timeout_s: src
                .parsed("BURSAR_WRITE_TIMEOUT_SECONDS", 30_u64)?
                .clamp(1, 3600),
            topup: topup_config(&src)?,
            smtp_url: src.var("BURSAR_SMTP_URL"),
            mail_from: src
                .var("BURSAR_MAIL_FROM")
                .unwrap_or_else(|| "Bursar <bursar@localhost>".into()),
            sms_gateway_url: src.var("BURSAR_SMS_GATEWAY_URL"),
            sms_gateway_token: src.var("BURSAR_SMS_GATEWAY_TOKEN"),
            webhook_timeout_s: src
                .parsed("BURSAR_WEBHOOK_TIMEOUT_SECONDS", 10_u64)?
                .clamp(1, 60),
        })
    }

    /// Settings for tests: an ephemeral port and the given database.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_string(),
            jwt_secret: None,
            access_token_ttl_s: 900,
            refresh_token_ttl_s: 3600,
            sqlite_durable: true,
            metrics_token: None,
            auth_attempts_per_minute: 1000,
            expiry_sweep_interval_s: 3600,
            trust_forwarded_for: true,
            demo_catalog: false,
            order_ttl_s: 30 * 60,
            bank_transfer_ttl_s: 7 * 24 * 3600,
            bank_account: None,
            public_url: "http://127.0.0.1".into(),
            sandbox_webhook_secret: Some("whsec_test_sandbox".into()),
            stripe: None,
            alipay: None,
            wechatpay: None,
            ecpay: None,
            google: None,
            apple: None,
            facebook: None,
            codes_per_destination_per_hour: 5,
            codes_per_address_per_hour: 20,
            seller: Seller {
                name: "Bursar Test Shop".into(),
                address: Some("1 Test Street".into()),
                tax_id: Some("TAX-1".into()),
                email: None,
            },
            jobs_enabled: true,
            jobs_in_flight_max: 8,
            timezone: bursar_worker::Tz::UTC,
            daily_gift_schedule: bursar_core::GiftSchedule::default(),
            reward_delivery_chunk: REWARD_DELIVERY_CHUNK,
            header_timeout_s: 10,
            connections_max: 8192,
            write_timeout_s: 30,
            topup: TopupConfig::default(),
            smtp_url: None,
            mail_from: "Bursar Test Shop <shop@example.com>".into(),
            sms_gateway_url: None,
            sms_gateway_token: None,
            webhook_timeout_s: 1,
        }
    }
}

fn topup_config(src: &Sources<'_>) -> Result<TopupConfig, ConfigError> {
    let defaults = TopupConfig::default();
    let in_range = |name: &'static str, value: i64, range: std::ops::RangeInclusive<i64>| {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError {
                name,
                problem: format!("{value} is outside {}..={}", range.start(), range.end()),
            })
        }
    };
    let currency = src
        .var("BURSAR_CURRENCY")
        .unwrap_or(defaults.currency)
        .trim()
        .to_string();
    bursar_core::Money::new(0, &currency).map_err(|e| ConfigError {
        name: "BURSAR_CURRENCY",
        problem: e.to_string(),
    })?;
    let fee_rate = match src.var("BURSAR_TOPUP_FEE_PERCENT") {
        None => defaults.fee_rate,
        Some(text) => {
            bursar_core::topup::FeeRate::parse_percent(&text).map_err(|problem| ConfigError {
                name: "BURSAR_TOPUP_FEE_PERCENT",
                problem,
            })?
        }
    };
    let max = bursar_core::MAX_CREDITS;
    Ok(TopupConfig {
        credit_price: in_range(
            "BURSAR_CREDIT_PRICE",
            src.parsed("BURSAR_CREDIT_PRICE", defaults.credit_price)?,
            1..=1_000_000_000,
        )?,
        currency,
        fee_rate,
        fee_fixed: in_range(
            "BURSAR_TOPUP_FEE_FIXED",
            src.parsed("BURSAR_TOPUP_FEE_FIXED", defaults.fee_fixed)?,
            0..=1_000_000_000,
        )?,
        max_credits: in_range(
            "BURSAR_TOPUP_MAX_CREDITS",
            src.parsed("BURSAR_TOPUP_MAX_CREDITS", defaults.max_credits)?,
            1..=max,
        )?,
        max_per_day: in_range(
            "BURSAR_TOPUP_MAX_PER_DAY",
            src.parsed("BURSAR_TOPUP_MAX_PER_DAY", defaults.max_per_day)?,
            1..=1000,
        )?,
        sweep_s: src
            .parsed("BURSAR_TOPUP_SWEEP_SECONDS", defaults.sweep_s)?
            .clamp(10, 86_400),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_out_the_secrets() {
        let mut config = Config::for_tests("postgres://user:hunter2@db/bursar");
        config.jwt_secret = Some("jwt-secret-value".into());
        config.smtp_url = Some("smtps://mailer:smtp-password@mail.example.com".into());
        config.sms_gateway_token = Some("sms-token-value".into());
        config.stripe = Some(StripeSettings {
            secret_key: "sk_live_secret".into(),
            webhook_secrets: vec!["whsec_secret".into()],
            api_base: "https://api.stripe.com".into(),
        });
        let shown = format!("{config:?}");
        for secret in [
            "hunter2",
            "jwt-secret-value",
            "whsec_test_sandbox",
            "sk_live_secret",
            "whsec_secret",
            "smtp-password",
            "sms-token-value",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("order_ttl_s"));
    }

    #[test]
    fn a_bad_gift_schedule_is_refused_by_name() {
        let file = HashMap::from([(
            "BURSAR_DAILY_GIFT_SCHEDULE".to_string(),
            "10,0,20".to_string(),
        )]);
        let error = Config::from_sources(&file).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("BURSAR_DAILY_GIFT_SCHEDULE: "),
            "{error}"
        );
        let file = HashMap::from([(
            "BURSAR_DAILY_GIFT_SCHEDULE".to_string(),
            " 1, 2 ,3".to_string(),
        )]);
        let config = Config::from_sources(&file).expect("valid");
        assert_eq!(config.daily_gift_schedule.credits_for(4), 1);
    }

    #[test]
    fn the_web_sign_in_addresses_default_to_the_providers_own() {
        let on = HashMap::from([
            (
                "BURSAR_GOOGLE_CLIENT_IDS".to_string(),
                "web.apps".to_string(),
            ),
            (
                "BURSAR_APPLE_CLIENT_IDS".to_string(),
                "com.example".to_string(),
            ),
            ("BURSAR_FACEBOOK_APP_ID".to_string(), "123".to_string()),
            ("BURSAR_FACEBOOK_APP_SECRET".to_string(), "s".to_string()),
        ]);
        let config = Config::from_sources(&on).expect("valid");
        let google = config.google.expect("google on");
        assert_eq!(
            google.authorize_url,
            "https://accounts.google.com/o/oauth2/v2/auth"
        );
        assert_eq!(
            config.apple.expect("apple on").authorize_url,
            "https://appleid.apple.com/auth/authorize"
        );
        let facebook = config.facebook.expect("facebook on");
        assert_eq!(
            facebook.dialog_url,
            "https://www.facebook.com/v19.0/dialog/oauth"
        );
        assert_eq!(facebook.graph_url, "https://graph.facebook.com");
        let mut moved = on.clone();
        moved.insert(
            "BURSAR_GOOGLE_AUTHORIZE_URL".to_string(),
            " https://login.example/auth ".to_string(),
        );
        moved.insert(
            "BURSAR_FACEBOOK_DIALOG_URL".to_string(),
            "https://www.facebook.com/v20.0/dialog/oauth".to_string(),
        );
        let config = Config::from_sources(&moved).expect("valid");
        assert_eq!(
            config.google.expect("on").authorize_url,
            "https://login.example/auth"
        );
        assert_eq!(
            config.facebook.expect("on").dialog_url,
            "https://www.facebook.com/v20.0/dialog/oauth"
        );
    }

    /// A's vectors: A4's app key (PKCS#1 PEM) and A1's Alipay key (bare Base64 SPKI).
    fn alipay_file(private_key: &str, public_key: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                "BURSAR_ALIPAY_APP_ID".to_string(),
                "2021000000000001".to_string(),
            ),
            (
                "BURSAR_ALIPAY_PRIVATE_KEY".to_string(),
                private_key.to_string(),
            ),
            (
                "BURSAR_ALIPAY_PUBLIC_KEY".to_string(),
                public_key.to_string(),
            ),
        ])
    }

    fn vector_input(id: &str, name: &str) -> String {
        let vectors: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../payments/tests/vectors/payments.json"))
                .expect("vectors");
        let vector = vectors.iter().find(|v| v["id"] == id).expect("the vector");
        vector["inputs"][name]
            .as_str()
            .expect("a string")
            .to_string()
    }

    #[test]
    fn alipay_is_on_with_keys_that_parse_and_a_bad_key_is_refused_by_name() {
        let private = vector_input("A4", "app_private_key_pem");
        let public = vector_input("A1", "alipay_public_key_base64");
        let config = Config::from_sources(&alipay_file(&private, &public)).expect("valid");
        let alipay = config.alipay.as_ref().expect("on");
        assert_eq!(alipay.gateway, "https://openapi.alipay.com/gateway.do");
        assert!(!format!("{config:?}").contains(&private[40..80]));
        assert!(
            Config::from_sources(&HashMap::new())
                .expect("valid")
                .alipay
                .is_none()
        );

        let error = Config::from_sources(&alipay_file("not a key", &public)).expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_ALIPAY_PRIVATE_KEY: "),
            "{error}"
        );
        // Alipay's key where the app's belongs, and the other way round.
        let error = Config::from_sources(&alipay_file(&public, &public)).expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_ALIPAY_PRIVATE_KEY: "),
            "{error}"
        );
        let error = Config::from_sources(&alipay_file(&private, &private)).expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_ALIPAY_PUBLIC_KEY: "),
            "{error}"
        );
        let mut partial = alipay_file(&private, &public);
        partial.remove("BURSAR_ALIPAY_PUBLIC_KEY");
        let error = Config::from_sources(&partial).expect_err("refused");
        assert!(
            error.to_string().starts_with("BURSAR_ALIPAY_PUBLIC_KEY: "),
            "{error}"
        );
    }
}
