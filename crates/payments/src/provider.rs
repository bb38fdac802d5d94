//! The interface every payment provider implements. The server creates payments through it,
//! hands it the raw bytes of each webhook to verify and parse, and asks it for refunds; what a
//! verified event does to orders and credits is the server's business, not the provider's.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use reqwest::header::HeaderMap;
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
    /// How the buyer wants to pay, for providers that offer more than one way (Alipay:
    /// `page` for its desktop payment page instead of a QR code); `None` is the provider's
    /// default.
    pub mode: Option<String>,
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
    /// A code to show as a QR code for the person to scan with the provider's app (Alipay's
    /// `qr_code`, WeChat Pay Native's `code_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<String>,
    /// A form the client submits to the provider itself (ECPay's auto-submit form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<PaymentForm>,
}

/// A form the client posts to the provider, fields as given (they are signed as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PaymentForm {
    pub action: String,
    pub fields: BTreeMap<String, String>,
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
    /// A well-signed event that does not belong to this account (another app id, merchant or
    /// seller) or must never be fulfilled (a simulated payment): recorded with the reason,
    /// acknowledged so the provider stops resending it, and nothing else.
    Refused {
        reason: String,
    },
    /// The provider issued what the person needs to pay later (ECPay's ATM virtual account:
    /// bank code, account number, deadline): shown on the order, which stays pending until
    /// the payment itself is reported.
    AwaitingPayment {
        instructions: BTreeMap<String, String>,
    },
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

/// A webhook delivery as it arrived: every header (providers sign with several) and the raw
/// body, before anything is parsed.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl<'a> WebhookRequest<'a> {
    pub fn new(headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self { headers, body }
    }

    /// A header's value; one that is not visible ASCII is refused like a bad signature.
    pub fn header(&self, name: &str) -> Result<Option<&'a str>, WebhookError> {
        self.headers
            .get(name)
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| WebhookError::BadHeader(name.to_string()))
            })
            .transpose()
    }

    /// The one signature header of providers that sign in a single header (Stripe's scheme).
    pub fn signature(&self, name: &str) -> Result<&'a str, WebhookError> {
        self.header(name)?.ok_or(WebhookError::MissingSignature)
    }

    /// The media type without parameters, lowercased (`application/x-www-form-urlencoded`).
    pub fn content_type(&self) -> Option<String> {
        let value = self.header("content-type").ok().flatten()?;
        let media = value.split(';').next().unwrap_or_default().trim();
        Some(media.to_ascii_lowercase())
    }

    /// The `charset` parameter of the content type, lowercased, when there is one.
    pub fn charset(&self) -> Option<String> {
        let value = self.header("content-type").ok().flatten()?;
        value.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("signature header missing")]
    MissingSignature,
    #[error("the {0} header is not visible ASCII")]
    BadHeader(String),
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

/// A payment to look up at the provider (reconciliation of a notification that never came).
#[derive(Debug, Clone)]
pub struct PaymentQuery {
    pub order_id: String,
    pub payment_id: String,
    pub provider_ref: Option<String>,
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Paid: what the provider collected and its reference to the transaction.
    Paid {
        amount: Amount,
        provider_ref: Option<String>,
    },
    /// Not paid yet (or not known to the provider yet: nobody has scanned the code).
    Pending,
    /// Closed without payment.
    Failed { reason: String },
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

/// A setup the person completes on the provider's own page (entering the card there, no
/// script on Bursar's), after which the provider sends the browser to `success_url`.
#[derive(Debug, Clone)]
pub struct HostedSetupRequest {
    pub customer_ref: String,
    pub user_id: String,
    /// The currency the method will be charged in (upper case, as Bursar writes it).
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

/// Where to send the person to complete a hosted setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSetup {
    /// The provider's id for the hosted page's session (`cs_…`).
    pub provider_ref: String,
    pub redirect_url: String,
}

/// A hosted setup's session as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSetupState {
    pub provider_ref: String,
    /// The provider's status word (`open`, `complete`, `expired`).
    pub status: String,
    pub customer_ref: Option<String>,
    /// The setup the session made (a SetupIntent, `seti_…`), which is read back and saved as
    /// any other.
    pub setup_ref: Option<String>,
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

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>>;

    /// Verifies the signature over the raw body (before anything else is trusted), then parses.
    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
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

    /// Whether [`Self::query_payment`] works: pending orders of such providers are looked up
    /// periodically, so a lost notification does not leave a paid order pending.
    fn queries_payments(&self) -> bool {
        false
    }

    /// Asks the provider where a payment stands.
    fn query_payment<'a>(
        &'a self,
        _query: &'a PaymentQuery,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Declined(format!(
                "{} does not look payments up",
                self.name()
            )))
        })
    }

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

    /// Starts a setup on the provider's hosted page, for a browser without the provider's
    /// script.
    fn start_hosted_setup<'a>(
        &'a self,
        _request: &'a HostedSetupRequest,
    ) -> BoxFuture<'a, Result<HostedSetup, ProviderError>> {
        Box::pin(async move { Err(setups_unsupported(self.name())) })
    }

    /// Reads a hosted setup's session back from the provider (never from the return URL).
    fn fetch_hosted_setup<'a>(
        &'a self,
        _provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<HostedSetupState, ProviderError>> {
        Box::pin(async move { Err(setups_unsupported(self.name())) })
    }
}

fn setups_unsupported(provider: &str) -> ProviderError {
    ProviderError::Declined(format!(
        "{provider} does not save payment methods through a setup"
    ))
}
