//! Harvest on the demo's stage: the demo firm as a Harvest account holds it.
//! Customers are clients (with their currency), a project's department is its
//! `code`, work roles are tasks, approval is Harvest's timesheet approval
//! (`is_closed`), PSA invoices are Harvest invoices with one service line.
//! Harvest has no credit memos and no tax codes on clients, so the firm's
//! credit memos and its customer with an unknown tax code are not carried.
//! Harvest sends no webhooks: Ferry polls it, and sweeps it for deletions.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use toml::Value as T;

use super::{HarvestFaults, HarvestSim, HarvestSimConfig};
use crate::connectwise::Kind;
use crate::demo::DemoFirm;
use crate::stage::{Delivery, Expected, Fault, PsaStage, SimPsa, SimTime, table};

pub struct Stage;

pub static STAGE: Stage = Stage;

#[async_trait]
impl PsaStage for Stage {
    fn connector(&self) -> &'static str {
        "harvest"
    }

    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimPsa>> {
        let sim = HarvestSim::start(HarvestSimConfig::default()).await?;
        let mut account = Account {
            sim,
            firm: firm.clone(),
            tasks: BTreeMap::new(),
        };
        account.seed();
        Ok(Box::new(account))
    }
}

/// The Harvest simulator with the firm in it.
pub struct Account {
    pub sim: HarvestSim,
    firm: DemoFirm,
    /// Task id by work role.
    tasks: BTreeMap<String, i64>,
}

fn dec(v: &Value) -> Decimal {
    v.as_number()
        .and_then(|n| Decimal::from_str(&n.to_string()).ok())
        .unwrap_or_default()
}

/// `2026-10-05T14:00:00Z` → `2026-10-05`; absent stays null.
fn day(v: &Value) -> Value {
    v.as_str()
        .and_then(|s| s.get(..10))
        .map_or(Value::Null, |d| json!(d))
}

fn named(v: &Value) -> Value {
    json!({ "id": v["id"], "name": v["name"] })
}

/// The records of the firm Harvest cannot hold (see the module comment).
fn carried(kind: Kind, record: &Value) -> bool {
    !(kind == Kind::Invoice && record["type"] == "CreditMemo")
}

fn domain(kind: Kind) -> &'static str {
    match kind {
        Kind::Company => "customers",
        Kind::Project => "projects",
        Kind::Time => "time_entries",
        Kind::Expense => "expenses",
        Kind::Invoice => "invoices",
    }
}

impl Account {
    fn task(&mut self, role: &str) -> i64 {
        let next = 8_000 + self.tasks.len() as i64;
        *self.tasks.entry(role.to_string()).or_insert(next)
    }

    fn client(c: &Value) -> Value {
        json!({ "id": c["id"], "name": c["name"], "is_active": true,
                "address": c["addressLine1"], "statement_key": format!("k{}", c["id"]),
                "currency": c["currency"]["currencyCode"] })
    }

    fn project(p: &Value) -> Value {
        json!({ "id": p["id"], "client": named(&p["company"]), "name": p["name"],
                "code": p["department"]["identifier"], "is_active": p["closedFlag"] != true,
                "is_billable": p["type"]["name"] != "Internal",
                "is_fixed_fee": p["billingMethod"] == "FixedFee", "bill_by": "People",
                "budget": null, "budget_by": "none", "fee": p["billingAmount"],
                "starts_on": day(&p["estimatedStart"]), "ends_on": day(&p["estimatedEnd"]) })
    }

    fn time_entry(&mut self, t: &Value) -> Value {
        let task = self.task(t["workRole"]["name"].as_str().unwrap_or("Consulting"));
        let approved = t["status"] == "ApprovedByTierTwo";
        json!({ "id": t["id"], "spent_date": day(&t["timeStart"]),
                "user": { "id": t["member"]["id"], "name": t["member"]["name"] },
                "client": named(&t["company"]), "project": named(&t["project"]),
                "task": { "id": task, "name": t["workRole"]["name"] },
                "hours": t["actualHours"], "hours_without_timer": t["actualHours"],
                "rounded_hours": t["actualHours"], "notes": t["notes"],
                "is_locked": approved, "is_closed": approved, "is_billed": false,
                "locked_reason": if approved { json!("Item Approved and Locked for this Time Period") } else { Value::Null },
                "timer_started_at": null, "started_time": null, "ended_time": null,
                "is_running": false, "invoice": null, "external_reference": null,
                "billable": t["billableOption"] == "Billable", "budgeted": false,
                "billable_rate": t["hourlyRate"], "cost_rate": null })
    }

    fn expense(e: &Value) -> Value {
        let approved = e["status"] == "ApprovedByTierTwo";
        json!({ "id": e["id"], "client": named(&e["company"]), "project": named(&e["project"]),
                "expense_category": { "id": 1, "name": e["type"]["name"], "unit_price": null, "unit_name": null },
                "user": { "id": e["member"]["id"], "name": e["member"]["name"] },
                "receipt": null, "invoice": null, "notes": e["notes"], "units": 1,
                "total_cost": e["amount"], "billable": e["billableOption"] == "Billable",
                "is_closed": approved, "is_locked": approved, "is_billed": false,
                "locked_reason": null, "spent_date": day(&e["date"]) })
    }

    fn invoice(i: &Value) -> Value {
        let tax = dec(&i["salesTax"]);
        let project = if i["project"].is_object() {
            json!({ "id": i["project"]["id"], "name": i["project"]["name"], "code": null })
        } else {
            Value::Null
        };
        json!({ "id": i["id"], "client": named(&i["company"]), "number": i["invoiceNumber"],
                "purchase_order": "", "amount": i["total"], "due_amount": i["balance"],
                "tax": if tax.is_zero() { Value::Null } else { json!(8.875) },
                "tax_amount": i["salesTax"], "tax2": null, "tax2_amount": 0.0,
                "discount": null, "discount_amount": 0.0, "subject": i["invoiceNumber"],
                "notes": null, "currency": i["currency"]["currencyCode"], "state": "open",
                "period_start": null, "period_end": null, "issue_date": day(&i["date"]),
                "due_date": day(&i["dueDate"]), "payment_term": "net 30", "sent_at": null,
                "paid_at": null, "paid_date": null, "closed_at": null,
                "line_items": [{ "id": 1, "project": project, "kind": "Service",
                    "description": format!("Services — {}", i["invoiceNumber"].as_str().unwrap_or("invoice")),
                    "quantity": 1.0, "unit_price": i["serviceTotal"], "amount": i["serviceTotal"],
                    "taxed": !tax.is_zero(), "taxed2": false }] })
    }

    fn user(id: &Value, name: &str) -> Value {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        json!({ "id": id, "first_name": first, "last_name": last,
                "email": format!("{}.{}@firm.example", first.to_lowercase(), last.to_lowercase()),
                "is_active": true, "is_contractor": false, "default_hourly_rate": null,
                "cost_rate": null, "roles": [] })
    }

    fn put(&mut self, kind: Kind, record: &Value) {
        if !carried(kind, record) {
            return;
        }
        match kind {
            Kind::Company => {
                self.sim.put("clients", Self::client(record));
            }
            Kind::Project => {
                self.sim.put("projects", Self::project(record));
            }
            Kind::Time => {
                let e = self.time_entry(record);
                self.sim.put("time_entries", e);
            }
            Kind::Expense => {
                self.sim.put("expenses", Self::expense(record));
            }
            Kind::Invoice => {
                self.sim.put("invoices", Self::invoice(record));
            }
        }
    }

    /// Loads the firm: people and each project's tasks first, as Harvest needs them.
    fn seed(&mut self) {
        let f = self.firm.clone();
        let mut people: BTreeMap<i64, String> = BTreeMap::new();
        let mut roles: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for t in &f.time {
            if let Some(id) = t["member"]["id"].as_i64() {
                people.insert(id, t["member"]["name"].as_str().unwrap_or("").to_string());
            }
            if let (Some(p), Some(r)) =
                (t["project"]["id"].as_i64(), t["workRole"]["name"].as_str())
            {
                let rs = roles.entry(p).or_default();
                if !rs.iter().any(|x| x == r) {
                    rs.push(r.to_string());
                }
            }
        }
        for (id, name) in &people {
            self.sim.put("users", Self::user(&json!(id), name));
        }
        for c in &f.companies {
            self.put(Kind::Company, c);
        }
        for p in &f.projects {
            self.put(Kind::Project, p);
            let pid = p["id"].as_i64().unwrap_or_default();
            for r in roles.get(&pid).into_iter().flatten() {
                let task = self.task(r);
                self.sim.put(
                    "task_assignments",
                    json!({ "project": { "id": pid, "name": p["name"], "code": p["department"]["identifier"] },
                            "task": { "id": task, "name": r }, "is_active": true, "billable": true,
                            "hourly_rate": null, "budget": null }),
                );
            }
        }
        for t in &f.time {
            self.put(Kind::Time, t);
        }
        for e in &f.expenses {
            self.put(Kind::Expense, e);
        }
        for i in &f.invoices {
            self.put(Kind::Invoice, i);
        }
    }
}

#[async_trait]
impl SimPsa for Account {
    fn connector(&self) -> &'static str {
        "harvest"
    }

    fn base_url(&self) -> String {
        self.sim.base_url()
    }

    fn settings(&self) -> toml::Table {
        table([
            ("base_url", T::String(self.sim.base_url())),
            (
                "account_id",
                T::String(self.sim.config().account_id.clone()),
            ),
            ("home_currency", T::String("USD".into())),
            (
                "user_agent",
                T::String("Ferry demo (ops@partner.example)".into()),
            ),
            ("timeout_seconds", T::Integer(10)),
        ])
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![("harvest.access_token", self.sim.config().token.clone())]
    }

    async fn subscribe(&self, _url: &str) -> Result<bool, String> {
        Ok(false)
    }

    fn records(&self) -> u64 {
        [
            "clients",
            "projects",
            "time_entries",
            "expenses",
            "invoices",
        ]
        .into_iter()
        .map(|c| self.sim.all(c).len() as u64)
        .sum()
    }

    fn time(&self) -> Vec<SimTime> {
        self.sim
            .all("time_entries")
            .iter()
            .filter_map(|t| {
                Some(SimTime {
                    id: t["id"].as_i64()?.to_string(),
                    project: t["project"]["id"].as_i64()?.to_string(),
                    date: NaiveDate::parse_from_str(t["spent_date"].as_str()?, "%Y-%m-%d").ok()?,
                    hours: dec(&t["hours"]),
                    approved: t["is_closed"] == true,
                    billable: t["billable"] == true,
                })
            })
            .collect()
    }

    fn bad(&self) -> Vec<Expected> {
        self.firm
            .bad
            .iter()
            // Harvest clients carry no tax code to be unknown.
            .filter(|b| b.expect_reason != "validation.unknown_tax_code")
            .map(|b| Expected {
                key: format!("{}/harvest:{}", domain(b.kind), b.id),
                id: b.id.to_string(),
                reason: b.expect_reason,
                what: b.what.clone(),
                erp_rule: b.erp_rule,
            })
            .collect()
    }

    async fn deliver(&self, _how: Delivery) {}

    async fn approve_time(&self, id: &str) {
        if let Ok(id) = id.parse() {
            self.sim.update(
                "time_entries",
                id,
                json!({ "is_closed": true, "is_locked": true,
                        "locked_reason": "Item Approved and Locked for this Time Period" }),
            );
        }
    }

    async fn set_hours(&self, id: &str, hours: Decimal) {
        if let Ok(id) = id.parse() {
            self.sim.update(
                "time_entries",
                id,
                json!({ "hours": crate::num(hours), "rounded_hours": crate::num(hours) }),
            );
        }
    }

    async fn log_time(&self, like: &str, day: NaiveDate, hours: Decimal) {
        let Some(mut t) = like
            .parse()
            .ok()
            .and_then(|id| self.sim.get("time_entries", id))
        else {
            return;
        };
        if let Some(o) = t.as_object_mut() {
            o.remove("id");
            o.remove("created_at");
        }
        t["spent_date"] = json!(day.to_string());
        t["hours"] = crate::num(hours);
        t["rounded_hours"] = crate::num(hours);
        t["notes"] = json!("late entry");
        self.sim.put("time_entries", t);
    }

    async fn delete_time(&self, id: &str) {
        if let Ok(id) = id.parse() {
            self.sim.delete("time_entries", id);
        }
    }

    async fn add_late(&self) {
        for (kind, record) in &self.firm.late {
            if !carried(*kind, record) {
                continue;
            }
            let r = match kind {
                Kind::Company => ("clients", Self::client(record)),
                Kind::Project => ("projects", Self::project(record)),
                Kind::Expense => ("expenses", Self::expense(record)),
                Kind::Invoice => ("invoices", Self::invoice(record)),
                // Late time needs a task: none is late in the firm.
                Kind::Time => continue,
            };
            self.sim.put(r.0, r.1);
        }
    }

    fn paid_invoices(&self) -> usize {
        self.sim
            .all("invoices")
            .iter()
            .filter_map(|i| i["id"].as_i64())
            .filter(|i| !self.sim.payments(*i).is_empty())
            .count()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn inject(&self, fault: Fault) {
        let mut f = HarvestFaults::default();
        match fault {
            Fault::NotJson => f.garbage_next = 1,
            Fault::ServerError => f.fail_next = 1,
            Fault::Throttled => f.throttle_next = 1,
        }
        self.sim.set_faults(f);
    }
}
