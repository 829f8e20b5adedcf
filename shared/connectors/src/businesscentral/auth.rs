//! Business Central access tokens: Microsoft Entra client credentials (the app
//! registration's client id and secret, scope
//! `https://api.businesscentral.dynamics.com/.default`). Each process keeps its
//! own token and fetches another a minute before it expires, or once when
//! Business Central refuses it.
//! Reference: `../shared/docs/VENDORS.md` [B5].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::ConnectorError;
use ferry_core::ports::{Clock, Secret};
use serde::Deserialize;

use crate::credential::Credential;

const MARGIN: chrono::Duration = chrono::Duration::seconds(60);
pub const SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

pub struct Tokens {
    token_url: String,
    client_id: String,
    secret: Credential,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    cached: Mutex<Option<(Secret, DateTime<Utc>)>>,
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
            clock,
            http: crate::http::client(timeout),
            cached: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Secret, DateTime<Utc>)>> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn token(&self) -> Result<Secret, ConnectorError> {
        if let Some((t, until)) = self.cache().as_ref()
            && *until - MARGIN > self.clock.now()
        {
            return Ok(t.clone());
        }
        self.fetch().await
    }

    pub async fn renew(&self, used: &Secret) -> Result<Option<Secret>, ConnectorError> {
        if let Some((t, _)) = self.cache().as_ref()
            && t.expose() != used.expose()
        {
            return Ok(Some(t.clone()));
        }
        self.fetch().await.map(Some)
    }

    async fn fetch(&self) -> Result<Secret, ConnectorError> {
        let secret = self.secret.get().await?;
        let resp = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret.expose()),
                ("scope", SCOPE),
            ])
            .send()
            .await
            .map_err(crate::http::transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(crate::http::transport)?;
        if status.is_client_error() && status.as_u16() != 429 {
            return Err(ConnectorError::Config {
                message: format!(
                    "Microsoft Entra refused the client credentials ({status}): {text}"
                ),
            });
        }
        if !status.is_success() {
            return Err(crate::http::status_error(
                status,
                None,
                "businesscentral token",
                text.chars().take(300).collect(),
            ));
        }
        let t: TokenResponse = serde_json::from_str(&text)
            .map_err(|e| ConnectorError::protocol(format!("Entra token answer unreadable: {e}")))?;
        let token = Secret::new(t.access_token);
        let until = self.clock.now() + chrono::Duration::seconds(t.expires_in.clamp(0, 86_400));
        *self.cache() = Some((token.clone(), until));
        Ok(token)
    }
}
