//! The words of the notifications Bursar sends, one function per kind, so every caller (the
//! ledger writer, a job, a use case) says the same thing. Amounts arrive already formatted.

use crate::NotificationKind;

/// A message ready to send: what it is, its subject line and its plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: NotificationKind,
    pub subject: String,
    pub text: String,
}

fn message(kind: NotificationKind, subject: String, text: String) -> Message {
    Message {
        kind,
        subject,
        text,
    }
}

pub fn topup_succeeded(credits: i64, total: &str, order_id: &str) -> Message {
    message(
        NotificationKind::AutoTopupSucceeded,
        format!("Your balance was topped up with {credits} credits"),
        format!(
            "Your balance fell below your auto top-up threshold, so {credits} credits were added \
             and your saved payment method was charged {total} (order {order_id})."
        ),
    )
}

pub fn topup_declined(credits: i64, total: &str, reason: &str, retry: Option<&str>) -> Message {
    let next = retry.map_or_else(
        || "Auto top-up is now off; turn it on again once the payment method works.".to_string(),
        |at| format!("It will be tried again after {at}."),
    );
    message(
        NotificationKind::AutoTopupFailed,
        "Your auto top-up payment was declined".into(),
        format!(
            "A top-up of {credits} credits ({total}) was declined by your payment method \
             ({reason}). {next}"
        ),
    )
}

pub fn topup_stopped(credits: i64, total: &str, reason: &str, resumes: &str) -> Message {
    message(
        NotificationKind::AutoTopupFailed,
        "Your auto top-up was stopped by a limit".into(),
        format!(
            "A top-up of {credits} credits ({total}) was not charged: {reason}. Auto top-up \
             resumes after {resumes}, or when you change its limits."
        ),
    )
}

pub fn topup_disabled(reason: &str) -> Message {
    message(
        NotificationKind::AutoTopupDisabled,
        "Auto top-up was turned off".into(),
        format!(
            "Auto top-up was turned off after repeated declines (last: {reason}). Update your \
             payment method and turn it on again to resume."
        ),
    )
}

pub fn balance_low(balance: i64, threshold: i64) -> Message {
    message(
        NotificationKind::BalanceLow,
        "Your credit balance is low".into(),
        format!("Your balance is {balance} credits, below your threshold of {threshold}."),
    )
}

/// What a stop reason means, for people.
pub fn stop_reason(code: &str) -> &'static str {
    match code {
        "max_credits_exceeded" => "it is larger than the largest top-up allowed",
        "daily_limit_reached" => "the number of top-ups allowed per day is used up",
        "monthly_limit_reached" => "it would pass your monthly limit",
        _ => "a limit stopped it",
    }
}
