//! Redmine's JSON, permissively typed (unknown fields ignored).
//! Reference: https://www.redmine.org/projects/redmine/wiki/Rest_api

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

pub use crate::psa::Named;

/// A custom field value; multi-value fields send a list.
#[derive(Debug, Clone, Deserialize)]
pub struct CustomField {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub value: Value,
}

impl CustomField {
    /// The value as text (`""` when empty; multi-value fields joined by commas).
    pub fn text(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A project (`/projects.json`). Ferry adds `ferry_customer`: the top-level
/// project it belongs to, which stands for the customer.
#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    /// 1 active, 5 closed, 9 archived (10 scheduled for deletion).
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub parent: Option<Named>,
    #[serde(default)]
    pub custom_fields: Vec<CustomField>,
    pub updated_on: String,
    #[serde(default)]
    pub ferry_customer: Option<Named>,
    /// Ferry adds the project's own issues (not its subprojects'), its tasks.
    #[serde(default)]
    pub ferry_issues: Vec<Issue>,
    /// Ferry adds the latest `updated_on` of the project and its issues: a new or
    /// renamed issue is a new version of the project.
    #[serde(default)]
    pub ferry_updated_on: Option<String>,
}

/// An issue, as a project's task.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Issue {
    pub id: i64,
    pub subject: String,
    pub updated_on: String,
}

/// A user (`/users.json`, admin only).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    /// 1 active, 2 registered, 3 locked.
    #[serde(default)]
    pub status: Option<i64>,
    pub updated_on: String,
}

/// A time entry (`/time_entries.json`). `hours` is a JSON number Redmine keeps as a float.
#[derive(Debug, Clone, Deserialize)]
pub struct TimeEntry {
    pub id: i64,
    pub project: Named,
    #[serde(default)]
    pub issue: Option<Named>,
    pub user: Named,
    #[serde(default)]
    pub activity: Option<Named>,
    pub hours: Decimal,
    #[serde(default)]
    pub comments: Option<String>,
    pub spent_on: String,
    pub updated_on: String,
    #[serde(default)]
    pub custom_fields: Vec<CustomField>,
}

/// A list page: the items under the collection's key, with `total_count`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// `{"errors": ["…"]}` (422).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Errors {
    #[serde(default)]
    pub errors: Vec<String>,
}
