use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;

use crate::error::PortError;

/// Webhook event-id dedupe with a TTL.
#[async_trait]
pub trait EventDedupe: Send + Sync {
    /// Records `event_id` and returns true if it was not seen (or its record expired).
    async fn first_seen(
        &self,
        tenant: &TenantId,
        event_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, PortError>;

    /// Keeps an event id until `expires_at`: intake first marks an id for a
    /// short claim, and keeps it for the dedupe window only once its notice is
    /// queued, so a crash in between lets the vendor's retry through.
    async fn keep(
        &self,
        tenant: &TenantId,
        event_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError>;

    /// Forgets an event id, so a delivery whose enqueue failed can be retried by the vendor.
    async fn forget(&self, tenant: &TenantId, event_id: &str) -> Result<(), PortError>;
}
