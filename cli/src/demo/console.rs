//! What the demo leaves for `ferry console --db .ferry/demo.db`: the demo
//! firm as a Northwind customer, two smaller firms synced beside it (one
//! Northwind's, one Bluefin's, so two brands show), the example partners'
//! directory from `infra/partners`, and one user per role.

use std::path::Path;

use anyhow::Context;
use ferry_canon::TenantId;
use ferry_console::{ConsoleStore, Customer, Role, SqliteConsoleStore, User};
use ferry_embedded::host::LocalHost;
use ferry_sim::demo::DemoSpec;
use serde::Serialize;

use super::{settle, stage};
use crate::local::Local;

/// The demo users' password (a local demo database only; printed by the demo).
pub const DEMO_PASSWORD: &str = "demo-console-password";

/// The smaller firms synced beside the demo firm: (tenant, people, seed).
const NEIGHBOURS: [(&str, usize, u64); 2] = [("acme", 24, 11), ("globex", 16, 23)];

/// Who can sign in to the demo's console.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    pub name: &'static str,
    pub role: Role,
    pub partner: &'static str,
    pub tenant: Option<String>,
}

/// The demo's console users: every role at Northwind, and Bluefin's admin.
pub fn demo_users(firm: &TenantId) -> Vec<DemoUser> {
    let firm = Some(firm.to_string());
    vec![
        DemoUser {
            name: "nina",
            role: Role::PartnerAdmin,
            partner: "northwind",
            tenant: None,
        },
        DemoUser {
            name: "sam",
            role: Role::PartnerSupport,
            partner: "northwind",
            tenant: None,
        },
        DemoUser {
            name: "fiona",
            role: Role::CustomerFinance,
            partner: "northwind",
            tenant: firm.clone(),
        },
        DemoUser {
            name: "oscar",
            role: Role::CustomerOperations,
            partner: "northwind",
            tenant: firm,
        },
        DemoUser {
            name: "bea",
            role: Role::PartnerAdmin,
            partner: "bluefin",
            tenant: None,
        },
    ]
}

/// Syncs the neighbouring firms into `local` (the demo's store and workers),
/// then writes the console's directory and users into the demo database.
pub async fn leave_console_state(
    local: &Local,
    host: &LocalHost,
    db: &Path,
    firm: &TenantId,
    (psa, erp): (&str, &str),
    month: DemoSpec,
    progress: bool,
) -> anyhow::Result<Vec<DemoUser>> {
    // The neighbours' simulators live until their firm is synced; the
    // console then reads only Ferry's stores.
    let mut pairs = Vec::new();
    for (tenant, members, seed) in NEIGHBOURS {
        let tenant = TenantId::parse(tenant).expect("valid slug");
        let spec = DemoSpec {
            seed,
            members,
            companies: 4,
            projects: 8,
            ..month.clone()
        };
        let pair = stage::Pair::start("connectwise", "xero", &spec).await?;
        local
            .add_tenant(
                &pair.tenant_config(&tenant)?,
                stage::template("connectwise", "xero")?,
                &pair.secrets(),
            )
            .await?;
        let ctx = local.tenants.get(&tenant).expect("tenant wired");
        for domain in ctx.psa.pollable() {
            ferry_core::usecases::intake::poll(&local.deps, &tenant, domain, &|_| {})
                .await
                .with_context(|| format!("polling {domain} of {tenant}"))?;
        }
        pairs.push(pair);
    }
    settle(
        host,
        local,
        firm,
        progress,
        "console: syncing two more customers",
    )
    .await?;
    // Their month is reconciled too, so the console shows each customer's last period.
    for (pair, (tenant, ..)) in pairs.iter().zip(NEIGHBOURS) {
        let tenant = TenantId::parse(tenant).expect("valid slug");
        ferry_core::usecases::reconcile::run(
            &local.deps,
            &tenant,
            pair.firm.period_start,
            pair.firm.period_end,
        )
        .await
        .with_context(|| format!("reconciling {tenant}"))?;
    }
    settle(
        host,
        local,
        firm,
        progress,
        "console: reconciliation write-backs",
    )
    .await?;
    drop(pairs);

    let store = SqliteConsoleStore::open(db)?;
    crate::console::import_partners(&store, &crate::local::repo_dir().join("infra")).await?;
    store
        .put_customer(&Customer {
            tenant: firm.clone(),
            partner: "northwind".into(),
            name: "Demo Firm (600 people)".into(),
            tier: "premium".into(),
            sla_seconds: 900,
            psa: psa.into(),
            erp: erp.into(),
        })
        .await?;
    let hash = ferry_console::auth::hash_password(DEMO_PASSWORD).map_err(anyhow::Error::msg)?;
    let users = demo_users(firm);
    for u in &users {
        store
            .put_user(&User {
                name: u.name.into(),
                partner: u.partner.into(),
                role: u.role,
                tenant: u.tenant.as_deref().map(TenantId::parse).transpose()?,
                password_hash: hash.clone(),
            })
            .await?;
    }
    Ok(users)
}
