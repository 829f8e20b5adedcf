//! Redmine connection settings.

use serde::Deserialize;

/// How to reach one Redmine and read its time tracking.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedmineConfig {
    /// Server root, e.g. `https://redmine.example.com`.
    pub base_url: String,
    /// The firm's currency: Redmine records hours, not money.
    pub home_currency: String,
    /// Name of the boolean time-entry custom field that marks billable time.
    /// Without it every entry is billable.
    #[serde(default)]
    pub billable_field: Option<String>,
    /// Name of the boolean time-entry custom field a manager ticks to approve time.
    /// Without it every entry counts as approved (Redmine has no approval workflow).
    #[serde(default)]
    pub approved_field: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Records per list page (`limit`); Redmine serves at most 100, so a larger
    /// value reads 100 at a time, and 0 reads one at a time.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
}

fn default_page_size() -> usize {
    super::client::PAGE
}

fn default_timeout() -> u64 {
    30
}
