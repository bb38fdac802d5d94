//! ECPay (綠界科技) AioCheckOut: an order is a signed form the person's browser posts to
//! ECPay's cashier; the result comes back as a signed form-encoded notification.

pub mod callback;
pub mod checkmac;
pub mod form;
pub mod trade_no;
