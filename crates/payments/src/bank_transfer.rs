//! `bank_transfer`: the buyer transfers money with a reference, and an admin who sees it arrive
//! confirms the order. There are no webhooks and nothing to charge or refund automatically.

use crate::provider::{
    BoxFuture, ChargeRequest, ChargeResult, CreatedPayment, PaymentProvider, PaymentRequest,
    ProviderError, RefundRequest, RefundResult, WebhookError, WebhookEvent,
};

#[derive(Debug, Default)]
pub struct BankTransfer;

/// The reference the buyer must quote with the transfer: short enough to type, unique per
/// payment.
pub fn reference(payment_id: &str) -> String {
    let tail: String = payment_id
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("BT-{}", tail.to_uppercase())
}

impl PaymentProvider for BankTransfer {
    fn name(&self) -> &'static str {
        "bank_transfer"
    }

    fn signature_header(&self) -> &'static str {
        "Bursar-Signature"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move {
            Ok(CreatedPayment {
                provider_ref: Some(reference(&request.payment_id)),
                redirect_url: None,
                client_secret: None,
            })
        })
    }

    fn parse_webhook(
        &self,
        _signature: Option<&str>,
        _body: &[u8],
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
    #[test]
    fn references_are_short_and_upper_case() {
        assert_eq!(
            super::reference("pay_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            "BT-1D2E3F4A5B"
        );
    }
}
