//! The console's directory from the partners' files: each partner's brand
//! and each customer's tier, SLA and connectors, as `ferry deploy` reads them.

use std::path::Path;

use anyhow::Context;
use ferry_canon::TenantId;
use ferry_console::{Brand, ConsoleStore, Customer};

use crate::deploy;

/// What an import wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub partners: usize,
    pub customers: usize,
}

/// Writes every partner's brand and every customer under `infra/partners`
/// into the console's directory (replacing what it held for them).
pub async fn import_partners(store: &dyn ConsoleStore, infra: &Path) -> anyhow::Result<Imported> {
    let root = infra.join("partners");
    let mut out = Imported::default();
    let mut partners: Vec<String> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("partner.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    partners.sort();
    for partner in partners {
        let file = deploy::partner_file(infra, &partner)?;
        let p = &file.partner;
        store
            .put_brand(&Brand {
                partner: partner.clone(),
                name: p.name.clone(),
                support_email: p.support_email.clone(),
                logo_url: Some(p.logo_url.clone()),
                primary: p.colours.primary.clone(),
                accent: p.colours.accent.clone(),
                show_ferry: p.show_ferry,
            })
            .await?;
        out.partners += 1;
        let dir = root.join(&partner).join("customers");
        let mut customers: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let path = e.path();
                    (path.extension().is_some_and(|x| x == "toml"))
                        .then(|| path.file_stem()?.to_str().map(str::to_string))
                        .flatten()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        customers.sort();
        for customer in customers {
            let plan = deploy::plan(infra, &partner, &customer)?;
            store.put_customer(&customer_of(&plan)?).await?;
            out.customers += 1;
        }
    }
    Ok(out)
}

fn customer_of(plan: &deploy::Plan) -> anyhow::Result<Customer> {
    let first = |t: &toml::Table| t.keys().next().cloned().unwrap_or_default();
    Ok(Customer {
        tenant: TenantId::parse(&plan.customer)
            .map_err(|e| anyhow::anyhow!("{}: {e}", plan.customer_file.display()))?,
        partner: plan.partner.clone(),
        name: plan.customer_name.clone(),
        tier: plan.tier.clone(),
        sla_seconds: plan
            .parameters
            .get("QueueAgeAlarmSeconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(3_600),
        psa: first(&plan.psa),
        erp: first(&plan.erp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_console::SqliteConsoleStore;

    #[tokio::test]
    async fn the_example_partners_become_the_directory() {
        let infra = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra");
        let store = SqliteConsoleStore::memory().expect("store");
        let n = import_partners(&store, &infra).await.expect("import");
        assert_eq!((n.partners, n.customers), (2, 4));
        let acme = store
            .customer(&TenantId::parse("acme").expect("slug"))
            .await
            .expect("read")
            .expect("acme");
        assert_eq!(
            (
                acme.partner.as_str(),
                acme.tier.as_str(),
                acme.sla_seconds,
                acme.psa.as_str(),
                acme.erp.as_str()
            ),
            ("northwind", "premium", 900, "connectwise", "xero")
        );
        let brand = store.brand("bluefin").await.expect("read").expect("brand");
        assert_eq!(
            (brand.name.as_str(), brand.primary.as_str()),
            ("Bluefin Systems", "#004C6D")
        );
        assert!(!brand.show_ferry);
        assert_eq!(
            import_partners(&store, &infra).await.expect("again"),
            n,
            "importing twice replaces, it does not add"
        );
        assert_eq!(store.customers("northwind").await.expect("list").len(), 2);
    }
}
