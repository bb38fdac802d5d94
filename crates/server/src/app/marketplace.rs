//! The marketplace's rules shared by the API and the pages: what a product may be, what a
//! redemption asks of the ledger, and fulfilling one.

use bursar_core::{MAX_CREDITS, RedemptionStatus};
use bursar_store::ledger::Command;
use bursar_store::marketplace::{Fulfilment, ProductFields, QUANTITY_MAX, Redemption};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub(crate) const NAME_CHARS_MAX: usize = 200;
pub(crate) const DESCRIPTION_CHARS_MAX: usize = 2_000;

/// Checks what a merchant set on a product; the name is trimmed.
pub fn product_fields(request: ProductFields) -> ApiResult<ProductFields> {
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {NAME_CHARS_MAX} characters"
        )));
    }
    if request
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_CHARS_MAX)
    {
        return Err(ApiError::invalid(format!(
            "description must be at most {DESCRIPTION_CHARS_MAX} characters"
        )));
    }
    if !(1..=MAX_CREDITS).contains(&request.points_price) {
        return Err(ApiError::invalid(
            "points_price must be between 1 and 2^53 - 1",
        ));
    }
    if !(0..=MAX_CREDITS).contains(&request.stock) {
        return Err(ApiError::invalid("stock must be between 0 and 2^53 - 1"));
    }
    if request
        .limit_per_member
        .is_some_and(|l| !(1..=MAX_CREDITS).contains(&l))
    {
        return Err(ApiError::invalid(
            "limit_per_member must be between 1 and 2^53 - 1",
        ));
    }
    Ok(ProductFields {
        name,
        description: request.description,
        points_price: request.points_price,
        stock: request.stock,
        limit_per_member: request.limit_per_member,
        active: request.active,
    })
}

/// The ledger command for a member's redemption of `quantity` items.
pub fn redemption(
    member: &str,
    product_id: &str,
    quantity: i64,
    actor: &str,
) -> ApiResult<Command> {
    if !(1..=QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::invalid(format!(
            "quantity must be between 1 and {QUANTITY_MAX}"
        )));
    }
    Ok(Command::Redeem {
        user_id: member.to_string(),
        product_id: product_id.to_string(),
        quantity,
        actor: actor.to_string(),
    })
}

/// Marks a pending redemption of the merchant's product fulfilled.
pub async fn fulfil(state: &AppState, merchant: &str, id: &str) -> ApiResult<Redemption> {
    match state.store.fulfil_redemption(merchant, id).await? {
        Fulfilment::Fulfilled(redemption) => Ok(*redemption),
        Fulfilment::NotFound => Err(ApiError::not_found("redemption")),
        Fulfilment::Settled(status) => Err(ApiError::conflict(match status {
            RedemptionStatus::Cancelled => "a cancelled redemption cannot be fulfilled",
            _ => "this redemption is already fulfilled",
        })),
    }
}
