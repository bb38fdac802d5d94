//! Sign in with Facebook: the client's user access token is checked with the Graph API's
//! `debug_token` under the app's own credentials (issued for this app, valid, not expired)
//! before the profile is read with it. The web pages get that token by exchanging the code
//! Facebook Login's dialog returns. Errors never carry a URL: the app secret and the tokens
//! travel in query strings.

use std::time::Duration;

use serde::Deserialize;

use crate::auth::oidc::{TokenError, VerifiedPerson};
use crate::config::FacebookSettings;

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Facebook {
    settings: FacebookSettings,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Debugged {
    data: TokenFacts,
}

#[derive(Deserialize)]
struct TokenFacts {
    app_id: Option<String>,
    #[serde(default)]
    is_valid: bool,
    user_id: Option<String>,
    /// 0 for a token that does not expire.
    #[serde(default)]
    expires_at: i64,
}

/// Facebook's answer to a code exchange.
#[derive(Deserialize)]
struct Exchanged {
    access_token: String,
}

#[derive(Deserialize)]
struct Profile {
    id: String,
    name: Option<String>,
    email: Option<String>,
}

impl Facebook {
    pub fn new(mut settings: FacebookSettings) -> anyhow::Result<Self> {
        settings.graph_url = settings.graph_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { settings, http })
    }

    pub async fn verify(
        &self,
        access_token: &str,
        now_s: i64,
    ) -> Result<VerifiedPerson, TokenError> {
        let app_token = format!("{}|{}", self.settings.app_id, self.settings.app_secret);
        let debugged: Debugged = self
            .get(
                "/debug_token",
                &[("input_token", access_token), ("access_token", &app_token)],
            )
            .await?;
        let facts = debugged.data;
        if facts.app_id.as_deref() != Some(self.settings.app_id.as_str()) {
            return Err(TokenError::Invalid(
                "the token was issued for another app".into(),
            ));
        }
        if !facts.is_valid {
            return Err(TokenError::Invalid(
                "Facebook says the token is not valid".into(),
            ));
        }
        if facts.expires_at != 0 && facts.expires_at <= now_s {
            return Err(TokenError::Expired);
        }
        let profile: Profile = self
            .get(
                "/me",
                &[("fields", "id,name,email"), ("access_token", access_token)],
            )
            .await?;
        if facts.user_id.as_deref() != Some(profile.id.as_str()) {
            return Err(TokenError::Invalid("the token is not this person's".into()));
        }
        Ok(VerifiedPerson {
            subject: profile.id,
            // Facebook does not say whether the owner confirmed the address, so it never links
            // an account by email (the member links Facebook from their account instead).
            email_verified: false,
            email: profile.email,
            name: profile.name.filter(|n| !n.trim().is_empty()),
        })
    }

    /// The settings, for the web pages' sign-in dialog.
    pub fn settings(&self) -> &FacebookSettings {
        &self.settings
    }

    /// Exchanges the code Facebook Login's dialog sent the browser back with (server to server,
    /// with the app secret) for the person's user access token, which is then checked with
    /// [`Self::verify`] like any other. `redirect_uri` must be the one the dialog was opened
    /// with.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, TokenError> {
        let exchanged: Exchanged = self
            .get(
                "/oauth/access_token",
                &[
                    ("client_id", self.settings.app_id.as_str()),
                    ("redirect_uri", redirect_uri),
                    ("client_secret", self.settings.app_secret.as_str()),
                    ("code", code),
                ],
            )
            .await?;
        Ok(exchanged.access_token)
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, TokenError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}{path}", self.settings.graph_url),
            query,
        )
        .map_err(|e| TokenError::KeysUnavailable(format!("BURSAR_FACEBOOK_GRAPH_URL: {e}")))?;
        let response = self.http.get(url).send().await.map_err(|e| {
            TokenError::KeysUnavailable(format!(
                "Facebook could not be reached: {}",
                e.without_url()
            ))
        })?;
        if response.status().is_client_error() {
            return Err(TokenError::Invalid("Facebook refused the token".into()));
        }
        let response = response
            .error_for_status()
            .map_err(|e| TokenError::KeysUnavailable(e.without_url().to_string()))?;
        response.json().await.map_err(|e| {
            TokenError::Invalid(format!(
                "unexpected answer from Facebook: {}",
                e.without_url()
            ))
        })
    }
}
