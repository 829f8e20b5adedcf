use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;

use crate::error::PortError;

/// Named per-tenant locks with an expiry, for work only one process may do at
/// a time, such as refreshing an OAuth token whose refresh token rotates on
/// use. A holder that dies loses the lock when it expires.
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Takes `name` for `holder` until `until`. True if taken: nobody held it,
    /// the last hold expired, or `holder` already held it (extended).
    async fn try_acquire(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError>;

    /// Gives the lock up; does nothing if `holder` does not hold it.
    async fn release(&self, tenant: &TenantId, name: &str, holder: &str) -> Result<(), PortError>;
}
