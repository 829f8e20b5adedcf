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

    /// The named value, read from the source of truth past any cache (a holder of
    /// the refresh lock must see what the previous holder wrote).
    async fn get_fresh(&self, tenant: &TenantId, name: &str) -> Result<Secret, PortError> {
        self.get(tenant, name).await
    }

    /// Writes several values of the tenant's secret at once, keeping the others
    /// (used by the single writer that rotates OAuth tokens).
    async fn put(&self, tenant: &TenantId, values: &[(&str, &Secret)]) -> Result<(), PortError>;
}
