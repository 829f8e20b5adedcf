//! Harvest v2's JSON, permissively typed (unknown fields ignored). Numbers are
//! read as exact decimals; only the mapper interprets them.
//! Reference: https://help.getharvest.com/api-v2/ (contract: the MIT OpenAPI in
//! `specs/harvest/harvest-openapi.yaml`).

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

pub use crate::psa::Named;

/// One page of a list: the records under the collection's key, and the links.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub total_entries: Option<u64>,
    pub links: Links,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

/// Harvest's error bodies: OAuth's `{error, error_description}` or `{message}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Error {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Client {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: i64,
    #[serde(default)]
    pub client: Option<Named>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_billable: Option<bool>,
    #[serde(default)]
    pub is_fixed_fee: Option<bool>,
    #[serde(default)]
    pub budget_by: Option<String>,
    #[serde(default)]
    pub budget: Option<Decimal>,
    #[serde(default)]
    pub fee: Option<Decimal>,
    #[serde(default)]
    pub starts_on: Option<String>,
    #[serde(default)]
    pub ends_on: Option<String>,
    pub updated_at: String,
    /// Added by the connector: the client's currency.
    #[serde(default)]
    pub ferry_currency: Option<String>,
    /// Added by the connector: the project's task assignments.
    #[serde(default)]
    pub ferry_tasks: Vec<TaskAssignment>,
    /// Added by the connector: the latest change of the project or its tasks.
    #[serde(default)]
    pub ferry_updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskAssignment {
    pub id: i64,
    #[serde(default)]
    pub project: Option<Named>,
    pub task: Named,
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub default_hourly_rate: Option<Decimal>,
    #[serde(default)]
    pub cost_rate: Option<Decimal>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimeEntry {
    pub id: i64,
    #[serde(default)]
    pub spent_date: Option<String>,
    #[serde(default)]
    pub user: Option<Named>,
    #[serde(default)]
    pub client: Option<Named>,
    #[serde(default)]
    pub project: Option<Named>,
    #[serde(default)]
    pub task: Option<Named>,
    #[serde(default)]
    pub invoice: Option<Value>,
    #[serde(default)]
    pub hours: Option<Decimal>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub is_closed: Option<bool>,
    #[serde(default)]
    pub is_running: Option<bool>,
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub billable_rate: Option<Decimal>,
    #[serde(default)]
    pub cost_rate: Option<Decimal>,
    pub updated_at: String,
    #[serde(default)]
    pub ferry_currency: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expense {
    pub id: i64,
    #[serde(default)]
    pub client: Option<Named>,
    #[serde(default)]
    pub project: Option<Named>,
    #[serde(default)]
    pub expense_category: Option<Named>,
    #[serde(default)]
    pub user: Option<Named>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub total_cost: Option<Decimal>,
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub is_closed: Option<bool>,
    #[serde(default)]
    pub spent_date: Option<String>,
    pub updated_at: String,
    #[serde(default)]
    pub ferry_currency: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    #[serde(default)]
    pub project: Option<Named>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub quantity: Option<Decimal>,
    #[serde(default)]
    pub unit_price: Option<Decimal>,
    #[serde(default)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub taxed: Option<bool>,
    #[serde(default)]
    pub taxed2: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: i64,
    #[serde(default)]
    pub client: Option<Named>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub purchase_order: Option<String>,
    #[serde(default)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub due_amount: Option<Decimal>,
    #[serde(default)]
    pub tax_amount: Option<Decimal>,
    #[serde(default)]
    pub tax2_amount: Option<Decimal>,
    #[serde(default)]
    pub discount_amount: Option<Decimal>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub issue_date: Option<String>,
    #[serde(default)]
    pub due_date: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    #[serde(default)]
    pub amount: Option<Decimal>,
}
