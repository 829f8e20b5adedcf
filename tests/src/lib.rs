//! Test harness: a fresh local pipeline (in-memory SQLite, all five handlers)
//! against fresh simulators, per test. Tests read as sentences about behaviour.

pub mod aws;
pub mod browser;
pub mod conformance;
pub mod harvest;
pub mod lossy;
pub mod netsuite;
pub mod openapi;
pub mod pair_simulation;
pub mod real;
pub mod real_simulation;
pub mod simulation;
pub mod wired;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use ferry_canon::{Domain, TenantId};
use ferry_cli::local::{Local, LocalOptions, Simulators, repo_dir};
use ferry_core::ports::{Disposition, ExceptionQuery, ExceptionRecord, ExceptionStatus};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::intake;
use ferry_core::{Deps, Settings};
use ferry_embedded::host::{HostConfig, LocalHost, WebhookEdge, serve_webhooks};
use ferry_sim::demo::DemoSpec;
use serde_json::Value;

pub use ferry_sim::connectwise::{CwFaults, Kind};
pub use ferry_sim::xero::XeroFaults;

/// A running pipeline and its simulators.
pub struct Harness {
    pub local: Local,
    /// The ports the pipeline runs on (possibly wrapped for fault injection).
    pub deps: Deps,
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

/// How a harness starts.
pub struct Options {
    pub spec: DemoSpec,
    pub template: Template,
    pub settings: Settings,
    /// Documents per Xero call.
    pub xero_batch: usize,
    /// Calls per minute Ferry keeps below Xero's 60.
    pub xero_headroom: u32,
    /// Ferry's client timeout for Xero calls (the tenant's default when `None`).
    pub xero_timeout_seconds: Option<u64>,
    /// Wraps the ports the pipeline runs on (fault injection in our own process).
    pub wrap: fn(Deps) -> Deps,
    /// Run the workers (off: tests inspect the queues themselves).
    pub host: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            spec: small_firm(),
            template: demo_template(),
            settings: Settings {
                // The simulators answer at once: a short hold keeps lost-answer tests quick.
                unknown_outcome_hold: Duration::from_secs(3),
                ..ferry_cli::local::local_settings()
            },
            xero_batch: 50,
            xero_headroom: 5,
            xero_timeout_seconds: None,
            wrap: |d| d,
            host: true,
        }
    }
}

impl Harness {
    /// Starts simulators with `spec`, a fresh in-memory pipeline, the webhook
    /// edge, and subscribes the edge with both simulators.
    pub async fn start(spec: DemoSpec) -> Harness {
        Self::start_opts(Options {
            spec,
            ..Options::default()
        })
        .await
    }

    pub async fn start_opts(o: Options) -> Harness {
        init_tracing();
        let sims = Simulators::start(&o.spec).await.expect("simulators start");
        let local = Local::open(&LocalOptions {
            settings: o.settings.clone(),
            ..LocalOptions::default()
        })
        .expect("store opens");
        let tenant = TenantId::parse("test-firm").expect("valid");
        let mut cfg = sims.tenant_config(&tenant, &repo_dir().join("templates"));
        let xero = cfg
            .erp
            .update(|x: &mut ferry_connectors::xero::XeroConfig| {
                x.batch_size = o.xero_batch;
                x.minute_headroom = o.xero_headroom;
                if let Some(t) = o.xero_timeout_seconds {
                    x.timeout_seconds = t;
                }
            });
        assert!(xero, "the simulators' tenant posts to Xero");
        local
            .add_tenant(&cfg, o.template, &sims.secrets())
            .await
            .expect("tenant wires");
        let deps = (o.wrap)(local.deps.clone());
        let edge = serve_webhooks(deps.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("edge starts");
        sims.subscribe(
            &edge.url("connectwise", tenant.as_str()),
            &edge.url("xero", tenant.as_str()),
        )
        .await
        .expect("subscriptions");
        let host = o
            .host
            .then(|| LocalHost::start(deps.clone(), HostConfig::default()));
        Harness {
            local,
            deps,
            sims,
            host,
            edge,
            tenant,
        }
    }

    /// Polls every domain from the cursor, then waits for the pipeline to settle.
    pub async fn sync(&self) {
        let ctx = self.local.tenants.get(&self.tenant).expect("tenant");
        for domain in ferry_core::ports::PsaConnector::pollable(ctx.psa.as_ref()) {
            intake::poll(&self.deps, &self.tenant, domain, &|_| {})
                .await
                .expect("poll succeeds");
        }
        // Like `ferry sync`: deletions the PSA announced to no one are swept for,
        // here from a year before the firm's period (not from today's date).
        let since = self.sims.firm.period_start - chrono::Days::new(365);
        for domain in ferry_core::ports::PsaConnector::swept(ctx.psa.as_ref()) {
            intake::sweep_deletions(&self.deps, &self.tenant, domain, since)
                .await
                .expect("sweep succeeds");
        }
        self.settle().await;
        // Like a scheduled sweep: a failure is logged and tried again next time.
        if let Err(e) = intake::poll_erp_payments(&self.deps, &self.tenant).await {
            eprintln!("payment sweep failed (next sync tries again): {e}");
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

    /// Open exceptions that are not one of the firm's seeded bad records, as
    /// `(source key, message)` for an assertion message.
    pub async fn unexpected_exceptions(&self) -> Vec<(String, String)> {
        let seeded: Vec<String> = self.sims.firm.bad.iter().map(|b| b.record_key()).collect();
        self.open_exceptions()
            .await
            .into_iter()
            .filter(|e| !seeded.contains(&e.source_key))
            .map(|e| (e.source_key, e.message))
            .collect()
    }

    /// The ledger disposition of a ConnectWise record.
    pub async fn disposition(&self, domain: Domain, id: i64) -> Option<Disposition> {
        self.deps
            .ledger
            .get(&self.tenant, &format!("{domain}/connectwise:{id}"))
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

    /// The Xero contact with a Ferry contact number (`FERRY-C-<id>`).
    pub fn contact(&self, number: &str) -> Option<Value> {
        self.sims
            .xero
            .contacts()
            .into_iter()
            .find(|c| c["ContactNumber"] == number)
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

    /// The pipeline's clock.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.deps.clock.now()
    }

    /// The pipeline's ports with the clock stopped at `at`: the handlers see that
    /// time, whatever the date the test runs on. The stores and queues are the same.
    pub fn deps_at(&self, at: chrono::DateTime<Utc>) -> Deps {
        Deps {
            clock: Arc::new(ferry_testkit::clock::ManualClock::at(at)),
            ..self.deps.clone()
        }
    }

    /// Takes every change notice waiting in the transform queue off it.
    pub async fn take_notices(&self) -> Vec<ferry_core::messages::ChangeNotice> {
        use ferry_core::ports::QueueName;
        let q = &self.deps.queue;
        let mut out = Vec::new();
        loop {
            let got = q
                .receive(QueueName::Transform, 10, Duration::from_secs(30))
                .await
                .expect("receive");
            if got.is_empty() {
                return out;
            }
            for m in got {
                q.delete(QueueName::Transform, &m.receipt)
                    .await
                    .expect("delete");
                if let Ok(ferry_core::messages::Envelope::Change(c)) =
                    ferry_core::messages::Envelope::from_body(&m.body)
                {
                    out.push(c);
                }
            }
        }
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

/// The id map of a process that dies after the ERP answered and before Ferry's
/// bookkeeping: a commit fails whenever `lose` says so, so that write reached
/// the ERP and Ferry forgot it.
pub struct LostCommits {
    pub inner: Arc<dyn ferry_core::ports::IdMap>,
    lose: Box<dyn Fn() -> bool + Send + Sync>,
}

impl LostCommits {
    /// Only the first commit is lost (one crash).
    pub fn first(inner: Arc<dyn ferry_core::ports::IdMap>) -> LostCommits {
        let crashed = std::sync::atomic::AtomicBool::new(false);
        LostCommits {
            inner,
            lose: Box::new(move || !crashed.swap(true, std::sync::atomic::Ordering::SeqCst)),
        }
    }

    /// Every commit is lost while `down` is set (a crash that lasts).
    pub fn while_set(
        inner: Arc<dyn ferry_core::ports::IdMap>,
        down: &'static std::sync::atomic::AtomicBool,
    ) -> LostCommits {
        Self::when(inner, move || {
            down.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Every commit is lost while `lose` says so.
    pub fn when(
        inner: Arc<dyn ferry_core::ports::IdMap>,
        lose: impl Fn() -> bool + Send + Sync + 'static,
    ) -> LostCommits {
        LostCommits {
            inner,
            lose: Box::new(lose),
        }
    }
}

#[async_trait::async_trait]
impl ferry_core::ports::IdMap for LostCommits {
    async fn get(
        &self,
        t: &TenantId,
        k: &str,
    ) -> Result<Option<ferry_core::ports::IdMapEntry>, ferry_core::PortError> {
        self.inner.get(t, k).await
    }
    async fn claim(
        &self,
        r: ferry_core::ports::ClaimRequest<'_>,
    ) -> Result<ferry_core::ports::Claim, ferry_core::PortError> {
        self.inner.claim(r).await
    }
    async fn commit(
        &self,
        r: ferry_core::ports::CommitRequest<'_>,
    ) -> Result<(), ferry_core::PortError> {
        if (self.lose)() {
            return Err(ferry_core::PortError::transient(
                "idmap",
                "commit",
                "simulated crash after the ERP committed",
            ));
        }
        self.inner.commit(r).await
    }
    async fn release(&self, t: &TenantId, k: &str) -> Result<(), ferry_core::PortError> {
        self.inner.release(t, k).await
    }
    async fn hold(
        &self,
        t: &TenantId,
        k: &str,
        until: chrono::DateTime<Utc>,
    ) -> Result<(), ferry_core::PortError> {
        self.inner.hold(t, k, until).await
    }
    async fn find_by_erp_id(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<ferry_core::ports::IdMapEntry>, ferry_core::PortError> {
        self.inner.find_by_erp_id(t, id).await
    }
    async fn list(
        &self,
        t: &TenantId,
        p: &str,
    ) -> Result<Vec<ferry_core::ports::IdMapEntry>, ferry_core::PortError> {
        self.inner.list(t, p).await
    }
}

/// Sum of `Quantity` over time lines (lines with an item code) of Xero invoices.
pub fn invoiced_hours(invoices: &[Value]) -> rust_decimal::Decimal {
    invoices
        .iter()
        .flat_map(|i| i["LineItems"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["ItemCode"].is_string())
        .map(|l| dec(&l["Quantity"]))
        .sum()
}

/// A JSON number or string as a decimal.
pub fn dec(v: &Value) -> rust_decimal::Decimal {
    use std::str::FromStr;
    match v {
        Value::Number(n) => rust_decimal::Decimal::from_str(&n.to_string()).expect("decimal"),
        Value::String(s) => rust_decimal::Decimal::from_str(s).expect("decimal"),
        _ => rust_decimal::Decimal::ZERO,
    }
}
