//! Importing a bank statement: each line whose transfer reference (its check digits intact)
//! and amount match a pending bank-transfer order confirms that order through the same
//! exactly-once path as an admin's confirmation; every other line is listed with the reason it
//! did not match. Importing the same statement again confirms nothing twice.

use bursar_core::OrderStatus;
use bursar_payments::bank_transfer::parse_reference;
use bursar_store::ledger::ConfirmedBy;

use crate::AppState;
use crate::app::fulfilment;
use crate::error::{ApiError, ApiResult};

/// Lines a statement may have, so one import stays a bounded piece of work.
pub const LINES_MAX: usize = 5_000;

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// The order is paid now.
    Confirmed {
        order_id: String,
    },
    /// The order was paid before (an earlier import, or by hand): nothing done.
    AlreadyPaid {
        order_id: String,
    },
    Unmatched {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based, counting the header.
    pub number: usize,
    pub reference: String,
    pub amount: String,
    pub outcome: LineOutcome,
}

/// Reads `csv` (a header with `reference` and `amount` columns, and optionally `currency`;
/// amounts in major units, as statements show them) and applies every line.
pub async fn import(
    state: &AppState,
    csv: &[u8],
    confirmed_by: &ConfirmedBy,
) -> ApiResult<Vec<Line>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let header = reader
        .headers()
        .map_err(|e| ApiError::invalid(format!("the statement is not CSV: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(reference_at), Some(amount_at)) = (column("reference"), column("amount")) else {
        return Err(ApiError::invalid(
            "the statement needs a header line naming a `reference` and an `amount` column",
        ));
    };
    let currency_at = column("currency");
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ApiError::invalid(format!("line {}: {e}", index + 2)))?;
        if rows.len() == LINES_MAX {
            return Err(ApiError::invalid(format!(
                "a statement has at most {LINES_MAX} lines; split it"
            )));
        }
        let field = |at: usize| record.get(at).unwrap_or("").to_string();
        rows.push((
            index + 2,
            field(reference_at),
            field(amount_at),
            currency_at.map(field),
        ));
    }
    let mut lines = Vec::with_capacity(rows.len());
    for (number, reference, amount, currency) in rows {
        let outcome = apply(
            state,
            &reference,
            &amount,
            currency.as_deref(),
            confirmed_by,
        )
        .await?;
        lines.push(Line {
            number,
            reference,
            amount,
            outcome,
        });
    }
    Ok(lines)
}

async fn apply(
    state: &AppState,
    reference: &str,
    amount: &str,
    currency: Option<&str>,
    confirmed_by: &ConfirmedBy,
) -> ApiResult<LineOutcome> {
    let unmatched = |reason: &str| {
        Ok(LineOutcome::Unmatched {
            reason: reason.to_string(),
        })
    };
    let Some(canonical) = parse_reference(reference) else {
        return unmatched("not a Bursar transfer reference, or its check digits are wrong");
    };
    let Some(order) = state.store.bank_transfer_order(&canonical).await? else {
        return unmatched("no order has this reference");
    };
    if currency.is_some_and(|c| !c.eq_ignore_ascii_case(&order.currency)) {
        return unmatched("the currency is not the order's");
    }
    if bursar_core::money::parse_amount(amount, &order.currency) != Some(order.total) {
        return unmatched("the amount is not the order's total");
    }
    match order.status {
        OrderStatus::Pending => {}
        OrderStatus::Paid | OrderStatus::Refunded => {
            return Ok(LineOutcome::AlreadyPaid { order_id: order.id });
        }
        _ => return unmatched("the order is no longer payable (expired or cancelled)"),
    }
    let by = confirmed_by.clone();
    match fulfilment::confirm_bank_transfer(state, &order.id, Some(canonical), by).await {
        Ok(_) => Ok(LineOutcome::Confirmed { order_id: order.id }),
        // Paid meanwhile (by hand, or a second import running at once): confirmed once.
        Err(error) if error.status == axum::http::StatusCode::CONFLICT => {
            Ok(LineOutcome::AlreadyPaid { order_id: order.id })
        }
        Err(error) => Err(error),
    }
}
