//! Alipay (open platform, RSA2): QR-code payments (`alipay.trade.precreate`), the desktop
//! payment page (`alipay.trade.page.pay`, a signed redirect), refunds, look-ups for
//! reconciliation, and verified asynchronous notifications answered with `success`.
//!
//! Every request is signed with the app's private key; every response and notification is
//! checked against Alipay's public key before anything in it is believed.

pub mod form;
pub mod gateway;
pub mod keys;
pub mod notify;
pub mod sign;
pub mod yuan;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::gateway::{Answer, Reply};
use self::keys::{AlipayPublicKey, AppPrivateKey};
use crate::provider::{
    Acknowledgement, Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment,
    PaymentProvider, PaymentQuery, PaymentRequest, PaymentStatus, ProviderError, RefundRequest,
    RefundResult, WebhookError, WebhookEvent, WebhookRequest,
};

pub const DEFAULT_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
/// The only currency Alipay's domestic products take.
pub const CURRENCY: &str = "CNY";
/// `alipay_mode` of an order that pays on Alipay's desktop page instead of a QR code.
pub const MODE_PAGE: &str = "page";

const METHOD_PRECREATE: &str = "alipay.trade.precreate";
const METHOD_PAGE_PAY: &str = "alipay.trade.page.pay";
const METHOD_REFUND: &str = "alipay.trade.refund";
const METHOD_QUERY: &str = "alipay.trade.query";
/// What `alipay.trade.query` answers for a trade nobody has scanned yet.
const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";
/// Subjects are at most 256 characters.
const SUBJECT_MAX_CHARS: usize = 256;

/// How to reach one Alipay app.
pub struct AlipayConfig {
    pub app_id: String,
    pub private_key: AppPrivateKey,
    pub alipay_public_key: AlipayPublicKey,
    /// When set, notifications for another seller are refused.
    pub seller_id: Option<String>,
    /// [`DEFAULT_GATEWAY`] in production; tests point it at a local stub.
    pub gateway: String,
    /// Where Alipay posts its notifications (`…/api/v1/webhooks/alipay`).
    pub notify_url: String,
}

// By hand: the keys never reach a log (their own Debug prints nothing either).
impl fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .field("gateway", &self.gateway)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Alipay {
    config: AlipayConfig,
    client: reqwest::Client,
}

impl Alipay {
    /// # Panics
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does.
    pub fn new(config: AlipayConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(gateway::REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bursar-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self { config, client }
    }

    fn signed(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> BTreeMap<String, String> {
        gateway::signed_params(
            &self.config.app_id,
            &self.config.private_key,
            method,
            biz,
            extra,
            Utc::now(),
        )
    }

    async fn call(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Reply, ProviderError> {
        let params = self.signed(method, biz, extra);
        let (gateway, key) = (&self.config.gateway, &self.config.alipay_public_key);
        gateway::call(&self.client, gateway, &params, key).await
    }

    /// The QR code for a payment (`alipay.trade.precreate`).
    async fn precreate(&self, request: &PaymentRequest) -> Result<CreatedPayment, ProviderError> {
        let mut biz = trade_content(request)?;
        if let Some(minutes) = minutes_left(request.expires_at_s, Utc::now()) {
            biz["timeout_express"] = format!("{minutes}m").into();
        }
        let notify = [("notify_url", self.config.notify_url.as_str())];
        let answer = accepted(self.call(METHOD_PRECREATE, &biz, &notify).await?)?;
        let qr_code = text(&answer, "qr_code").ok_or_else(|| {
            ProviderError::Unavailable("Alipay's precreate answer has no qr_code".into())
        })?;
        Ok(CreatedPayment {
            qr_code: Some(qr_code),
            ..CreatedPayment::default()
        })
    }

    /// A signed `alipay.trade.page.pay` URL: the browser goes there; nothing is called now.
    fn page_pay(&self, request: &PaymentRequest) -> Result<CreatedPayment, ProviderError> {
        let mut biz = trade_content(request)?;
        biz["product_code"] = "FAST_INSTANT_TRADE_PAY".into();
        if let Some(expires_at_s) = request.expires_at_s
            && let Some(at) = DateTime::from_timestamp(expires_at_s, 0)
        {
            biz["time_expire"] = gateway::china_time(at).into();
        }
        let params = self.signed(
            METHOD_PAGE_PAY,
            &biz,
            &[
                ("notify_url", self.config.notify_url.as_str()),
                ("return_url", request.return_url.as_str()),
            ],
        );
        let query = form::encode(&params);
        Ok(CreatedPayment {
            redirect_url: Some(format!("{}?{query}", self.config.gateway)),
            ..CreatedPayment::default()
        })
    }
}

/// The business content every trade shares: Bursar's payment id as `out_trade_no`.
fn trade_content(request: &PaymentRequest) -> Result<Value, ProviderError> {
    let total = cny(&request.amount)?;
    let subject: String = request
        .description
        .chars()
        .take(SUBJECT_MAX_CHARS)
        .collect();
    Ok(json!({
        "out_trade_no": request.payment_id,
        "total_amount": total,
        "subject": subject,
    }))
}

/// An amount as Alipay writes it; anything but CNY is refused.
fn cny(amount: &Amount) -> Result<String, ProviderError> {
    if amount.currency != CURRENCY {
        return Err(ProviderError::Declined(format!(
            "Alipay takes CNY only, not {}",
            amount.currency
        )));
    }
    yuan::format(amount.amount)
        .ok_or_else(|| ProviderError::Declined("a negative amount cannot be paid".into()))
}

/// Whole minutes until the payment closes (at least one), for `timeout_express`.
fn minutes_left(expires_at_s: Option<i64>, now: DateTime<Utc>) -> Option<i64> {
    let seconds = expires_at_s? - now.timestamp();
    Some((seconds / 60).max(1))
}

fn text(answer: &Answer, name: &str) -> Option<String> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The answer of a call that worked; a refusal becomes `Declined` with Alipay's reason.
fn accepted(reply: Reply) -> Result<Answer, ProviderError> {
    match reply {
        Reply::Ok(answer) => Ok(answer),
        Reply::Refused { sub_code, message } => {
            Err(ProviderError::Declined(if sub_code.is_empty() {
                message
            } else {
                format!("{sub_code}: {message}")
            }))
        }
    }
}

impl PaymentProvider for Alipay {
    fn name(&self) -> &'static str {
        "alipay"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            match request.mode.as_deref() {
                Some(MODE_PAGE) => self.page_pay(request),
                None => self.precreate(request).await,
                Some(other) => Err(ProviderError::Declined(format!(
                    "unknown Alipay mode {other:?}; `page` or none"
                ))),
            }
        })
    }

    /// Form fields signed by Alipay, in UTF-8 or GBK.
    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        _now_s: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        let charset = request.charset();
        let fields = form::decode(request.body, charset.as_deref())
            .map_err(|e| WebhookError::Malformed(e.to_string()))?;
        notify::verify(&fields, &self.config.alipay_public_key)?;
        let recipient = notify::Recipient {
            app_id: &self.config.app_id,
            seller_id: self.config.seller_id.as_deref(),
        };
        notify::event(&fields, &recipient)
    }

    /// Alipay resends until it reads exactly `success`.
    fn acknowledgement(&self) -> Acknowledgement {
        Acknowledgement {
            status: 200,
            content_type: "text/plain",
            body: "success",
        }
    }

    fn charge_saved_method<'a>(
        &'a self,
        _request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async {
            Err(ProviderError::Declined(
                "Alipay payments are made by the person, never from a saved method".into(),
            ))
        })
    }

    /// `alipay.trade.refund`; Bursar's refund id is the `out_request_no`, so a retried refund
    /// is the same refund at Alipay.
    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async move {
            let biz = json!({
                "out_trade_no": request.payment_id,
                "refund_amount": cny(&request.amount)?,
                "out_request_no": request.refund_id,
            });
            let answer = accepted(self.call(METHOD_REFUND, &biz, &[]).await?)?;
            let provider_ref = text(&answer, "trade_no")
                .map(|trade| format!("{trade}/{}", request.refund_id))
                .unwrap_or_else(|| request.refund_id.clone());
            Ok(RefundResult { provider_ref })
        })
    }

    fn queries_payments(&self) -> bool {
        true
    }

    /// `alipay.trade.query` by Bursar's payment id.
    fn query_payment<'a>(
        &'a self,
        query: &'a PaymentQuery,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(async move {
            let biz = json!({ "out_trade_no": query.payment_id });
            let answer = match self.call(METHOD_QUERY, &biz, &[]).await? {
                Reply::Refused { sub_code, .. } if sub_code == TRADE_NOT_EXIST => {
                    return Ok(PaymentStatus::Pending);
                }
                reply => accepted(reply)?,
            };
            if text(&answer, "out_trade_no").is_some_and(|id| id != query.payment_id) {
                return Err(ProviderError::Unavailable(
                    "Alipay answered the query about another trade".into(),
                ));
            }
            let status = text(&answer, "trade_status").unwrap_or_default();
            Ok(match status.as_str() {
                "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                    let total = text(&answer, "total_amount").unwrap_or_default();
                    let amount = yuan::parse(&total).ok_or_else(|| {
                        ProviderError::Unavailable(format!(
                            "Alipay's total_amount {total:?} is not an amount"
                        ))
                    })?;
                    PaymentStatus::Paid {
                        amount: Amount {
                            amount,
                            currency: CURRENCY.into(),
                        },
                        provider_ref: text(&answer, "trade_no"),
                    }
                }
                "TRADE_CLOSED" => PaymentStatus::Failed {
                    reason: "closed_unpaid".into(),
                },
                _ => PaymentStatus::Pending,
            })
        })
    }
}
