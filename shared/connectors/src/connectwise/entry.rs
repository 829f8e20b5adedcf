//! ConnectWise Manage in the connector registry.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ConnectWise, ConnectWiseConfig, ConnectWiseCredentials};
use crate::registry::{About, BuiltPsa, PsaEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for ConnectWiseConfig {
    const CONNECTOR: &'static str = "connectwise";
}

const SECRETS: &[&str] = &[
    "connectwise.public_key",
    "connectwise.private_key",
    "connectwise.client_id",
];

#[async_trait]
impl PsaEntry for Entry {
    fn about(&self) -> About {
        About {
            name: ConnectWiseConfig::CONNECTOR,
            secrets: SECRETS,
            webhooks: true,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: ConnectWiseConfig = parse(settings)?;
        checks::all(
            [
                checks::http_url("base_url", &c.base_url),
                checks::not_empty("company_id", &c.company_id),
                checks::currency("home_currency", &c.home_currency),
                checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
            ]
            .into_iter()
            .chain(
                c.key_url_origins
                    .iter()
                    .map(|o| checks::http_url("key_url_origins", o)),
            ),
        )
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltPsa, WiringError> {
        let cfg: ConnectWiseConfig = parse(settings).map_err(|e| site.config_error(e))?;
        let home = site.currency("psa.home_currency", &cfg.home_currency)?;
        for name in SECRETS {
            site.require(name).await?;
        }
        let creds = ConnectWiseCredentials {
            public_key: site.credential("connectwise.public_key"),
            private_key: site.credential("connectwise.private_key"),
            client_id: site.credential("connectwise.client_id"),
        };
        let cw = ConnectWise::new(cfg, creds, home);
        Ok(BuiltPsa {
            webhook: Some(cw.verifier()),
            connector: Arc::new(cw),
        })
    }
}
