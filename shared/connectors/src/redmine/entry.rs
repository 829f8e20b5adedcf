//! Redmine in the connector registry. Redmine sends no webhooks: it is
//! polled, and swept for deletions.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Redmine, RedmineConfig};
use crate::registry::{About, BuiltPsa, PsaEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for RedmineConfig {
    const CONNECTOR: &'static str = "redmine";
}

#[async_trait]
impl PsaEntry for Entry {
    fn about(&self) -> About {
        About {
            name: RedmineConfig::CONNECTOR,
            secrets: &["redmine.api_key"],
            webhooks: false,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: RedmineConfig = parse(settings)?;
        checks::all([
            checks::http_url("base_url", &c.base_url),
            checks::currency("home_currency", &c.home_currency),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
        ])
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltPsa, WiringError> {
        let cfg: RedmineConfig = parse(settings).map_err(|e| site.config_error(e))?;
        let home = site.currency("psa.home_currency", &cfg.home_currency)?;
        site.require("redmine.api_key").await?;
        Ok(BuiltPsa {
            connector: Arc::new(Redmine::new(cfg, site.credential("redmine.api_key"), home)),
            webhook: None,
        })
    }
}
