//! NetSuite in the connector registry. NetSuite sends no webhooks: payments
//! come back through the payment sweep.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ports::ErpCapabilities;

use super::config::MAX_BATCH;
use super::{ClientCredentials, NetSuite, NetSuiteConfig};
use crate::registry::{About, BuiltErp, ErpEntry, Settings, Site, checks, parse};
use crate::tenant::WiringError;

pub struct Entry;

pub static ENTRY: Entry = Entry;

impl Settings for NetSuiteConfig {
    const CONNECTOR: &'static str = "netsuite";
}

const KEY: &str = "netsuite.private_key";

#[async_trait]
impl ErpEntry for Entry {
    fn about(&self) -> About {
        About {
            name: NetSuiteConfig::CONNECTOR,
            secrets: &[KEY],
            webhooks: false,
        }
    }

    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        let c: NetSuiteConfig = parse(settings)?;
        let mut all = vec![
            checks::not_empty("account_id", &c.account_id),
            checks::not_empty("client_id", &c.client_id),
            checks::not_empty("certificate_id", &c.certificate_id),
            checks::not_empty("subsidiary", &c.subsidiary),
            checks::http_url("base_url", &c.base()),
            checks::within("concurrency", c.concurrency.into(), 1, 100),
            checks::within("batch_size", c.batch_size as u64, 1, MAX_BATCH as u64),
            checks::within("timeout_seconds", c.timeout_seconds, 1, 300),
            checks::within("job_wait_seconds", c.job_wait_seconds, 1, 900),
        ];
        all.extend(
            c.currencies
                .keys()
                .map(|code| checks::currency("currencies", code)),
        );
        checks::all(all)
    }

    fn capabilities(&self, settings: &toml::Table) -> Result<ErpCapabilities, String> {
        Ok(NetSuite::capabilities_for(&parse(settings)?))
    }

    async fn build(
        &self,
        settings: &toml::Table,
        site: &Site<'_>,
    ) -> Result<BuiltErp, WiringError> {
        let cfg: NetSuiteConfig = parse(settings).map_err(|e| site.config_error(e))?;
        site.require(KEY).await?;
        let gate = site.gate(NetSuite::account_key_for(&cfg), NetSuite::limits_for(&cfg));
        let auth = Arc::new(ClientCredentials::new(
            cfg.token_url(),
            cfg.client_id.clone(),
            cfg.certificate_id.clone(),
            site.credential(KEY),
            site.wiring.clock.clone(),
            Duration::from_secs(cfg.timeout_seconds),
        ));
        Ok(BuiltErp {
            connector: Arc::new(NetSuite::new(cfg, auth, gate)),
            webhook: None,
        })
    }
}
