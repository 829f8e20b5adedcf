//! Harvest in the connector registry. Harvest sends no webhooks: it is
//! polled, and swept for deletions.

use std::sync::Arc;

use async_trait::async_trait;

use super::client::LIMITS;
use super::config::MAX_PAGE;
use super::{Harvest, HarvestConfig};
use crate::registry::{About, BuiltPsa, PsaEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for HarvestConfig {
    const CONNECTOR: &'static str = "harvest";
}

const TOKEN: &str = "harvest.access_token";

#[async_trait]
impl PsaEntry for Entry {
    fn about(&self) -> About {
        About {
            name: HarvestConfig::CONNECTOR,
            secrets: &[TOKEN],
            webhooks: false,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: HarvestConfig = parse(settings)?;
        checks::all([
            checks::http_url("base_url", &c.base_url),
            checks::not_empty("account_id", &c.account_id),
            checks::not_empty("user_agent", &c.user_agent),
            checks::currency("home_currency", &c.home_currency),
            checks::within("page_size", u64::from(c.page_size), 1, u64::from(MAX_PAGE)),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
        ])
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltPsa, WiringError> {
        let cfg: HarvestConfig = parse(settings).map_err(|e| site.config_error(e))?;
        let home = site.currency("psa.home_currency", &cfg.home_currency)?;
        site.require(TOKEN).await?;
        Ok(BuiltPsa {
            connector: Arc::new(Harvest::new(
                cfg.clone(),
                site.credential(TOKEN),
                home,
                Some(site.gate(format!("harvest:{}", cfg.account_id), LIMITS)),
            )),
            webhook: None,
        })
    }
}
