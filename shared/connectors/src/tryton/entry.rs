//! Tryton in the connector registry. Tryton sends no webhooks: payments are
//! read back by the sweep and reconciliation.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Tryton, TrytonConfig};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, parse};
use crate::tenant::WiringError;

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
        parse::<TrytonConfig>(settings).map(drop)
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
