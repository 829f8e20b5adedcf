//! Business Central connection settings.

use serde::{Deserialize, Serialize};

/// How to reach one Business Central company.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessCentralConfig {
    /// The Microsoft Entra tenant (directory) id.
    pub tenant_id: String,
    /// The environment (`production`, `sandbox`, …).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// The company's id (`companies({id})`).
    pub company_id: String,
    /// The app registration's client id; its secret is `businesscentral.client_secret`.
    pub client_id: String,
    /// API v2.0's root; by default the environment's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Entra's token endpoint; by default the tenant's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Requests Ferry leaves unused of the 6,000 per five minutes (kept per minute).
    #[serde(default = "default_headroom")]
    pub minute_headroom: u32,
    /// Documents created in one `$batch` (Business Central takes 100 operations).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

pub const MAX_BATCH: usize = 100;
/// 6,000 requests per five-minute window, as a per-minute pace.
pub const PER_MINUTE: u32 = 1200;

fn default_environment() -> String {
    "production".into()
}

fn default_headroom() -> u32 {
    200
}

fn default_batch() -> usize {
    MAX_BATCH
}

fn default_timeout() -> u64 {
    30
}

impl BusinessCentralConfig {
    pub fn base(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "https://api.businesscentral.dynamics.com/v2.0/{}/{}/api/v2.0",
                self.tenant_id, self.environment
            ),
        }
    }

    pub fn token_endpoint(&self) -> String {
        match &self.token_url {
            Some(u) => u.clone(),
            None => format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant_id
            ),
        }
    }

    /// The company's collection URL for an entity (`customers`, `salesInvoices`).
    pub fn entity(&self, name: &str) -> String {
        format!("{}/companies({})/{name}", self.base(), self.company_id)
    }
}
