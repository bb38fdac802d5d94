//! Stripe: Checkout Sessions (payments, and cards saved on Stripe's page), SetupIntents, refunds
//! and `Stripe-Signature` webhooks over Stripe's HTTP API.
//!
//! Requests are form-encoded in Stripe's bracket notation (`metadata[order_id]=…`) and
//! authenticated with the secret key as a bearer token; every POST carries an
//! `Idempotency-Key` so a retried call cannot pay or refund twice. Webhooks are verified on the
//! raw body with [`verify_v1`] against every active signing secret before anything is parsed.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::provider::{
    Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, CustomerRequest, EventKind,
    HostedSetup, HostedSetupRequest, HostedSetupState, PaymentProvider, PaymentRequest,
    ProviderError, RefundRequest, RefundResult, SavedMethod, SetupRequest, SetupState,
    StartedSetup, WebhookError, WebhookEvent, WebhookRequest,
};
use crate::signature::{TOLERANCE_S_DEFAULT, verify_v1};

pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// Long enough for Stripe's slowest calls (a confirmed off-session charge), short enough that a
/// stuck connection does not hold a request open; retries are safe thanks to idempotency keys.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub const EVENT_CHECKOUT_COMPLETED: &str = "checkout.session.completed";
pub const EVENT_INTENT_SUCCEEDED: &str = "payment_intent.succeeded";
pub const EVENT_INTENT_FAILED: &str = "payment_intent.payment_failed";
pub const EVENT_CHARGE_REFUNDED: &str = "charge.refunded";
pub const EVENT_CHECKOUT_EXPIRED: &str = "checkout.session.expired";
pub const EVENT_SETUP_SUCCEEDED: &str = "setup_intent.succeeded";

/// How to reach one Stripe account.
#[derive(Clone)]
pub struct StripeConfig {
    /// `sk_live_…` / `sk_test_…` (or a restricted `rk_…` key).
    pub secret_key: String,
    /// The endpoint's signing secrets (`whsec_…`), as is. Several while a secret is rolled.
    pub webhook_secrets: Vec<String>,
    /// [`DEFAULT_API_BASE`] in production; tests point it at a local stub.
    pub api_base: String,
    /// How old a webhook signature may be, in seconds.
    pub tolerance_s: i64,
}

impl StripeConfig {
    /// A configuration for the real API with the SDKs' default tolerance.
    pub fn new(secret_key: impl Into<String>, webhook_secrets: Vec<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            webhook_secrets,
            api_base: DEFAULT_API_BASE.into(),
            tolerance_s: TOLERANCE_S_DEFAULT,
        }
    }
}

// Written by hand so that secrets never reach a log through `{:?}`.
impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"[redacted]")
            .field(
                "webhook_secrets",
                &format_args!("[{} redacted]", self.webhook_secrets.len()),
            )
            .field("api_base", &self.api_base)
            .field("tolerance_s", &self.tolerance_s)
            .finish()
    }
}

pub struct Stripe {
    config: StripeConfig,
    client: reqwest::Client,
}

impl fmt::Debug for Stripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stripe")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Stripe {
    /// Builds the one HTTP client all calls share.
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does.
    pub fn new(mut config: StripeConfig) -> Self {
        config.api_base = config.api_base.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Stripe never redirects; following one would only hide a misconfigured base URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bursar-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self { config, client }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base)
    }

    fn post(&self, path: &str, form: &Form, idempotency_key: &str) -> RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.config.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.encode())
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.config.secret_key)
    }

    /// The PaymentIntent to refund: a Checkout Session reference (`cs_…`, what
    /// `create_payment` returns) is looked up, anything else is taken to be an intent already.
    async fn payment_intent_of(&self, provider_ref: &str) -> Result<String, ProviderError> {
        if !provider_ref.starts_with("cs_") {
            return Ok(provider_ref.to_string());
        }
        path_safe(provider_ref, "Checkout Session")?;
        let session: SessionPaymentIntent =
            send(self.get(&format!("/v1/checkout/sessions/{provider_ref}"))).await?;
        session
            .payment_intent
            .as_ref()
            .and_then(id_of)
            .ok_or_else(|| {
                ProviderError::Declined(format!(
                    "Checkout Session {provider_ref} has no PaymentIntent (not paid?)"
                ))
            })
    }
}

impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            let form = checkout_session_form(request);
            let session: CreatedSession =
                send(self.post("/v1/checkout/sessions", &form, &request.idempotency_key)).await?;
            Ok(CreatedPayment {
                provider_ref: Some(session.id),
                redirect_url: Some(session.url),
                ..CreatedPayment::default()
            })
        })
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        now_s: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        let (header, body) = (request.signature(SIGNATURE_HEADER)?, request.body);
        let secrets: Vec<&str> = self
            .config
            .webhook_secrets
            .iter()
            .map(String::as_str)
            .collect();
        verify_v1(header, body, &secrets, self.config.tolerance_s, now_s)?;
        let event: Event = serde_json::from_slice(body).map_err(malformed)?;
        let details = match event.kind.as_str() {
            EVENT_CHECKOUT_COMPLETED => checkout_completed(event.object()?)?,
            EVENT_INTENT_SUCCEEDED => intent_succeeded(event.object()?)?,
            EVENT_INTENT_FAILED => intent_failed(event.object()?),
            EVENT_CHARGE_REFUNDED => charge_refunded(event.object()?)?,
            EVENT_CHECKOUT_EXPIRED => checkout_expired(event.object()?),
            EVENT_SETUP_SUCCEEDED => setup_succeeded(event.object()?),
            _ => Details::ignored(),
        };
        Ok(WebhookEvent {
            event_id: event.id,
            event_type: event.kind,
            kind: details.kind,
            payment_id: details.payment_id,
            provider_ref: details.provider_ref,
            order_id: details.order_id,
            amount: details.amount,
        })
    }

    fn charge_saved_method<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async move {
            let mut form = Form::default()
                .field("amount", request.amount.amount.to_string())
                .field("currency", request.amount.currency.to_ascii_lowercase());
            if let Some(customer) = &request.customer_ref {
                form = form.field("customer", customer);
            }
            let form = form
                .field("payment_method", &request.payment_method)
                .field("confirm", "true")
                .field("off_session", "true")
                .field("metadata[order_id]", &request.order_id)
                .field("metadata[payment_id]", &request.payment_id);
            let intent: IntentStatus =
                send(self.post("/v1/payment_intents", &form, &request.idempotency_key)).await?;
            intent.into_charge_result()
        })
    }

    fn saves_methods_by_setup(&self) -> bool {
        true
    }

    fn create_customer<'a>(
        &'a self,
        request: &'a CustomerRequest,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let form = Form::default().field("metadata[bursar_user_id]", &request.user_id);
            let form = match &request.email {
                Some(email) => form.field("email", email),
                None => form,
            };
            let customer: Created =
                send(self.post("/v1/customers", &form, &request.idempotency_key)).await?;
            Ok(customer.id)
        })
    }

    /// A SetupIntent for off-session card charges; the client confirms it with Stripe.js and
    /// its client secret.
    fn start_setup<'a>(
        &'a self,
        request: &'a SetupRequest,
    ) -> BoxFuture<'a, Result<StartedSetup, ProviderError>> {
        Box::pin(async move {
            let form = Form::default()
                .field("customer", &request.customer_ref)
                .field("usage", "off_session")
                .field("payment_method_types[0]", "card")
                .field("metadata[bursar_user_id]", &request.user_id);
            let intent: CreatedSetup =
                send(self.post("/v1/setup_intents", &form, &request.idempotency_key)).await?;
            Ok(StartedSetup {
                provider_ref: intent.id,
                client_secret: intent.client_secret,
            })
        })
    }

    fn fetch_setup<'a>(
        &'a self,
        provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<SetupState, ProviderError>> {
        Box::pin(async move {
            path_safe(provider_ref, "SetupIntent")?;
            let path = format!("/v1/setup_intents/{provider_ref}?expand[]=payment_method");
            let intent: FetchedSetup = send(self.get(&path)).await?;
            Ok(intent.into_state())
        })
    }

    /// A Checkout Session in setup mode: Stripe's own page takes the card and makes a
    /// SetupIntent on the customer, then sends the browser to `success_url` (whose
    /// `{CHECKOUT_SESSION_ID}` Stripe fills in).
    fn start_hosted_setup<'a>(
        &'a self,
        request: &'a HostedSetupRequest,
    ) -> BoxFuture<'a, Result<HostedSetup, ProviderError>> {
        Box::pin(async move {
            let form = Form::default()
                .field("mode", "setup")
                .field("customer", &request.customer_ref)
                .field("currency", request.currency.to_ascii_lowercase())
                .field("payment_method_types[0]", "card")
                .field("success_url", &request.success_url)
                .field("cancel_url", &request.cancel_url)
                .field("metadata[bursar_user_id]", &request.user_id)
                .field(
                    "setup_intent_data[metadata][bursar_user_id]",
                    &request.user_id,
                );
            let session: CreatedSession =
                send(self.post("/v1/checkout/sessions", &form, &request.idempotency_key)).await?;
            Ok(HostedSetup {
                provider_ref: session.id,
                redirect_url: session.url,
            })
        })
    }

    fn fetch_hosted_setup<'a>(
        &'a self,
        provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<HostedSetupState, ProviderError>> {
        Box::pin(async move {
            path_safe(provider_ref, "Checkout Session")?;
            let session: FetchedSetupSession =
                send(self.get(&format!("/v1/checkout/sessions/{provider_ref}"))).await?;
            if session.mode != "setup" {
                return Err(ProviderError::Declined(format!(
                    "Checkout Session {provider_ref} does not save a payment method"
                )));
            }
            Ok(HostedSetupState {
                provider_ref: session.id,
                status: session.status.unwrap_or_default(),
                customer_ref: session.customer.as_ref().and_then(id_of),
                setup_ref: session.setup_intent.as_ref().and_then(id_of),
            })
        })
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async move {
            let provider_ref = request.provider_ref.as_deref().ok_or_else(|| {
                ProviderError::Declined(format!(
                    "payment {} has no Stripe reference to refund",
                    request.payment_id
                ))
            })?;
            let intent = self.payment_intent_of(provider_ref).await?;
            let form = Form::default()
                .field("payment_intent", intent)
                .field("amount", request.amount.amount.to_string())
                .field("metadata[payment_id]", &request.payment_id)
                .field("metadata[refund_id]", &request.refund_id);
            let refund: Created = send(self.post("/v1/refunds", &form, &request.refund_id)).await?;
            Ok(RefundResult {
                provider_ref: refund.id,
            })
        })
    }
}

/// The Checkout Session for one payment: a single ad-hoc line item, and Bursar's ids both on
/// the session and on its PaymentIntent, so that either kind of webhook can be matched.
fn checkout_session_form(request: &PaymentRequest) -> Form {
    let form = Form::default()
        .field("mode", "payment")
        .field(
            "line_items[0][price_data][currency]",
            request.amount.currency.to_ascii_lowercase(),
        )
        .field(
            "line_items[0][price_data][unit_amount]",
            request.amount.amount.to_string(),
        )
        .field(
            "line_items[0][price_data][product_data][name]",
            &request.description,
        )
        .field("line_items[0][quantity]", "1")
        .field("success_url", &request.return_url)
        .field("cancel_url", &request.return_url)
        .field("client_reference_id", &request.order_id)
        .field("metadata[order_id]", &request.order_id)
        .field("metadata[payment_id]", &request.payment_id)
        .field("payment_intent_data[metadata][order_id]", &request.order_id)
        .field(
            "payment_intent_data[metadata][payment_id]",
            &request.payment_id,
        );
    let form = match request.expires_at_s {
        Some(at) => form.field("expires_at", at.to_string()),
        None => form,
    };
    match &request.customer_email {
        Some(email) => form.field("customer_email", email),
        None => form,
    }
}

// ---- HTTP ----------------------------------------------------------------------------------

/// A form body in Stripe's bracket notation, encoded as `application/x-www-form-urlencoded`.
#[derive(Debug, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn field(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.0 {
            if !out.is_empty() {
                out.push('&');
            }
            encode_component(key, &mut out);
            out.push('=');
            encode_component(value, &mut out);
        }
        out
    }
}

/// The WHATWG `application/x-www-form-urlencoded` byte serializer: alphanumerics and `*-._`
/// as is, space as `+`, every other byte of the UTF-8 as `%XX` (brackets included).
fn encode_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
}

/// Sends a request and decodes Stripe's answer: a JSON object on success, otherwise an error
/// body `{"error": {"message", "code", "type", …}}`.
async fn send<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("Stripe request failed: {e}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("Stripe response unreadable: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Unavailable(format!("unexpected Stripe response (HTTP {status}): {e}"))
        });
    }
    Err(api_error(status, &body))
}

/// A refusal (4xx with Stripe's error body) is final and becomes `Declined`; anything else is
/// worth retrying later. 409 (a concurrent request with the same idempotency key) and 429
/// (rate limited) are 4xx but clear up by themselves.
fn api_error(status: StatusCode, body: &[u8]) -> ProviderError {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let retryable = matches!(status, StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS);
    match error {
        Some(error) if status.is_client_error() && !retryable => {
            ProviderError::Declined(error.describe())
        }
        Some(error) => ProviderError::Unavailable(format!("HTTP {status}: {}", error.describe())),
        None => ProviderError::Unavailable(format!("HTTP {status} from Stripe")),
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The decline of an off-session charge whose card wants its holder to authenticate: only
/// the member can clear it (by paying once with the card present), so it is named as such.
pub const AUTHENTICATION_REQUIRED: &str = "authentication_required";

impl ApiError {
    fn describe(self) -> String {
        let needs_holder = [&self.code, &self.decline_code]
            .iter()
            .any(|code| code.as_deref() == Some(AUTHENTICATION_REQUIRED));
        let message = self
            .message
            .or(self.code)
            .or(self.kind)
            .unwrap_or_else(|| "declined".into());
        if needs_holder && !message.starts_with(AUTHENTICATION_REQUIRED) {
            return format!("{AUTHENTICATION_REQUIRED}: {message}");
        }
        message
    }
}

#[derive(Deserialize)]
struct CreatedSession {
    id: String,
    url: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct CreatedSetup {
    id: String,
    client_secret: String,
}

/// A SetupIntent read back with its payment method expanded.
#[derive(Deserialize)]
struct FetchedSetup {
    id: String,
    status: String,
    customer: Option<Value>,
    payment_method: Option<Value>,
}

#[derive(Deserialize)]
struct ExpandedMethod {
    id: String,
    card: Option<CardDetails>,
}

#[derive(Deserialize)]
struct CardDetails {
    brand: String,
    last4: String,
}

impl FetchedSetup {
    /// Only a card method is kept: Bursar charges cards off-session, and shows brand and last4.
    fn into_state(self) -> SetupState {
        let method = self
            .payment_method
            .and_then(|value| ExpandedMethod::deserialize(value).ok())
            .and_then(|method| {
                let card = method.card?;
                Some(SavedMethod {
                    token: method.id,
                    brand: card.brand,
                    last4: card.last4,
                })
            });
        SetupState {
            provider_ref: self.id,
            status: self.status,
            customer_ref: self.customer.as_ref().and_then(id_of),
            method,
        }
    }
}

/// A Checkout Session read back, for a hosted setup.
#[derive(Deserialize)]
struct FetchedSetupSession {
    id: String,
    mode: String,
    status: Option<String>,
    customer: Option<Value>,
    setup_intent: Option<Value>,
}

#[derive(Deserialize)]
struct SessionPaymentIntent {
    payment_intent: Option<Value>,
}

#[derive(Deserialize)]
struct IntentStatus {
    id: String,
    status: String,
    last_payment_error: Option<PaymentError>,
}

impl IntentStatus {
    /// Only `succeeded` has taken the money; an off-session charge that needs the customer
    /// (`requires_action`) or a new card cannot finish without them.
    fn into_charge_result(self) -> Result<ChargeResult, ProviderError> {
        if self.status == "succeeded" {
            return Ok(ChargeResult {
                provider_ref: self.id,
            });
        }
        let detail = self
            .last_payment_error
            .and_then(PaymentError::reason)
            .unwrap_or_else(|| format!("PaymentIntent {} did not complete off-session", self.id));
        Err(ProviderError::Declined(format!(
            "{}: {detail}",
            self.status
        )))
    }
}

/// Refuses an id that could change the URL path it is put into.
fn path_safe(id: &str, what: &str) -> Result<(), ProviderError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ProviderError::Declined(format!("not a {what} id: {id}")));
    }
    Ok(())
}

/// An id field that may be a bare id or, when expanded, the object itself.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id")?.as_str().map(str::to_string),
        _ => None,
    }
}

// ---- Webhooks ------------------------------------------------------------------------------

/// The envelope of every event; `data.object` is read according to `type`.
#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: Option<EventData>,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

impl Event {
    fn object(&self) -> Result<EventObject, WebhookError> {
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| WebhookError::Malformed(format!("{} without data", self.kind)))?;
        EventObject::deserialize(&data.object).map_err(malformed)
    }
}

/// The fields Bursar reads from a Checkout Session, PaymentIntent or Charge; each object has
/// only some of them.
#[derive(Deserialize)]
struct EventObject {
    id: Option<String>,
    metadata: Option<HashMap<String, String>>,
    currency: Option<String>,
    /// Checkout Session.
    amount_total: Option<i64>,
    payment_status: Option<String>,
    client_reference_id: Option<String>,
    /// PaymentIntent.
    amount_received: Option<i64>,
    amount: Option<i64>,
    last_payment_error: Option<PaymentError>,
    /// Charge.
    amount_refunded: Option<i64>,
    payment_intent: Option<Value>,
}

impl EventObject {
    fn metadata(&self, key: &str) -> Option<String> {
        self.metadata.as_ref()?.get(key).cloned()
    }

    /// Bursar writes currencies in upper case; Stripe in lower case.
    fn amount_of(&self, minor: Option<i64>, field: &str) -> Result<Amount, WebhookError> {
        let amount =
            minor.ok_or_else(|| WebhookError::Malformed(format!("no {field} in the event")))?;
        let currency = self
            .currency
            .as_deref()
            .ok_or_else(|| WebhookError::Malformed("no currency in the event".into()))?;
        Ok(Amount {
            amount,
            currency: currency.to_ascii_uppercase(),
        })
    }
}

#[derive(Deserialize)]
struct PaymentError {
    code: Option<String>,
    message: Option<String>,
}

impl PaymentError {
    fn reason(self) -> Option<String> {
        self.code.or(self.message)
    }
}

/// What an event says, before the envelope's id and type are added.
struct Details {
    kind: EventKind,
    payment_id: Option<String>,
    provider_ref: Option<String>,
    order_id: Option<String>,
    amount: Option<Amount>,
}

impl Details {
    fn ignored() -> Self {
        Self {
            kind: EventKind::Ignored,
            payment_id: None,
            provider_ref: None,
            order_id: None,
            amount: None,
        }
    }
}

/// A completed session has collected the money only when `payment_status` is `paid`; delayed
/// methods complete it unpaid and are fulfilled later by `payment_intent.succeeded`.
fn checkout_completed(session: EventObject) -> Result<Details, WebhookError> {
    let paid = session.payment_status.as_deref() == Some("paid");
    let (kind, amount) = if paid {
        let amount = session.amount_of(session.amount_total, "amount_total")?;
        (EventKind::Succeeded, Some(amount))
    } else {
        (EventKind::Ignored, None)
    };
    Ok(Details {
        kind,
        payment_id: session.metadata("payment_id"),
        order_id: session
            .metadata("order_id")
            .or_else(|| session.client_reference_id.clone()),
        provider_ref: session.id,
        amount,
    })
}

fn intent_succeeded(intent: EventObject) -> Result<Details, WebhookError> {
    let amount = intent.amount_of(intent.amount_received.or(intent.amount), "amount_received")?;
    Ok(Details {
        kind: EventKind::Succeeded,
        payment_id: intent.metadata("payment_id"),
        order_id: intent.metadata("order_id"),
        provider_ref: intent.id,
        amount: Some(amount),
    })
}

fn intent_failed(intent: EventObject) -> Details {
    let payment_id = intent.metadata("payment_id");
    let order_id = intent.metadata("order_id");
    let reason = intent
        .last_payment_error
        .and_then(PaymentError::reason)
        .unwrap_or_else(|| "payment_failed".into());
    Details {
        // Checkout keeps the session open after a decline so the customer can try another card.
        kind: EventKind::AttemptFailed { reason },
        payment_id,
        order_id,
        provider_ref: intent.id,
        amount: None,
    }
}

/// The session closed unpaid: nothing more can arrive for it.
fn checkout_expired(session: EventObject) -> Details {
    Details {
        kind: EventKind::Failed {
            reason: "checkout_expired".into(),
        },
        payment_id: session.metadata("payment_id"),
        order_id: session
            .metadata("order_id")
            .or_else(|| session.client_reference_id.clone()),
        provider_ref: session.id,
        amount: None,
    }
}

/// A saved method: the SetupIntent is read back from Stripe before anything is kept.
fn setup_succeeded(intent: EventObject) -> Details {
    Details {
        kind: EventKind::MethodSetUp,
        payment_id: None,
        order_id: None,
        provider_ref: intent.id,
        amount: None,
    }
}

/// `amount_refunded` is the charge's total refunded so far, which is what `Refunded` carries.
fn charge_refunded(charge: EventObject) -> Result<Details, WebhookError> {
    let amount = charge.amount_of(charge.amount_refunded, "amount_refunded")?;
    Ok(Details {
        kind: EventKind::Refunded { amount },
        payment_id: charge.metadata("payment_id"),
        order_id: charge.metadata("order_id"),
        provider_ref: charge.payment_intent.as_ref().and_then(id_of),
        amount: None,
    })
}

fn malformed(error: serde_json::Error) -> WebhookError {
    WebhookError::Malformed(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_encode_brackets_spaces_and_unicode() {
        let form = Form::default()
            .field(
                "line_items[0][price_data][product_data][name]",
                "100 credits",
            )
            .field("success_url", "https://x.test/r?a=1&b=2")
            .field("customer_email", "a+b@x.test")
            .field("description", "點數 *-._~");
        assert_eq!(
            form.encode(),
            "line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D=100+credits\
             &success_url=https%3A%2F%2Fx.test%2Fr%3Fa%3D1%26b%3D2\
             &customer_email=a%2Bb%40x.test\
             &description=%E9%BB%9E%E6%95%B8+*-._%7E"
        );
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let stripe = Stripe::new(StripeConfig::new(
            "sk_test_hidden",
            vec!["whsec_hidden".into()],
        ));
        let shown = format!("{stripe:?}");
        assert!(!shown.contains("hidden"), "{shown}");
        assert!(shown.contains("api.stripe.com"), "{shown}");
    }

    #[test]
    fn errors_map_to_declined_only_when_final() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}"#;
        assert_eq!(
            api_error(StatusCode::PAYMENT_REQUIRED, body),
            ProviderError::Declined("Your card was declined.".into())
        );
        assert!(matches!(
            api_error(StatusCode::TOO_MANY_REQUESTS, body),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            api_error(StatusCode::BAD_REQUEST, b"<html>"),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            api_error(StatusCode::INTERNAL_SERVER_ERROR, body),
            ProviderError::Unavailable(_)
        ));
    }
}
