//! Black-box tests through HTTP, each on SQLite and on PostgreSQL.

mod helpers;

mod admin;
mod auth;
mod auto_topup;
mod catalog;
mod concurrency;
mod credits;
mod daily_gift;
mod idempotency;
mod inbox;
mod input;
mod instances;
mod jobs;
mod notifications;
mod ops;
mod orders;
mod stripe;
mod subscriptions;
mod webhooks_out;
