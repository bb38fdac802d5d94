//! The sign-in methods this server offers besides the password: each provider is on when its
//! settings are, and `methods` lists exactly those.

use bursar_core::IdentityProvider;

use crate::auth::facebook::Facebook;
use crate::auth::oidc::OidcProvider;
use crate::config::Config;

pub struct SignInProviders {
    pub google: Option<OidcProvider>,
    pub apple: Option<OidcProvider>,
    pub facebook: Option<Facebook>,
}

impl SignInProviders {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            google: config.google.clone().map(OidcProvider::new).transpose()?,
            apple: config.apple.clone().map(OidcProvider::new).transpose()?,
            facebook: config.facebook.clone().map(Facebook::new).transpose()?,
        })
    }

    /// The OpenID Connect provider named in a path, if it is one and it is configured.
    pub fn oidc(&self, provider: IdentityProvider) -> Option<&OidcProvider> {
        match provider {
            IdentityProvider::Google => self.google.as_ref(),
            IdentityProvider::Apple => self.apple.as_ref(),
            _ => None,
        }
    }

    /// The ways to sign in here, in a fixed order.
    pub fn methods(&self) -> Vec<IdentityProvider> {
        let mut methods = vec![IdentityProvider::Password];
        if self.google.is_some() {
            methods.push(IdentityProvider::Google);
        }
        if self.apple.is_some() {
            methods.push(IdentityProvider::Apple);
        }
        if self.facebook.is_some() {
            methods.push(IdentityProvider::Facebook);
        }
        methods
    }
}
