//! Test harness: a fresh local pipeline (in-memory SQLite, all five handlers)
//! against fresh simulators, per test. Tests read as sentences about behaviour.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use ferry_canon::{Domain, TenantId};
use ferry_cli::local::{Local, LocalOptions, Simulators, repo_dir};
use ferry_core::ports::{Disposition, ExceptionQuery, ExceptionRecord, ExceptionStatus};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::intake;
use ferry_embedded::host::{HostConfig, LocalHost, WebhookEdge, serve_webhooks};
use ferry_sim::demo::DemoSpec;
use serde_json::Value;

pub use ferry_sim::connectwise::{CwFaults, Kind};
pub use ferry_sim::xero::XeroFaults;

/// A running pipeline and its simulators.
pub struct Harness {
    pub local: Local,
    pub sims: Simulators,
    pub host: Option<LocalHost>,
    pub edge: WebhookEdge,
    pub tenant: TenantId,
}

/// A small firm: enough of everything, fast to post.
pub fn small_firm() -> DemoSpec {
    DemoSpec {
        seed: 7,
        members: 12,
        companies: 4,
        projects: 8,
        month: NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid"),
    }
}

/// The partner base plus the demo firm's override, as `make run` uses them.
pub fn demo_template() -> Template {
    let overlay = TemplateSource::read(&repo_dir().join("tenants/demo-firm/template.toml"))
        .expect("override readable");
    Template::load(&base_template(), Some(&overlay)).expect("templates load")
}

/// The partner base template from the repository.
pub fn base_template() -> TemplateSource {
    TemplateSource::read(&repo_dir().join("templates/connectwise-xero.toml"))
        .expect("base template readable")
}

impl Harness {
    /// Starts simulators with `spec`, a fresh in-memory pipeline, the webhook
    /// edge, and subscribes the edge with both simulators.
    pub async fn start(spec: DemoSpec) -> Harness {
        Self::start_with(spec, demo_template()).await
    }

    pub async fn start_with(spec: DemoSpec, template: Template) -> Harness {
        init_tracing();
        let sims = Simulators::start(&spec).await.expect("simulators start");
        let local = Local::open(&LocalOptions::default()).expect("store opens");
        let tenant = TenantId::parse("test-firm").expect("valid");
        let cfg = sims.tenant_config(&tenant, &repo_dir().join("templates"));
        local
            .add_tenant(&cfg, template, &sims.secrets())
            .await
            .expect("tenant wires");
        let edge = serve_webhooks(local.deps.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("edge starts");
        sims.subscribe(
            &edge.url("connectwise", tenant.as_str()),
            &edge.url("xero", tenant.as_str()),
        )
        .await
        .expect("subscriptions");
        let host = LocalHost::start(local.deps.clone(), HostConfig::default());
        Harness {
            local,
            sims,
            host: Some(host),
            edge,
            tenant,
        }
    }

    /// Polls every domain from the cursor, then waits for the pipeline to settle.
    pub async fn sync(&self) {
        let ctx = self.local.tenants.get(&self.tenant).expect("tenant");
        for domain in ferry_core::ports::PsaConnector::pollable(ctx.psa.as_ref()) {
            intake::poll(&self.local.deps, &self.tenant, domain, &|_| {})
                .await
                .expect("poll succeeds");
        }
        self.settle().await;
    }

    /// Waits until every queue is empty.
    pub async fn settle(&self) {
        self.host
            .as_ref()
            .expect("host running")
            .wait_idle(Duration::from_secs(90))
            .await
            .expect("pipeline settles");
    }

    /// Open exceptions of the tenant.
    pub async fn open_exceptions(&self) -> Vec<ExceptionRecord> {
        self.local
            .deps
            .exceptions
            .list(&ExceptionQuery {
                tenant: Some(self.tenant.clone()),
                statuses: vec![ExceptionStatus::Open],
                ..ExceptionQuery::default()
            })
            .await
            .expect("list exceptions")
    }

    /// The ledger disposition of a ConnectWise record.
    pub async fn disposition(&self, id: i64) -> Option<Disposition> {
        self.local
            .deps
            .ledger
            .get(&self.tenant, &format!("connectwise:{id}"))
            .await
            .expect("ledger")
            .map(|e| e.disposition)
    }

    /// Xero invoices (ACCREC) that are not deleted.
    pub fn live_invoices(&self) -> Vec<Value> {
        self.sims
            .xero
            .invoices()
            .into_iter()
            .filter(|i| i["Status"] != "DELETED" && i["Status"] != "VOIDED")
            .collect()
    }

    /// Xero invoices referencing a given Ferry reference prefix.
    pub fn invoices_with_reference(&self, reference: &str) -> Vec<Value> {
        self.sims
            .xero
            .invoices()
            .into_iter()
            .filter(|i| i["Reference"] == reference)
            .collect()
    }

    /// The summary invoice of a project and month.
    pub fn summary_invoice(&self, project: i64, month: NaiveDate) -> Vec<Value> {
        let r = format!("FERRY-S-project_billing-{project}-{}", month.format("%Y%m"));
        self.invoices_with_reference(&r)
    }

    /// Count of ledger entries per state for a domain.
    pub async fn count(&self, domain: Domain, state: &str) -> u64 {
        self.local
            .deps
            .ledger
            .counts(&self.tenant)
            .await
            .expect("counts")
            .iter()
            .filter(|c| c.domain == domain && c.state == state)
            .map(|c| c.count)
            .sum()
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    }
}

/// Shared deps for assertions on ports.
pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
