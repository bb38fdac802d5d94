//! ECPay (綠界科技) AioCheckOut: an order is a signed form the person's browser posts to
//! ECPay's cashier; results come back as signed form-encoded notifications (paid, or an ATM
//! virtual account issued), answered `1|OK`. Amounts are whole New Taiwan dollars.

pub mod callback;
pub mod checkmac;
pub mod form;
pub mod query;
pub mod trade_no;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use self::callback::{Fields, Notice, Payment};
use self::checkmac::HashKeys;
use crate::provider::{
    Acknowledgement, Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, EventKind,
    PaymentForm, PaymentProvider, PaymentQuery, PaymentRequest, PaymentStatus, ProviderError,
    RefundRequest, RefundResult, WebhookError, WebhookEvent, WebhookRequest,
};
use crate::signature::SignatureError;

pub const NAME: &str = "ecpay";
pub const CURRENCY: &str = "TWD";
pub const DEFAULT_GATEWAY: &str = "https://payment.ecpay.com.tw";
pub const STAGE_GATEWAY: &str = "https://payment-stage.ecpay.com.tw";
/// Minor units per New Taiwan dollar; ECPay takes whole dollars only.
pub const MINOR_PER_TWD: i64 = 100;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why ECPay refunds are refused, said for the admin who asked.
pub const REFUND_UNSUPPORTED: &str = "ECPay refunds go through its DoAction API, which needs a \
     separate contract with ECPay and is not set up here: refund this payment in ECPay's vendor \
     dashboard (廠商管理後台) instead";

/// How to reach one ECPay merchant account.
#[derive(Clone)]
pub struct EcpayConfig {
    pub merchant_id: String,
    pub hash_keys: HashKeys,
    /// [`DEFAULT_GATEWAY`], or [`STAGE_GATEWAY`] for testing.
    pub gateway: String,
    /// Bursar's `/api/v1/webhooks/ecpay`: both ReturnURL and PaymentInfoURL.
    pub webhook_url: String,
}

impl fmt::Debug for EcpayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcpayConfig")
            .field("merchant_id", &self.merchant_id)
            .field("gateway", &self.gateway)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

pub struct Ecpay {
    config: EcpayConfig,
    http: reqwest::Client,
}

impl fmt::Debug for Ecpay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ecpay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An amount as ECPay's `TotalAmount`: whole New Taiwan dollars, or why it cannot be one.
pub fn whole_twd(amount: &Amount) -> Result<i64, String> {
    if amount.currency != CURRENCY {
        return Err(format!("ECPay takes TWD only, not {}", amount.currency));
    }
    if amount.amount <= 0 || amount.amount % MINOR_PER_TWD != 0 {
        return Err(format!(
            "ECPay takes whole New Taiwan dollars only: {} minor units is not a multiple of {MINOR_PER_TWD}",
            amount.amount
        ));
    }
    Ok(amount.amount / MINOR_PER_TWD)
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Ecpay {
    /// # Panics
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does.
    pub fn new(mut config: EcpayConfig) -> Self {
        config.gateway = config.gateway.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bursar-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self { config, http }
    }

    /// The stage gateway takes simulated payments as real (that is what it is for); the
    /// production gateway never does.
    pub fn is_stage(&self) -> bool {
        self.config.gateway.contains("payment-stage.")
    }

    fn event(&self, payment: Payment, rtn_code: &str, kind: EventKind) -> WebhookEvent {
        let amount = payment.trade_amt.map(|twd| Amount {
            amount: twd.saturating_mul(MINOR_PER_TWD),
            currency: CURRENCY.into(),
        });
        WebhookEvent {
            // One trade is reported once per state (account issued, paid); a simulated
            // payment, or one reported for another merchant, never shares its id with ours.
            event_id: format!(
                "{}:{}:{}:{rtn_code}:{}",
                payment.merchant_id,
                payment.merchant_trade_no,
                payment.trade_no,
                u8::from(payment.simulated)
            ),
            event_type: format!("RtnCode={rtn_code}"),
            kind,
            payment_id: payment.payment_id,
            provider_ref: Some(payment.merchant_trade_no),
            order_id: None,
            amount,
        }
    }
}

impl PaymentProvider for Ecpay {
    fn name(&self) -> &'static str {
        NAME
    }

    /// No call to ECPay: the signed AioCheckOut form, which the client posts to the cashier.
    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            let total_twd = whole_twd(&request.amount).map_err(ProviderError::Declined)?;
            let merchant_trade_no = trade_no::merchant_trade_no(&request.payment_id);
            let checkout = form::Checkout {
                merchant_id: &self.config.merchant_id,
                merchant_trade_no: &merchant_trade_no,
                trade_date: chrono::Utc::now(),
                total_twd,
                description: &request.description,
                return_url: &self.config.webhook_url,
                payment_info_url: &self.config.webhook_url,
                client_back_url: &request.return_url,
                payment_id: &request.payment_id,
            };
            let fields: BTreeMap<String, String> = form::fields(&self.config.hash_keys, &checkout)
                .into_iter()
                .collect();
            Ok(CreatedPayment {
                provider_ref: Some(merchant_trade_no),
                form: Some(PaymentForm {
                    action: format!("{}{}", self.config.gateway, form::CHECKOUT_PATH),
                    fields,
                }),
                ..CreatedPayment::default()
            })
        })
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        _now_s: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        let fields = Fields::decode(request.body);
        if fields.get(checkmac::FIELD).is_none() {
            return Err(WebhookError::MissingSignature);
        }
        if !fields.verify(&self.config.hash_keys) {
            return Err(WebhookError::Signature(SignatureError::NoMatchingSignature));
        }
        let notice = callback::read(&fields).map_err(WebhookError::Malformed)?;
        let (payment, rtn_code, kind) = match notice {
            Notice::Paid(payment) => {
                let kind = if payment.simulated && !self.is_stage() {
                    EventKind::Refused {
                        reason: "SimulatePaid=1 (a payment simulated in ECPay's dashboard) on \
                                 the production gateway: nobody paid"
                            .into(),
                    }
                } else {
                    EventKind::Succeeded
                };
                (payment, callback::RTN_PAID.to_string(), kind)
            }
            Notice::AtmIssued { payment, atm } => {
                let instructions = BTreeMap::from([
                    ("bank_code".to_string(), atm.bank_code),
                    ("v_account".to_string(), atm.v_account),
                    ("expire_date".to_string(), atm.expire_date),
                ]);
                let kind = EventKind::AwaitingPayment { instructions };
                (payment, callback::RTN_ATM_ISSUED.to_string(), kind)
            }
            Notice::Other {
                payment,
                rtn_code,
                rtn_msg,
            } => {
                let kind = EventKind::AttemptFailed {
                    reason: format!("ECPay RtnCode {rtn_code}: {rtn_msg}"),
                };
                (payment, rtn_code, kind)
            }
        };
        let kind = if payment.merchant_id == self.config.merchant_id {
            kind
        } else {
            EventKind::Refused {
                reason: format!("for merchant {}, not ours", payment.merchant_id),
            }
        };
        Ok(self.event(payment, &rtn_code, kind))
    }

    /// ECPay re-sends until it reads exactly `1|OK`.
    fn acknowledgement(&self) -> Acknowledgement {
        Acknowledgement {
            status: 200,
            content_type: "text/plain",
            body: "1|OK",
        }
    }

    fn charge_saved_method<'a>(
        &'a self,
        _request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Declined(
                "ECPay AioCheckOut cannot charge a saved method".into(),
            ))
        })
    }

    fn refund<'a>(
        &'a self,
        _request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async move { Err(ProviderError::Declined(REFUND_UNSUPPORTED.into())) })
    }

    fn queries_payments(&self) -> bool {
        true
    }

    fn query_payment<'a>(
        &'a self,
        query: &'a PaymentQuery,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(async move {
            let merchant_trade_no = query
                .provider_ref
                .clone()
                .unwrap_or_else(|| trade_no::merchant_trade_no(&query.payment_id));
            let fields = query::request_fields(
                &self.config.hash_keys,
                &self.config.merchant_id,
                &merchant_trade_no,
                now_s(),
            );
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let response = self
                .http
                .post(format!("{}{}", self.config.gateway, query::PATH))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("ECPay request failed: {e}")))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("ECPay answer unreadable: {e}")))?;
            if !status.is_success() {
                return Err(ProviderError::Unavailable(format!(
                    "ECPay answered HTTP {status}"
                )));
            }
            let info = query::read_answer(&self.config.hash_keys, &body)
                .map_err(ProviderError::Unavailable)?;
            if info.merchant_id != self.config.merchant_id {
                return Err(ProviderError::Unavailable(format!(
                    "ECPay answered for merchant {}",
                    info.merchant_id
                )));
            }
            Ok(match (info.trade_status.as_str(), info.trade_amt) {
                ("1", Some(twd)) => PaymentStatus::Paid {
                    amount: Amount {
                        amount: twd.saturating_mul(MINOR_PER_TWD),
                        currency: CURRENCY.into(),
                    },
                    provider_ref: info.trade_no,
                },
                // Not paid yet, or a state ECPay may still move on from: the order's own
                // expiry decides, never a guess here.
                _ => PaymentStatus::Pending,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecpay_takes_whole_new_taiwan_dollars_only() {
        let twd = |amount| Amount {
            amount,
            currency: CURRENCY.into(),
        };
        assert_eq!(whole_twd(&twd(30000)), Ok(300));
        assert!(whole_twd(&twd(30050)).is_err());
        assert!(whole_twd(&twd(0)).is_err());
        assert!(
            whole_twd(&Amount {
                amount: 30000,
                currency: "CNY".into()
            })
            .is_err()
        );
    }
}
