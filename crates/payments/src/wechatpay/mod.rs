//! WeChat Pay API v3: Native (QR) orders, refunds, order queries and closes over signed
//! requests; callbacks verified with WeChat Pay's key (a configured public key, or platform
//! certificates downloaded and refreshed) and their resource decrypted with the APIv3 key.

pub mod aead;
pub mod api;
pub mod certificates;
pub mod keys;
pub mod notification;
pub mod signing;

use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use self::aead::ApiV3Key;
use self::certificates::PlatformKeys;
use self::keys::{MerchantKey, PlatformKey};
use self::notification::{Envelope, Refund, Transaction};
use self::signing::{Merchant, VerifyError};
use crate::provider::{
    Acknowledgement, Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, EventKind,
    PaymentProvider, PaymentQuery, PaymentRequest, PaymentStatus, ProviderError, RefundRequest,
    RefundResult, WebhookError, WebhookEvent, WebhookRequest,
};
use crate::signature::SignatureError;

pub const NAME: &str = "wechatpay";
pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";
/// WeChat Pay's domestic products take yuan only (amounts in fen).
pub const CURRENCY: &str = "CNY";
/// WeChat Pay's limit on an order's description, in characters.
const DESCRIPTION_CHARS_MAX: usize = 127;

/// How to reach one WeChat Pay merchant account.
#[derive(Clone)]
pub struct WechatPayConfig {
    pub mchid: String,
    pub appid: String,
    /// The merchant API certificate's serial.
    pub serial_no: String,
    pub private_key: MerchantKey,
    pub apiv3_key: ApiV3Key,
    /// WeChat Pay's public key (`PUB_KEY_ID_…`); without it, platform certificates are used.
    pub platform_public_key: Option<PlatformKey>,
    pub api_base: String,
    /// Where WeChat Pay sends callbacks: Bursar's `/api/v1/webhooks/wechatpay`.
    pub notify_url: String,
}

impl fmt::Debug for WechatPayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPayConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("serial_no", &self.serial_no)
            .field("api_base", &self.api_base)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

pub struct WechatPay {
    mchid: String,
    appid: String,
    notify_url: String,
    apiv3_key: ApiV3Key,
    keys: PlatformKeys,
    api: api::Client,
}

impl fmt::Debug for WechatPay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPay")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

/// `out_trade_no` takes 6–32 letters, digits and `_-|*`: Bursar's payment id without its
/// `pay_` prefix when the whole id is too long.
pub fn out_trade_no(payment_id: &str) -> Result<String, ProviderError> {
    let fits = |no: &str| {
        (6..=32).contains(&no.len())
            && no
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-|*".contains(c))
    };
    [
        payment_id,
        payment_id.strip_prefix("pay_").unwrap_or(payment_id),
    ]
    .into_iter()
    .find(|no| fits(no))
    .map(str::to_string)
    .ok_or_else(|| {
        ProviderError::Declined(format!(
            "payment id {payment_id} cannot be a WeChat Pay out_trade_no"
        ))
    })
}

/// `time_expire`: RFC 3339 in China time, as WeChat Pay writes it.
fn time_expire(at_s: i64) -> Option<String> {
    let china = chrono::FixedOffset::east_opt(8 * 3600)?;
    let at = chrono::DateTime::from_timestamp(at_s, 0)?.with_timezone(&china);
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

fn cny_fen(amount: &Amount) -> Result<i64, ProviderError> {
    if amount.currency != CURRENCY {
        return Err(ProviderError::Declined(format!(
            "WeChat Pay takes CNY only, not {}",
            amount.currency
        )));
    }
    if amount.amount <= 0 {
        return Err(ProviderError::Declined(
            "WeChat Pay takes positive amounts only".into(),
        ));
    }
    Ok(amount.amount)
}

fn path_safe(text: &str) -> Result<&str, ProviderError> {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-|*".contains(c))
    {
        Ok(text)
    } else {
        Err(ProviderError::Declined(format!(
            "{text:?} is not a WeChat Pay order number"
        )))
    }
}

#[derive(Deserialize)]
struct NativeOrder {
    code_url: String,
}

#[derive(Deserialize)]
struct CreatedRefund {
    refund_id: String,
    status: String,
}

/// Signature failures as the webhook contract names them (all answered `invalid_signature`).
fn webhook_error(error: VerifyError) -> WebhookError {
    match error {
        VerifyError::MissingHeader(_) => WebhookError::MissingSignature,
        VerifyError::BadTimestamp => WebhookError::Signature(SignatureError::MalformedHeader),
        VerifyError::StaleTimestamp => {
            WebhookError::Signature(SignatureError::TimestampOutsideTolerance)
        }
        VerifyError::SignTest | VerifyError::UnknownSerial(_) | VerifyError::BadSignature => {
            WebhookError::Signature(SignatureError::NoMatchingSignature)
        }
    }
}

impl WechatPay {
    /// # Panics
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does.
    pub fn new(config: WechatPayConfig) -> Self {
        let merchant = Arc::new(Merchant {
            mchid: config.mchid.clone(),
            serial_no: config.serial_no.clone(),
            key: config.private_key,
        });
        let keys = match config.platform_public_key {
            Some(key) => PlatformKeys::with_public_key(key),
            None => PlatformKeys::default(),
        };
        Self {
            api: api::Client::new(&config.api_base, merchant),
            mchid: config.mchid,
            appid: config.appid,
            notify_url: config.notify_url,
            apiv3_key: config.apiv3_key,
            keys,
        }
    }

    /// Whether platform certificates are downloaded (no public key is configured).
    pub fn uses_certificates(&self) -> bool {
        self.keys.uses_certificates()
    }

    /// Whether a callback naming `serial` should make the stored certificates be reloaded
    /// first (the serial is unknown, and no reload happened in the last minute).
    pub fn certificate_reload_due(&self, serial: &str, now_s: i64) -> bool {
        self.keys.reload_due(serial, now_s)
    }

    /// The serials of the platform certificates held now.
    pub fn certificate_serials(&self) -> Vec<String> {
        self.keys.serials()
    }

    /// Installs certificates another instance downloaded (stored as PEM).
    pub fn install_certificates(&self, pems: &[String]) -> Result<(), String> {
        self.keys.install(certificates::from_pems(pems)?);
        Ok(())
    }

    /// Downloads the platform certificates, installs them, and returns them as PEM to store.
    /// The listing is decrypted with the APIv3 key, and its answer must be signed by one of
    /// the certificates it lists.
    pub async fn refresh_certificates(&self) -> Result<Vec<String>, ProviderError> {
        let answer = self
            .api
            .send(Method::GET, certificates::PATH, None)
            .await?
            .success()?;
        let downloaded = certificates::decrypt_listing(&answer.body, &self.apiv3_key)
            .map_err(ProviderError::Unavailable)?;
        if downloaded.is_empty() {
            return Err(ProviderError::Unavailable(
                "WeChat Pay listed no platform certificates".into(),
            ));
        }
        let fresh = PlatformKeys::default();
        fresh.install(downloaded.iter().map(|d| d.key.clone()).collect());
        answer.check(&fresh)?;
        self.keys
            .install(downloaded.iter().map(|d| d.key.clone()).collect());
        Ok(downloaded.into_iter().map(|d| d.pem).collect())
    }

    /// Answers need a key to be verified: download certificates if none is held yet.
    async fn ensure_keys(&self) -> Result<(), ProviderError> {
        if self.keys.uses_certificates() && self.keys.serials().is_empty() {
            self.refresh_certificates().await?;
        }
        Ok(())
    }

    /// The order as WeChat Pay has it; `None` when it does not know it.
    pub async fn query(&self, out_trade_no: &str) -> Result<Option<Transaction>, ProviderError> {
        self.ensure_keys().await?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            path_safe(out_trade_no)?,
            self.mchid
        );
        let answer = self.api.send(Method::GET, &path, None).await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND
            && answer.error_code().as_deref() == Some("ORDER_NOT_EXIST")
        {
            return Ok(None);
        }
        answer.success()?.verified(&self.keys).map(Some)
    }

    /// Closes an unpaid order so it can no longer be paid (an order that expired or was
    /// cancelled in Bursar).
    pub async fn close(&self, out_trade_no: &str) -> Result<(), ProviderError> {
        self.ensure_keys().await?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            path_safe(out_trade_no)?
        );
        let answer = self
            .api
            .send(Method::POST, &path, Some(&json!({ "mchid": self.mchid })))
            .await?
            .success()?;
        answer.check(&self.keys)
    }

    fn transaction_event(
        &self,
        envelope: &Envelope,
        transaction: Transaction,
    ) -> Result<WebhookEvent, WebhookError> {
        let refused = if transaction.mchid != self.mchid {
            Some(format!("for merchant {}, not ours", transaction.mchid))
        } else if transaction.appid != self.appid {
            Some(format!("for app {}, not ours", transaction.appid))
        } else if !transaction.paid() {
            Some(format!("trade_state {}", transaction.trade_state))
        } else {
            None
        };
        let amount = transaction.amount.as_ref().and_then(|a| {
            Some(Amount {
                amount: a.total?,
                currency: a.currency.clone().unwrap_or_else(|| CURRENCY.into()),
            })
        });
        Ok(WebhookEvent {
            event_id: envelope.id.clone(),
            event_type: envelope.event_type.clone(),
            kind: match refused {
                Some(reason) => EventKind::Refused { reason },
                None => EventKind::Succeeded,
            },
            payment_id: transaction.attach.filter(|a| a.starts_with("pay_")),
            provider_ref: Some(transaction.out_trade_no),
            order_id: None,
            amount,
        })
    }

    fn refund_event(&self, envelope: &Envelope, refund: Refund) -> WebhookEvent {
        let kind = if refund.mchid != self.mchid {
            EventKind::Refused {
                reason: format!("for merchant {}, not ours", refund.mchid),
            }
        } else if refund.refund_status == "SUCCESS" {
            // WeChat Pay reports each refund on its own; Bursar's own refunds are recorded
            // already, so only one made elsewhere (the merchant platform) changes anything.
            EventKind::Refunded {
                amount: Amount {
                    amount: refund.amount.refund,
                    currency: CURRENCY.into(),
                },
            }
        } else {
            EventKind::Ignored
        };
        WebhookEvent {
            event_id: envelope.id.clone(),
            event_type: envelope.event_type.clone(),
            kind,
            payment_id: None,
            provider_ref: Some(refund.out_trade_no),
            order_id: None,
            amount: None,
        }
    }
}

impl PaymentProvider for WechatPay {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A Native order: WeChat Pay answers a `code_url` the person scans with WeChat.
    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            let total = cny_fen(&request.amount)?;
            let out_trade_no = out_trade_no(&request.payment_id)?;
            self.ensure_keys().await?;
            let description: String = request
                .description
                .chars()
                .take(DESCRIPTION_CHARS_MAX)
                .collect();
            let mut body = json!({
                "appid": self.appid,
                "mchid": self.mchid,
                "description": description,
                "out_trade_no": out_trade_no,
                "attach": request.payment_id,
                "notify_url": self.notify_url,
                "amount": { "total": total, "currency": CURRENCY },
            });
            if let Some(at) = request.expires_at_s.and_then(time_expire) {
                body["time_expire"] = at.into();
            }
            let order: NativeOrder = self
                .api
                .send(Method::POST, "/v3/pay/transactions/native", Some(&body))
                .await?
                .success()?
                .verified(&self.keys)?;
            Ok(CreatedPayment {
                provider_ref: Some(out_trade_no),
                qr_code: Some(order.code_url),
                ..CreatedPayment::default()
            })
        })
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        now_s: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        let headers = api::signed_headers(request.headers).map_err(webhook_error)?;
        signing::verify(headers, request.body, now_s, |serial| {
            self.keys.get(serial, now_s)
        })
        .map_err(webhook_error)?;
        let envelope: Envelope = serde_json::from_slice(request.body)
            .map_err(|e| WebhookError::Malformed(format!("not a WeChat Pay callback: {e}")))?;
        let plaintext = envelope
            .resource
            .decrypt(&self.apiv3_key)
            .map_err(|e| WebhookError::Malformed(format!("the resource: {e}")))?;
        let malformed =
            |e: serde_json::Error| WebhookError::Malformed(format!("the resource: {e}"));
        match envelope.event_type.as_str() {
            notification::EVENT_TRANSACTION_SUCCESS => {
                let transaction = serde_json::from_slice(&plaintext).map_err(malformed)?;
                self.transaction_event(&envelope, transaction)
            }
            event if event.starts_with("REFUND.") => {
                let refund = serde_json::from_slice(&plaintext).map_err(malformed)?;
                Ok(self.refund_event(&envelope, refund))
            }
            _ => Ok(WebhookEvent {
                event_id: envelope.id.clone(),
                event_type: envelope.event_type.clone(),
                kind: EventKind::Ignored,
                payment_id: None,
                provider_ref: None,
                order_id: None,
                amount: None,
            }),
        }
    }

    /// WeChat Pay takes 200 or 204 with no body as success.
    fn acknowledgement(&self) -> Acknowledgement {
        Acknowledgement {
            status: 204,
            content_type: "text/plain",
            body: "",
        }
    }

    fn charge_saved_method<'a>(
        &'a self,
        _request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Declined(
                "WeChat Pay Native payments cannot charge a saved method".into(),
            ))
        })
    }

    /// A refund needs the order's total, which WeChat Pay is asked for first.
    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async move {
            let refund = cny_fen(&request.amount)?;
            let out_trade_no = match &request.provider_ref {
                Some(no) => no.clone(),
                None => out_trade_no(&request.payment_id)?,
            };
            let transaction = self.query(&out_trade_no).await?.ok_or_else(|| {
                ProviderError::Declined(format!("WeChat Pay knows no order {out_trade_no}"))
            })?;
            let total = transaction
                .amount
                .as_ref()
                .and_then(|a| a.total)
                .ok_or_else(|| {
                    ProviderError::Unavailable("WeChat Pay's order has no total".into())
                })?;
            let body = json!({
                "out_trade_no": out_trade_no,
                "out_refund_no": request.refund_id,
                "notify_url": self.notify_url,
                "amount": { "refund": refund, "total": total, "currency": CURRENCY },
            });
            let created: CreatedRefund = self
                .api
                .send(Method::POST, "/v3/refund/domestic/refunds", Some(&body))
                .await?
                .success()?
                .verified(&self.keys)?;
            match created.status.as_str() {
                "SUCCESS" | "PROCESSING" => Ok(RefundResult {
                    provider_ref: created.refund_id,
                }),
                status => Err(ProviderError::Declined(format!(
                    "WeChat Pay refund {} is {status}",
                    created.refund_id
                ))),
            }
        })
    }

    fn queries_payments(&self) -> bool {
        true
    }

    fn query_payment<'a>(
        &'a self,
        query: &'a PaymentQuery,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(async move {
            let out_trade_no = match &query.provider_ref {
                Some(no) => no.clone(),
                None => out_trade_no(&query.payment_id)?,
            };
            let Some(transaction) = self.query(&out_trade_no).await? else {
                return Ok(PaymentStatus::Pending);
            };
            if transaction.mchid != self.mchid || transaction.appid != self.appid {
                return Err(ProviderError::Declined(format!(
                    "WeChat Pay order {out_trade_no} belongs to another merchant or app"
                )));
            }
            Ok(match transaction.trade_state.as_str() {
                // A refunded order was paid first.
                "SUCCESS" | "REFUND" => PaymentStatus::Paid {
                    amount: Amount {
                        amount: transaction
                            .amount
                            .as_ref()
                            .and_then(|a| a.total)
                            .unwrap_or_default(),
                        currency: CURRENCY.into(),
                    },
                    provider_ref: transaction.transaction_id,
                },
                "NOTPAY" | "USERPAYING" => PaymentStatus::Pending,
                state => PaymentStatus::Failed {
                    reason: transaction
                        .trade_state_desc
                        .unwrap_or_else(|| format!("trade_state {state}")),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_numbers_fit_wechat_pays_rules_and_lead_back_to_the_payment() {
        let id = "pay_0190f3e4a1b27c3d8e9f00112233aabb";
        assert_eq!(
            out_trade_no(id),
            Ok("0190f3e4a1b27c3d8e9f00112233aabb".into())
        );
        assert_eq!(out_trade_no("pay_short1"), Ok("pay_short1".into()));
        assert!(out_trade_no("pay_1").is_err(), "too short");
        assert!(out_trade_no("pay_has/slash/in/it").is_err());
    }

    #[test]
    fn time_expire_is_written_in_china_time() {
        assert_eq!(
            time_expire(1_765_000_000).as_deref(),
            Some("2025-12-06T13:46:40+08:00")
        );
    }

    #[test]
    fn only_positive_cny_amounts_are_taken() {
        let amount = |amount, currency: &str| Amount {
            amount,
            currency: currency.into(),
        };
        assert_eq!(cny_fen(&amount(4500, "CNY")), Ok(4500));
        assert!(cny_fen(&amount(4500, "USD")).is_err());
        assert!(cny_fen(&amount(0, "CNY")).is_err());
    }
}
