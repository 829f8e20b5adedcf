//! Xero in the connector registry.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{OAuthTokens, Xero, XeroAuth, XeroConfig, XeroWebhooks};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;
use ferry_core::ports::ErpCapabilities;

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
        let c: XeroConfig = parse(settings)?;
        checks::all([
            checks::http_url("base_url", &c.base_url),
            checks::http_url("token_url", &c.token_url),
            checks::not_empty("tenant_id", &c.tenant_id),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
            // Xero allows 60 calls a minute; the headroom is what Ferry leaves unused.
            checks::within("minute_headroom", c.minute_headroom.into(), 0, 59),
            checks::within("batch_size", c.batch_size as u64, 1, 100),
        ])
    }

    fn capabilities(&self, settings: &toml::Table) -> Result<ErpCapabilities, String> {
        Ok(Xero::capabilities_for(&parse(settings)?))
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
