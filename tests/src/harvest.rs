//! A Harvest account on the simulator, filled the way people fill one (clients,
//! projects with tasks, people, time, expenses, invoices), and a Harvest
//! connection to it, for the connector's tests and the pipeline's.

use ferry_canon::Currency;
use ferry_connectors::credential::Credential;
use ferry_connectors::harvest::{Harvest, HarvestConfig};
use ferry_core::ports::Secret;
use ferry_sim::harvest::{HarvestSim, HarvestSimConfig};
use serde_json::{Value, json};

/// A simulated Harvest account.
pub struct HarvestAccount {
    pub sim: HarvestSim,
}

fn named(r: &Value) -> Value {
    json!({ "id": r["id"], "name": r["name"] })
}

impl HarvestAccount {
    /// An empty account with Harvest's documented rate limit.
    pub async fn start() -> HarvestAccount {
        Self::start_with(HarvestSimConfig::default()).await
    }

    pub async fn start_with(cfg: HarvestSimConfig) -> HarvestAccount {
        HarvestAccount {
            sim: HarvestSim::start(cfg)
                .await
                .expect("Harvest simulator starts"),
        }
    }

    /// Settings for a connection to this account, `page_size` records a page.
    pub fn config(&self, page_size: u32) -> HarvestConfig {
        HarvestConfig {
            base_url: self.sim.base_url(),
            account_id: self.sim.config().account_id.clone(),
            home_currency: "USD".into(),
            user_agent: "Ferry tests (ops@ferry.example)".into(),
            page_size,
            approvals: true,
            timeout_seconds: 5,
        }
    }

    /// A connection reading `page_size` records a page.
    pub fn connect(&self, page_size: u32) -> Harvest {
        Harvest::new(
            self.config(page_size),
            Credential::Fixed(Secret::new(self.sim.config().token.clone())),
            Currency::parse("USD").expect("USD"),
            None,
        )
    }

    pub fn client(&self, name: &str, currency: &str) -> Value {
        self.sim.put(
            "clients",
            json!({ "name": name, "is_active": true, "currency": currency,
                    "address": "1 Market Street\nSpringfield", "statement_key": "k" }),
        )
    }

    pub fn project(&self, client: &Value, name: &str, fixed_fee: bool) -> Value {
        self.sim.put(
            "projects",
            json!({ "client": { "id": client["id"], "name": client["name"], "currency": client["currency"] },
                    "name": name, "code": null, "is_active": true, "is_billable": true,
                    "is_fixed_fee": fixed_fee, "bill_by": "Tasks", "budget_by": "project",
                    "budget": null, "fee": if fixed_fee { json!(20000.0) } else { Value::Null },
                    "starts_on": null, "ends_on": null }),
        )
    }

    /// Assigns a task (`Design`, `Programming`) to a project.
    pub fn task(&self, project: &Value, task_id: i64, task: &str) -> Value {
        self.sim.put(
            "task_assignments",
            json!({ "project": { "id": project["id"], "name": project["name"], "code": null },
                    "task": { "id": task_id, "name": task }, "is_active": true,
                    "billable": true, "hourly_rate": 150.0, "budget": null }),
        )
    }

    pub fn user(&self, first: &str, last: &str) -> Value {
        self.sim.put(
            "users",
            json!({ "first_name": first, "last_name": last,
                    "email": format!("{}@firm.example", first.to_lowercase()),
                    "is_active": true, "is_contractor": false, "default_hourly_rate": 150.0,
                    "cost_rate": 80.0, "roles": ["Consultant"] }),
        )
    }

    /// A time entry of `hours` (text, exact) on `date`, approved or not.
    #[allow(clippy::too_many_arguments)]
    pub fn time(
        &self,
        user: &Value,
        project: &Value,
        task: &Value,
        date: &str,
        hours: &str,
        rate: &str,
        approved: bool,
    ) -> Value {
        let hours: Value = serde_json::from_str(hours).expect("hours are a number");
        let rate: Value = serde_json::from_str(rate).expect("rate is a number");
        self.sim.put(
            "time_entries",
            json!({ "spent_date": date,
                    "user": { "id": user["id"], "name": format!("{} {}", user["first_name"].as_str().unwrap_or(""), user["last_name"].as_str().unwrap_or("")) },
                    "client": project["client"].clone(), "project": named(project),
                    "task": task["task"].clone(), "hours": hours, "hours_without_timer": hours,
                    "rounded_hours": hours, "notes": "work", "is_locked": approved,
                    "locked_reason": if approved { json!("Item Approved and Locked for this Time Period") } else { Value::Null },
                    "is_closed": approved, "is_billed": false, "timer_started_at": null,
                    "started_time": null, "ended_time": null, "is_running": false,
                    "invoice": null, "external_reference": null, "billable": true,
                    "budgeted": false, "billable_rate": rate, "cost_rate": 80.0 }),
        )
    }

    pub fn expense(&self, user: &Value, project: &Value, date: &str, cost: &str) -> Value {
        let cost: Value = serde_json::from_str(cost).expect("cost is a number");
        self.sim.put(
            "expenses",
            json!({ "client": project["client"].clone(), "project": named(project),
                    "expense_category": { "id": 1, "name": "Lodging", "unit_price": null, "unit_name": null },
                    "user": { "id": user["id"], "name": user["first_name"] },
                    "receipt": null, "invoice": null, "notes": "hotel", "units": 1,
                    "total_cost": cost, "billable": true, "is_closed": true, "is_locked": true,
                    "is_billed": false, "locked_reason": null, "spent_date": date }),
        )
    }

    /// An open invoice of one service line, with 10% tax.
    pub fn invoice(&self, client: &Value, project: &Value, date: &str, amount: &str) -> Value {
        let net: rust_decimal::Decimal = amount.parse().expect("amount");
        let tax = (net / rust_decimal::Decimal::TEN).round_dp(2);
        let n = |d: rust_decimal::Decimal| ferry_sim::num(d);
        self.sim.put(
            "invoices",
            json!({ "client": named(client), "number": format!("H-{}", date),
                    "purchase_order": "", "amount": n(net + tax), "due_amount": n(net + tax),
                    "tax": 10.0, "tax_amount": n(tax), "tax2": null, "tax2_amount": 0.0,
                    "discount": null, "discount_amount": 0.0, "subject": "Services",
                    "notes": null, "currency": client["currency"], "state": "open",
                    "period_start": null, "period_end": null, "issue_date": date,
                    "due_date": date, "payment_term": "upon receipt", "sent_at": null,
                    "paid_at": null, "paid_date": null, "closed_at": null,
                    "line_items": [{ "id": 1, "project": { "id": project["id"], "name": project["name"], "code": null },
                                     "kind": "Service", "description": "Consulting",
                                     "quantity": 1.0, "unit_price": n(net), "amount": n(net),
                                     "taxed": true, "taxed2": false }] }),
        )
    }
}
