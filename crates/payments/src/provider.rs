//! The interface every payment provider implements. The server creates payments through it,
//! hands it the raw bytes of each webhook to verify and parse, and asks it for refunds; what a
//! verified event does to orders and credits is the server's business, not the provider's.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::signature::SignatureError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An amount of money in minor units of a three-letter currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Amount {
    pub amount: i64,
    pub currency: String,
}

/// What the server asks a provider to collect.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub order_id: String,
    /// Bursar's own id for this payment (`pay_…`); providers echo it back in their webhooks.
    pub payment_id: String,
    pub amount: Amount,
    pub description: String,
    pub customer_email: Option<String>,
    /// Where the person lands once the provider is done with them.
    pub return_url: String,
    /// Sent to the provider so a retried creation cannot create a second payment.
    pub idempotency_key: String,
    /// When the provider should stop taking this payment (Unix seconds): before the order
    /// expires, so money cannot arrive for an order that has just expired.
    pub expires_at_s: Option<i64>,
}

/// What the client must do next to pay, as returned in the order's `payment` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreatedPayment {
    /// The provider's reference (a Checkout Session id, a PaymentIntent id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<String>,
    /// A hosted page to send the person to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// For API clients that confirm the payment themselves (a PaymentIntent's client secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// What a verified webhook says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Succeeded,
    /// The payment is over and failed: the order cannot be paid any more.
    Failed {
        reason: String,
    },
    /// One attempt failed (a declined card) but the person may still try again on the same
    /// payment; the order stays payable.
    AttemptFailed {
        reason: String,
    },
    /// The provider refunded (part of) a payment; `amount` is the total refunded so far.
    Refunded {
        amount: Amount,
    },
    /// A well-signed event of a type Bursar does not act on; acknowledged and recorded.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id: the same delivery retried carries the same id.
    pub event_id: String,
    /// The provider's name for the event type, for the record.
    pub event_type: String,
    pub kind: EventKind,
    /// Bursar's payment id, when the provider echoes it.
    pub payment_id: Option<String>,
    /// The provider's own reference to the payment, when Bursar's id is not available.
    pub provider_ref: Option<String>,
    pub order_id: Option<String>,
    /// What the provider says it collected (for successes).
    pub amount: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("signature header missing")]
    MissingSignature,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// Correctly signed, but not an event this provider's format allows.
    #[error("malformed event: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused (a declined card, an invalid request); the reason is theirs.
    #[error("the provider declined: {0}")]
    Declined(String),
    /// The provider could not be reached or answered unexpectedly; worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// A refund to ask of the provider.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub payment_id: String,
    pub provider_ref: Option<String>,
    pub amount: Amount,
    /// Bursar's refund id, also sent as the idempotency key.
    pub refund_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    pub provider_ref: String,
}

/// A charge of a payment method saved earlier, without the person present (auto top-up).
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub payment_id: String,
    pub order_id: String,
    pub customer_ref: Option<String>,
    pub payment_method: String,
    pub amount: Amount,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeResult {
    pub provider_ref: String,
}

/// How the webhook endpoint answers a provider once an event is handled (each provider
/// expects its own acknowledgement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledgement {
    pub status: u16,
    pub content_type: &'static str,
    pub body: &'static str,
}

pub trait PaymentProvider: Send + Sync {
    /// The name used in orders and in `/api/v1/webhooks/{provider}`.
    fn name(&self) -> &'static str;

    /// The request header that carries the webhook signature.
    fn signature_header(&self) -> &'static str;

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>>;

    /// Verifies the signature over the raw body (before anything else is trusted), then parses.
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now_s: i64,
    ) -> Result<WebhookEvent, WebhookError>;

    fn acknowledgement(&self) -> Acknowledgement {
        Acknowledgement {
            status: 200,
            content_type: "application/json",
            body: r#"{"received":true}"#,
        }
    }

    fn charge_saved_method<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>>;

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>>;
}
