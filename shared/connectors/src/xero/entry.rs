//! Xero in the connector registry.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{OAuthTokens, Xero, XeroAuth, XeroConfig, XeroWebhooks};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for XeroConfig {
    const CONNECTOR: &'static str = "xero";
}

#[async_trait]
impl ErpEntry for Entry {
    fn about(&self) -> About {
        About {
            name: XeroConfig::CONNECTOR,
            // xero.access_token for a fixed token, or xero.client_id,
            // xero.client_secret and xero.refresh_token for an OAuth connection
            // (then Ferry keeps xero.access_token and
            // xero.access_token_expires_at up to date itself).
            secrets: &["xero.access_token", "xero.webhook_key"],
            webhooks: true,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        parse::<XeroConfig>(settings).map(drop)
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltErp, WiringError> {
        let cfg: XeroConfig = parse(settings).map_err(|e| site.config_error(e))?;
        let gate = site.gate(Xero::account_key_for(&cfg), Xero::limits_for(&cfg));
        site.require("xero.webhook_key").await?;
        let webhook = Arc::new(XeroWebhooks::new(site.credential("xero.webhook_key")));
        // An OAuth connection when the secret holds a refresh token; a fixed token otherwise.
        let auth = if site.has("xero.refresh_token").await {
            XeroAuth::OAuth(Arc::new(OAuthTokens::new(
                site.tenant.clone(),
                site.wiring.secrets.clone(),
                site.wiring.locks.clone(),
                site.wiring.clock.clone(),
                cfg.token_url.clone(),
                Duration::from_secs(cfg.timeout_seconds),
            )))
        } else {
            XeroAuth::Fixed(site.require("xero.access_token").await?)
        };
        Ok(BuiltErp {
            connector: Arc::new(Xero::new(cfg, auth, gate)),
            webhook: Some(webhook),
        })
    }
}
