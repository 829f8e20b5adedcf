//! Xero connection settings.

use serde::Deserialize;

/// How to reach one Xero organisation.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    /// API root; `https://api.xero.com/api.xro/2.0` in production.
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The organisation (`xero-tenant-id` header).
    pub tenant_id: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Calls per minute kept in reserve below Xero's 60, so clock skew between
    /// Ferry's budget and Xero's window cannot cause a 429.
    #[serde(default = "default_headroom")]
    pub minute_headroom: u32,
    /// Documents per write call (Xero recommends about 50).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Xero's OAuth token endpoint, used when the tenant's secret holds a
    /// `xero.refresh_token` (otherwise `xero.access_token` is used as is).
    #[serde(default = "default_token_url")]
    pub token_url: String,
}

fn default_token_url() -> String {
    "https://identity.xero.com/connect/token".into()
}

fn default_base() -> String {
    "https://api.xero.com/api.xro/2.0".into()
}
fn default_timeout() -> u64 {
    30
}
fn default_headroom() -> u32 {
    5
}
fn default_batch() -> usize {
    50
}
