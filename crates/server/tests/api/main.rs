//! Black-box tests through HTTP, each on SQLite and on PostgreSQL.

mod helpers;

mod admin;
mod alipay;
mod auth;
mod auto_topup;
mod browser;
mod catalog;
mod concurrency;
mod credits;
mod daily_gift;
mod ecpay;
mod idempotency;
mod inbox;
mod input;
mod instances;
mod jobs;
mod marketplace;
mod notifications;
mod ops;
mod orders;
mod sign_in;
mod sign_in_codes;
mod stripe;
mod stripe_methods;
mod subscriptions;
mod web;
mod web_features;
mod web_sign_in;
mod webhooks_out;
mod wechatpay;
