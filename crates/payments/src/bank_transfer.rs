//! `bank_transfer`: the buyer transfers money with a reference, and an admin who sees it arrive
//! confirms the order. There are no webhooks and nothing to charge or refund automatically.

use crate::provider::{
    BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, PaymentProvider, PaymentRequest,
    ProviderError, RefundRequest, RefundResult, WebhookError, WebhookEvent, WebhookRequest,
};

#[derive(Debug, Default)]
pub struct BankTransfer;

/// The reference the buyer must quote with the transfer: `BT-`, ten characters from the
/// payment id, and two check digits (ISO 7064 MOD 97-10, as IBANs and RF references use), so a
/// mistyped reference on a bank statement is caught instead of matching another order.
pub fn reference(payment_id: &str) -> String {
    let tail: String = payment_id
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<String>()
        .to_uppercase();
    let check = 98 - mod97(&format!("{tail}00"));
    format!("BT-{tail}{check:02}")
}

/// The reference as written on a statement (any case, spaces or dashes inside), canonical
/// again when its check digits hold; `None` otherwise.
pub fn parse_reference(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    let body = compact.strip_prefix("BT")?;
    if body.len() != 12 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (tail, check) = body.split_at(10);
    if !check.bytes().all(|b| b.is_ascii_digit()) || mod97(body) != 1 {
        return None;
    }
    Some(format!("BT-{tail}{check}"))
}

/// The remainder by 97 of the number a reference spells, letters as 10–35 (ISO 7064).
fn mod97(text: &str) -> u32 {
    text.chars().fold(0, |rest, c| {
        let value = c.to_digit(36).unwrap_or(0);
        if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        }
    })
}

impl PaymentProvider for BankTransfer {
    fn name(&self) -> &'static str {
        "bank_transfer"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            Ok(CreatedPayment {
                provider_ref: Some(reference(&request.payment_id)),
                ..CreatedPayment::default()
            })
        })
    }

    fn parse_webhook(
        &self,
        _request: &WebhookRequest<'_>,
        _now_s: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::MissingSignature)
    }

    fn charge_saved_method<'a>(
        &'a self,
        _request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeResult, ProviderError>> {
        Box::pin(async {
            Err(ProviderError::Declined(
                "bank transfers cannot be charged".into(),
            ))
        })
    }

    /// Money sent by bank transfer goes back by hand: the refund is left for an admin.
    fn refund<'a>(
        &'a self,
        _request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundResult, ProviderError>> {
        Box::pin(async {
            Err(ProviderError::Declined(
                "bank transfers are refunded by hand".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_and_upper_case() {
        let made = reference("pay_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert!(made.starts_with("BT-1D2E3F4A5B"), "{made}");
    }

    #[test]
    fn references_carry_check_digits_that_catch_a_typo() {
        let made = reference("pay_01a2481ea269735984fb376f7d6b1cf5");
        assert!(made.starts_with("BT-6F7D6B1CF5"), "{made}");
        assert_eq!(made.len(), 15);
        assert_eq!(parse_reference(&made).as_deref(), Some(made.as_str()));
        // As a person types it from a statement.
        let typed = format!(" bt {} ", made[3..].to_lowercase());
        assert_eq!(parse_reference(&typed).as_deref(), Some(made.as_str()));
        // One character changed, or two swapped: refused.
        let mut changed = made.clone().into_bytes();
        changed[5] = if changed[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            parse_reference(&String::from_utf8(changed).expect("ascii")),
            None
        );
        let mut swapped = made.clone().into_bytes();
        swapped.swap(13, 14);
        if swapped != made.clone().into_bytes() {
            assert_eq!(
                parse_reference(&String::from_utf8(swapped).expect("ascii")),
                None
            );
        }
        assert_eq!(parse_reference("BT-123"), None);
        assert_eq!(parse_reference("XX-6F7D6B1CF500"), None);
    }
}
