//! WeChat Pay API v3: Native (QR) orders, refunds, order queries, signed requests and
//! verified, encrypted callbacks.

pub mod aead;
pub mod api;
pub mod certificates;
pub mod keys;
pub mod notification;
pub mod signing;
