//! Access tokens from an OAuth 2.0 client-credentials grant, as the
//! connectors that use one (NetSuite, Business Central) share them: the grant
//! exchanged (only the credential it carries differs), the answer read, the
//! token kept per process until a minute before it expires, and replaced once
//! when the vendor refuses it (unless another call already did).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ferry_core::ConnectorError;
use ferry_core::ports::{Clock, Secret};
use serde::Deserialize;

/// A token this close to its expiry is replaced instead of used.
const MARGIN: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

/// One connection's current token.
pub struct TokenCache {
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(Secret, DateTime<Utc>)>>,
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        TokenCache {
            clock,
            cached: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Secret, DateTime<Utc>)>> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept token while it has more than a minute left.
    pub fn fresh(&self) -> Option<Secret> {
        let now = self.clock.now();
        self.cache()
            .as_ref()
            .filter(|(_, until)| *until - MARGIN > now)
            .map(|(t, _)| t.clone())
    }

    /// A token other than the refused `used`, if another call already got one.
    pub fn replaced(&self, used: &Secret) -> Option<Secret> {
        self.cache()
            .as_ref()
            .filter(|(t, _)| t.expose() != used.expose())
            .map(|(t, _)| t.clone())
    }

    /// The kept token, or a new one from `fetch` when it is about to expire.
    pub async fn get<F>(&self, fetch: F) -> Result<Secret, ConnectorError>
    where
        F: std::future::Future<Output = Result<Secret, ConnectorError>>,
    {
        match self.fresh() {
            Some(t) => Ok(t),
            None => fetch.await,
        }
    }

    /// The vendor refused `used`: another call's newer token, or a new one from `fetch`.
    pub async fn renew<F>(&self, used: &Secret, fetch: F) -> Result<Option<Secret>, ConnectorError>
    where
        F: std::future::Future<Output = Result<Secret, ConnectorError>>,
    {
        match self.replaced(used) {
            Some(t) => Ok(Some(t)),
            None => fetch.await.map(Some),
        }
    }

    /// Posts the grant's `form` to `url` and keeps the token it answers.
    /// A refusal (4xx but 429) is the integration's configuration, in the
    /// vendor's words; anything else is classified as every call is.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        url: &str,
        form: &[(&str, &str)],
        vendor: &str,
    ) -> Result<Secret, ConnectorError> {
        let resp = http
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(crate::http::transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(crate::http::transport)?;
        if status.is_client_error() && status.as_u16() != 429 {
            return Err(ConnectorError::Config {
                message: format!("{vendor} refused the client credentials ({status}): {text}"),
            });
        }
        if !status.is_success() {
            return Err(crate::http::status_error(
                status,
                None,
                &format!("{vendor} token"),
                text.chars().take(300).collect(),
            ));
        }
        let t: TokenResponse = serde_json::from_str(&text).map_err(|e| {
            ConnectorError::protocol(format!("{vendor}'s token answer is unreadable: {e}"))
        })?;
        let token = Secret::new(t.access_token);
        let until = self.clock.now() + chrono::Duration::seconds(t.expires_in.clamp(0, 86_400));
        *self.cache() = Some((token.clone(), until));
        Ok(token)
    }
}
