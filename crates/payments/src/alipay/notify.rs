//! Alipay's asynchronous notifications: verified with Alipay's public key over the decoded
//! fields, then read into an event. A notification for another app or seller verifies (Alipay
//! signs it) but is refused; the amount is compared with the order by the server.

use std::collections::BTreeMap;

use super::keys::AlipayPublicKey;
use super::sign::{notify_excluded, sign_content};
use super::{CURRENCY, yuan};
use crate::provider::{Amount, EventKind, WebhookError, WebhookEvent};
use crate::signature::SignatureError;

/// Who the notifications must be for.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub app_id: &'a str,
    pub seller_id: Option<&'a str>,
}

/// Checks the signature of decoded notification fields: `Ok` only for Alipay's own.
pub fn verify(
    fields: &BTreeMap<String, String>,
    key: &AlipayPublicKey,
) -> Result<(), WebhookError> {
    let sign = fields
        .get("sign")
        .filter(|s| !s.is_empty())
        .ok_or(WebhookError::MissingSignature)?;
    // `RSA` is SHA-1, which Bursar does not take.
    if fields.get("sign_type").is_some_and(|t| t != "RSA2") {
        return Err(WebhookError::Signature(SignatureError::NoMatchingSignature));
    }
    let content = sign_content(fields, notify_excluded(fields));
    if key.verifies(content.as_bytes(), sign) {
        Ok(())
    } else {
        Err(WebhookError::Signature(SignatureError::NoMatchingSignature))
    }
}

/// The event a verified notification reports.
pub fn event(
    fields: &BTreeMap<String, String>,
    recipient: &Recipient<'_>,
) -> Result<WebhookEvent, WebhookError> {
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let required = |name: &str| {
        field(name)
            .ok_or_else(|| WebhookError::Malformed(format!("the notification has no {name}")))
    };
    let notify_type = required("notify_type")?;
    let event_id = required("notify_id")?.to_string();
    let trade_status = field("trade_status").unwrap_or_default();
    let event_type = format!("{notify_type}.{trade_status}");
    let mut event = WebhookEvent {
        event_id,
        event_type,
        kind: EventKind::Ignored,
        payment_id: field("out_trade_no").map(str::to_string),
        provider_ref: field("trade_no").map(str::to_string),
        order_id: None,
        amount: None,
    };
    // Gateway notifications (service market orders and the like) are not about payments.
    if notify_type != "trade_status_sync" || field("method").is_some() {
        return Ok(event);
    }
    if event.payment_id.is_none() {
        return Err(WebhookError::Malformed(
            "the notification has no out_trade_no".into(),
        ));
    }
    if field("app_id") != Some(recipient.app_id) {
        event.kind = refused(format!(
            "the notification is for app {}, not this app {}",
            field("app_id").unwrap_or("(none)"),
            recipient.app_id
        ));
        return Ok(event);
    }
    if let Some(seller) = recipient.seller_id
        && field("seller_id") != Some(seller)
    {
        event.kind = refused(format!(
            "the notification is for seller {}, not {seller}",
            field("seller_id").unwrap_or("(none)")
        ));
        return Ok(event);
    }
    let amount_of = |name: &str| -> Result<Amount, WebhookError> {
        let text = required(name)?;
        let amount = yuan::parse(text)
            .ok_or_else(|| WebhookError::Malformed(format!("{name} {text:?} is not an amount")))?;
        Ok(Amount {
            amount,
            currency: CURRENCY.into(),
        })
    };
    // A refund is reported on the trade's own notification, with the total refunded so far.
    if field("refund_fee").is_some() {
        event.kind = EventKind::Refunded {
            amount: amount_of("refund_fee")?,
        };
        return Ok(event);
    }
    event.kind = match trade_status {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => {
            event.amount = Some(amount_of("total_amount")?);
            EventKind::Succeeded
        }
        "TRADE_CLOSED" => EventKind::Failed {
            reason: "closed_unpaid".into(),
        },
        _ => EventKind::Ignored,
    };
    Ok(event)
}

fn refused(reason: String) -> EventKind {
    EventKind::Refused { reason }
}
