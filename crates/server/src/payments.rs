//! The payment providers this instance can use, by name. What happens when one of them
//! calls back is the fulfilment use case (`app::fulfilment`).

use std::collections::HashMap;
use std::sync::Arc;

use bursar_payments::PaymentProvider;
use bursar_payments::alipay::keys::{AlipayPublicKey, AppPrivateKey};
use bursar_payments::alipay::{Alipay, AlipayConfig};
use bursar_payments::bank_transfer::BankTransfer;
use bursar_payments::ecpay::{Ecpay, EcpayConfig};
use bursar_payments::sandbox::Sandbox;
use bursar_payments::stripe::{Stripe, StripeConfig};
use bursar_payments::wechatpay::{WechatPay, WechatPayConfig};
use bursar_store::{Store, settings};

use crate::config::{AlipaySettings, Config};
use crate::error::{ApiError, ApiResult};

/// Every provider name Bursar knows, configured here or not.
pub const KNOWN_PROVIDERS: &[&str] = &[
    "sandbox",
    "stripe",
    "alipay",
    "wechatpay",
    "ecpay",
    "bank_transfer",
];

/// The currencies a provider takes, when it does not take every currency: a package priced in
/// another is not sold through it.
pub fn currencies_taken(provider: &str) -> Option<&'static [&'static str]> {
    match provider {
        "alipay" | "wechatpay" => Some(&["CNY"]),
        "ecpay" => Some(&["TWD"]),
        _ => None,
    }
}

/// What a person is told of a provider's failure: its refusal as it gave it, never the details
/// of a failed connection.
pub fn shown_reason(error: &bursar_payments::ProviderError) -> String {
    match error {
        bursar_payments::ProviderError::Declined(reason) => reason.clone(),
        bursar_payments::ProviderError::Unavailable(_) => "provider_unavailable".into(),
    }
}

/// Why a provider cannot take an amount in a currency it takes (ECPay's whole dollars), for
/// the 422 that refuses the order before anything is created.
pub fn amount_refusal(provider: &str, amount: &bursar_payments::Amount) -> Option<String> {
    match provider {
        bursar_payments::ecpay::NAME => bursar_payments::ecpay::whole_twd(amount).err(),
        _ => None,
    }
}

/// Why an order paid through `provider` cannot be refunded through it, for the admin who asks
/// (422 before anything is clawed back).
pub fn refund_refusal(provider: &str) -> Option<&'static str> {
    (provider == bursar_payments::ecpay::NAME).then_some(bursar_payments::ecpay::REFUND_UNSUPPORTED)
}

/// Where a provider's callbacks go.
fn webhook_url(config: &Config, provider: &str) -> String {
    format!(
        "{}/api/v1/webhooks/{provider}",
        config.public_url.trim_end_matches('/')
    )
}

pub struct Payments {
    providers: HashMap<&'static str, Arc<dyn PaymentProvider>>,
    pub sandbox: Arc<Sandbox>,
    /// Kept apart for its platform certificates, which a job downloads.
    pub wechatpay: Option<Arc<WechatPay>>,
}

impl Payments {
    /// The sandbox and bank transfers are always on; Stripe when its key is configured. The
    /// sandbox's webhook secret is generated on first start unless configured.
    pub async fn from_config(config: &Config, store: &Store) -> anyhow::Result<Self> {
        let secret = match &config.sandbox_webhook_secret {
            Some(secret) => secret.clone(),
            None => {
                settings::get_or_init(&store.db, "sandbox_webhook_secret", || {
                    bursar_store::ids::new_secret("whsec")
                })
                .await?
            }
        };
        let sandbox = Arc::new(Sandbox::new(secret, &config.public_url));
        let mut providers: HashMap<&'static str, Arc<dyn PaymentProvider>> = HashMap::new();
        providers.insert("sandbox", sandbox.clone());
        providers.insert("bank_transfer", Arc::new(BankTransfer));
        if let Some(stripe) = &config.stripe {
            anyhow::ensure!(
                !stripe.webhook_secrets.is_empty(),
                "BURSAR_STRIPE_SECRET_KEY is set but BURSAR_STRIPE_WEBHOOK_SECRET is not: \
                 every Stripe webhook would be refused"
            );
            let mut settings =
                StripeConfig::new(stripe.secret_key.clone(), stripe.webhook_secrets.clone());
            settings.api_base = stripe.api_base.clone();
            providers.insert("stripe", Arc::new(Stripe::new(settings)));
        }
        if let Some(alipay) = &config.alipay {
            providers.insert(
                "alipay",
                Arc::new(alipay_provider(alipay, &config.public_url)?),
            );
        }
        let wechatpay = config.wechatpay.as_ref().map(|settings| {
            Arc::new(WechatPay::new(WechatPayConfig {
                mchid: settings.mchid.clone(),
                appid: settings.appid.clone(),
                serial_no: settings.serial_no.clone(),
                private_key: settings.private_key.clone(),
                apiv3_key: settings.apiv3_key.clone(),
                platform_public_key: settings.platform_public_key.clone(),
                api_base: settings.api_base.clone(),
                notify_url: webhook_url(config, bursar_payments::wechatpay::NAME),
            }))
        });
        if let Some(wechatpay) = &wechatpay {
            crate::wechatpay_certificates::load_stored(store, wechatpay).await;
            providers.insert(bursar_payments::wechatpay::NAME, wechatpay.clone());
        }
        if let Some(settings) = &config.ecpay {
            let ecpay = Ecpay::new(EcpayConfig {
                merchant_id: settings.merchant_id.clone(),
                hash_keys: settings.hash_keys.clone(),
                gateway: settings.gateway.clone(),
                webhook_url: webhook_url(config, bursar_payments::ecpay::NAME),
            });
            providers.insert(bursar_payments::ecpay::NAME, Arc::new(ecpay));
        }
        Ok(Self {
            providers,
            sandbox,
            wechatpay,
        })
    }

    /// The providers whose payments can be looked up, for reconciliation.
    pub fn querying(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        self.providers.values().filter(|p| p.queries_payments())
    }

    /// The provider for an order: 422 when it is unknown or not configured here.
    pub fn for_order(&self, name: &str) -> ApiResult<&Arc<dyn PaymentProvider>> {
        self.providers.get(name).ok_or_else(|| {
            if KNOWN_PROVIDERS.contains(&name) {
                ApiError::invalid(format!(
                    "the payment provider {name} is not configured on this server"
                ))
            } else {
                ApiError::invalid(format!(
                    "unknown provider {name:?}; one of {}",
                    KNOWN_PROVIDERS.join(", ")
                ))
            }
        })
    }

    /// The providers configured here, in name order: what `POST /orders` accepts.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.providers.keys().copied().collect();
        names.sort_unstable();
        names
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.providers.get(name)
    }
}

/// Alipay with its keys parsed (the settings were checked when read; a configuration built in
/// code is checked here) and its notifications sent to this server's webhook.
fn alipay_provider(settings: &AlipaySettings, public_url: &str) -> anyhow::Result<Alipay> {
    let private_key = AppPrivateKey::parse(&settings.private_key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", AlipaySettings::PRIVATE_KEY))?;
    let alipay_public_key = AlipayPublicKey::parse(&settings.public_key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", AlipaySettings::PUBLIC_KEY))?;
    Ok(Alipay::new(AlipayConfig {
        app_id: settings.app_id.clone(),
        private_key,
        alipay_public_key,
        seller_id: settings.seller_id.clone(),
        gateway: settings.gateway.clone(),
        notify_url: format!(
            "{}/api/v1/webhooks/alipay",
            public_url.trim_end_matches('/')
        ),
    }))
}
