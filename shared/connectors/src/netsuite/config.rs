//! NetSuite connection settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How to reach one NetSuite account and where Ferry's documents go in it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetSuiteConfig {
    /// The account id (`1234567`, or `1234567_SB1` for a sandbox).
    pub account_id: String,
    /// The REST root; by default the account's own
    /// (`https://1234567-sb1.suitetalk.api.netsuite.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The integration record's client id (OAuth 2.0 client credentials).
    pub client_id: String,
    /// The certificate id NetSuite shows for the public key mapped to the
    /// integration (the JWT's `kid`); the private key is the secret
    /// `netsuite.private_key`.
    pub certificate_id: String,
    /// The subsidiary (internal id) Ferry's customers and documents belong to.
    pub subsidiary: String,
    /// Currency internal ids by ISO code (NetSuite references currencies by id).
    #[serde(default = "default_currencies")]
    pub currencies: BTreeMap<String, String>,
    /// The account's concurrency limit (5 on a standard tier, 15 on premium,
    /// plus 10 per SuiteCloud Plus licence); Ferry keeps that many calls in
    /// flight at most, across every process.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Documents per asynchronous batch (NetSuite takes 100).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How long a batch job is waited for before its outcome counts as unknown
    /// (the next attempt finds the documents by external id).
    #[serde(default = "default_job_wait")]
    pub job_wait_seconds: u64,
}

pub const MAX_BATCH: usize = 100;

fn default_currencies() -> BTreeMap<String, String> {
    [("USD", "1"), ("GBP", "2"), ("CAD", "3"), ("EUR", "4")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn default_concurrency() -> u32 {
    5
}

fn default_batch() -> usize {
    MAX_BATCH
}

fn default_timeout() -> u64 {
    30
}

fn default_job_wait() -> u64 {
    60
}

impl NetSuiteConfig {
    /// The REST root.
    pub fn base(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "https://{}.suitetalk.api.netsuite.com",
                self.account_id.to_lowercase().replace('_', "-")
            ),
        }
    }

    /// The OAuth 2.0 token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/services/rest/auth/oauth2/v1/token", self.base())
    }
}
