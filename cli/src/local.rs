//! Wiring for local runs: the embedded store, tenants, the host, and the
//! simulators configured as a tenant's PSA and ERP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_canon::TenantId;
use ferry_connectors::registry::{ErpConnection, PsaConnection};
use ferry_connectors::tenant::{
    self, ConfiguredTenants, TemplatePaths, TenantConfig, TenantSection, Wiring,
};
use ferry_core::ports::{Clock, SystemClock};
use ferry_core::template::Template;
use ferry_core::{Deps, Settings};
use ferry_embedded::Store;
use ferry_sim::connectwise::stage as cw_stage;
use ferry_sim::connectwise::{CwSim, CwSimConfig};
use ferry_sim::demo::{DemoFirm, DemoSpec};
use ferry_sim::xero::XeroSim;
use ferry_sim::xero::stage as xero_stage;

/// How a local process runs.
#[derive(Clone)]
pub struct LocalOptions {
    /// SQLite file; `None` for an in-memory store.
    pub db: Option<PathBuf>,
    pub settings: Settings,
    pub max_receives: u32,
    /// The process's clock (the system clock when `None`; a simulation's manual one).
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            db: None,
            settings: local_settings(),
            max_receives: 6,
            clock: None,
        }
    }
}

/// Settings for local runs: production shapes, shorter waits.
pub fn local_settings() -> Settings {
    Settings {
        visibility_timeout: Duration::from_secs(30),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(8),
        dependency_wait: Duration::from_secs(1),
        budget_max_wait: Duration::from_secs(3),
        ..Settings::default()
    }
}

/// The embedded store, tenants and handler dependencies of one process.
pub struct Local {
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub tenants: Arc<ConfiguredTenants>,
    pub deps: Deps,
}

impl Local {
    pub fn open(opts: &LocalOptions) -> Result<Local, ferry_core::PortError> {
        let clock: Arc<dyn Clock> = opts.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let store = match &opts.db {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                Store::open(p, clock.clone(), opts.max_receives)?
            }
            None => Store::memory(clock.clone(), opts.max_receives)?,
        };
        let tenants = Arc::new(ConfiguredTenants::new());
        let deps = store.deps(clock.clone(), tenants.clone(), opts.settings.clone());
        Ok(Local {
            clock,
            store,
            tenants,
            deps,
        })
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            secrets: self.store.secrets.clone(),
            locks: self.store.locks.clone(),
            budget: self.store.budget.clone(),
            clock: self.clock.clone(),
            budget_max_wait: self.deps.settings.budget_max_wait,
        }
    }

    /// Stores the tenant's secrets and wires its connectors.
    pub async fn add_tenant(
        &self,
        cfg: &TenantConfig,
        template: Template,
        secrets: &[(&str, String)],
    ) -> Result<(), tenant::WiringError> {
        for (name, value) in secrets {
            self.store
                .secrets
                .set(&cfg.tenant.id, name, value)
                .map_err(|error| tenant::WiringError::Secret {
                    tenant: cfg.tenant.id.clone(),
                    error,
                })?;
        }
        let ctx = tenant::build(cfg, template, &self.wiring()).await?;
        self.tenants.insert(ctx);
        Ok(())
    }

    /// Wires a tenant from its file; its secrets must already be in the store.
    pub async fn add_tenant_file(&self, path: &Path) -> Result<TenantId, tenant::WiringError> {
        let (cfg, dir) = TenantConfig::read(path)?;
        self.add_tenant_read(&cfg, &dir).await
    }

    /// [`Local::add_tenant_file`] for a tenant file already read from `dir`.
    pub async fn add_tenant_read(
        &self,
        cfg: &TenantConfig,
        dir: &Path,
    ) -> Result<TenantId, tenant::WiringError> {
        let template = cfg.load_template(dir)?;
        let ctx = tenant::build(cfg, template, &self.wiring()).await?;
        let id = ctx.tenant.clone();
        self.tenants.insert(ctx);
        Ok(id)
    }
}

/// Both simulators, with the demo firm seeded into ConnectWise.
pub struct Simulators {
    pub cw: CwSim,
    pub xero: XeroSim,
    pub firm: DemoFirm,
}

impl Simulators {
    /// Starts both simulators on ephemeral loopback ports and seeds the firm.
    pub async fn start(spec: &DemoSpec) -> std::io::Result<Simulators> {
        Self::start_on(spec, None).await
    }

    /// As [`Self::start`], with the ConnectWise simulator on `cw_addr` if given
    /// (so a callback signed ahead of time, such as a sample event, names its key URL).
    pub async fn start_on(
        spec: &DemoSpec,
        cw_addr: Option<std::net::SocketAddr>,
    ) -> std::io::Result<Simulators> {
        let firm = ferry_sim::demo::generate(spec);
        let cw = match cw_addr {
            Some(addr) => CwSim::start_on(CwSimConfig::default(), addr).await?,
            None => CwSim::start(CwSimConfig::default()).await?,
        };
        let xero = XeroSim::start(firm.xero_config()).await?;
        firm.seed(&cw);
        Ok(Simulators { cw, xero, firm })
    }

    /// A tenant whose PSA and ERP are these simulators.
    pub fn tenant_config(&self, tenant: &TenantId, templates: &Path) -> TenantConfig {
        let side = |name: &str, settings: toml::Table| {
            let mut t = toml::Table::new();
            t.insert(name.to_string(), toml::Value::Table(settings));
            t
        };
        let psa = PsaConnection::read(&side("connectwise", cw_stage::settings(&self.cw)))
            .expect("the ConnectWise simulator's settings are a connection");
        let erp = ErpConnection::read(&side("xero", xero_stage::settings(&self.xero)))
            .expect("the Xero simulator's settings are a connection");
        TenantConfig {
            tenant: TenantSection {
                id: tenant.clone(),
                name: Some(self.xero.config().name.clone()),
            },
            psa,
            erp,
            template: TemplatePaths {
                base: templates.join("connectwise-xero.toml"),
                overlay: None,
            },
        }
    }

    /// The secrets a tenant on these simulators needs.
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        let mut s = cw_stage::secrets(&self.cw);
        s.extend(xero_stage::secrets(&self.xero));
        s
    }

    /// Subscribes the tenant's webhook URLs with both simulators.
    pub async fn subscribe(&self, connectwise_url: &str, xero_url: &str) -> Result<(), String> {
        cw_stage::subscribe(&self.cw, connectwise_url).await?;
        self.xero.set_webhook(Some(xero_url.to_string()));
        Ok(())
    }
}

/// The repository directory holding `templates/` and `tenants/`.
pub fn repo_dir() -> PathBuf {
    if let Ok(d) = std::env::var("FERRY_HOME") {
        return PathBuf::from(d);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// A `tenant.toml` for `cfg` (what `ferry sim` writes; tests write them too).
pub fn tenant_file(cfg: &TenantConfig) -> String {
    format!(
        "# Written by Ferry.\n{}",
        toml::to_string(cfg).expect("a tenant configuration serialises")
    )
}
