//! Harvest connection settings.

use serde::{Deserialize, Serialize};

/// How to reach one Harvest account and read its time, expenses and invoices.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestConfig {
    /// API root; Harvest's own unless a test points elsewhere.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The `Harvest-Account-Id` every request carries.
    pub account_id: String,
    /// The firm's currency, for clients that name none.
    pub home_currency: String,
    /// Harvest asks every integration to name itself and a contact in
    /// `User-Agent` (`"Ferry for Acme (ops@partner.example)"`).
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Records per page, 1 to 2,000 (Harvest's largest).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Whether the account approves timesheets. When it does (the default),
    /// only entries approved in Harvest (`is_closed`) count as approved; when it
    /// does not, every entry does.
    #[serde(default = "yes")]
    pub approvals: bool,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

pub const MAX_PAGE: u32 = 2000;

fn default_base_url() -> String {
    "https://api.harvestapp.com/v2".into()
}

fn default_user_agent() -> String {
    concat!("Ferry/", env!("CARGO_PKG_VERSION")).into()
}

fn default_page_size() -> u32 {
    MAX_PAGE
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    30
}
