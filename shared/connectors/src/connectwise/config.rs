//! ConnectWise PSA connection settings.

use crate::credential::Credential;
use serde::Deserialize;

/// How to reach one ConnectWise PSA company.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectWiseConfig {
    /// API root, e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`.
    pub base_url: String,
    /// The ConnectWise company id (the `companyId` in `companyId+publicKey`).
    pub company_id: String,
    /// The company's home currency: rates and amounts without a currency are in it.
    pub home_currency: String,
    /// Origins (scheme://host[:port]) allowed to serve callback signing keys.
    /// A callback whose `Metadata.key_url` is elsewhere is refused before any fetch.
    pub key_url_origins: Vec<String>,
    /// Webhook freshness: a signed callback whose entity was last updated at most
    /// this long ago (and at most 5 minutes ahead of Ferry's clock) is mapped as
    /// sent. An older one is still accepted, as a thin notice: transform reads the
    /// current record from ConnectWise instead of trusting the body.
    #[serde(default = "default_max_age")]
    pub max_callback_age_seconds: u64,
    /// Request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_max_age() -> u64 {
    24 * 3600
}

fn default_timeout() -> u64 {
    30
}

/// Credentials, from the tenant's secret.
#[derive(Clone)]
pub struct ConnectWiseCredentials {
    pub public_key: Credential,
    pub private_key: Credential,
    /// The integration's clientId from developer.connectwise.com.
    pub client_id: Credential,
}
