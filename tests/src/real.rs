//! Harness for the end-to-end scenarios against real Redmine and Tryton servers
//! (`scripts/with-real-systems.sh` starts them; `make test` runs the scenarios
//! under it). Each scenario restores both databases from their snapshots, seeds
//! Redmine through its REST API and runs Ferry's pipeline in-process (embedded
//! SQLite, all five handlers). Scenarios share the two servers, so they run one
//! at a time.

use std::time::Duration;

use chrono::NaiveDate;
use ferry_canon::{Domain, TenantId};
use ferry_cli::local::{Local, LocalOptions, repo_dir};
use ferry_cli::real::{RealSystems, RedmineAdmin, Time, TrytonAdmin};
use ferry_core::Deps;
use ferry_core::ports::{Disposition, ExceptionQuery, ExceptionRecord, ExceptionStatus};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::intake;
use ferry_embedded::host::{HostConfig, LocalHost};
use serde_json::Value;

/// One scenario at a time: they share the servers.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The Redmine → Tryton base template from the repository, with an optional override.
pub fn template(overlay: Option<&str>) -> Template {
    let base = TemplateSource::read(&repo_dir().join("templates/redmine-tryton.toml"))
        .expect("base template");
    let overlay = overlay.map(|o| TemplateSource::new("override.toml", o));
    Template::load(&base, overlay.as_ref()).expect("template loads")
}

/// The seeded firm's Redmine ids.
#[derive(Debug, Clone)]
pub struct Firm {
    pub acme: i64,
    pub web: i64,
    pub app: i64,
    pub globex: i64,
    pub rollout: i64,
    pub jane: i64,
    pub raj: i64,
    /// An issue on the website project; entry 2 is logged on it.
    pub issue: i64,
    /// Time entry ids, in the order of [`ENTRIES`].
    pub entries: Vec<i64>,
}

/// October 2026. `(project, user, day, hours, activity, billable, approved)`;
/// projects: 0 web, 1 app, 2 rollout; users: 0 jane, 1 raj.
pub const ENTRIES: [(usize, usize, u32, &str, &str, bool, bool); 8] = [
    (0, 0, 5, "2.5", "Design", true, true),        // 300.00
    (0, 1, 6, "4", "Development", true, true),     // 600.00
    (0, 0, 7, "1.25", "Development", true, true),  // 187.50
    (0, 1, 8, "3", "Development", false, true),    // not billable
    (0, 0, 9, "2", "Design", true, false),         // not approved
    (1, 1, 12, "6.75", "Development", true, true), // 1012.50
    (2, 0, 14, "0.33", "Development", true, true), // 49.50
    (2, 1, 15, "7.5", "Design", true, true),       // 900.00
];

pub fn october(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, day).expect("valid date")
}

/// Seeds the firm: two customers (top-level projects), three projects, two people, eight entries.
pub async fn seed(r: &RedmineAdmin) -> anyhow::Result<Firm> {
    let acme = r.project("Acme Corp", "acme", None).await?;
    let web = r.project("Acme Website", "acme-web", Some(acme)).await?;
    let app = r.project("Acme Mobile App", "acme-app", Some(acme)).await?;
    let globex = r.project("Globex", "globex", None).await?;
    let rollout = r
        .project("Globex ERP Rollout", "globex-erp", Some(globex))
        .await?;
    let jane = r.user("jdoe", "Jane", "Doe").await?;
    let raj = r.user("rpatel", "Raj", "Patel").await?;
    for p in [web, app, rollout] {
        for u in [jane, raj] {
            r.member(p, u).await?;
        }
    }
    let issue = r.issue(web, "Homepage redesign").await?;
    let projects = [web, app, rollout];
    let users = [jane, raj];
    let mut entries = Vec::new();
    for (i, (p, u, day, hours, activity, billable, approved)) in ENTRIES.into_iter().enumerate() {
        entries.push(
            r.log(&Time {
                project: projects[p],
                user: users[u],
                day: october(day),
                hours,
                activity,
                comments: "client work",
                billable,
                approved,
                issue: (i == 2).then_some(issue),
            })
            .await?,
        );
    }
    Ok(Firm {
        acme,
        web,
        app,
        globex,
        rollout,
        jane,
        raj,
        issue,
        entries,
    })
}

/// The scenarios' pipeline settings. No poll overlap: a record comes back in a
/// poll only when its version moved past the cursor, which is what they check.
pub fn real_settings() -> ferry_core::Settings {
    ferry_core::Settings {
        poll_overlap: Duration::ZERO,
        ..ferry_cli::local::local_settings()
    }
}

/// A scenario: fresh systems, a seeded firm, and a pipeline wired to both.
pub struct Real {
    pub systems: RealSystems,
    pub redmine: RedmineAdmin,
    pub tryton: TrytonAdmin,
    pub firm: Firm,
    pub local: Local,
    pub deps: Deps,
    pub host: LocalHost,
    pub tenant: TenantId,
}

impl Real {
    /// Restores both systems, seeds Redmine and wires the tenant with `template`.
    /// `wrap` wraps the pipeline's ports (fault injection).
    pub async fn start(template: Template, wrap: fn(Deps) -> Deps) -> Real {
        Self::start_with(template, wrap, real_settings()).await
    }

    /// [`Real::start`] with the pipeline's settings given.
    pub async fn start_with(
        template: Template,
        wrap: fn(Deps) -> Deps,
        settings: ferry_core::Settings,
    ) -> Real {
        crate::init_tracing();
        let systems = RealSystems::from_env().expect("real systems");
        systems.restore().expect("restore snapshots");
        let redmine = RedmineAdmin::connect(&systems)
            .await
            .expect("redmine reachable");
        let firm = seed(&redmine).await.expect("seed redmine");
        let local = Local::open(&LocalOptions {
            settings,
            ..LocalOptions::default()
        })
        .expect("store opens");
        let tenant = TenantId::parse("real-firm").expect("valid");
        let cfg = systems.tenant_config(&tenant, &repo_dir().join("templates/redmine-tryton.toml"));
        let secrets = systems.secrets();
        let secrets: Vec<(&str, String)> = secrets.iter().map(|(k, v)| (*k, v.clone())).collect();
        local
            .add_tenant(&cfg, template, &secrets)
            .await
            .expect("tenant wires");
        let deps = wrap(local.deps.clone());
        let host = LocalHost::start(deps.clone(), HostConfig::default());
        Real {
            tryton: TrytonAdmin::new(&systems),
            systems,
            redmine,
            firm,
            local,
            deps,
            host,
            tenant,
        }
    }

    /// Polls every domain, sweeps for deletions, and waits for the pipeline to settle.
    pub async fn sync(&self) {
        let ctx = self.local.tenants.get(&self.tenant).expect("tenant");
        for d in ctx.psa.pollable() {
            intake::poll(&self.deps, &self.tenant, d, &|_| {})
                .await
                .expect("poll");
        }
        for d in ctx.psa.swept() {
            intake::sweep_deletions(&self.deps, &self.tenant, d, october(1))
                .await
                .expect("sweep");
        }
        self.settle().await;
    }

    pub async fn settle(&self) {
        self.host
            .wait_idle(Duration::from_secs(90))
            .await
            .expect("pipeline settles");
    }

    /// Ferry's invoices in Tryton, by reference.
    pub async fn invoices(&self) -> Vec<Value> {
        let mut v = self.tryton.invoices("FERRY-").await.expect("read invoices");
        v.sort_by_key(|i| i["reference"].as_str().unwrap_or_default().to_string());
        v
    }

    /// The invoice of a project's October billing (panics unless exactly one).
    pub async fn invoice_of(&self, project: i64) -> Value {
        let reference = format!("FERRY-S-project_billing-{project}-202610");
        let found: Vec<Value> = self
            .invoices()
            .await
            .into_iter()
            .filter(|i| i["reference"] == reference.as_str())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one invoice {reference} in Tryton: {found:#?}"
        );
        found.into_iter().next().expect("one")
    }

    pub async fn open_exceptions(&self) -> Vec<ExceptionRecord> {
        self.deps
            .exceptions
            .list(&ExceptionQuery {
                tenant: Some(self.tenant.clone()),
                statuses: vec![ExceptionStatus::Open],
                ..ExceptionQuery::default()
            })
            .await
            .expect("exceptions")
    }

    pub async fn disposition(&self, domain: Domain, id: i64) -> Option<Disposition> {
        self.deps
            .ledger
            .get(&self.tenant, &format!("{domain}/redmine:{id}"))
            .await
            .expect("ledger")
            .map(|e| e.disposition)
    }

    pub async fn stop(self) {
        self.host.shutdown().await;
    }
}

/// A Tryton typed decimal (or plain number) as a decimal.
pub fn dec(v: &Value) -> rust_decimal::Decimal {
    ferry_connectors::tryton::raw::read_decimal(v).unwrap_or_else(|| panic!("not a decimal: {v}"))
}

/// `(product code, quantity, unit price, amount)` of each invoice line, sorted.
pub fn lines(invoice: &Value) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = invoice["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["product"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                dec(&l["quantity"]).normalize().to_string(),
                dec(&l["unit_price"]).normalize().to_string(),
                dec(&l["amount"]).to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Line ids of an invoice, sorted.
pub fn line_ids(invoice: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = invoice["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["id"].as_i64())
        .collect();
    v.sort();
    v
}

/// Ferry's timesheet lines in Tryton: `(time entry id, project, employee, hours, line id)`, sorted.
pub async fn timesheets(r: &Real) -> Vec<(i64, String, String, String, i64)> {
    let mut v: Vec<_> = r
        .tryton
        .timesheet_lines()
        .await
        .expect("timesheet lines")
        .iter()
        .map(|l| {
            let entry = l["description"]
                .as_str()
                .and_then(|d| d.strip_prefix("FERRY-T-"))
                .and_then(|d| d.split(' ').next())
                .and_then(|id| id.parse().ok())
                .expect("Ferry's reference first");
            (
                entry,
                l["work"]["rec_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                l["employee"]["party"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                ferry_connectors::tryton::raw::read_timedelta_hours(&l["duration"])
                    .expect("duration")
                    .normalize()
                    .to_string(),
                l["id"].as_i64().expect("id"),
            )
        })
        .collect();
    v.sort();
    v
}
