//! Business Central in the connector registry.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ports::ErpCapabilities;

use super::auth::Tokens;
use super::config::MAX_BATCH;
use super::webhook::BcWebhooks;
use super::{BusinessCentral, BusinessCentralConfig, Client};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for BusinessCentralConfig {
    const CONNECTOR: &'static str = "businesscentral";
}

const SECRET: &str = "businesscentral.client_secret";
const CLIENT_STATE: &str = "businesscentral.client_state";

#[async_trait]
impl ErpEntry for Entry {
    fn about(&self) -> About {
        About {
            name: BusinessCentralConfig::CONNECTOR,
            secrets: &[SECRET, CLIENT_STATE],
            webhooks: true,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: BusinessCentralConfig = parse(settings)?;
        checks::all([
            checks::not_empty("tenant_id", &c.tenant_id),
            checks::not_empty("environment", &c.environment),
            checks::not_empty("company_id", &c.company_id),
            checks::not_empty("client_id", &c.client_id),
            checks::http_url("base_url", &c.base()),
            checks::http_url("token_url", &c.token_endpoint()),
            checks::within("minute_headroom", c.minute_headroom.into(), 0, 1199),
            checks::within("batch_size", c.batch_size as u64, 1, MAX_BATCH as u64),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
        ])
    }

    fn capabilities(&self, settings: &toml::Table) -> Result<ErpCapabilities, String> {
        Ok(BusinessCentral::capabilities_for(&parse(settings)?))
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltErp, WiringError> {
        let cfg: BusinessCentralConfig = parse(settings).map_err(|e| site.config_error(e))?;
        site.require(SECRET).await?;
        site.require(CLIENT_STATE).await?;
        let gate = site.gate(
            BusinessCentral::account_key_for(&cfg),
            BusinessCentral::limits_for(&cfg),
        );
        let tokens = Arc::new(Tokens::new(
            cfg.token_endpoint(),
            cfg.client_id.clone(),
            site.credential(SECRET),
            site.wiring.clock.clone(),
            Duration::from_secs(cfg.timeout_seconds),
        ));
        let client = Arc::new(Client::new(cfg, tokens, gate));
        Ok(BuiltErp {
            webhook: Some(Arc::new(BcWebhooks::new(
                client.clone(),
                site.credential(CLIENT_STATE),
            ))),
            connector: Arc::new(BusinessCentral::new(client)),
        })
    }
}
