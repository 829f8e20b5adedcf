//! Tenant configuration: which connectors a tenant uses, with which settings and
//! mapping template, and the wiring that turns it (plus the tenant's secrets)
//! into ready connectors. Used by the local host, the CLI and the functions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use ferry_canon::{Currency, TenantId};
use ferry_core::PortError;
use ferry_core::deps::{TenantContext, Tenants};
use ferry_core::gate::BudgetGate;
use ferry_core::ports::{
    Clock, ErpConnector, LockStore, PsaConnector, RateBudget, Secrets, WebhookVerifier,
};
use ferry_core::template::{Template, TemplateSource};
use serde::Deserialize;

use crate::connectwise::{ConnectWise, ConnectWiseConfig, ConnectWiseCredentials};
use crate::credential::Credential;
use crate::redmine::{Redmine, RedmineConfig};
use crate::tryton::{Tryton, TrytonConfig};
use crate::xero::{OAuthTokens, Xero, XeroAuth, XeroConfig, XeroWebhooks};

/// A tenant file (`tenant.toml`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub tenant: TenantSection,
    pub psa: PsaConfig,
    pub erp: ErpConfig,
    pub template: TemplatePaths,
}

/// Identity.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub id: TenantId,
    #[serde(default)]
    pub name: Option<String>,
}

/// The PSA connection: one table named after the connector (`[psa.connectwise]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PsaConfig {
    Connectwise(ConnectWiseConfig),
    Redmine(RedmineConfig),
}

/// The ERP connection: one table named after the connector (`[erp.xero]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ErpConfig {
    Xero(XeroConfig),
    Tryton(TrytonConfig),
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
    #[error("{0}")]
    Template(#[from] ferry_core::template::TemplateErrors),
    #[error("tenant {tenant}: {source}")]
    Secret { tenant: TenantId, source: PortError },
}

impl TenantConfig {
    /// Reads a tenant file; errors name the file and the key.
    pub fn read(path: &Path) -> Result<(TenantConfig, PathBuf), WiringError> {
        let text = std::fs::read_to_string(path).map_err(|e| WiringError::Config {
            file: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
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

    /// The secret names this tenant needs, for documentation and setup.
    pub fn secret_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        match self.psa {
            PsaConfig::Connectwise(_) => v.extend([
                "connectwise.public_key",
                "connectwise.private_key",
                "connectwise.client_id",
            ]),
            PsaConfig::Redmine(_) => v.push("redmine.api_key"),
        }
        match self.erp {
            // xero.access_token for a fixed token, or xero.client_id, xero.client_secret
            // and xero.refresh_token for an OAuth connection (then Ferry keeps
            // xero.access_token and xero.access_token_expires_at up to date itself).
            ErpConfig::Xero(_) => v.extend(["xero.access_token", "xero.webhook_key"]),
            ErpConfig::Tryton(_) => v.push("tryton.rest_key"),
        }
        v
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

/// Builds one tenant's context.
pub async fn build(
    cfg: &TenantConfig,
    template: Template,
    w: &Wiring,
) -> Result<TenantContext, WiringError> {
    let tenant = cfg.tenant.id.clone();
    let secret = |name: &'static str| {
        let tenant = tenant.clone();
        let secrets = w.secrets.clone();
        async move {
            secrets
                .get(&tenant, name)
                .await
                .map_err(|source| WiringError::Secret { tenant, source })
        }
    };
    let mut webhooks: BTreeMap<String, Arc<dyn WebhookVerifier>> = BTreeMap::new();
    let psa: Arc<dyn PsaConnector> = match &cfg.psa {
        PsaConfig::Connectwise(settings) => {
            let home =
                Currency::parse(&settings.home_currency).map_err(|e| WiringError::Config {
                    file: format!("tenant {tenant}"),
                    message: format!("psa.home_currency: {e}"),
                })?;
            // Checked now, so a tenant without credentials fails at cold start;
            // read on use afterwards, so rotation needs no restart.
            for name in [
                "connectwise.public_key",
                "connectwise.private_key",
                "connectwise.client_id",
            ] {
                secret(name).await?;
            }
            let creds = ConnectWiseCredentials {
                public_key: Credential::stored(&w.secrets, &tenant, "connectwise.public_key"),
                private_key: Credential::stored(&w.secrets, &tenant, "connectwise.private_key"),
                client_id: Credential::stored(&w.secrets, &tenant, "connectwise.client_id"),
            };
            let cw = ConnectWise::new(settings.clone(), creds, home);
            webhooks.insert("connectwise".into(), cw.verifier());
            Arc::new(cw)
        }
        // Redmine sends no webhooks: it is polled, and swept for deletions.
        PsaConfig::Redmine(settings) => {
            let home =
                Currency::parse(&settings.home_currency).map_err(|e| WiringError::Config {
                    file: format!("tenant {tenant}"),
                    message: format!("psa.home_currency: {e}"),
                })?;
            secret("redmine.api_key").await?;
            Arc::new(Redmine::new(
                settings.clone(),
                Credential::stored(&w.secrets, &tenant, "redmine.api_key"),
                home,
            ))
        }
    };
    let erp: Arc<dyn ErpConnector> = match &cfg.erp {
        ErpConfig::Xero(settings) => {
            let gate = Arc::new(BudgetGate {
                budget: w.budget.clone(),
                clock: w.clock.clone(),
                account: Xero::account_key_for(settings),
                limits: Xero::limits_for(settings),
                max_wait: w.budget_max_wait,
            });
            webhooks.insert(
                "xero".into(),
                Arc::new(XeroWebhooks::new({
                    secret("xero.webhook_key").await?;
                    Credential::stored(&w.secrets, &tenant, "xero.webhook_key")
                })),
            );
            // An OAuth connection when the secret holds a refresh token; a fixed token otherwise.
            let auth = match w.secrets.get(&tenant, "xero.refresh_token").await {
                Ok(_) => XeroAuth::OAuth(Arc::new(OAuthTokens::new(
                    tenant.clone(),
                    w.secrets.clone(),
                    w.locks.clone(),
                    w.clock.clone(),
                    settings.token_url.clone(),
                    Duration::from_secs(settings.timeout_seconds),
                ))),
                Err(_) => XeroAuth::Fixed(secret("xero.access_token").await?),
            };
            Arc::new(Xero::new(settings.clone(), auth, gate))
        }
        // Tryton sends no webhooks: payments are read back by the sweep and reconciliation.
        ErpConfig::Tryton(settings) => {
            let gate = Arc::new(BudgetGate {
                budget: w.budget.clone(),
                clock: w.clock.clone(),
                account: Tryton::account_key_for(settings),
                limits: Tryton::limits_for(settings),
                max_wait: w.budget_max_wait,
            });
            secret("tryton.rest_key").await?;
            Arc::new(Tryton::new(
                settings.clone(),
                Credential::stored(&w.secrets, &tenant, "tryton.rest_key"),
                gate,
            ))
        }
    };
    Ok(TenantContext {
        tenant,
        template: Arc::new(template),
        psa,
        erp,
        webhooks,
    })
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

    /// Replaces a tenant's template, keeping its connectors.
    pub fn set_template(&self, tenant: &TenantId, template: Template) -> bool {
        let mut map = self.inner.write().expect("not poisoned");
        let Some(old) = map.get(tenant).cloned() else {
            return false;
        };
        let ctx = TenantContext {
            tenant: old.tenant.clone(),
            template: Arc::new(template),
            psa: old.psa.clone(),
            erp: old.erp.clone(),
            webhooks: old.webhooks.clone(),
        };
        map.insert(tenant.clone(), Arc::new(ctx));
        true
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
