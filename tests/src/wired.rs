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
        Self::start_with(
            psa,
            erp,
            tenant,
            &crate::small_firm(),
            ferry_cli::local::local_settings(),
        )
        .await
    }

    /// Serves the webhook edge on loopback and makes the subscriptions Ferry
    /// keeps itself; returns the edge and what was subscribed.
    pub async fn listen(&self) -> (ferry_embedded::host::WebhookEdge, Vec<String>) {
        let edge = ferry_embedded::host::serve_webhooks(
            self.local.deps.clone(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("edge");
        let done = ferry_core::usecases::intake::subscribe_webhooks(
            &self.local.deps,
            &self.tenant,
            &edge.origin(),
        )
        .await
        .expect("subscribed");
        (edge, done)
    }

    /// [`Wired::start`] with the firm `spec` and the pipeline's `settings`.
    pub async fn start_with(
        psa: &str,
        erp: &str,
        tenant: &str,
        spec: &ferry_sim::demo::DemoSpec,
        settings: ferry_core::Settings,
    ) -> Wired {
        let pair = Pair::start(psa, erp, spec).await.expect("simulators start");
        let local = Local::open(&LocalOptions {
            settings,
            ..LocalOptions::default()
        })
        .expect("store");
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
