//! Refunds of paid orders: the clawback and the provider refund's job commit together on the
//! ledger writer, then the money goes back through the provider at once (or by the queue's
//! retries when the provider cannot be reached).

use bursar_store::ledger::orders::OrderRefund;
use bursar_store::ledger::{Command, Executed, Idempotent, Outcome, Request};
use bursar_store::orders::RefundRecord;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::outcomes::OrderRefundView;

/// A refund's receipt as committed, and where the provider's side of it stands now.
#[derive(Debug)]
pub struct Refunded {
    pub receipt: OrderRefundView,
    pub record: RefundRecord,
    /// A retry of an idempotent request: nothing was refunded again.
    pub replayed: bool,
}

/// Refunds (part of) a paid order. With `key`, a retry gets the first receipt back and moves
/// nothing; the provider's status is read afresh either way.
pub async fn refund_order(
    state: &AppState,
    refund: OrderRefund,
    key: Option<Idempotent>,
) -> ApiResult<Refunded> {
    if let Some(order) = state.store.order(&refund.order_id).await?
        && let Some(refusal) = crate::payments::refund_refusal(&order.provider)
    {
        return Err(ApiError::invalid(refusal));
    }
    let executed = state
        .store
        .ledger
        .execute(Request {
            command: Command::RefundOrder(refund),
            idempotent: key,
        })
        .await?;
    let (receipt, replayed) = match executed {
        Executed::Applied {
            outcome: Outcome::OrderRefunded(receipt),
            ..
        } => {
            // The clawback and the refund's job are committed; the money goes back through
            // the provider now (or, when it cannot be reached, by the queue's retries).
            let key = bursar_store::orders::provider_refund_key(&receipt.id);
            crate::jobs::run_now(state, &key, crate::jobs::RUN_NOW_WAIT).await;
            (OrderRefundView::from(&receipt), false)
        }
        // The receipt as first committed; where the provider's refund stands is read afresh.
        Executed::Replayed(rendered) => {
            let receipt = serde_json::from_str(&rendered.body).map_err(|error| {
                tracing::error!(%error, "a stored refund receipt does not parse");
                ApiError::internal()
            })?;
            (receipt, true)
        }
        Executed::Applied { outcome, .. } => {
            unreachable!("a refund answers with its receipt, not {outcome:?}")
        }
    };
    let record = state
        .store
        .order_refund(&receipt.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Refunded {
        receipt,
        record,
        replayed,
    })
}
