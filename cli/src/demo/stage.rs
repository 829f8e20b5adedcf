//! The demo's pair of simulators, started from the simulators' stage, and the
//! tenant wired to them.

use anyhow::{Context, bail};
use ferry_canon::TenantId;
use ferry_connectors::registry::{ErpConnection, PsaConnection};
use ferry_connectors::tenant::{TemplatePaths, TenantConfig, TenantSection};
use ferry_core::template::{Template, TemplateSource};
use ferry_sim::demo::{DemoFirm, DemoSpec};
use ferry_sim::stage::{self, SimErp, SimPsa};

use super::{DEFAULT_ERP, DEFAULT_PSA};
use crate::local::repo_dir;

/// A PSA and an ERP simulator with the demo firm in them.
pub struct Pair {
    pub psa: Box<dyn SimPsa>,
    pub erp: Box<dyn SimErp>,
    pub firm: DemoFirm,
}

/// The pairs `ferry run` can run on: simulated on both sides, with a base template.
pub fn pairs() -> Vec<(&'static str, &'static str)> {
    let templates = repo_dir().join("templates");
    stage::PSAS
        .iter()
        .flat_map(|p| {
            stage::ERPS
                .iter()
                .map(move |e| (p.connector(), e.connector()))
        })
        .filter(|(p, e)| templates.join(format!("{p}-{e}.toml")).is_file())
        .collect()
}

fn pair_list() -> String {
    pairs()
        .iter()
        .map(|(p, e)| format!("--psa {p} --erp {e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The partner base template for the pair (`templates/<psa>-<erp>.toml`) with
/// the demo firm's override: `tenants/demo-firm/template.toml` for the default
/// pair, `tenants/demo-firm/<psa>-<erp>.toml` for another where there is one.
pub fn template(psa: &str, erp: &str) -> anyhow::Result<Template> {
    let repo = repo_dir();
    let base = repo.join(format!("templates/{psa}-{erp}.toml"));
    if !base.is_file() {
        bail!(
            "no partner template for {psa} → {erp} ({} is missing); the demo runs on {}",
            base.display(),
            pair_list()
        );
    }
    let base = TemplateSource::read(&base)?;
    let overlay = if (psa, erp) == (DEFAULT_PSA, DEFAULT_ERP) {
        Some(repo.join("tenants/demo-firm/template.toml"))
    } else {
        Some(repo.join(format!("tenants/demo-firm/{psa}-{erp}.toml"))).filter(|p| p.is_file())
    };
    let overlay = overlay.map(|p| TemplateSource::read(&p)).transpose()?;
    Ok(Template::load(&base, overlay.as_ref())?)
}

impl Pair {
    /// Starts both simulators on loopback and seeds the firm.
    pub async fn start(psa: &str, erp: &str, spec: &DemoSpec) -> anyhow::Result<Pair> {
        let (Some(p), Some(e)) = (stage::psa(psa), stage::erp(erp)) else {
            bail!(
                "no simulator for {psa} → {erp}; the demo runs on {}",
                pair_list()
            );
        };
        let firm = ferry_sim::demo::generate(spec);
        let psa = p
            .start(&firm)
            .await
            .with_context(|| format!("starting the {psa} simulator"))?;
        let erp = e
            .start(&firm)
            .await
            .with_context(|| format!("starting the {erp} simulator"))?;
        Ok(Pair { psa, erp, firm })
    }

    /// A tenant whose PSA and ERP are these simulators.
    pub fn tenant_config(&self, tenant: &TenantId) -> anyhow::Result<TenantConfig> {
        let side = |name: &str, settings: toml::Table| {
            let mut t = toml::Table::new();
            t.insert(name.to_string(), toml::Value::Table(settings));
            t
        };
        let psa = PsaConnection::read(&side(self.psa.connector(), self.psa.settings())).map_err(
            |(k, m)| {
                anyhow::anyhow!(
                    "the {} simulator's settings: {k}: {m}",
                    self.psa.connector()
                )
            },
        )?;
        let erp = ErpConnection::read(&side(self.erp.connector(), self.erp.settings())).map_err(
            |(k, m)| {
                anyhow::anyhow!(
                    "the {} simulator's settings: {k}: {m}",
                    self.erp.connector()
                )
            },
        )?;
        Ok(TenantConfig {
            tenant: TenantSection {
                id: tenant.clone(),
                name: Some("Demo Firm".into()),
            },
            psa,
            erp,
            template: TemplatePaths {
                base: repo_dir().join(format!(
                    "templates/{}-{}.toml",
                    self.psa.connector(),
                    self.erp.connector()
                )),
                overlay: None,
            },
        })
    }

    /// Both sides' secrets.
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        let mut s = self.psa.secrets();
        s.extend(self.erp.secrets());
        s
    }
}
