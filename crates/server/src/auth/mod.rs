//! Who is calling: passwords, access tokens, API keys and the `Caller` extractor.

pub mod cache;
pub mod caller;
pub mod facebook;
pub mod oidc;
pub mod password;
pub mod rate_limit;
pub mod sign_in;
pub mod tokens;

pub use caller::{Caller, ClientAddr};
