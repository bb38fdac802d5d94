//! The payment providers this instance can use, and the one pipeline every webhook goes
//! through: verify the signature over the raw body, parse, then hand the event to the ledger
//! writer, which applies it exactly once (see `bursar_store::ledger::orders`).

use std::collections::HashMap;
use std::sync::Arc;

use bursar_core::FulfilmentOutcome;
use bursar_core::Money;
use bursar_payments::bank_transfer::BankTransfer;
use bursar_payments::sandbox::Sandbox;
use bursar_payments::stripe::{Stripe, StripeConfig};
use bursar_payments::{Acknowledgement, EventKind, PaymentProvider, WebhookError, WebhookEvent};
use bursar_store::ledger::{PaymentEvent, PaymentOutcome};
use bursar_store::{Store, settings};

use crate::config::Config;
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

pub struct Payments {
    providers: HashMap<&'static str, Arc<dyn PaymentProvider>>,
    pub sandbox: Arc<Sandbox>,
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
        Ok(Self { providers, sandbox })
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

    pub fn get(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.providers.get(name)
    }
}

/// Handles one webhook delivery: `Err(invalid_signature)` before anything is trusted, else the
/// event is applied once and the provider gets the acknowledgement it expects.
pub async fn receive_webhook(
    state: &crate::AppState,
    provider_name: &str,
    signature: Option<&str>,
    body: &[u8],
) -> ApiResult<Acknowledgement> {
    let (store, payments) = (&state.store, &state.payments);
    let provider = payments
        .get(provider_name)
        .filter(|p| p.name() != "bank_transfer")
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    let now_s = store.clock.now_ms().div_euclid(1000);
    let event = provider
        .parse_webhook(signature, body, now_s)
        .map_err(|error| match error {
            WebhookError::Malformed(detail) => ApiError::bad_request(detail),
            other => ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_signature",
                other.to_string(),
            ),
        })?;
    if crate::json::has_nul_escape(body) {
        return Err(ApiError::bad_request(
            "the event holds a NUL character, which no id or reason may contain",
        ));
    }
    let fulfilment = store
        .ledger
        .fulfil(payment_event(provider_name, event))
        .await?;
    let outcome = fulfilment.outcome;
    metrics::counter!("bursar_payment_events_total",
        "provider" => provider_name.to_string(),
        "outcome" => outcome.as_str())
    .increment(1);
    if outcome == FulfilmentOutcome::RetryLater {
        // Not recorded: the provider delivers it again, by when its payment has arrived.
        return Err(ApiError::conflict(
            "this event refers to a payment that has not been applied yet; deliver it again later",
        ));
    }
    if outcome == FulfilmentOutcome::RefundRequired
        && let Some(refund_id) = &fulfilment.refund_id
    {
        // Recorded and queued in the same commit: sent back now if it can be, else by the
        // queue's retries.
        // The provider's acknowledgement does not show it, so this never waits for a worker
        // that took the job first.
        let key = bursar_store::orders::provider_refund_key(refund_id);
        crate::jobs::run_now(state, &key, std::time::Duration::ZERO).await;
    }
    Ok(provider.acknowledgement())
}

fn payment_event(provider: &str, event: WebhookEvent) -> PaymentEvent {
    PaymentEvent {
        provider: provider.to_string(),
        outcome: match event.kind {
            EventKind::Succeeded => PaymentOutcome::Succeeded,
            EventKind::Failed { reason } => PaymentOutcome::Failed(reason),
            EventKind::AttemptFailed { reason } => PaymentOutcome::AttemptFailed(reason),
            EventKind::Refunded { amount } => PaymentOutcome::Refunded {
                total_refunded: amount.amount,
            },
            EventKind::Ignored => PaymentOutcome::Ignored,
        },
        event_id: event.event_id,
        event_type: event.event_type,
        payment_id: event.payment_id,
        provider_ref: event.provider_ref,
        amount: event.amount.map(|a| Money {
            amount: a.amount,
            currency: a.currency,
        }),
        confirmed_by: None,
    }
}
