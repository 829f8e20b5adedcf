//! Tryton connection settings.

use serde::Deserialize;

/// How to reach one Tryton database and company.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonConfig {
    /// Server root, e.g. `https://erp.example.com` (the REST API is under `/<database>/rest`).
    pub base_url: String,
    /// The database name (the first path segment of every call).
    pub database: String,
    /// The company id Ferry writes for (sent in the `X-Tryton-Context` header).
    #[serde(default = "default_company")]
    pub company: i64,
    /// Code of the revenue journal customer invoices are posted in.
    #[serde(default = "default_journal")]
    pub journal: String,
    /// Code of the receivable account on customer invoices; Tryton's accounting
    /// configuration default when absent.
    #[serde(default)]
    pub receivable_account: Option<String>,
    /// Name of the payment term put on new customers and invoices, if any.
    #[serde(default)]
    pub payment_term: Option<String>,
    /// The employee (by party name) whose timesheet lines record time of people
    /// Tryton has no employee for. Without it such time is refused, by name.
    #[serde(default)]
    pub employee: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Calls per minute Ferry allows itself. Tryton documents no limit; a
    /// self-hosted server is shared with its users, so Ferry stays polite.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Calls in flight at once. Use 1 for a Tryton on SQLite: its sequences are
    /// read-then-write there, so concurrent creates can draw the same number.
    #[serde(default = "default_concurrent")]
    pub concurrent: u32,
    /// Records per search page (`Range: records=…`).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
}

fn default_company() -> i64 {
    1
}
fn default_journal() -> String {
    "REV".into()
}
fn default_timeout() -> u64 {
    30
}
fn default_per_minute() -> u32 {
    600
}
fn default_concurrent() -> u32 {
    4
}
fn default_page_size() -> usize {
    100
}
