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
    /// A person finished saving a payment method (a Stripe SetupIntent succeeded); the setup is
    /// `provider_ref`, to be read back from the provider before the method is saved.
    MethodSetUp,
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

/// A customer record at the provider, made the first time a user saves a method there.
#[derive(Debug, Clone)]
pub struct CustomerRequest {
    pub user_id: String,
    pub email: Option<String>,
    /// Derived from the user, so two first saves at once make one customer.
    pub idempotency_key: String,
}

/// A setup the person completes with the provider (entering the card, authenticating), after
/// which the method can be charged without them.
#[derive(Debug, Clone)]
pub struct SetupRequest {
    pub customer_ref: String,
    pub user_id: String,
    pub idempotency_key: String,
}

/// What the client needs to complete a setup with the provider's own script.
#[derive(Clone, PartialEq, Eq)]
pub struct StartedSetup {
    pub provider_ref: String,
    pub client_secret: String,
}

// Written by hand so that the client secret never reaches a log through `{:?}`.
impl std::fmt::Debug for StartedSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSetup")
            .field("provider_ref", &self.provider_ref)
            .finish_non_exhaustive()
    }
}

/// A setup as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupState {
    pub provider_ref: String,
    /// The provider's status word (`succeeded`, `requires_payment_method`, …).
    pub status: String,
    pub customer_ref: Option<String>,
    /// The method it saved, once it has succeeded.
    pub method: Option<SavedMethod>,
}

impl SetupState {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// A method the provider holds for a customer: what Bursar may keep of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SavedMethod {
    /// The provider's id for charging it (`pm_…`).
    pub token: String,
    pub brand: String,
    pub last4: String,
}

impl std::fmt::Debug for SavedMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedMethod")
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
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

    /// Whether methods are saved through [`Self::start_setup`] (the person completes a setup
    /// with the provider) rather than handed to Bursar directly.
    fn saves_methods_by_setup(&self) -> bool {
        false
    }

    /// Creates the provider's customer record for a user; returns its reference.
    fn create_customer<'a>(
        &'a self,
        _request: &'a CustomerRequest,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move { Err(setups_unsupported(self.name())) })
    }

    fn start_setup<'a>(
        &'a self,
        _request: &'a SetupRequest,
    ) -> BoxFuture<'a, Result<StartedSetup, ProviderError>> {
        Box::pin(async move { Err(setups_unsupported(self.name())) })
    }

    /// Reads a setup back from the provider: the one source trusted for what it saved.
    fn fetch_setup<'a>(
        &'a self,
        _provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<SetupState, ProviderError>> {
        Box::pin(async move { Err(setups_unsupported(self.name())) })
    }
}

fn setups_unsupported(provider: &str) -> ProviderError {
    ProviderError::Declined(format!(
        "{provider} does not save payment methods through a setup"
    ))
}
