//! The built-in `sandbox` provider: a hosted test page instead of a bank. Its outcome is
//! delivered as a webhook signed exactly the way Stripe signs (`Bursar-Signature`), so the
//! sandbox exercises the same verification and fulfilment path as a real provider.

use serde::{Deserialize, Serialize};

use crate::provider::{
    Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, EventKind, PaymentProvider,
    PaymentRequest, ProviderError, RefundRequest, RefundResult, WebhookError, WebhookEvent,
    WebhookRequest,
};
use crate::signature::{TOLERANCE_S_DEFAULT, header_v1, verify_v1};

pub const SIGNATURE_HEADER: &str = "Bursar-Signature";

/// The test card that pays.
pub const CARD_SUCCEEDS: &str = "4242424242424242";
/// The test card that is declined.
pub const CARD_DECLINED: &str = "4000000000000002";

/// What a test card number does, after removing spaces and dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardOutcome {
    Succeeds,
    Declined(&'static str),
    /// Not a sandbox test card: the page asks again.
    Unknown,
}

pub fn card_outcome(number: &str) -> CardOutcome {
    let digits: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    match digits.as_str() {
        CARD_SUCCEEDS => CardOutcome::Succeeds,
        CARD_DECLINED => CardOutcome::Declined("card_declined"),
        _ => CardOutcome::Unknown,
    }
}

/// A test card saved for later charges: what a real provider gives back (brand, last four
/// digits, a token), never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub brand: &'static str,
    pub last4: String,
    pub token: &'static str,
}

/// The tokens the sandbox hands out for its two test cards.
pub const TOKEN_SUCCEEDS: &str = "tok_sandbox_succeeds";
pub const TOKEN_DECLINED: &str = "tok_sandbox_declined";

/// Saves a sandbox test card; any other number is refused, as a real provider refuses an
/// invalid card.
pub fn save_card(number: &str) -> Result<SavedCard, String> {
    let token = match card_outcome(number) {
        CardOutcome::Succeeds => TOKEN_SUCCEEDS,
        CardOutcome::Declined(_) => TOKEN_DECLINED,
        CardOutcome::Unknown => {
            return Err(format!(
                "not a sandbox test card: use {CARD_SUCCEEDS} (always succeeds) or \
                 {CARD_DECLINED} (always declined)"
            ));
        }
    };
    Ok(SavedCard {
        brand: "visa",
        last4: number
            .chars()
            .filter(char::is_ascii_digit)
            .skip(12)
            .collect(),
        token,
    })
}

/// The body of a sandbox webhook, as the API fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payment_id: String,
    pub order_id: String,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

pub const EVENT_SUCCEEDED: &str = "payment.succeeded";
pub const EVENT_FAILED: &str = "payment.failed";

pub struct Sandbox {
    secret: String,
    /// The server's public base URL, for the hosted page's address.
    public_url: String,
}

impl Sandbox {
    pub fn new(secret: impl Into<String>, public_url: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            public_url: public_url.into().trim_end_matches('/').to_string(),
        }
    }

    /// The body and `Bursar-Signature` value of an event, signed at `now_s`.
    pub fn sign(&self, event: &SandboxEvent, now_s: i64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(event).expect("a sandbox event serialises");
        let header = header_v1(&self.secret, now_s, &body);
        (body, header)
    }

    pub fn page_url(&self, payment_id: &str) -> String {
        format!("{}/pay/sandbox/{payment_id}", self.public_url)
    }
}

impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            Ok(CreatedPayment {
                provider_ref: Some(request.payment_id.clone()),
                redirect_url: Some(self.page_url(&request.payment_id)),
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
        verify_v1(header, body, &[&self.secret], TOLERANCE_S_DEFAULT, now_s)?;
        let event: SandboxEvent =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let kind = match event.kind.as_str() {
            EVENT_SUCCEEDED => EventKind::Succeeded,
            EVENT_FAILED => EventKind::Failed {
                reason: event
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "payment_failed".into()),
            },
            other => return Err(WebhookError::Malformed(format!("unknown type {other}"))),
        };
        Ok(WebhookEvent {
            event_id: event.id,
            event_type: event.kind,
            kind,
            provider_ref: Some(event.payment_id.clone()),
            payment_id: Some(event.payment_id),
            order_id: Some(event.order_id),
            amount: Some(event.amount),
        })
    }

    /// Saved sandbox methods are the tokens of `save_card`: the 4242 card's is charged, the
    /// declined card's and any other are declined.
    fn charge_saved_method<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async move {
            match request.payment_method.as_str() {
                TOKEN_SUCCEEDS => Ok(ChargeResult {
                    provider_ref: request.payment_id.clone(),
                }),
                TOKEN_DECLINED => Err(ProviderError::Declined("card_declined".into())),
                _ => Err(ProviderError::Declined("unknown_payment_method".into())),
            }
        })
    }

    /// The sandbox holds no money, so a refund always succeeds at once.
    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async move {
            Ok(RefundResult {
                provider_ref: format!("sandbox_{}", request.refund_id),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    /// A delivery carrying `header` as its signature. Leaked: a test's few bytes.
    fn signed(header: &str, body: &[u8]) -> WebhookRequest<'static> {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(header).expect("an ASCII header");
        headers.insert(SIGNATURE_HEADER, value);
        WebhookRequest::new(
            Box::leak(Box::new(headers)),
            Box::leak(body.to_vec().into_boxed_slice()),
        )
    }

    fn event() -> SandboxEvent {
        SandboxEvent {
            id: "evt_1".into(),
            kind: EVENT_SUCCEEDED.into(),
            payment_id: "pay_1".into(),
            order_id: "ord_1".into(),
            amount: Amount {
                amount: 4500,
                currency: "CNY".into(),
            },
            failure_reason: None,
        }
    }

    #[test]
    fn a_signed_event_parses_and_a_tampered_one_does_not() {
        let sandbox = Sandbox::new("whsec_test", "http://127.0.0.1:8080/");
        let (body, header) = sandbox.sign(&event(), 1_000);
        let parsed = sandbox
            .parse_webhook(&signed(&header, &body), 1_010)
            .expect("a signed event parses");
        assert_eq!(parsed.kind, EventKind::Succeeded);
        assert_eq!(parsed.payment_id.as_deref(), Some("pay_1"));
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert!(
            sandbox
                .parse_webhook(&signed(&header, &tampered), 1_010)
                .is_err()
        );
        assert!(
            sandbox
                .parse_webhook(&signed(&header, &body), 1_400)
                .is_err()
        );
        let unsigned = HeaderMap::new();
        assert!(
            sandbox
                .parse_webhook(&WebhookRequest::new(&unsigned, &body), 1_010)
                .is_err()
        );
        let other = Sandbox::new("whsec_other", "http://x");
        assert!(other.parse_webhook(&signed(&header, &body), 1_010).is_err());
        assert_eq!(
            sandbox.page_url("pay_1"),
            "http://127.0.0.1:8080/pay/sandbox/pay_1"
        );
    }

    #[test]
    fn saved_cards_keep_no_number_and_charge_as_their_card_does() {
        let good = save_card("4242 4242 4242 4242").expect("a test card");
        assert_eq!((good.brand, good.last4.as_str()), ("visa", "4242"));
        assert!(!good.token.contains("4242"));
        let bad = save_card("4000-0000-0000-0002").expect("a test card");
        assert_eq!(bad.last4, "0002");
        assert!(save_card("5555555555554444").is_err());
    }

    #[test]
    fn test_cards() {
        assert_eq!(card_outcome("4242 4242 4242 4242"), CardOutcome::Succeeds);
        assert!(matches!(
            card_outcome("4000-0000-0000-0002"),
            CardOutcome::Declined(_)
        ));
        assert_eq!(card_outcome("1234"), CardOutcome::Unknown);
    }
}
