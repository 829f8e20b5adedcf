//! Ferry against real software: Redmine as the PSA and Tryton as the ERP, both
//! started on loopback by `tests/realsys/ctl.sh` (`scripts/with-real-systems.sh`
//! does it around a command). This module seeds Redmine through its REST API the
//! way people would enter time, wires a tenant to both systems, and reads Tryton
//! back, for `ferry run-real` and the end-to-end tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use chrono::NaiveDate;
use ferry_canon::TenantId;
use ferry_connectors::redmine::RedmineConfig;
use ferry_connectors::registry::{ErpConnection, PsaConnection};
use ferry_connectors::tenant::{TemplatePaths, TenantConfig, TenantSection};
use ferry_connectors::tryton::TrytonConfig;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Where the real systems are, from the environment `tests/realsys/ctl.sh env` prints.
#[derive(Debug, Clone)]
pub struct RealSystems {
    pub redmine_url: String,
    pub redmine_key: String,
    pub tryton_url: String,
    pub tryton_db: String,
    pub tryton_key: String,
    /// `ctl.sh`, to reset both systems to their snapshots.
    pub ctl: Option<PathBuf>,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!(
            "{name} is not set: the real systems are not running. Run through \
             `scripts/with-real-systems.sh` (make test and make run-real do), which \
             installs Redmine and Tryton if needed, starts them and sets it"
        )
    })
}

impl RealSystems {
    pub fn from_env() -> anyhow::Result<RealSystems> {
        Ok(RealSystems {
            redmine_url: var("FERRY_REDMINE_URL")?,
            redmine_key: var("FERRY_REDMINE_API_KEY")?,
            tryton_url: var("FERRY_TRYTON_URL")?,
            tryton_db: var("FERRY_TRYTON_DB")?,
            tryton_key: var("FERRY_TRYTON_REST_KEY")?,
            ctl: std::env::var("FERRY_REALSYS_CTL").ok().map(PathBuf::from),
        })
    }

    /// Stops both systems, puts their snapshot databases back and starts them again.
    pub fn restore(&self) -> anyhow::Result<()> {
        let Some(ctl) = &self.ctl else {
            bail!("FERRY_REALSYS_CTL is not set; cannot reset the real systems");
        };
        let out = std::process::Command::new(ctl)
            .arg("restore")
            .output()
            .with_context(|| format!("running {}", ctl.display()))?;
        if !out.status.success() {
            bail!(
                "{} restore failed: {}",
                ctl.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// A tenant whose PSA is this Redmine and whose ERP is this Tryton.
    pub fn tenant_config(&self, tenant: &TenantId, template: &Path) -> TenantConfig {
        TenantConfig {
            tenant: TenantSection {
                id: tenant.clone(),
                name: Some("Ferry Test Consulting".into()),
            },
            psa: PsaConnection::of(&RedmineConfig {
                base_url: self.redmine_url.clone(),
                home_currency: "USD".into(),
                billable_field: Some("Billable".into()),
                approved_field: Some("Approved".into()),
                page_size: ferry_connectors::redmine::client::PAGE,
                timeout_seconds: 30,
            }),
            erp: ErpConnection::of(&TrytonConfig {
                base_url: self.tryton_url.clone(),
                database: self.tryton_db.clone(),
                company: 1,
                journal: "REV".into(),
                receivable_account: None,
                payment_term: None,
                // Time of people without an employee in Tryton goes on this one's timesheet.
                employee: Some("Integration Bot".into()),
                timeout_seconds: 30,
                per_minute: 600,
                // This Tryton runs on SQLite, where record numbers (project.work's
                // `number`) come from a read-then-write sequence: two creates at
                // once can draw the same number and one is refused. One call at a time.
                concurrent: 1,
                page_size: 100,
            }),
            template: TemplatePaths {
                base: template.to_path_buf(),
                overlay: None,
            },
        }
    }

    /// The tenant's secret values.
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("redmine.api_key", self.redmine_key.clone()),
            ("tryton.rest_key", self.tryton_key.clone()),
        ]
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("static client configuration")
}

/// Redmine as its users drive it: people, projects, time.
pub struct RedmineAdmin {
    http: reqwest::Client,
    url: String,
    key: String,
    billable: i64,
    approved: i64,
    activities: HashMap<String, i64>,
    developer_role: i64,
}

/// One time entry to log.
#[derive(Debug, Clone)]
pub struct Time<'a> {
    pub project: i64,
    pub user: i64,
    pub day: NaiveDate,
    pub hours: &'a str,
    pub activity: &'a str,
    pub comments: &'a str,
    pub billable: bool,
    pub approved: bool,
    /// The issue the time was spent on, if any.
    pub issue: Option<i64>,
}

impl RedmineAdmin {
    pub async fn connect(s: &RealSystems) -> anyhow::Result<RedmineAdmin> {
        let mut me = RedmineAdmin {
            http: http(),
            url: s.redmine_url.trim_end_matches('/').to_string(),
            key: s.redmine_key.clone(),
            billable: 0,
            approved: 0,
            activities: HashMap::new(),
            developer_role: 0,
        };
        let fields = me.get("/custom_fields.json").await?;
        let field = |name: &str| {
            fields["custom_fields"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["name"] == name)
                .and_then(|f| f["id"].as_i64())
                .with_context(|| format!("Redmine has no custom field {name:?}"))
        };
        me.billable = field("Billable")?;
        me.approved = field("Approved")?;
        let acts = me.get("/enumerations/time_entry_activities.json").await?;
        for a in acts["time_entry_activities"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (Some(n), Some(i)) = (a["name"].as_str(), a["id"].as_i64()) {
                me.activities.insert(n.to_string(), i);
            }
        }
        let roles = me.get("/roles.json").await?;
        me.developer_role = roles["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == "Developer")
            .and_then(|r| r["id"].as_i64())
            .context("Redmine has no Developer role")?;
        Ok(me)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("X-Redmine-API-Key", &self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("Redmine {method} {path}: {status} {text}");
        }
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// A user who logs time.
    pub async fn user(&self, login: &str, first: &str, last: &str) -> anyhow::Result<i64> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/users.json",
                Some(json!({ "user": {
                    "login": login, "firstname": first, "lastname": last,
                    "mail": format!("{login}@example.com"), "password": "ferry-e2e-pass-1",
                }})),
            )
            .await?;
        v["user"]["id"].as_i64().context("user without id")
    }

    /// A project; a top-level one stands for a customer.
    pub async fn project(
        &self,
        name: &str,
        identifier: &str,
        parent: Option<i64>,
    ) -> anyhow::Result<i64> {
        let mut p = json!({ "name": name, "identifier": identifier });
        if let Some(parent) = parent {
            p["parent_id"] = json!(parent);
        }
        let v = self
            .send(
                reqwest::Method::POST,
                "/projects.json",
                Some(json!({ "project": p })),
            )
            .await?;
        v["project"]["id"].as_i64().context("project without id")
    }

    /// Renames a project.
    pub async fn rename_project(&self, project: i64, name: &str) -> anyhow::Result<()> {
        self.send(
            reqwest::Method::PUT,
            &format!("/projects/{project}.json"),
            Some(json!({ "project": { "name": name } })),
        )
        .await
        .map(|_| ())
    }

    /// Makes `user` a member (Developer) of `project`, so they may log time on it.
    pub async fn member(&self, project: i64, user: i64) -> anyhow::Result<()> {
        self.send(
            reqwest::Method::POST,
            &format!("/projects/{project}/memberships.json"),
            Some(json!({ "membership": { "user_id": user, "role_ids": [self.developer_role] } })),
        )
        .await
        .map(|_| ())
    }

    /// An issue on a project (a task, to Ferry).
    pub async fn issue(&self, project: i64, subject: &str) -> anyhow::Result<i64> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/issues.json",
                Some(json!({ "issue": { "project_id": project, "subject": subject } })),
            )
            .await?;
        v["issue"]["id"].as_i64().context("issue without id")
    }

    pub fn activity(&self, name: &str) -> anyhow::Result<i64> {
        self.activities
            .get(name)
            .copied()
            .with_context(|| format!("Redmine has no activity {name:?}"))
    }

    fn flags(&self, billable: bool, approved: bool) -> Value {
        json!([
            { "id": self.billable, "value": if billable { "1" } else { "0" } },
            { "id": self.approved, "value": if approved { "1" } else { "0" } },
        ])
    }

    pub async fn log(&self, t: &Time<'_>) -> anyhow::Result<i64> {
        let mut entry = json!({
            "project_id": t.project, "user_id": t.user, "spent_on": t.day.to_string(),
            "hours": serde_json::Number::from_string_unchecked(t.hours.to_string()),
            "activity_id": self.activity(t.activity)?, "comments": t.comments,
            "custom_fields": self.flags(t.billable, t.approved),
        });
        if let Some(issue) = t.issue {
            entry["issue_id"] = json!(issue);
        }
        let v = self
            .send(
                reqwest::Method::POST,
                "/time_entries.json",
                Some(json!({ "time_entry": entry })),
            )
            .await?;
        v["time_entry"]["id"]
            .as_i64()
            .context("time entry without id")
    }

    /// Changes the hours of an entry.
    pub async fn set_hours(&self, id: i64, hours: &str) -> anyhow::Result<()> {
        self.send(
            reqwest::Method::PUT,
            &format!("/time_entries/{id}.json"),
            Some(json!({ "time_entry": { "hours": serde_json::Number::from_string_unchecked(hours.to_string()) } })),
        )
        .await
        .map(|_| ())
    }

    /// Ticks (or unticks) the entry's Approved field.
    pub async fn set_approved(
        &self,
        id: i64,
        billable: bool,
        approved: bool,
    ) -> anyhow::Result<()> {
        self.send(
            reqwest::Method::PUT,
            &format!("/time_entries/{id}.json"),
            Some(json!({ "time_entry": { "custom_fields": self.flags(billable, approved) } })),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_time(&self, id: i64) -> anyhow::Result<()> {
        self.send(
            reqwest::Method::DELETE,
            &format!("/time_entries/{id}.json"),
            None,
        )
        .await
        .map(|_| ())
    }
}

/// Tryton as finance sees it: invoices and parties read back over REST, and the
/// steps finance takes by hand (post, register a payment) over JSON-RPC.
pub struct TrytonAdmin {
    http: reqwest::Client,
    url: String,
    db: String,
    key: String,
}

impl TrytonAdmin {
    pub fn new(s: &RealSystems) -> TrytonAdmin {
        TrytonAdmin {
            http: http(),
            url: s.tryton_url.trim_end_matches('/').to_string(),
            db: s.tryton_db.clone(),
            key: s.tryton_key.clone(),
        }
    }

    /// REST search: `domain` and `fields`, every record.
    pub async fn search(
        &self,
        model: &str,
        domain: Value,
        fields: &[&str],
    ) -> anyhow::Result<Vec<Value>> {
        let mut q: Vec<(&str, String)> = fields.iter().map(|f| ("f", f.to_string())).collect();
        q.push((
            "d",
            base64::engine::general_purpose::URL_SAFE.encode(domain.to_string()),
        ));
        let resp = self
            .http
            .get(format!("{}/{}/rest/model/{model}", self.url, self.db))
            .query(&q)
            .bearer_auth(&self.key)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("Tryton search {model}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Customer invoices whose reference starts with `prefix`, with their lines.
    pub async fn invoices(&self, prefix: &str) -> anyhow::Result<Vec<Value>> {
        self.search(
            "account.invoice",
            json!([
                ["type", "=", "out"],
                ["reference", "like", format!("{prefix}%")]
            ]),
            &[
                "reference",
                "number",
                "state",
                "party.code",
                "party.name",
                "invoice_date",
                "untaxed_amount",
                "total_amount",
                "amount_to_pay",
                "lines.quantity",
                "lines.unit_price",
                "lines.amount",
                "lines.product.code",
                "lines.account.code",
                "lines.description",
            ],
        )
        .await
    }

    /// Tasks (`project.work` of type task) that Ferry synced, with their project.
    pub async fn tasks(&self) -> anyhow::Result<Vec<Value>> {
        self.search(
            "project.work",
            json!([["type", "=", "task"], ["comment", "like", "FERRY-%"]]),
            &["name", "parent.name", "comment"],
        )
        .await
    }

    /// Timesheet lines Ferry wrote, with their project, employee and hours.
    pub async fn timesheet_lines(&self) -> anyhow::Result<Vec<Value>> {
        self.search(
            "timesheet.line",
            json!([["description", "like", "FERRY-T-%"]]),
            &[
                "description",
                "date",
                "duration",
                "employee.party.name",
                "work.rec_name",
            ],
        )
        .await
    }

    /// Projects (`project.work` of type project) that Ferry synced.
    pub async fn projects(&self) -> anyhow::Result<Vec<Value>> {
        self.search(
            "project.work",
            json!([["type", "=", "project"], ["comment", "like", "FERRY-%"]]),
            &["name", "party.code", "status.name", "comment"],
        )
        .await
    }

    pub async fn parties(&self) -> anyhow::Result<Vec<Value>> {
        self.search(
            "party.party",
            json!([["code", "like", "FERRY-%"]]),
            &["code", "name", "addresses"],
        )
        .await
    }

    async fn rpc(&self, auth: Option<&str>, method: &str, params: Value) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(format!("{}/{}/rpc/", self.url, self.db))
            .json(&json!({ "id": 1, "method": method, "params": params }));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let v: Value = req.send().await?.error_for_status()?.json().await?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            bail!("Tryton {method}: {e}");
        }
        Ok(v["result"].clone())
    }

    /// Deletes a timesheet line, as someone tidying Tryton by hand would.
    pub async fn delete_timesheet_line(&self, line: i64) -> anyhow::Result<()> {
        let (auth, ctx) = self.login().await?;
        self.rpc(
            Some(&auth),
            "model.timesheet.line.delete",
            json!([[line], ctx]),
        )
        .await
        .map(|_| ())
    }

    /// Posts a draft invoice, as finance does after review.
    pub async fn post(&self, invoice: i64) -> anyhow::Result<()> {
        let (auth, ctx) = self.login().await?;
        self.rpc(
            Some(&auth),
            "model.account.invoice.post",
            json!([[invoice], ctx]),
        )
        .await
        .map(|_| ())
    }

    async fn login(&self) -> anyhow::Result<(String, Value)> {
        let r = self
            .rpc(
                None,
                "common.db.login",
                json!(["admin", { "password": "admin" }, "en"]),
            )
            .await?;
        let (user, session) = (
            r[0].as_i64().context("user id")?,
            r[1].as_str().context("session")?,
        );
        let auth = format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{user}:{session}"))
        );
        let ctx = self
            .rpc(
                Some(&auth),
                "model.res.user.get_preferences",
                json!([true, {}]),
            )
            .await?;
        Ok((auth, ctx))
    }

    /// Registers a payment of the whole amount due with the `account.invoice.pay`
    /// wizard (wizards are not on the REST API), as finance does when money arrives.
    pub async fn pay_in_full(&self, invoice: i64, on: NaiveDate) -> anyhow::Result<Decimal> {
        let (auth, ctx) = self.login().await?;
        let mut wctx = ctx.clone();
        wctx["active_model"] = json!("account.invoice");
        wctx["active_id"] = json!(invoice);
        wctx["active_ids"] = json!([invoice]);
        let created = self
            .rpc(
                Some(&auth),
                "wizard.account.invoice.pay.create",
                json!([wctx]),
            )
            .await?;
        let (sid, start) = (created[0].clone(), created[1].clone());
        let view = self
            .rpc(
                Some(&auth),
                "wizard.account.invoice.pay.execute",
                json!([sid, {}, start, wctx]),
            )
            .await?;
        let d = &view["view"]["defaults"];
        let amount = d["amount"].clone();
        let methods = self
            .rpc(
                Some(&auth),
                "model.account.invoice.payment.method.search",
                json!([[], 0, 1, null, ctx]),
            )
            .await?;
        let date = json!({ "__class__": "date", "year": chrono::Datelike::year(&on),
                           "month": chrono::Datelike::month(&on), "day": chrono::Datelike::day(&on) });
        self.rpc(
            Some(&auth),
            "wizard.account.invoice.pay.execute",
            json!([sid, { "start": {
                "payee": d["payee"], "amount": amount, "currency": d["currency"],
                "company": ctx["company"], "invoice_account": d["invoice_account"],
                "payment_method": methods[0], "date": date, "description": "Customer payment",
            }}, "choice", wctx]),
        )
        .await?;
        self.rpc(
            Some(&auth),
            "wizard.account.invoice.pay.delete",
            json!([sid, wctx]),
        )
        .await?;
        ferry_connectors::tryton::raw::read_decimal(&amount).context("payment amount")
    }
}

/// What `ferry run-real` did.
#[derive(Debug, serde::Serialize)]
pub struct RealOutcome {
    pub tenant: TenantId,
    pub redmine_url: String,
    pub tryton_url: String,
    pub seeded_entries: usize,
    pub summary: ferry_core::report::RunSummary,
    pub reconciliation: ferry_core::usecases::reconcile::Report,
    pub exceptions: Vec<ferry_core::ports::ExceptionRecord>,
    /// Ferry's invoices as Tryton holds them: reference, number, state, total.
    pub tryton_invoices: Vec<(String, Option<String>, String, Decimal)>,
    /// Ferry's projects in Tryton.
    pub tryton_projects: usize,
    /// Ferry's timesheet lines in Tryton, and their hours.
    pub timesheet_lines: usize,
    pub timesheet_hours: Decimal,
    pub unexplained: Vec<String>,
    pub phases: Vec<(String, u64)>,
}

/// October 2026, the month `run-real` bills.
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).expect("valid date")
}

/// Seeds a small consultancy in Redmine: three customers, five projects, four
/// people, a month of time with some of it unapproved or not billable.
async fn seed_firm(r: &RedmineAdmin, seed: u64) -> anyhow::Result<(Vec<i64>, usize)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut people = Vec::new();
    for (login, first, last) in [
        ("jdoe", "Jane", "Doe"),
        ("rpatel", "Raj", "Patel"),
        ("lchen", "Li", "Chen"),
        ("mgarcia", "Maria", "Garcia"),
    ] {
        people.push(r.user(login, first, last).await?);
    }
    let mut projects = Vec::new();
    for (customer, ident, engagements) in [
        (
            "Acme Corp",
            "acme",
            &[
                ("Acme Website", "acme-web"),
                ("Acme Mobile App", "acme-app"),
            ][..],
        ),
        (
            "Globex",
            "globex",
            &[("Globex ERP Rollout", "globex-erp")][..],
        ),
        (
            "Initech",
            "initech",
            &[
                ("Initech Data Platform", "initech-data"),
                ("Initech Audit", "initech-audit"),
            ][..],
        ),
    ] {
        let parent = r.project(customer, ident, None).await?;
        for (name, id) in engagements {
            let p = r.project(name, id, Some(parent)).await?;
            for u in &people {
                r.member(p, *u).await?;
            }
            projects.push(p);
        }
    }
    let hours = ["1", "1.5", "2", "2.5", "3", "4", "6.25", "7.5"];
    let mut entries = Vec::new();
    for d in 1..=31 {
        let date = day(d);
        if matches!(
            chrono::Datelike::weekday(&date),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ) {
            continue;
        }
        for (i, u) in people.iter().enumerate() {
            let project = projects[(d as usize + i) % projects.len()];
            entries.push(
                r.log(&Time {
                    project,
                    user: *u,
                    day: date,
                    hours: hours[rng.usize(..hours.len())],
                    activity: if rng.u8(..3) == 0 {
                        "Design"
                    } else {
                        "Development"
                    },
                    comments: "client work",
                    billable: rng.u8(..10) != 0,
                    approved: rng.u8(..8) != 0,
                    issue: None,
                })
                .await?,
            );
        }
    }
    Ok((entries.clone(), entries.len()))
}

/// `ferry run-real`: seeds Redmine, syncs into Tryton, makes live changes in
/// Redmine (an edit, a deletion, an approval), posts and pays an invoice in
/// Tryton as finance would, reconciles October and reports.
pub async fn run(db: Option<PathBuf>, progress: bool) -> anyhow::Result<RealOutcome> {
    use ferry_core::usecases::{intake, reconcile};
    let started = std::time::Instant::now();
    let mut phases = Vec::new();
    let mut phase = |name: &str, t: &mut std::time::Instant| {
        phases.push((name.to_string(), t.elapsed().as_millis() as u64));
        *t = std::time::Instant::now();
    };
    let mut t = std::time::Instant::now();
    let say = |m: &str| {
        if progress {
            eprintln!("{m}");
        }
    };
    let systems = RealSystems::from_env()?;
    let redmine = RedmineAdmin::connect(&systems).await?;
    let tryton = TrytonAdmin::new(&systems);
    say(&format!(
        "seeding Redmine at {} through its REST API …",
        systems.redmine_url
    ));
    let (entries, seeded) = seed_firm(&redmine, 7).await?;
    phase("seed Redmine", &mut t);

    let local = crate::local::Local::open(&crate::local::LocalOptions {
        db,
        settings: crate::local::local_settings(),
        ..crate::local::LocalOptions::default()
    })?;
    let tenant = TenantId::parse("real-firm").expect("valid");
    let template_path = crate::local::repo_dir().join("templates/redmine-tryton.toml");
    let template = ferry_core::template::Template::load(
        &ferry_core::template::TemplateSource::read(&template_path)?,
        None,
    )?;
    let cfg = systems.tenant_config(&tenant, &template_path);
    let secrets = systems.secrets();
    let secrets: Vec<(&str, String)> = secrets.iter().map(|(k, v)| (*k, v.clone())).collect();
    local.add_tenant(&cfg, template, &secrets).await?;
    let deps = local.deps.clone();
    let host = ferry_embedded::host::LocalHost::start(
        deps.clone(),
        ferry_embedded::host::HostConfig::default(),
    );
    // The workers stop before any error is reported: a runtime shut down under
    // running workers panics instead of exiting with the error.
    let outcome = async {
        let ctx = local.tenants.get(&tenant).context("tenant wired")?;
        let sync = || async {
            for d in ctx.psa.pollable() {
                intake::poll(&deps, &tenant, d, &|_| {}).await?;
            }
            for d in ctx.psa.swept() {
                intake::sweep_deletions(&deps, &tenant, d, day(1)).await?;
            }
            host.wait_idle(Duration::from_secs(300))
                .await
                .map_err(|e| anyhow::anyhow!("the pipeline did not settle: {e:?}"))?;
            anyhow::Ok(())
        };
        let latency_since = deps.clock.now();
        say("syncing Redmine into Tryton …");
        sync().await?;
        phase("backfill into Tryton", &mut t);

        say("changing time in Redmine (edit, delete, approve) and syncing again …");
        redmine.set_hours(entries[0], "5").await?;
        redmine.delete_time(entries[1]).await?;
        redmine.set_approved(entries[2], true, true).await?;
        sync().await?;
        phase("live changes", &mut t);

        say("finance posts and is paid for the first invoice in Tryton …");
        let invoices = tryton.invoices("FERRY-").await?;
        if let Some(first) = invoices.first().and_then(|i| i["id"].as_i64()) {
            tryton.post(first).await?;
            tryton.pay_in_full(first, day(31)).await?;
        }
        phase("post and pay in Tryton", &mut t);

        let reconciliation = reconcile::run(&deps, &tenant, day(1), day(31)).await?;
        phase("reconcile", &mut t);
        let summary = ferry_core::report::summarise(
            &deps,
            &tenant,
            latency_since,
            &ctx.erp.account_key(),
            ctx.erp.limits().per_day,
        )
        .await?;
        let exceptions = deps
            .exceptions
            .list(&ferry_core::ports::ExceptionQuery {
                tenant: Some(tenant.clone()),
                statuses: vec![ferry_core::ports::ExceptionStatus::Open],
                ..Default::default()
            })
            .await?;
        let tryton_invoices = tryton
            .invoices("FERRY-")
            .await?
            .iter()
            .map(|i| {
                (
                    i["reference"].as_str().unwrap_or_default().to_string(),
                    i["number"].as_str().map(String::from),
                    i["state"].as_str().unwrap_or_default().to_string(),
                    ferry_connectors::tryton::raw::read_decimal(&i["total_amount"])
                        .unwrap_or_default(),
                )
            })
            .collect();
        let tryton_projects = tryton.projects().await?.len();
        let lines = tryton.timesheet_lines().await?;
        let timesheet_hours = lines
            .iter()
            .filter_map(|l| ferry_connectors::tryton::raw::read_timedelta_hours(&l["duration"]))
            .sum::<Decimal>()
            .normalize();
        let mut unexplained = Vec::new();
        if summary.total().in_flight > 0 {
            unexplained.push(format!(
                "{} inputs never reached a final state",
                summary.total().in_flight
            ));
        }
        for e in &exceptions {
            unexplained.push(format!(
                "unexpected exception {} on {}: {}",
                e.reason, e.source_key, e.message
            ));
        }
        if !reconciliation.clean {
            unexplained.push(format!(
                "reconciliation found {} unexplained differences",
                reconciliation.unexplained()
            ));
        }
        anyhow::Ok(RealOutcome {
            tenant,
            redmine_url: systems.redmine_url,
            tryton_url: systems.tryton_url,
            seeded_entries: seeded,
            summary,
            reconciliation,
            exceptions,
            tryton_invoices,
            tryton_projects,
            timesheet_lines: lines.len(),
            timesheet_hours,
            unexplained,
            phases: Vec::new(),
        })
    }
    .await;
    host.shutdown().await;
    let mut outcome = outcome?;
    phases.push(("total".into(), started.elapsed().as_millis() as u64));
    outcome.phases = phases;
    Ok(outcome)
}
