//! Payment providers: request building, signatures and webhook parsing. No database access;
//! the server decides what a verified event does.

pub mod alipay;
pub mod bank_transfer;
pub mod ecpay;
pub mod provider;
pub mod sandbox;
pub mod signature;
pub mod stripe;
pub mod wechatpay;

pub use provider::{
    Acknowledgement, Amount, BoxFuture, ChargeRequest, ChargeResult, CreatedPayment,
    CustomerRequest, EventKind, HostedSetup, HostedSetupRequest, HostedSetupState, PaymentForm,
    PaymentProvider, PaymentQuery, PaymentRequest, PaymentStatus, ProviderError, RefundRequest,
    RefundResult, SavedMethod, SetupRequest, SetupState, StartedSetup, WebhookError, WebhookEvent,
    WebhookRequest,
};
