//! Tenant configuration: which connectors a tenant uses, with which settings and
//! mapping template, and the wiring that turns it (plus the tenant's secrets)
//! into ready connectors. Used by the local host, the CLI and the functions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::deps::{MisfitError, TenantContext, Tenants};
use ferry_core::mapping::References;
use ferry_core::ports::{Clock, LockStore, RateBudget, Secrets, WebhookVerifier};
use ferry_core::template::{Template, TemplateSource};
use serde::Deserialize;

use crate::registry::{ErpConnection, PsaConnection, Site};

/// Largest tenant file read, in bytes.
pub const MAX_TENANT_FILE_BYTES: u64 = 64 * 1024;

/// A tenant file (`tenant.toml`). The `[psa.<connector>]` and
/// `[erp.<connector>]` tables are checked against the connector registry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(try_from = "RawTenantConfig", into = "RawTenantConfig")]
pub struct TenantConfig {
    pub tenant: TenantSection,
    pub psa: PsaConnection,
    pub erp: ErpConnection,
    pub template: TemplatePaths,
}

/// A tenant file as TOML holds it.
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawTenantConfig {
    tenant: TenantSection,
    psa: toml::Table,
    erp: toml::Table,
    template: TemplatePaths,
}

impl TryFrom<RawTenantConfig> for TenantConfig {
    type Error = String;

    fn try_from(raw: RawTenantConfig) -> Result<Self, String> {
        let shown = |(path, message): (String, String)| format!("{path}: {message}");
        Ok(TenantConfig {
            psa: PsaConnection::read(&raw.psa).map_err(shown)?,
            erp: ErpConnection::read(&raw.erp).map_err(shown)?,
            tenant: raw.tenant,
            template: raw.template,
        })
    }
}

impl From<TenantConfig> for RawTenantConfig {
    fn from(c: TenantConfig) -> Self {
        RawTenantConfig {
            tenant: c.tenant,
            psa: c.psa.to_table(),
            erp: c.erp.to_table(),
            template: c.template,
        }
    }
}

/// Identity.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub id: TenantId,
    #[serde(default)]
    pub name: Option<String>,
}

/// Template files, relative to the tenant file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatePaths {
    pub base: PathBuf,
    #[serde(default, rename = "override")]
    pub overlay: Option<PathBuf>,
}

/// Why a tenant could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error(transparent)]
    Template(#[from] ferry_core::template::TemplateErrors),
    #[error("tenant {tenant}: {error}")]
    Secret { tenant: TenantId, error: PortError },
    #[error(transparent)]
    Misfit(#[from] MisfitError),
}

impl TenantConfig {
    /// Reads a tenant file; errors name the file and the key.
    pub fn read(path: &Path) -> Result<(TenantConfig, PathBuf), WiringError> {
        let refuse = |message: String| WiringError::Config {
            file: path.display().to_string(),
            message,
        };
        // A device or a pipe is never read: it may never end.
        let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if meta.len() > MAX_TENANT_FILE_BYTES {
            return Err(refuse(format!(
                "larger than {MAX_TENANT_FILE_BYTES} bytes; a tenant file is a few lines"
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
        let cfg: TenantConfig = toml::from_str(&text).map_err(|e| WiringError::Config {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((cfg, dir))
    }

    /// Loads the tenant's template (paths relative to `dir`).
    pub fn load_template(&self, dir: &Path) -> Result<Template, WiringError> {
        let base = TemplateSource::read(&dir.join(&self.template.base))?;
        let overlay = match &self.template.overlay {
            Some(p) => Some(TemplateSource::read(&dir.join(p))?),
            None => None,
        };
        Ok(Template::load(&base, overlay.as_ref())?)
    }

    /// Whether `template` fits this tenant's connectors, before any is built
    /// or any secret read: Ferry's reference rule if so, every reason if not.
    pub fn check(&self, template: &Template) -> Result<References, WiringError> {
        let caps = self
            .erp
            .entry()
            .capabilities(self.erp.settings())
            .map_err(|message| WiringError::Config {
                file: format!("tenant {}", self.tenant.id),
                message: format!("erp.{}: {message}", self.erp.name()),
            })?;
        Ok(ferry_core::deps::fit(
            template,
            self.psa.name(),
            self.erp.name(),
            &caps,
        )?)
    }

    /// The secret names this tenant needs, for documentation and setup.
    pub fn secret_names(&self) -> Vec<&'static str> {
        [
            self.psa.entry().about().secrets,
            self.erp.entry().about().secrets,
        ]
        .into_iter()
        .flat_map(|secrets| secrets.iter().copied())
        .collect()
    }
}

/// Shared things connectors are built with.
#[derive(Clone)]
pub struct Wiring {
    pub secrets: Arc<dyn Secrets>,
    /// Single-writer locks (Xero token refresh).
    pub locks: Arc<dyn LockStore>,
    pub budget: Arc<dyn RateBudget>,
    pub clock: Arc<dyn Clock>,
    /// Longest in-process wait for ERP rate budget.
    pub budget_max_wait: Duration,
}

/// Builds one tenant's context from the registry: its PSA, its ERP, their
/// webhook verifiers (by connector name), and its template, which must fit them.
pub async fn build(
    cfg: &TenantConfig,
    template: Template,
    w: &Wiring,
) -> Result<TenantContext, WiringError> {
    // The template against the connectors first: a misfit is reported
    // before anything asks for a secret.
    cfg.check(&template)?;
    let site = Site {
        tenant: &cfg.tenant.id,
        wiring: w,
    };
    let psa = cfg.psa.entry().build(cfg.psa.settings(), &site).await?;
    let erp = cfg.erp.entry().build(cfg.erp.settings(), &site).await?;
    let mut webhooks: BTreeMap<String, Arc<dyn WebhookVerifier>> = BTreeMap::new();
    for (name, verifier) in [(cfg.psa.name(), psa.webhook), (cfg.erp.name(), erp.webhook)] {
        if let Some(v) = verifier {
            webhooks.insert(name.to_string(), v);
        }
    }
    Ok(TenantContext::new(
        cfg.tenant.id.clone(),
        Arc::new(template),
        psa.connector,
        erp.connector,
        webhooks,
    )?)
}

/// Tenants held in memory, built at start-up. Templates can be swapped (a fixed
/// template takes effect for the next message, and replays pick it up).
#[derive(Default)]
pub struct ConfiguredTenants {
    inner: RwLock<HashMap<TenantId, Arc<TenantContext>>>,
}

impl ConfiguredTenants {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, ctx: TenantContext) {
        self.inner
            .write()
            .expect("not poisoned")
            .insert(ctx.tenant.clone(), Arc::new(ctx));
    }

    /// Replaces a tenant's template, keeping its connectors; `false` when
    /// there is no such tenant, an error when the template does not fit them.
    pub fn set_template(&self, tenant: &TenantId, template: Template) -> Result<bool, MisfitError> {
        let mut map = self.inner.write().expect("not poisoned");
        let Some(old) = map.get(tenant).cloned() else {
            return Ok(false);
        };
        let ctx = old.with_template(Arc::new(template))?;
        map.insert(tenant.clone(), Arc::new(ctx));
        Ok(true)
    }

    pub fn get(&self, tenant: &TenantId) -> Option<Arc<TenantContext>> {
        self.inner
            .read()
            .expect("not poisoned")
            .get(tenant)
            .cloned()
    }
}

#[async_trait]
impl Tenants for ConfiguredTenants {
    async fn context(&self, tenant: &TenantId) -> Result<Option<Arc<TenantContext>>, PortError> {
        Ok(self.get(tenant))
    }

    async fn list(&self) -> Result<Vec<TenantId>, PortError> {
        let mut v: Vec<TenantId> = self
            .inner
            .read()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect();
        v.sort();
        Ok(v)
    }
}
