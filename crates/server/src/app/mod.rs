//! The use cases that the API, the web UI, the job worker and the command line share. Each
//! takes plain values and the application's state and answers plain values: no request, no
//! response, so a handler only translates HTTP to a call and back, and a job or a test calls
//! the same code without HTTP. The rules live here or in `core`, never in a handler.

pub mod accounts;
pub mod api_keys;
pub mod auto_topup;
pub mod bank_statements;
pub mod checkout;
pub mod daily_gift;
pub mod fulfilment;
pub mod identity_sign_in;
pub mod marketplace;
pub mod off_session;
pub mod payment_methods;
pub mod reconciliation;
pub mod refunds;
pub mod rewards;
pub mod sign_in_codes;
pub mod subscriptions;
