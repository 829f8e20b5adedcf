use std::fmt;

use async_trait::async_trait;
use ferry_canon::TenantId;

use crate::error::PortError;

/// A secret value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Credentials and webhook keys, one set per tenant (one Secrets Manager secret
/// per customer stack on AWS).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The named value of the tenant's secret, e.g. `connectwise.private_key`.
    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Secret, PortError>;
}
