//! Business Central access tokens: Microsoft Entra client credentials (the app
//! registration's client id and secret, scope
//! `https://api.businesscentral.dynamics.com/.default`). Each process keeps its
//! own token and fetches another a minute before it expires, or once when
//! Business Central refuses it.
//! Reference: `../shared/docs/VENDORS.md` [B5].

use std::sync::Arc;
use std::time::Duration;

use ferry_core::ConnectorError;
use ferry_core::ports::{Clock, Secret};

use crate::credential::Credential;
use crate::token::TokenCache;

pub const SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

pub struct Tokens {
    token_url: String,
    client_id: String,
    secret: Credential,
    http: reqwest::Client,
    tokens: TokenCache,
}

impl Tokens {
    pub fn new(
        token_url: String,
        client_id: String,
        secret: Credential,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Self {
        Tokens {
            token_url,
            client_id,
            secret,
            http: crate::http::client(timeout),
            tokens: TokenCache::new(clock),
        }
    }

    pub async fn token(&self) -> Result<Secret, ConnectorError> {
        self.tokens.get(self.fetch()).await
    }

    pub async fn renew(&self, used: &Secret) -> Result<Option<Secret>, ConnectorError> {
        self.tokens.renew(used, self.fetch()).await
    }

    async fn fetch(&self) -> Result<Secret, ConnectorError> {
        let secret = self.secret.get().await?;
        self.tokens
            .exchange(
                &self.http,
                &self.token_url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", secret.expose()),
                    ("scope", SCOPE),
                ],
                "Microsoft Entra",
            )
            .await
    }
}
