//! Tryton in the connector registry. Tryton sends no webhooks: payments are
//! read back by the sweep and reconciliation.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Tryton, TrytonConfig};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;
use ferry_core::ports::ErpCapabilities;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for TrytonConfig {
    const CONNECTOR: &'static str = "tryton";
}

#[async_trait]
impl ErpEntry for Entry {
    fn about(&self) -> About {
        About {
            name: TrytonConfig::CONNECTOR,
            secrets: &["tryton.rest_key"],
            webhooks: false,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: TrytonConfig = parse(settings)?;
        checks::all([
            checks::http_url("base_url", &c.base_url),
            checks::not_empty("database", &c.database),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
            checks::within("per_minute", c.per_minute.into(), 1, 100_000),
            checks::within("concurrent", c.concurrent.into(), 1, 64),
            checks::within("page_size", c.page_size as u64, 1, 10_000),
        ])
    }

    fn capabilities(&self, _settings: &toml::Table) -> Result<ErpCapabilities, String> {
        Ok(Tryton::capabilities_for())
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltErp, WiringError> {
        let cfg: TrytonConfig = parse(settings).map_err(|e| site.config_error(e))?;
        let gate = site.gate(Tryton::account_key_for(&cfg), Tryton::limits_for(&cfg));
        site.require("tryton.rest_key").await?;
        Ok(BuiltErp {
            connector: Arc::new(Tryton::new(cfg, site.credential("tryton.rest_key"), gate)),
            webhook: None,
        })
    }
}
