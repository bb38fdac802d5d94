//! The ledger's refusals. Each one means "nothing was changed".

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("not enough credits: {available} available, {requested} requested")]
    InsufficientCredits { available: i64, requested: i64 },
    #[error("{0}")]
    Conflict(String),
    /// A product has fewer left than a redemption asks for.
    #[error("out of stock: {available} left, {requested} requested")]
    OutOfStock { available: i64, requested: i64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    /// The change would take an account's balance beyond ±(2^53 − 1), past which a JSON
    /// number is no longer exact in every client (and sums could overflow).
    #[error(
        "this change would take the balance of {account} beyond ±9007199254740991 (2^53 - 1); \
         nothing was changed"
    )]
    BalanceOutOfRange { account: String },
    /// The account's user is suspended: nobody may spend or hold its credits (admins may
    /// still adjust and refund).
    #[error("this account is suspended: it cannot spend or hold credits")]
    AccountSuspended,
    /// A gift or reward that can be claimed once was claimed already.
    #[error("{0}")]
    AlreadyClaimed(&'static str),
    /// A reward that was not claimed before its expiry.
    #[error("{0}")]
    Expired(&'static str),
}
