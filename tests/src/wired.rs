//! A pair of simulators from the stage with the small firm in them, and a
//! tenant wired to them through the registry (its secrets stored), for tests
//! that drive one connector directly.

use std::sync::Arc;

use ferry_canon::TenantId;
use ferry_cli::demo::stage::{Pair, template};
use ferry_cli::local::{Local, LocalOptions};
use ferry_core::ports::ErpConnector;

pub struct Wired {
    pub pair: Pair,
    pub local: Local,
    pub tenant: TenantId,
    pub erp: Arc<dyn ErpConnector>,
}

impl Wired {
    /// `psa` → `erp` on the stage's simulators, as tenant `tenant`.
    pub async fn start(psa: &str, erp: &str, tenant: &str) -> Wired {
        let pair = Pair::start(psa, erp, &crate::small_firm())
            .await
            .expect("simulators start");
        let local = Local::open(&LocalOptions::default()).expect("store");
        let tenant = TenantId::parse(tenant).expect("tenant");
        local
            .add_tenant(
                &pair.tenant_config(&tenant).expect("config"),
                template(psa, erp).expect("template"),
                &pair.secrets(),
            )
            .await
            .expect("tenant wires");
        let erp = local.tenants.get(&tenant).expect("tenant").erp.clone();
        Wired {
            pair,
            local,
            tenant,
            erp,
        }
    }
}
