//! Xero access tokens. A tenant either has a fixed token (`xero.access_token`)
//! or an OAuth connection (`xero.client_id`, `xero.client_secret`,
//! `xero.refresh_token`). Xero access tokens live 30 minutes and each refresh
//! token works once (with a 30-minute grace), so two functions refreshing at
//! the same moment would race and one would lose the connection. Refreshing is
//! therefore done by one writer per tenant: whoever takes the tenant's
//! `xero.oauth` lock re-reads the secret (another writer may just have
//! refreshed), exchanges the refresh token, stores the new pair in the secret,
//! and lets go. Everyone else waits for the stored result.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::ConnectorError;
use ferry_core::ports::{Clock, LockStore, Secret, Secrets};
use serde::Deserialize;

/// The lock that makes refreshing single-writer.
pub const LOCK: &str = "xero.oauth";
/// A token this close to its expiry is refreshed instead of used.
const MARGIN: chrono::Duration = chrono::Duration::seconds(60);
/// How long a holder may take to refresh before others may take over.
const HOLD: chrono::Duration = chrono::Duration::seconds(30);

/// Where a Xero connector gets its bearer token.
pub enum XeroAuth {
    Fixed(Secret),
    OAuth(Arc<OAuthTokens>),
}

impl XeroAuth {
    pub async fn token(&self) -> Result<Secret, ConnectorError> {
        match self {
            XeroAuth::Fixed(t) => Ok(t.clone()),
            XeroAuth::OAuth(o) => o.access_token().await,
        }
    }

    /// Xero refused `used` (401): get a different one if the connection can.
    pub async fn renew(&self, used: &Secret) -> Result<Option<Secret>, ConnectorError> {
        match self {
            XeroAuth::Fixed(_) => Ok(None),
            XeroAuth::OAuth(o) => o.refresh(Some(used)).await.map(Some),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
    refresh_token: String,
}

/// One tenant's OAuth connection to Xero.
pub struct OAuthTokens {
    pub tenant: TenantId,
    pub secrets: Arc<dyn Secrets>,
    pub locks: Arc<dyn LockStore>,
    pub clock: Arc<dyn Clock>,
    pub http: reqwest::Client,
    pub token_url: String,
    /// This process's name on the lock.
    pub holder: String,
    cached: Mutex<Option<(Secret, DateTime<Utc>)>>,
}

fn store_err(e: ferry_core::PortError) -> ConnectorError {
    ConnectorError::transient(format!("secret store: {e}"))
}

impl OAuthTokens {
    pub fn new(
        tenant: TenantId,
        secrets: Arc<dyn Secrets>,
        locks: Arc<dyn LockStore>,
        clock: Arc<dyn Clock>,
        token_url: String,
        timeout: Duration,
    ) -> Self {
        OAuthTokens {
            tenant,
            secrets,
            locks,
            clock,
            http: crate::http::client(timeout),
            token_url,
            holder: format!("{:016x}", fastrand::u64(..)),
            cached: Mutex::new(None),
        }
    }

    /// A token valid for at least another minute.
    pub async fn access_token(&self) -> Result<Secret, ConnectorError> {
        let now = self.clock.now();
        if let Some((t, exp)) = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            && exp - MARGIN > now
        {
            return Ok(t);
        }
        if let Some(t) = self.stored(false, None).await? {
            return Ok(t);
        }
        self.refresh(None).await
    }

    /// The stored access token if it is still good (and is not `refused`).
    async fn stored(
        &self,
        fresh: bool,
        refused: Option<&Secret>,
    ) -> Result<Option<Secret>, ConnectorError> {
        let read = |name: &'static str| async move {
            if fresh {
                self.secrets.get_fresh(&self.tenant, name).await
            } else {
                self.secrets.get(&self.tenant, name).await
            }
        };
        let (Ok(token), Ok(expires)) = (
            read("xero.access_token").await,
            read("xero.access_token_expires_at").await,
        ) else {
            return Ok(None);
        };
        let Ok(expires) = DateTime::parse_from_rfc3339(expires.expose()) else {
            return Ok(None);
        };
        let expires = expires.with_timezone(&Utc);
        if expires - MARGIN <= self.clock.now() || refused.is_some_and(|r| r == &token) {
            return Ok(None);
        }
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((token.clone(), expires));
        Ok(Some(token))
    }

    /// Refreshes as the single writer, or waits for the writer's result.
    pub async fn refresh(&self, refused: Option<&Secret>) -> Result<Secret, ConnectorError> {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let deadline = self.clock.now() + chrono::Duration::seconds(20);
        loop {
            let now = self.clock.now();
            if self
                .locks
                .try_acquire(&self.tenant, LOCK, &self.holder, now, now + HOLD)
                .await
                .map_err(store_err)?
            {
                let result = self.exchange(refused).await;
                if let Err(e) = self.locks.release(&self.tenant, LOCK, &self.holder).await {
                    tracing::warn!(tenant = %self.tenant, error = %e, "could not release the Xero token lock; it expires");
                }
                return result;
            }
            // Another function is refreshing: use what it stores.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(t) = self.stored(true, refused).await? {
                return Ok(t);
            }
            if self.clock.now() > deadline {
                return Err(ConnectorError::transient(
                    "another function has held the Xero token refresh for too long",
                ));
            }
        }
    }

    /// Under the lock: re-read, and exchange the refresh token only if nobody did.
    async fn exchange(&self, refused: Option<&Secret>) -> Result<Secret, ConnectorError> {
        if let Some(t) = self.stored(true, refused).await? {
            return Ok(t);
        }
        let get = |name: &'static str| async move {
            self.secrets
                .get_fresh(&self.tenant, name)
                .await
                .map_err(|e| ConnectorError::Config {
                    message: format!("Xero OAuth needs secret {name}: {e}"),
                })
        };
        let (client_id, client_secret, refresh) = (
            get("xero.client_id").await?,
            get("xero.client_secret").await?,
            get("xero.refresh_token").await?,
        );
        let resp = self
            .http
            .post(&self.token_url)
            .basic_auth(client_id.expose(), Some(client_secret.expose()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ])
            .send()
            .await
            .map_err(crate::http::transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(crate::http::transport)?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ConnectorError::transient(format!(
                "Xero token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            // invalid_grant: the refresh token expired (60 days unused) or was revoked.
            return Err(ConnectorError::Config {
                message: format!(
                    "Xero refused the token refresh ({status}: {}); reconnect the organisation",
                    text.chars().take(200).collect::<String>()
                ),
            });
        }
        let t: TokenResponse = serde_json::from_str(&text)
            .map_err(|e| ConnectorError::protocol(format!("Xero token response: {e}")))?;
        let expires = self.clock.now() + chrono::Duration::seconds(t.expires_in);
        let access = Secret::new(t.access_token);
        // The new refresh token must be stored before anyone can need it: the old
        // one only survives Xero's grace period.
        self.secrets
            .put(
                &self.tenant,
                &[
                    ("xero.access_token", &access),
                    (
                        "xero.access_token_expires_at",
                        &Secret::new(expires.to_rfc3339()),
                    ),
                    ("xero.refresh_token", &Secret::new(t.refresh_token)),
                ],
            )
            .await
            .map_err(store_err)?;
        tracing::info!(tenant = %self.tenant, "refreshed the Xero access token");
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((access.clone(), expires));
        Ok(access)
    }
}
