//! The words of the notifications Bursar sends, one function per kind and each in English,
//! Simplified and Traditional Chinese, so every caller (the ledger writer, a job, a use case)
//! says the same thing in the reader's language. Amounts and times arrive already formatted.

use crate::{Language, NotificationKind};

/// A message ready to send: what it is, its subject line and its plain-text body (the HTML
/// part is made from the text when it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: NotificationKind,
    pub language: Language,
    pub subject: String,
    pub text: String,
}

/// Picks the text for `language` from the three versions.
fn pick(language: Language, en: String, hans: String, hant: String) -> String {
    match language {
        Language::En => en,
        Language::ZhHans => hans,
        Language::ZhHant => hant,
    }
}

fn message(kind: NotificationKind, language: Language, subject: String, text: String) -> Message {
    Message {
        kind,
        language,
        subject,
        text,
    }
}

pub fn topup_succeeded(lang: Language, credits: i64, total: &str, order_id: &str) -> Message {
    message(
        NotificationKind::AutoTopupSucceeded,
        lang,
        pick(
            lang,
            format!("Your balance was topped up with {credits} credits"),
            format!("已为您自动充值 {credits} 点"),
            format!("已為您自動儲值 {credits} 點"),
        ),
        pick(
            lang,
            format!(
                "Your balance fell below your auto top-up threshold, so {credits} credits were \
                 added and your saved payment method was charged {total} (order {order_id})."
            ),
            format!(
                "您的余额低于自动充值阈值，已为您充值 {credits} 点，并从已保存的支付方式扣款 \
                 {total}（订单 {order_id}）。"
            ),
            format!(
                "您的餘額低於自動儲值門檻，已為您儲值 {credits} 點，並從已儲存的付款方式扣款 \
                 {total}（訂單 {order_id}）。"
            ),
        ),
    )
}

pub fn topup_declined(
    lang: Language,
    credits: i64,
    total: &str,
    reason: &str,
    retry: Option<&str>,
) -> Message {
    let next = match retry {
        Some(at) => pick(
            lang,
            format!("It will be tried again after {at}."),
            format!("系统将在 {at} 之后重试。"),
            format!("系統將在 {at} 之後重試。"),
        ),
        None => pick(
            lang,
            "Auto top-up is now off; turn it on again once the payment method works.".into(),
            "自动充值已关闭；支付方式恢复可用后请重新开启。".into(),
            "自動儲值已關閉；付款方式恢復可用後請重新開啟。".into(),
        ),
    };
    message(
        NotificationKind::AutoTopupFailed,
        lang,
        pick(
            lang,
            "Your auto top-up payment was declined".into(),
            "自动充值扣款被拒绝".into(),
            "自動儲值扣款遭拒".into(),
        ),
        pick(
            lang,
            format!(
                "A top-up of {credits} credits ({total}) was declined by your payment method \
                 ({reason}). {next}"
            ),
            format!("{credits} 点（{total}）的自动充值被您的支付方式拒绝（{reason}）。{next}"),
            format!("{credits} 點（{total}）的自動儲值遭您的付款方式拒絕（{reason}）。{next}"),
        ),
    )
}

pub fn topup_stopped(
    lang: Language,
    credits: i64,
    total: &str,
    reason_code: &str,
    resumes: &str,
) -> Message {
    let reason = stop_reason(lang, reason_code);
    message(
        NotificationKind::AutoTopupFailed,
        lang,
        pick(
            lang,
            "Your auto top-up was stopped by a limit".into(),
            "自动充值因限额而暂停".into(),
            "自動儲值因限額而暫停".into(),
        ),
        pick(
            lang,
            format!(
                "A top-up of {credits} credits ({total}) was not charged: {reason}. Auto top-up \
                 resumes after {resumes}, or when you change its limits."
            ),
            format!(
                "{credits} 点（{total}）的自动充值未扣款：{reason}。自动充值将在 {resumes} \
                 之后恢复，或在您修改限额后恢复。"
            ),
            format!(
                "{credits} 點（{total}）的自動儲值未扣款：{reason}。自動儲值將在 {resumes} \
                 之後恢復，或在您修改限額後恢復。"
            ),
        ),
    )
}

pub fn topup_disabled(lang: Language, reason: &str) -> Message {
    message(
        NotificationKind::AutoTopupDisabled,
        lang,
        pick(
            lang,
            "Auto top-up was turned off".into(),
            "自动充值已关闭".into(),
            "自動儲值已關閉".into(),
        ),
        pick(
            lang,
            format!(
                "Auto top-up was turned off after repeated declines (last: {reason}). Update \
                 your payment method and turn it on again to resume."
            ),
            format!(
                "多次扣款被拒后，自动充值已关闭（最近一次：{reason}）。请更新支付方式后重新开启。"
            ),
            format!(
                "多次扣款遭拒後，自動儲值已關閉（最近一次：{reason}）。請更新付款方式後重新開啟。"
            ),
        ),
    )
}

pub fn balance_low(lang: Language, balance: i64, threshold: i64) -> Message {
    message(
        NotificationKind::BalanceLow,
        lang,
        pick(
            lang,
            "Your credit balance is low".into(),
            "您的余额不足".into(),
            "您的餘額不足".into(),
        ),
        pick(
            lang,
            format!("Your balance is {balance} credits, below your threshold of {threshold}."),
            format!("您的余额为 {balance} 点，已低于您设定的 {threshold} 点。"),
            format!("您的餘額為 {balance} 點，已低於您設定的 {threshold} 點。"),
        ),
    )
}

pub fn subscription_ending(lang: Language, package: &str, ends: &str, days: i64) -> Message {
    message(
        NotificationKind::SubscriptionEnding,
        lang,
        pick(
            lang,
            format!("Your subscription ends in {days} days"),
            format!("您的订阅将在 {days} 天后到期"),
            format!("您的訂閱將在 {days} 天後到期"),
        ),
        pick(
            lang,
            format!(
                "Your subscription to {package} ends at {ends}. Renew it to keep your daily credits."
            ),
            format!("您订阅的 {package} 将于 {ends} 到期。续订即可继续获得每日额度。"),
            format!("您訂閱的 {package} 將於 {ends} 到期。續訂即可繼續獲得每日額度。"),
        ),
    )
}

/// A one-time sign-in code, valid for `minutes`.
pub fn sign_in_code(lang: Language, code: &str, minutes: i64) -> Message {
    message(
        NotificationKind::SignInCode,
        lang,
        pick(
            lang,
            format!("Your sign-in code: {code}"),
            format!("您的登录验证码：{code}"),
            format!("您的登入驗證碼：{code}"),
        ),
        pick(
            lang,
            format!(
                "Your sign-in code is {code}. It works once, for {minutes} minutes. If you did not ask for it, ignore this message."
            ),
            format!(
                "您的登录验证码是 {code}，{minutes} 分钟内有效，仅可使用一次。如非本人操作，请忽略此消息。"
            ),
            format!(
                "您的登入驗證碼是 {code}，{minutes} 分鐘內有效，僅可使用一次。如非本人操作，請忽略此訊息。"
            ),
        ),
    )
}

pub fn subscription_ended(lang: Language) -> Message {
    message(
        NotificationKind::SubscriptionEnded,
        lang,
        pick(
            lang,
            "Your subscription has ended".into(),
            "您的订阅已到期".into(),
            "您的訂閱已到期".into(),
        ),
        pick(
            lang,
            "Your subscription has ended and its daily credits have stopped. Buy it again to resume.".into(),
            "您的订阅已到期，每日额度已停止发放。重新购买即可恢复。".into(),
            "您的訂閱已到期，每日額度已停止發放。重新購買即可恢復。".into(),
        ),
    )
}

pub fn renewal_declined(lang: Language, reason: &str, turned_off: bool) -> Message {
    let next = if turned_off {
        pick(
            lang,
            "Automatic renewal is now off; renew by hand or turn it on again.".into(),
            "自动续订已关闭；请手动续订或重新开启。".into(),
            "自動續訂已關閉；請手動續訂或重新開啟。".into(),
        )
    } else {
        pick(
            lang,
            "It will be tried again later.".into(),
            "稍后将重试。".into(),
            "稍後將重試。".into(),
        )
    };
    message(
        NotificationKind::PaymentFailed,
        lang,
        pick(
            lang,
            "Your subscription renewal payment was declined".into(),
            "订阅续费扣款被拒绝".into(),
            "訂閱續費扣款遭拒".into(),
        ),
        pick(
            lang,
            format!("Your saved payment method declined the renewal ({reason}). {next}"),
            format!("您已保存的支付方式拒绝了续费（{reason}）。{next}"),
            format!("您已儲存的付款方式拒絕了續費（{reason}）。{next}"),
        ),
    )
}

pub fn renewal_without_method(lang: Language) -> Message {
    renewal_declined(
        lang,
        match lang {
            Language::En => "no saved payment method",
            Language::ZhHans => "没有已保存的支付方式",
            Language::ZhHant => "沒有已儲存的付款方式",
        },
        true,
    )
}

/// What a stop reason means, for people.
fn stop_reason(lang: Language, code: &str) -> String {
    let (en, hans, hant) = match code {
        "max_credits_exceeded" => (
            "it is larger than the largest top-up allowed",
            "超过单次充值上限",
            "超過單次儲值上限",
        ),
        "daily_limit_reached" => (
            "the number of top-ups allowed per day is used up",
            "今日自动充值次数已用完",
            "今日自動儲值次數已用完",
        ),
        "monthly_limit_reached" => (
            "it would pass your monthly limit",
            "将超过您的每月限额",
            "將超過您的每月限額",
        ),
        _ => ("a limit stopped it", "受限额限制", "受限額限制"),
    };
    pick(lang, en.into(), hans.into(), hant.into())
}

/// The HTML part of a message: its text, escaped, one paragraph per line.
pub fn html_of(message: &Message) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let paragraphs: String = message
        .text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("<p>{}</p>", escape(line)))
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>{paragraphs}</body></html>",
        message.language.as_str(),
        escape(&message.subject)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_written_in_each_language() {
        for lang in Language::ALL {
            let messages = [
                topup_succeeded(*lang, 650, "668.85 USD", "ord_1"),
                topup_declined(*lang, 650, "668.85 USD", "card_declined", Some("soon")),
                topup_declined(*lang, 650, "668.85 USD", "card_declined", None),
                topup_stopped(*lang, 650, "668.85 USD", "daily_limit_reached", "tomorrow"),
                topup_disabled(*lang, "card_declined"),
                balance_low(*lang, 100, 150),
                subscription_ending(*lang, "Pro", "2027-01-01", 3),
                subscription_ended(*lang),
                renewal_declined(*lang, "card_declined", false),
                renewal_without_method(*lang),
            ];
            for message in &messages {
                assert_eq!(message.language, *lang);
                assert!(!message.subject.is_empty() && !message.text.is_empty());
                let ascii = message.text.is_ascii();
                assert_eq!(ascii, *lang == Language::En, "{message:?}");
            }
        }
        let hans = topup_succeeded(Language::ZhHans, 650, "668.85 USD", "ord_1");
        let hant = topup_succeeded(Language::ZhHant, 650, "668.85 USD", "ord_1");
        assert_ne!(hans.text, hant.text);
    }

    #[test]
    fn the_html_part_escapes_the_text() {
        let mut message = topup_disabled(Language::En, "<script>");
        message.text.push_str("\nsecond line");
        let html = html_of(&message);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("<p>second line</p>"));
        assert!(html.contains("lang=\"en\""));
    }
}
