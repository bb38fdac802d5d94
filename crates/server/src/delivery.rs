//! Delivering notifications: by email through SMTP (`BURSAR_SMTP_URL`, from
//! `BURSAR_MAIL_FROM`), else by SMS through the gateway (`BURSAR_SMS_GATEWAY_URL`, which takes
//! `POST {"to", "text"}` with `Authorization: Bearer $BURSAR_SMS_GATEWAY_TOKEN`) to a user with a
//! phone number, else to the log. Either way the message stays in `notifications`.

use std::time::Duration;

use bursar_core::NotificationChannel;
use bursar_core::messages::{Message, html_of};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;

/// A gateway or mail server slower than this is given up on for this attempt (the job retries).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Senders {
    mail: Option<Mail>,
    sms: Option<SmsGateway>,
}

struct Mail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

struct SmsGateway {
    url: String,
    token: Option<String>,
    client: reqwest::Client,
}

/// Where a message went.
#[derive(Debug, Clone)]
pub struct Sent {
    pub channel: NotificationChannel,
    pub destination: Option<String>,
}

/// The recipient's addresses.
pub struct Recipient<'a> {
    pub email: &'a str,
    pub phone: Option<&'a str>,
}

impl Senders {
    /// Builds the configured senders; call it inside the Tokio runtime (the SMTP pool needs
    /// it). A setting that cannot work is an error at start-up, not at the first message.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mail = match &config.smtp_url {
            None => None,
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("BURSAR_SMTP_URL: {e}"))?
                    .timeout(Some(SEND_TIMEOUT))
                    .build();
                let from = config
                    .mail_from
                    .parse::<Mailbox>()
                    .map_err(|e| anyhow::anyhow!("BURSAR_MAIL_FROM: {e}"))?;
                Some(Mail { transport, from })
            }
        };
        let sms = match &config.sms_gateway_url {
            None => None,
            Some(url) => Some(SmsGateway {
                url: url.clone(),
                token: config.sms_gateway_token.clone(),
                client: reqwest::Client::builder()
                    .timeout(SEND_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            }),
        };
        Ok(Self { mail, sms })
    }

    /// Sends `message` by the first channel that can reach `to`.
    pub async fn send(&self, message: &Message, to: &Recipient<'_>) -> Result<Sent, String> {
        if let Some(mail) = &self.mail {
            mail.send(message, to.email).await?;
            return Ok(Sent {
                channel: NotificationChannel::Email,
                destination: Some(to.email.to_string()),
            });
        }
        if let (Some(sms), Some(phone)) = (&self.sms, to.phone) {
            sms.send(message, phone).await?;
            return Ok(Sent {
                channel: NotificationChannel::Sms,
                destination: Some(phone.to_string()),
            });
        }
        tracing::info!(
            kind = %message.kind,
            subject = %message.subject,
            text = %message.text,
            "notification (no mail or SMS gateway configured)"
        );
        Ok(Sent {
            channel: NotificationChannel::Log,
            destination: None,
        })
    }
}

impl Senders {
    /// Sends `message` to one address by the channel asked for (a sign-in code): by email or
    /// by SMS, or to the log when that channel is not configured.
    pub async fn send_to(
        &self,
        channel: bursar_core::CodeChannel,
        message: &Message,
        destination: &str,
    ) -> Result<Sent, String> {
        match (channel, &self.mail, &self.sms) {
            (bursar_core::CodeChannel::Email, Some(mail), _) => {
                mail.send(message, destination).await?;
            }
            (bursar_core::CodeChannel::Sms, _, Some(sms)) => {
                sms.send(message, destination).await?;
            }
            _ => {
                tracing::info!(
                    kind = %message.kind,
                    text = %message.text,
                    "message for {destination} (no {channel} transport configured)"
                );
                return Ok(Sent {
                    channel: NotificationChannel::Log,
                    destination: None,
                });
            }
        }
        Ok(Sent {
            channel: match channel {
                bursar_core::CodeChannel::Email => NotificationChannel::Email,
                bursar_core::CodeChannel::Sms => NotificationChannel::Sms,
            },
            destination: Some(destination.to_string()),
        })
    }

    /// Whether messages on `channel` reach anyone but the log.
    pub fn delivers(&self, channel: bursar_core::CodeChannel) -> bool {
        match channel {
            bursar_core::CodeChannel::Email => self.mail.is_some(),
            bursar_core::CodeChannel::Sms => self.sms.is_some(),
        }
    }
}

impl Mail {
    async fn send(&self, message: &Message, email: &str) -> Result<(), String> {
        let to = email
            .parse::<Mailbox>()
            .map_err(|e| format!("the address {email:?} cannot be mailed: {e}"))?;
        let mail = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .header(ContentLanguage(message.language.as_str().to_string()))
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html_of(message),
            ))
            .map_err(|e| format!("the message could not be built: {e}"))?;
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| format!("the mail server refused or could not be reached: {e}"))
    }
}

impl SmsGateway {
    async fn send(&self, message: &Message, phone: &str) -> Result<(), String> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&serde_json::json!({ "to": phone, "text": message.text }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            // Without its URL, which may carry a key: the error is shown to the member.
            .map_err(|e| format!("the SMS gateway could not be reached: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("the SMS gateway answered {}", response.status()));
        }
        Ok(())
    }
}

/// `Content-Language`, so mail clients know what they are showing.
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl header::Header for ContentLanguage {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}
